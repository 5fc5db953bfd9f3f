"""Universal style transfer (WCT, Li et al. 2017): the transforms' defining properties on real
features, the shipped inversion decoders, the user-level pipeline, and decoder training."""

import hashlib
import shutil

import pytest
import torch
from skimage import data as skdata

from atelier.imaging import color
from atelier.io import images as img
from atelier.core.errors import InputError
from atelier.encoders.vgg import get_encoder
from atelier.methods.arbitrary.train_decoders import DecoderTrainConfig, InversionTrainer, load_inversion_decoder
from atelier.methods.arbitrary.wct import decoders_dir, load_wct, wct_tensor
from atelier.methods.arbitrary.wct_model import WCTStyle, colour, feature_covariance, wct, whiten
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer
from atelier.analysis.metrics import ssim_luminance, style_distance
from atelier.networks.decoders import InversionDecoder
from conftest import data_file

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(None, "max", "cpu")


@pytest.fixture(scope="module")
def photo():
    return img.resize_to(img.load_image(skdata.coffee()), 96, 128)  # in no training set; sides divisible by 16


@pytest.fixture(scope="module")
def scream():
    return img.load_image(data_file("styles/the_scream.jpg"), size=128)


def test_whitening_gives_identity_and_colouring_gives_the_style_covariance(encoder, photo, scream):
    fc = encoder(photo, ["relu3_1"])["relu3_1"][0].flatten(1)
    fs = encoder(scream, ["relu3_1"])
    white = whiten(fc)
    m, cov = feature_covariance(white)
    eye = torch.eye(cov.shape[0], dtype=cov.dtype)
    assert float(m.abs().max()) < 1e-6
    # identity on the span of the content features (relu3_1 of a 128 px photo has full rank here)
    assert float((cov - eye).abs().max()) < 1e-3
    style = WCTStyle.from_features({"relu3_1": fs["relu3_1"]})
    coloured = colour(white, style, "relu3_1")
    ms, cov_s = feature_covariance(fs["relu3_1"][0].flatten(1))
    m2, cov2 = feature_covariance(coloured)
    rel = float((cov2 - cov_s).norm() / cov_s.norm())
    assert rel < 1e-3, rel
    assert float((m2 - ms).abs().max()) < 1e-3 * float(ms.abs().max())
    # and the photo's own covariance is far from the painting's: the test would catch a no-op
    _, cov_c = feature_covariance(fc)
    assert float((cov_c - cov_s).norm() / cov_s.norm()) > 0.2


def test_wct_alpha_zero_keeps_the_content_features_and_blend_mixes(encoder, photo, scream):
    f = encoder(photo, ["relu2_1"])["relu2_1"]
    wave = img.load_image(data_file("styles/great_wave.jpg"), size=128)
    s1 = WCTStyle.from_features(encoder(scream, ["relu2_1"]))
    s2 = WCTStyle.from_features(encoder(wave, ["relu2_1"]))
    assert torch.allclose(wct(f, [s1], "relu2_1", alpha=0.0), f, atol=1e-4)
    a, b = wct(f, [s1], "relu2_1"), wct(f, [s2], "relu2_1")
    mix = wct(f, [s1, s2], "relu2_1", blend=[3, 1])
    assert torch.allclose(mix, 0.75 * a + 0.25 * b, atol=1e-3)
    with pytest.raises(ValueError, match="two styles"):
        wct(f, [s1], "relu2_1", mask=torch.ones(1, 1, 8, 8))


