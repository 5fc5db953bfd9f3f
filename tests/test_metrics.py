"""Image metrics of atelier.analysis.metrics with exact expectations (issue 29, mutation testing):
each number rebuilt by hand from its definition on real photos and paintings, or on hand-made
images whose value is known in closed form. All fast (small images, the VGG encoder on the CPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import structural_similarity

from atelier.analysis import metrics
from atelier.analysis.metrics import (PERCEPTUAL_LAYERS, ScoreConfig, Scorer, art_fid, colour_histogram, evaluate,
                                      fid_features, frechet_distance, histogram_distance, perceptual_distance,
                                      perceptual_features, ssim_luminance, style_distance, warping_error)
from atelier.core.errors import InputError
from atelier.imaging import color
from atelier.io import images as img
from atelier.losses import StyleTarget, content_loss, gram_matrix, tv_loss

from conftest import data_file


@pytest.fixture(scope="module")
def scorer():
    return Scorer(ScoreConfig(device="cpu"))


@pytest.fixture(scope="module")
def photo():
    return img.resize_to(img.load_image(skdata.coffee()), 32, 48)


@pytest.fixture(scope="module")
def painting():
    return img.load_image(data_file("styles/the_scream.jpg"), size=40)


def test_ssim_luminance_is_skimages_ssim_of_the_bt601_luma(photo):
    other = img.load_image(skdata.astronaut(), size=64)  # 64 x 64: resized to the photo's 32 x 48
    small = img.resize_to(other, 32, 48)
    ya = color.luminance(photo)[0, 0].double().numpy()
    yb = color.luminance(small)[0, 0].double().numpy()
    want = structural_similarity(ya, yb, data_range=1.0)
    assert ssim_luminance(photo, small) == pytest.approx(want, abs=1e-12)
    assert ssim_luminance(photo, other) == pytest.approx(want, abs=1e-12)
    assert ssim_luminance(photo, photo) == pytest.approx(1.0, abs=1e-12) and want < 0.5


def test_warping_error_masks_and_input_checks(photo):
    """With a zero flow the warp is the identity: E is the masked mean over pixels of the mean over
    channels of (a - b)^2, with the mask as an (H, W) array or a (1, 1, H, W) tensor."""
    a, b = photo, photo.flip(-1)
    d2 = (a - b).square().mean(1)[0].double().numpy()
    zero = np.zeros((32, 48, 2), np.float32)
    mask = np.zeros((32, 48), np.float32)
    mask[4:20, 10:30], mask[25:, :8] = 1.0, 0.25
    want = float((d2 * mask).sum() / mask.sum())
    assert warping_error(a, b, zero, mask) == pytest.approx(want, rel=1e-5)
    assert warping_error(a, b, zero, torch.from_numpy(mask)[None, None]) == pytest.approx(want, rel=1e-5)
    assert warping_error(a, b, zero) == pytest.approx(float(d2.mean()), rel=1e-5)
    assert math.isnan(warping_error(a, b, zero, np.zeros((32, 48))))
    column = mask[:, 10:11]  # a frame one pixel wide: its (H, 1) mask is not taken for (N, 1, H, W)
    want1 = float((d2[:, 10:11] * column).sum() / column.sum())
    got1 = warping_error(a[..., 10:11], b[..., 10:11], zero[:, 10:11], column)
    assert got1 == pytest.approx(want1, rel=1e-5)
    for bad in ((a.numpy(), b), (a, b.numpy()), (a[0], b[0])):
        with pytest.raises(InputError, match=r"^warping_error expects two image tensors \(1, 3, H, W\)$"):
            warping_error(*bad, zero)
    with pytest.raises(InputError, match=r"^frame \(1, 3, 32, 48\) and previous frame \(1, 3, 32, 47\) differ in shape$"):
        warping_error(a, b[..., :47], zero)
    with pytest.raises(InputError, match="the mask is"):
        warping_error(a, b, zero, mask[:, :47])


def test_colour_histogram_and_hellinger_distance_by_hand():
    """Four pixels: two red (1, 0, 0), one blue, one (0.3, 0.6, 0.99). With 8 bins per channel,
    red is bin (7, 0, 0) = 448 (1.0 falls in the last bin), blue (0, 0, 7) = 7, the third
    (2, 4, 7) = 167; with 2 bins red is (1, 0, 0) = 4. Against all-red the Hellinger distance is
    sqrt(1 - sqrt(1/2))."""
    px = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0], [0.3, 0.6, 0.99]])
    x = px.T.reshape(1, 3, 2, 2)
    h = colour_histogram(x)
    assert h.shape == (512,) and h.dtype == np.float64
    want = np.zeros(512)
    want[[448, 7, 167]] = 0.5, 0.25, 0.25
    assert np.array_equal(h, want)
    one = torch.tensor([-0.2, 0.5, 1.3]).view(1, 3, 1, 1)  # one pixel, out of range: clamped to (0, 0.5, 1)
    h1 = colour_histogram(one)
    assert h1.sum() == 1.0 and h1[(0 * 8 + 4) * 8 + 7] == 1.0
    h2 = colour_histogram(x, bins=2)
    assert h2.shape == (8,) and h2[4] == 0.5 and h2[1] == 0.25 and h2[3] == 0.25  # (0, 1, 1) for the third
    red = torch.zeros(1, 3, 3, 5)
    red[:, 0] = 1.0
    assert histogram_distance(red, x) == pytest.approx(math.sqrt(1 - math.sqrt(0.5)), rel=1e-12)
    assert histogram_distance(red, x, bins=2) == pytest.approx(math.sqrt(1 - math.sqrt(0.5)), rel=1e-12)
    assert histogram_distance(red, x, bins=1) == 0.0  # one bin: every colour alike
    assert histogram_distance(red, red.roll(1, 1)) == pytest.approx(1.0)  # red vs blue: nothing in common
    assert histogram_distance(x, x) == 0.0


def test_frechet_distance_of_diagonal_gaussians_in_closed_form():
    """Four points (+-a, 0), (0, +-b) around a mean have the diagonal covariance (2a^2/3, 2b^2/3)
    (N - 1 = 3), so FID = |mx - my|^2 + sum (sqrt(sx) - sqrt(sy))^2: with a, b = 3, 1.5 around
    (0, 0) and c, d = 1, 3 around (1, 2): 5 + (sqrt 6 - sqrt(2/3))^2 + (sqrt 1.5 - sqrt 6)^2 = 55/6."""
    def cross(a, b, mean):
        return np.array([[a, 0], [-a, 0], [0, b], [0, -b]], np.float64) + mean

    x, y = cross(3, 1.5, (0, 0)), cross(1, 3, (1, 2))
    assert frechet_distance(x, y) == pytest.approx(55 / 6, rel=1e-9)
    assert frechet_distance(y, x) == pytest.approx(55 / 6, rel=1e-9)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError, match="at least 2 images per set, got 4 and 1"):
        frechet_distance(x, y[:1])


def test_perceptual_distance_rebuilt_by_hand(scorer, photo, painting):
    """Per layer: unit vectors over the channels, squared difference summed over channels and
    averaged over positions; then the mean over the layers (all five by default)."""
    enc = scorer.encoder
    p = img.resize_to(painting, 32, 48)
    fa, fb = enc(photo, PERCEPTUAL_LAYERS), enc(p, PERCEPTUAL_LAYERS)
    unit = lambda f: f / (f.norm(dim=1, keepdim=True) + 1e-10)  # noqa: E731
    per_layer = [float((unit(fa[n]) - unit(fb[n])).square().sum(1).mean()) for n in PERCEPTUAL_LAYERS]
    want = sum(per_layer) / 5
    assert perceptual_distance(enc, photo, p) == pytest.approx(want, rel=1e-5)
    assert perceptual_distance(enc, photo, painting) == pytest.approx(want, rel=1e-5)  # resized to the photo's size
    feats = perceptual_features(enc, photo)
    assert set(feats) == set(PERCEPTUAL_LAYERS)
    assert torch.allclose(feats["relu3_1"].norm(dim=1), torch.ones(1, 8, 12), atol=1e-5)
    assert perceptual_distance(enc, torch.zeros_like(photo), p, a_features=feats) == pytest.approx(want, rel=1e-5)
    two = perceptual_distance(enc, photo, p, layers=("relu1_1", "relu5_1"))
    assert two == pytest.approx((per_layer[0] + per_layer[4]) / 2, rel=1e-5)
    assert perceptual_distance(enc, photo, photo) == 0.0 and 0.2 < want < 4


def test_fid_features_and_art_fid_by_hand(scorer, photo, painting, monkeypatch):
    """fid_features: relu5_1 channel means of each image resized to longest side ``size``, unit
    rows; art_fid = (1 + mean perceptual distance of each result to its content) x (1 + FID)."""
    enc = scorer.encoder
    wave = img.load_image(data_file("styles/great_wave.jpg"), size=40)
    images = [photo, painting, wave]
    f = fid_features(enc, images, size=32)
    assert f.shape == (3, 512) and np.allclose(np.linalg.norm(f, axis=1), 1.0)
    for row, t in zip(f, images):
        x = img.resize_longest(t, 32) if max(t.shape[-2:]) != 32 else t
        v = enc(x, ["relu5_1"])["relu5_1"].mean((2, 3))[0].double().numpy()
        assert np.allclose(row, v / np.linalg.norm(v), atol=1e-5)
    results, contents, styles = [painting, wave], [photo, photo], [painting, wave, photo]
    seen = []  # the Frechet distance itself is checked in closed form above; here, what it is given
    monkeypatch.setattr(metrics, "frechet_distance", lambda x, y: seen.append((x, y, frechet_distance(x, y))) or seen[-1][2])
    got = art_fid(enc, results, contents, styles, size=32)
    (fx, fy, fid), = seen
    assert np.allclose(fx, fid_features(enc, results, 32), atol=1e-6) and np.allclose(fy, fid_features(enc, styles, 32), atol=1e-6)
    assert got["fid"] == fid
    cd = float(np.mean([perceptual_distance(enc, img.resize_longest(s, 32) if max(s.shape[-2:]) != 32 else s, photo)
                        for s in results]))
    assert fid > 0.1 and got["content_distance"] == pytest.approx(cd, rel=1e-5)
    assert got["art_fid"] == pytest.approx((1 + cd) * (1 + fid), rel=1e-5)
    assert (got["stylized"], got["styles"]) == (2, 3) and "not the paper's" in got["features"]
    with pytest.raises(InputError, match="2 results, 1 content images"):
        art_fid(enc, results, contents[:1], styles, size=32)


def test_style_distance_by_hand_and_encodes_each_painting_once(photo, painting):
    """The style image is resized to ``style_scale`` x the image's longest side (at least 16 px),
    its Grams are the target, layer weights apply; the same painting is encoded once per size."""
    cfg = ScoreConfig(device="cpu", style_layers=("relu1_1", "relu3_1"), style_layer_weights=(3.0, 1.0),
                      style_scale=0.25)
    st = Scorer(cfg)
    assert st.config is cfg and st.precision == "fp32" and st.gram_cache == {}
    s = img.resize_longest(painting, 16)  # round(0.25 * 48) = 12 -> the 16 px minimum
    grams = {n: gram_matrix(v) for n, v in st.encoder(s, cfg.style_layers).items()}
    want = float(StyleTarget([grams], None, {"relu1_1": 3.0, "relu3_1": 1.0})(st.encoder(photo, cfg.style_layers)))
    calls = []
    encode = st.encoder.forward
    st.encoder.forward = lambda x, *a, **k: (calls.append(tuple(x.shape)), encode(x, *a, **k))[1]
    try:
        assert style_distance(st, photo, painting) == pytest.approx(want, rel=1e-5)
        assert style_distance(st, photo, painting) == pytest.approx(want, rel=1e-5)
        assert calls.count(tuple(s.shape)) == 1 and len(st.gram_cache) == 1  # the second call hit the cache
        big = img.resize_to(photo, 96, 144)  # longest 144 -> 36 px style image: another cache entry
        style_distance(st, big, painting)
        assert len(st.gram_cache) == 2 and tuple(img.resize_longest(painting, 36).shape) in calls
    finally:
        st.encoder.forward = encode
    plain = Scorer(ScoreConfig(device="cpu", style_layers=("relu1_1", "relu3_1"), style_scale=0.25))
    unweighted = float(StyleTarget([grams], None, None)(plain.encoder(photo, cfg.style_layers)))
    assert style_distance(plain, photo, painting) == pytest.approx(unweighted, rel=1e-5) and unweighted != want


def test_evaluate_by_hand(photo, painting):
    """evaluate: content loss averaged over the content layers, style loss the blend-weighted
    style distances, TV of the result, SSIM against the content (resized), its size."""
    wave = img.load_image(data_file("styles/great_wave.jpg"), size=40)
    cfg = ScoreConfig(device="cpu", content_layers=("relu2_1", "relu4_2"), style_layers=("relu1_1", "relu2_1"),
                      style_blend=(1.0, 3.0))
    st = Scorer(cfg)
    result = (0.5 * photo + 0.5 * img.resize_to(painting, 32, 48)).clamp(0, 1)
    content = img.resize_to(photo, 64, 96)  # resized to the result's 32 x 48
    c = img.resize_to(content, 32, 48)
    fx, fc = st.encoder(result, cfg.content_layers), st.encoder(c, cfg.content_layers)
    lc = (float(content_loss(fx["relu2_1"], fc["relu2_1"])) + float(content_loss(fx["relu4_2"], fc["relu4_2"]))) / 2
    d = [style_distance(st, result, painting), style_distance(st, result, wave)]
    out = evaluate(result, content, [painting, wave], st=st)
    assert out["content_loss"] == pytest.approx(lc, rel=1e-5)
    assert out["style_distance"] == pytest.approx(d, rel=1e-5) and d[0] != pytest.approx(d[1], rel=0.05)
    assert out["style_loss"] == pytest.approx(0.25 * d[0] + 0.75 * d[1], rel=1e-5)
    assert out["tv_loss"] == pytest.approx(float(tv_loss(result)), rel=1e-6)
    assert out["ssim"] == pytest.approx(ssim_luminance(result, c), abs=1e-9)
    assert out["size"] == [32, 48]
    none = evaluate(result, content, [], config=cfg)
    assert none["style_loss"] is None and none["style_distance"] == [] and none["content_loss"] == pytest.approx(lc, rel=1e-5)
    assert metrics.ScoreConfig().content_layers == ("relu4_2",) and ScoreConfig().style_scale == 1.0
