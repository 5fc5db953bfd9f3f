"""Seamless, tileable textures (issue 28 item 3): circular padding makes every network exactly
equivariant to circular shifts, the TV loss wraps, the content is made periodic, and the outputs
of Gatys, AdaIN and a feed-forward model have no wrap-around seam where a plain run has one."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from atelier.cli import app
from atelier.core.padding import circular_padding, is_circular
from atelier.imaging.tileable import make_periodic, seam_ratio, tileable_dims
from atelier.io import images as img
from atelier.losses import tv_loss


def test_vgg_features_are_shift_equivariant_with_circular_padding(content_path):
    from atelier.encoders.vgg import get_encoder

    enc = get_encoder()
    x = img.resize_to(img.load_image(content_path), 64, 96)
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
    with circular_padding():
        assert is_circular()
        a, b = enc(x, layers), enc(x.roll((16, 32), dims=(-2, -1)), layers)
    assert not is_circular()
    for n in layers:
        k = 2 ** (int(n[4]) - 1)  # the layer's downsampling
        torch.testing.assert_close(b[n], a[n].roll((16 // k, 32 // k), dims=(-2, -1)), atol=2e-3, rtol=1e-4)
    plain = enc(x.roll((16, 32), dims=(-2, -1)), ["relu3_1"])["relu3_1"]  # zero padding: not equivariant
    assert float((plain - a["relu3_1"].roll((4, 8), dims=(-2, -1))).abs().max()) > 1.0


def test_one_pass_methods_are_shift_equivariant_with_circular_padding(content_path, style_path):
    from atelier.methods.registry import get_method

    x = img.resize_to(img.load_image(content_path), 64, 96)
    s = img.load_image(style_path, size=96)
    for name, styles in (("starry_night", []), ("adain", [s])):
        spec = get_method(name)
        model = spec.build(device="cpu", precision="fp32")
        with circular_padding():
            a = spec.stylize(model, x, styles)
            b = spec.stylize(model, x.roll((16, 48), dims=(-2, -1)), styles)
        torch.testing.assert_close(b, a.roll((16, 48), dims=(-2, -1)), atol=1e-4, rtol=0)


def test_wrap_tv_and_the_periodic_content():
    x = torch.tensor([[[[0.0, 1.0, 3.0], [0.0, 1.0, 3.0]]]])
    assert float(tv_loss(x)) == pytest.approx((1 + 4) / 2)
    assert float(tv_loss(x, wrap=True)) == pytest.approx((1 + 4 + 9) / 3)  # the wrap pair 3 -> 0 counts
    img_ = torch.rand(1, 3, 40, 64, generator=torch.Generator().manual_seed(0))
    p = make_periodic(img_)
    torch.testing.assert_close(p[..., 10:30, 16:48], img_[..., 10:30, 16:48])  # the middle is untouched
    # across the wrap the periodic image continues as the photo does between its middle pixels
    # (row 20 is outside the vertical fade band: there the wrap pair is the photo's columns 31, 32)
    torch.testing.assert_close(p[..., 20, -1] - p[..., 20, 0], img_[..., 20, 31] - img_[..., 20, 32])
    assert tileable_dims(85, 128) == (80, 128) and tileable_dims(7, 300) == (16, 304)


@pytest.mark.parametrize("method", ["gatys", "adain", "starry_night"])
def test_tileable_outputs_have_no_seam_where_plain_ones_do(method, content_path, style_path):
    import atelier

    opts = {"gatys": dict(iterations=12, seed=0, precision="fp32"), "adain": {}, "starry_night": {}}[method]
    styles = [] if method == "starry_night" else [style_path]
    plain = atelier.stylize(content_path, styles, method=method, size=128, **opts)
    tiled = atelier.stylize(content_path, styles, method=method, size=128, tileable=True, **opts)
    assert tiled.size[0] % 16 == 0 and tiled.size[1] % 16 == 0
    r_plain, r_tiled = seam_ratio(plain), seam_ratio(tiled)
    assert r_plain["ratio"] > 2.0, r_plain  # the photo's own edges meet at the wrap
    assert r_tiled["ratio"] < 1.6, r_tiled  # one column pair varies by ~25 %; benchmarks/tileable.py averages
    assert r_tiled["ratio"] < 0.5 * r_plain["ratio"]


def test_cli_tileable(tmp_path, content_path, style_path):
    r = CliRunner().invoke(app, ["stylize", str(content_path), "-s", str(style_path), "--method", "adain",
                                 "--size", "100", "--tileable", "-o", str(tmp_path / "t.png"), "-q"])
    assert r.exit_code == 0, r.output
    out = img.load_image(tmp_path / "t.png")
    assert tuple(out.shape[-2:]) == tileable_dims(67, 100)
    assert img.read_metadata(tmp_path / "t.png")["tileable"] is True
    r = CliRunner().invoke(app, ["stylize", str(content_path), "--method", "starry_night", "--tileable", "--tile",
                                 "256", "-o", str(tmp_path / "x.png"), "-q"])
    assert r.exit_code == 2 and "not tiled" in r.output and not (tmp_path / "x.png").exists()


def test_apply_tileable_writes_seamless_textures(tmp_path, content_path, content2_path):
    from atelier.imaging.tileable import seam_ratio

    r = CliRunner().invoke(app, ["apply", "starry_night", str(content_path), str(content2_path), "-o",
                                 str(tmp_path / "out"), "--size", "120", "--tileable", "-q"])
    assert r.exit_code == 0, r.output
    for p in (content_path, content2_path):
        out = tmp_path / "out" / p.name
        x = img.load_image(out)
        assert x.shape[-1] % 16 == 0 and x.shape[-2] % 16 == 0
        assert seam_ratio(x)["ratio"] < 1.6
        assert img.read_metadata(out)["tileable"] is True