def test_wct_alpha_is_honoured_with_a_mask(encoder, photo, scream):
    """With a mask, alpha still mixes: ``wct(alpha) = alpha * wct(1) + (1 - alpha) * f``, and
    alpha = 0 gives the content features back."""
    f = encoder(photo, ["relu2_1"])["relu2_1"]
    wave = img.load_image(data_file("styles/great_wave.jpg"), size=128)
    s1 = WCTStyle.from_features(encoder(scream, ["relu2_1"]))
    s2 = WCTStyle.from_features(encoder(wave, ["relu2_1"]))
    h, w = photo.shape[-2:]
    mask = torch.zeros(1, 1, h, w)
    mask[..., : w // 3] = 1.0
    full = wct(f, [s1, s2], "relu2_1", alpha=1.0, mask=mask)
    assert float((full - f).abs().mean()) > 0.1 * float(f.abs().mean())  # the transform does change them
    for alpha in (0.0, 0.35):
        part = wct(f, [s1, s2], "relu2_1", alpha=alpha, mask=mask)
        assert torch.allclose(part, alpha * full + (1 - alpha) * f, atol=1e-4), alpha


def test_eigenvalue_cut_off_is_relative_to_the_largest():
    """Eigenvalues below EIG_RTOL (1e-5) times the largest are dropped, whatever the features'
    scale: a hand-made covariance spanning 1e6 ... 1e-3 keeps only its top direction, the same
    covariance scaled by 1e-8 keeps the same one, and on real pixels whose channels differ in
    scale by 1e4 the whitened features have the covariance of a rank-1 projector."""
    from atelier.methods.arbitrary.wct_model import EIG_RTOL, _sym_power

    cov = torch.diag(torch.tensor([1e6, 5.0, 1e-3], dtype=torch.float64))
    assert torch.allclose(_sym_power(cov, -0.5), torch.diag(torch.tensor([1e-3, 0.0, 0.0], dtype=torch.float64)))
    small = _sym_power(cov * 1e-8, 0.5)  # 1e-2, 2.2e-4, 3e-6: only the top one is above 1e-5 * 1e-2
    assert torch.allclose(small, torch.diag(torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64)))
    near = torch.diag(torch.tensor([1.0, 2 * EIG_RTOL, 0.5 * EIG_RTOL], dtype=torch.float64))
    assert torch.allclose(_sym_power(near, 1.0), torch.diag(torch.tensor([1.0, 2 * EIG_RTOL, 0.0], dtype=torch.float64)))
    # real pixels: coffee's red channel x 1e3, green and blue x 0.1 (a wide-range covariance)
    x = img.load_image(skdata.coffee(), size=64)[0].flatten(1).double()
    f = x * torch.tensor([1e3, 0.1, 0.1], dtype=torch.float64)[:, None]
    _, cov_w = feature_covariance(whiten(f))
    assert abs(float(torch.trace(cov_w)) - 1.0) < 1e-3, torch.linalg.eigvalsh(cov_w)


@pytest.mark.parametrize("layer,min_ssim", [("relu1_1", 0.95), ("relu2_1", 0.9), ("relu3_1", 0.75),
                                            ("relu4_1", 0.5), ("relu5_1", 0.25)])
def test_shipped_decoders_invert_their_layer_on_a_photo(encoder, photo, layer, min_ssim):
    d = load_inversion_decoder(decoders_dir() / f"decoder-{layer}.safetensors")  # sha256 verified
    assert d.layer == layer and not d.training and d.card["training_pack"]["files"] == 1942
    with torch.no_grad():
        y = d(encoder(photo, [layer])[layer]).clamp(0, 1)
    assert y.shape == photo.shape
    assert ssim_luminance(photo, y) >= min_ssim
    # a decoder that ignored its input (or a wrong layer) would not track the photo
    other = img.load_image(skdata.astronaut(), size=128)
    other = img.resize_to(other, *photo.shape[-2:])
    assert float((y - photo).abs().mean()) < 0.5 * float((other - photo).abs().mean())


def test_stylize_wct_takes_the_style_and_keeps_the_subject(photo, scream):
    model = load_wct(device="cpu", precision="fp32")
    assert model.layers == ("relu4_1", "relu3_1", "relu2_1", "relu1_1")
    st = GatysStyleTransfer(GatysConfig(precision="fp32"))
    out = wct_tensor(model, photo, [scream], style_size=128)
    assert out.shape == photo.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    assert style_distance(st, out, scream) < 0.5 * style_distance(st, photo, scream)
    astronaut = img.resize_to(img.load_image(skdata.astronaut(), size=128), *photo.shape[-2:])
    assert ssim_luminance(photo, out) > ssim_luminance(astronaut, out) + 0.05
    # alpha=0 reconstructs the photo through four decoders
    recon = wct_tensor(model, photo, [scream], alpha=0.0, style_size=128)
    assert ssim_luminance(photo, recon) > 0.45
    # luminance mode keeps the photo's colours: chroma of the result is the photo's
    lum = wct_tensor(model, photo, [scream], preserve_color="luminance", style_size=128)
    ycc = lambda t: color.rgb_to_ycbcr(t)[:, 1:]  # noqa: E731
    assert float((ycc(lum) - ycc(photo)).abs().mean()) < 0.5 * float((ycc(out) - ycc(photo)).abs().mean())


