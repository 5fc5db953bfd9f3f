"""Regions with their own style in every method (issue 28 item 1): the weight rules, guided Gram
matrices, Gatys with two styled regions and a kept photo region, AdaIN/feed-forward regions, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity
from typer.testing import CliRunner

from atelier.cli import app
from atelier.imaging import regions
from atelier.io import images as img
from atelier.losses import GuidedStyleTarget, gram_matrix, guided_gram_matrix


def thirds(h: int, w: int) -> list[torch.Tensor]:
    """Two masks: the left third and the middle third (the right third is no mask's: the photo)."""
    a, b = torch.zeros(1, 1, h, w), torch.zeros(1, 1, h, w)
    a[..., : w // 3] = 1
    b[..., w // 3: 2 * w // 3] = 1
    return [a, b]


def ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    return structural_similarity(x[0].permute(1, 2, 0).numpy(), y[0].permute(1, 2, 0).numpy(), channel_axis=2,
                                 data_range=1.0)


def test_region_weights_follow_the_documented_rules():
    m = torch.tensor([[[[0.0, 0.25, 1.0]]]])
    w, keep = regions.region_weights([m], 2)  # one mask, two styles: the first where white
    torch.testing.assert_close(w[:, 0, 0], torch.tensor([[0.0, 0.25, 1.0], [1.0, 0.75, 0.0]]))
    assert float(keep.abs().max()) == 0.0
    a, b = torch.tensor([[[[1.0, 0.6, 0.0, 0.2]]]]), torch.tensor([[[[1.0, 0.0, 0.0, 0.3]]]])
    w, keep = regions.region_weights([a, b], 2)  # one mask per style: overlaps split, the rest kept
    torch.testing.assert_close(w[:, 0, 0], torch.tensor([[0.5, 0.6, 0.0, 0.2], [0.5, 0.0, 0.0, 0.3]]))
    torch.testing.assert_close(keep[0, 0], torch.tensor([[0.0, 0.4, 1.0, 0.5]]))
    torch.testing.assert_close(w.sum(0) + keep[0], torch.ones(1, 1, 4))
    w, keep = regions.region_weights([a], 1)  # one style: the photo where black
    torch.testing.assert_close(keep[0, 0], 1 - a[0, 0])
    for n_masks, n_styles in ((2, 3), (3, 2), (2, 1)):
        with pytest.raises(ValueError, match="one --mask per style"):
            regions.check_region_count(n_masks, n_styles)
    with pytest.raises(ValueError, match="feed-forward model takes one"):
        regions.check_region_count(2, 0, builtin=True)


def test_guided_gram_is_the_gram_of_the_region_and_weights_soft_edges():
    torch.manual_seed(0)
    f = torch.randn(1, 4, 6, 8)
    torch.testing.assert_close(guided_gram_matrix(f, torch.ones(1, 1, 6, 8)), gram_matrix(f))
    left = torch.zeros(1, 1, 6, 8)
    left[..., :3] = 1
    torch.testing.assert_close(guided_gram_matrix(f, left), gram_matrix(f[..., :3]))
    soft = torch.full((1, 1, 6, 8), 0.5)  # a uniform weight changes nothing: an average
    torch.testing.assert_close(guided_gram_matrix(f, soft), gram_matrix(f))
    half = left + 0.5 * (1 - left)  # the right part counts half
    fl, fr = f[..., :3].reshape(4, -1), f[..., 3:].reshape(4, -1)
    expect = (fl @ fl.T + 0.5 * fr @ fr.T) / (18 + 0.5 * 30)
    torch.testing.assert_close(guided_gram_matrix(f, half)[0], expect)


def test_guided_target_of_one_full_region_is_the_plain_style_loss(content_path, style_path):
    from atelier.encoders.vgg import get_encoder
    from atelier.losses import StyleTarget

    enc = get_encoder()
    layers = ("relu1_1", "relu3_1", "relu5_1")
    x, s = img.load_image(content_path, size=96), img.load_image(style_path, size=96)
    grams = [{n: gram_matrix(v) for n, v in enc(s, layers).items()}]
    feats = enc(x, layers)
    plain = StyleTarget(grams)(feats)
    guided = GuidedStyleTarget(grams, torch.ones(1, 1, *x.shape[-2:]))(feats)
    torch.testing.assert_close(guided, plain)
    half = torch.zeros(1, 1, *x.shape[-2:])
    half[..., : x.shape[-1] // 2] = 1  # a half-image region weighs half
    t = GuidedStyleTarget(grams, half)
    torch.testing.assert_close(t(feats), 0.5 * t.per_style(feats)[0])


@pytest.fixture(scope="module")
def gatys_regions(content_path, style_path, style2_path):
    from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer

    c = img.load_image(content_path, size=128)
    styles = [img.load_image(style_path, size=128), img.load_image(style2_path, size=128)]
    masks = thirds(*c.shape[-2:])
    st = GatysStyleTransfer(GatysConfig(iterations=25, seed=0, precision="fp32", style_weight=20.0))
    return st, c, styles, masks, st.run(c, styles, masks=masks)


def test_gatys_regions_take_their_own_style_and_keep_the_photo(gatys_regions):
    st, c, styles, masks, out = gatys_regions
    assert out.shape == c.shape
    grams = st.style_grams(styles, max(c.shape[-2:]))
    feats = st.encoder(out, st.config.style_layers)
    for k, m in enumerate(masks):  # inside region k: nearer its own style than the other one
        own = GuidedStyleTarget([grams[k]], m).per_style(feats)[0]
        other = GuidedStyleTarget([grams[1 - k]], m).per_style(feats)[0]
        assert float(own) < 0.6 * float(other), (k, float(own), float(other))
    w = c.shape[-1]
    assert ssim(out[..., 2 * w // 3:], c[..., 2 * w // 3:]) > 0.9
    assert ssim(out[..., : w // 3], c[..., : w // 3]) < 0.8  # the styled region did change


def test_one_pass_regions_adain_and_a_feed_forward_model(content_path, style_path, style2_path):
    from atelier.methods.registry import get_method

    c = img.load_image(content_path, size=128)
    styles = [img.load_image(style_path, size=128), img.load_image(style2_path, size=128)]
    masks = thirds(*c.shape[-2:])
    adain = get_method("adain")
    model = adain.build(device="cpu", precision="fp32")
    out = adain.stylize(model, c, styles, mask=masks)
    alone = [adain.stylize(model, c, [s]) for s in styles]
    w = c.shape[-1]
    thirds_x = (slice(0, w // 3), slice(w // 3, 2 * w // 3))
    for k, sl in enumerate(thirds_x):  # each region is its style's own result there
        torch.testing.assert_close(out[..., sl], alone[k][..., sl], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[..., 2 * w // 3:], c[..., 2 * w // 3:], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="either a style blend"):
        adain.stylize(model, c, styles, mask=masks, blend=[0.5, 0.5])
    ff = get_method("starry_night")
    net = ff.build(device="cpu", precision="fp32")
    out = ff.stylize(net, c, mask=[masks[0]])
    full = ff.stylize(net, c)
    torch.testing.assert_close(out[..., : w // 3], full[..., : w // 3], atol=1e-6, rtol=0)
    torch.testing.assert_close(out[..., w // 3:], c[..., w // 3:], atol=1e-6, rtol=0)


def test_feather_softens_the_edge_and_keeps_the_regions():
    m = torch.zeros(1, 1, 40, 80)
    m[..., :40] = 1
    f = regions.feather_mask(m, 8)
    row = f[0, 0, 20]
    assert float(row[:25].min()) > 0.99 and float(row[55:].max()) < 0.01  # far from the edge: unchanged
    assert 0.3 < float(row[39]) < 0.7 and 0.05 < float(row[44]) < 0.5  # a ramp of a few pixels
    assert bool((row[1:] <= row[:-1] + 1e-6).all())
    torch.testing.assert_close(regions.feather_mask(m, 0), m)
    with pytest.raises(ValueError, match="--feather"):
        regions.feather_mask(m, -1)


def test_cli_regions_every_method_and_bad_masks(tmp_path, content_path, style_path, style2_path):
    src = Image.open(content_path)
    w, h = src.size
    left = np.zeros((h, w), np.uint8)
    left[:, : w // 2] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    Image.fromarray(left).resize((w // 2, h // 2)).save(tmp_path / "small.png")
    run = lambda *a: CliRunner().invoke(app, ["stylize", str(content_path), "-q", *map(str, a)])  # noqa: E731
    r = run("--method", "starry_night", "--size", "96", "--mask", tmp_path / "small.png", "--feather", "2",
            "-o", tmp_path / "ff.png")
    assert r.exit_code == 0, r.output
    assert "resized" in r.output
    meta = img.read_metadata(tmp_path / "ff.png")
    assert meta["masks"][0]["file"] == "small.png" and meta["feather"] == 2.0
    r = run("-s", style_path, "-s", style2_path, "--mask", tmp_path / "left.png", "--mask", tmp_path / "left.png",
            "--method", "wct", "--size", "64", "-o", tmp_path / "wct.png")
    assert r.exit_code == 0, r.output
    r = run("-s", style_path, "--mask", tmp_path / "left.png", "--size", "64", "-n", "2", "-o", tmp_path / "g.png")
    assert r.exit_code == 0, r.output
    assert img.read_metadata(tmp_path / "g.png")["masks"][0]["file"] == "left.png"
    (tmp_path / "bad.png").write_text("not an image")
    for extra, what in ((["-s", style_path, "--mask", tmp_path / "bad.png"], "bad.png"),
                        (["-s", style_path, "--mask", tmp_path / "left.png", "--mask", tmp_path / "left.png"],
                         "one --mask per style"),
                        (["-s", style_path, "-s", style2_path, "--mask", tmp_path / "left.png", "--style-blend",
                          "0.5,0.5"], "not both")):
        for method in ("gatys", "adain"):
            out = tmp_path / f"x_{method}.png"
            r = run(*extra, "--method", method, "--size", "64", *(["-n", "1"] if method == "gatys" else []), "-o", out)
            assert r.exit_code == 2, r.output
            assert what in r.output and len(r.output.strip().splitlines()) == 1, r.output
            assert not out.exists()