def test_wct_mask_applies_each_style_to_its_region(photo, scream):
    model = load_wct(device="cpu", precision="fp32", layers=("relu3_1", "relu2_1", "relu1_1"))
    wave = img.load_image(data_file("styles/great_wave.jpg"), size=128)
    h, w = photo.shape[-2:]
    mask = torch.zeros(1, 1, h, w)
    mask[..., : w // 2] = 1.0  # scream on the left, wave on the right
    out = wct_tensor(model, photo, [scream, wave], mask=mask, style_size=128)
    st = GatysStyleTransfer(GatysConfig(precision="fp32"))
    left, right = out[..., : w // 2 - 8], out[..., w // 2 + 8:]
    assert style_distance(st, left, scream) < style_distance(st, left, wave)
    assert style_distance(st, right, wave) < style_distance(st, right, scream)


def test_tampered_decoder_is_refused(tmp_path):
    src = decoders_dir() / "decoder-relu2_1.safetensors"
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(src.with_suffix(".json"), tmp_path / src.with_suffix(".json").name)
    blob = bytearray((tmp_path / src.name).read_bytes())
    blob[-10] ^= 0xFF
    (tmp_path / src.name).write_bytes(bytes(blob))
    assert hashlib.sha256(blob).hexdigest() not in src.with_suffix(".json").read_text()
    with pytest.raises(InputError, match="sha256"):
        load_inversion_decoder(tmp_path / src.name)


def test_relu4_decoder_has_the_adain_layout():
    from atelier.networks.decoders import AdaINDecoder

    a, d = AdaINDecoder(0.5), InversionDecoder("relu4_1", 0.5)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in d.state_dict().items()}


def test_inversion_training_learns_and_resumes_exactly(tmp_path):
    photos = [data_file(f"content/{n}.jpg") for n in ("000000000030", "000000000086", "000000000165")]
    cfg = DecoderTrainConfig(content=photos, out=tmp_path / "d2", layer="relu2_1", width=0.25, image_size=48,
                             batch_size=2, steps=12, lr=2e-3, precision="fp32", device="cpu", checkpoint_every=6)
    full = InversionTrainer(cfg)
    card = full.train()
    assert card["format"] == "atelier-inversion-decoder" and card["steps"] == 12 and card["stopped_by"] == "steps"
    first, last = full.history[0]["pixel"], sum(h["pixel"] for h in full.history[-3:]) / 3
    assert last < 0.7 * first, (first, last)
    dec = load_inversion_decoder(tmp_path / "d2.safetensors")
    assert dec.layer == "relu2_1" and dec.card["sha256"] == card["sha256"]
    # a run stopped at step 6 (its periodic checkpoint) and resumed follows the same curve
    cfg2 = DecoderTrainConfig(**{**cfg.__dict__, "out": tmp_path / "half", "steps": 6})
    InversionTrainer(cfg2).train()
    resumed = InversionTrainer(DecoderTrainConfig(**{**cfg2.__dict__, "steps": 12}))
    resumed.train(resume=True)
    assert [round(h["total"], 5) for h in resumed.history] == [round(h["total"], 5) for h in full.history]


def test_cli_wct_and_train_decoders(tmp_path):
    """`stylize --method wct` with the shipped decoders and with decoders from `train-decoders`;
    options of other methods are refused; the PNG records the method, layers and decoder hashes."""
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from atelier.cli import app

    photo, starry = data_file("content/000000000165.jpg"), data_file("styles/starry_night.jpg")
    scream = data_file("styles/the_scream.jpg")
    run = CliRunner().invoke
    r = run(app, ["stylize", str(photo), "-s", str(starry), "-s", str(scream), "--style-blend", "0.7,0.3",
                  "--method", "wct", "--size", "96", "--style-size", "96", "-o", str(tmp_path / "w.png")])
    assert r.exit_code == 0, r.output
    meta = json.loads(Image.open(tmp_path / "w.png").text["atelier"])
    assert meta["method"] == "wct" and meta["wct_layers"] == ["relu4_1", "relu3_1", "relu2_1", "relu1_1"]
    assert set(meta["decoder_sha256"]) == set(meta["wct_layers"]) and meta["style_blend"] == [0.7, 0.3]
    r = run(app, ["stylize", str(photo), "-s", str(starry), "--method", "adain", "--wct-layers", "relu1_1",
                  "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "--wct-layers" in r.output and not (tmp_path / "x.png").exists()
    r = run(app, ["stylize", str(photo), "-s", str(starry), "--method", "wct", "--mask", str(photo), "--mask",
                  str(photo), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "one --mask per style" in r.output
    dec = tmp_path / "dec"
    dec.mkdir()
    r = run(app, ["train-decoders", "-c", str(data_file("content/000000000030.jpg")), "-o", str(dec),
                  "--layers", "relu1_1,relu2_1", "--image-size", "32", "--batch-size", "1", "--steps", "2",
                  "--width", "0.25", "--quiet"])
    assert r.exit_code == 0, r.output
    assert load_inversion_decoder(dec / "decoder-relu2_1.safetensors").card["steps"] == 2
    r = run(app, ["stylize", str(photo), "-s", str(starry), "--method", "wct", "--decoder", str(dec),
                  "--wct-layers", "relu2_1,relu1_1", "--size", "64", "-o", str(tmp_path / "mine.png")])
    assert r.exit_code == 0, r.output
    r = run(app, ["stylize", str(photo), "-s", str(starry), "--method", "wct", "--decoder", str(dec),
                  "-o", str(tmp_path / "y.png")])  # relu3_1 and relu4_1 were not trained there
    assert r.exit_code == 2 and "decoder-relu" in r.output and not (tmp_path / "y.png").exists()


def test_whitening_runs_on_one_thread_and_restores_the_count():
    """The eigendecomposition runs under core.runtime.single_thread (2 spinning threads were 100x
    slower on a busy 2-core CPU); the thread count is restored and the whitening is unchanged."""
    from atelier.core.runtime import single_thread
    from atelier.methods.arbitrary.wct_model import whiten

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with single_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        g = torch.Generator().manual_seed(0)
        feat = torch.randn(16, 400, generator=g) * torch.linspace(0.1, 3, 16)[:, None]
        w = whiten(feat)
        assert torch.get_num_threads() == 2
        cov = w @ w.t() / (w.shape[1] - 1)
        assert torch.allclose(cov, torch.eye(16, dtype=cov.dtype), atol=5e-3)  # EPS 1e-5 on a variance of 0.01
    finally:
        torch.set_num_threads(before)


# -- exact properties of the transforms (mutation testing, issue 29 item 3) -------------------------


def test_feature_covariance_by_hand():
    """Rows (0, 2, 4) and (1, 1, 7): means 2 and 3, centred (-2, 0, 2) and (-2, -2, 4), so the
    unbiased covariance (N - 1 = 2) is [[4, 6], [6, 12]], plus EPS on the diagonal; two pixels
    (0, 2) divide by N - 1 = 1."""
    from atelier.methods.arbitrary.wct_model import EPS

    m, cov = feature_covariance(torch.tensor([[0.0, 2.0, 4.0], [1.0, 1.0, 7.0]]))
    assert m.dtype == cov.dtype == torch.float64 and m.shape == (2, 1)
    assert torch.equal(m, torch.tensor([[2.0], [3.0]], dtype=torch.float64))
    want = torch.tensor([[4.0 + EPS, 6.0], [6.0, 12.0 + EPS]], dtype=torch.float64)
    assert torch.allclose(cov, want, rtol=0, atol=1e-12), cov
    _, cov2 = feature_covariance(torch.tensor([[0.0, 2.0]]))
    assert float(cov2) == pytest.approx(2.0 + EPS, abs=1e-12)


def test_eigenvalue_cut_off_is_strict_and_scale_free_below_one(monkeypatch):
    """An eigenvalue exactly EIG_RTOL times the largest is dropped (``>``), one just above is kept;
    for a covariance whose largest eigenvalue is below 1 (1e-2) the cut is still relative
    (1e-6 = 1e-4 x the largest is kept); and the eigendecomposition runs on one thread."""
    from atelier.methods.arbitrary.wct_model import EIG_RTOL, _sym_power

    d = lambda *v: torch.diag(torch.tensor(v, dtype=torch.float64))  # noqa: E731
    assert torch.equal(_sym_power(d(1.0, EIG_RTOL), 1.0), d(1.0, 0.0))
    assert torch.allclose(_sym_power(d(1e-2, 1e-6), 1.0), d(1e-2, 1e-6), rtol=1e-9, atol=0)
    threads, eigh = [], torch.linalg.eigh
    monkeypatch.setattr(torch.linalg, "eigh", lambda a: (threads.append(torch.get_num_threads()), eigh(a))[1])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert torch.allclose(_sym_power(d(4.0, 9.0), -0.5), d(0.5, 1 / 3))
    finally:
        torch.set_num_threads(before)
    assert threads == [1]


def test_wct_default_alpha_is_the_full_transform_and_alpha_mixes_linearly(encoder, photo, scream):
    """``wct(f)`` (alpha defaults to 1) and ``wct(f, alpha=1)`` are exactly colour(whiten(f)), and
    alpha = 0.35 is 0.35 of it plus 0.65 of the content features."""
    f = encoder(photo, ["relu1_1"])["relu1_1"]
    s = WCTStyle.from_features(encoder(scream, ["relu1_1"]))
    full = colour(whiten(f[0].flatten(1)), s, "relu1_1").float().reshape(f.shape)
    assert torch.allclose(wct(f, [s], "relu1_1"), full, atol=1e-5)
    assert torch.allclose(wct(f, [s], "relu1_1", alpha=1.0), full, atol=1e-5)
    assert torch.allclose(wct(f, [s], "relu1_1", alpha=0.35), 0.35 * full + 0.65 * f, atol=1e-5)
    assert float((full - f).abs().mean()) > 0.1 * float(f.abs().mean())


def test_wct_mask_regions_by_hand(encoder, photo, scream):
    """A mask at the features' resolution: pixels >= 0.5 (0.5 itself included) are whitened and
    coloured on their own with style 0, the others with style 1; a region of exactly two pixels
    is still transformed, a single pixel keeps its content features."""
    f = encoder(photo, ["relu1_1"])["relu1_1"]
    wave = img.load_image(data_file("styles/great_wave.jpg"), size=64)
    s0 = WCTStyle.from_features(encoder(scream, ["relu1_1"]))
    s1 = WCTStyle.from_features(encoder(wave, ["relu1_1"]))
    _, c, h, w = f.shape
    flat = f[0].flatten(1)
    by_hand = lambda idx, s: colour(whiten(flat[:, idx]), s, "relu1_1").float()  # noqa: E731
    mask = torch.zeros(1, 1, h, w)
    mask[..., : w // 3] = 0.5
    out = wct(f, [s0, s1], "relu1_1", mask=mask)[0].flatten(1)
    left = (mask[0, 0].flatten() >= 0.5).nonzero().flatten()
    right = (mask[0, 0].flatten() < 0.5).nonzero().flatten()
    assert torch.allclose(out[:, left], by_hand(left, s0), atol=1e-4)
    assert torch.allclose(out[:, right], by_hand(right, s1), atol=1e-4)
    for n in (2, 1):
        mask = torch.zeros(1, 1, h, w)
        mask.view(-1)[:n] = 1.0
        out = wct(f, [s0, s1], "relu1_1", mask=mask)[0].flatten(1)
        idx = torch.arange(n)
        expect = by_hand(idx, s0) if n == 2 else flat[:, idx]
        assert torch.allclose(out[:, idx], expect, atol=1e-4), n
        assert n == 1 or float((out[:, idx] - flat[:, idx]).abs().mean()) > 0.1 * float(flat[:, idx].abs().mean())


def test_wct_model_refuses_unknown_layers_and_keeps_its_precision(photo, scream):
    """WCTModel: a decoder for a layer WCT does not know is refused by name; the model's
    precision (bf16 here) is what forward and encode_style use when none is passed."""
    from atelier.methods.arbitrary.wct_model import WCTModel

    enc = get_encoder(None, "max", "cpu")
    dec = load_inversion_decoder(decoders_dir() / "decoder-relu1_1.safetensors")
    with pytest.raises(ValueError, match=r"unknown layers \['relu9_1'\]"):
        WCTModel(enc, {"relu9_1": dec})
    assert WCTModel(enc, {"relu1_1": dec}).precision == "fp32"
    model = WCTModel(enc, {"relu1_1": dec}, precision="bf16")
    x = photo[..., :32, :48]
    style = model.encode_style(scream[..., :48, :48])
    out = model(x, style)
    assert torch.equal(out, model(x, style, precision="bf16"))
    assert not torch.allclose(out, model(x, style, precision="fp32"), atol=1e-4)
