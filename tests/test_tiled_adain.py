"""Print sizes with AdaIN (issue 24): tiles normalized with the whole image's relu4_1 statistics give
the untiled result without seams; the CLI tiles AdaIN as it tiles feed-forward models."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import atelier
from atelier.cli import app
from atelier.imaging.tiles import tile_plan
from atelier.methods.arbitrary.adain import adain_tensor, load_adain
from atelier.methods.arbitrary.tiled import adain_tiled
from conftest import data_file

runner = CliRunner()


def _psnr(a, b):
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def model():
    return load_adain(device="cpu", precision="fp32")


def test_adain_tiles_with_the_whole_images_statistics_match_the_untiled_result(model):
    x = atelier.load_image(data_file("content/000000000030.jpg"), size=512)  # 512 x 342
    s = atelier.load_image(data_file("styles/starry_night.jpg"), size=256)
    full = adain_tensor(model, x, [s], style_size=None, precision="fp32")
    feats = [model.encode_style(s)]
    tiled = adain_tiled(model, x, feats, tile_plan(*x.shape[-2:], 256, 96), precision="fp32")
    naive = torch.zeros_like(full)  # tiles with their own statistics: seams and other colours
    for r in range(0, x.shape[-2], 256):
        for c in range(0, x.shape[-1], 256):
            naive[:, :, r:r + 256, c:c + 256] = adain_tensor(model, x[:, :, r:r + 256, c:c + 256], [s],
                                                             style_size=None, precision="fp32")
    assert tiled.shape == full.shape
    # measured 47.2 dB against 15.6 dB for the naive tiles
    assert _psnr(tiled, full) > 40 > _psnr(naive, full) + 15
    # the statistics of a half-size copy are not those of the image (relu4_1 depends on scale):
    # why the default sums them over the tiles
    reduced = adain_tiled(model, x, feats, tile_plan(*x.shape[-2:], 256, 96), stats_size=256, precision="fp32")
    assert _psnr(reduced, full) < _psnr(tiled, full) - 10
    # alpha and blends go through the tiles too
    half = adain_tiled(model, x, feats, tile_plan(*x.shape[-2:], 256, 96), alpha=0.5)
    assert _psnr(half, adain_tensor(model, x, [s], alpha=0.5, style_size=None, precision="fp32")) > 40
    with pytest.raises(ValueError, match="multiples of 8"):
        adain_tiled(model, x, feats, tile_plan(*x.shape[-2:], 260, 96))


def test_cli_tiles_adain_and_records_the_plan_and_refuses_a_tiled_mask(tmp_path):
    photo, style = data_file("content/000000000030.jpg"), data_file("styles/starry_night.jpg")
    out = tmp_path / "t.png"
    r = runner.invoke(app, ["stylize", str(photo), "--method", "adain", "-s", str(style), "-o", str(out), "--size",
                            "384", "--tile", "192", "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    assert "print size: 2x2 tiles of 192 px" in r.output
    with Image.open(out) as im:
        assert max(im.size) == 384 and json.loads(im.info["atelier"])["tiles"]["count"] == 4
    mask = tmp_path / "m.png"
    Image.new("L", (64, 64), 255).save(mask)
    r = runner.invoke(app, ["stylize", str(photo), "--method", "adain", "-s", str(style), "-s", str(style), "--mask",
                            str(mask), "-o", str(tmp_path / "m_out.png"), "--size", "384", "--tile", "192"])
    assert r.exit_code == 2 and "--mask is not tiled" in r.output and not (tmp_path / "m_out.png").exists()
    r = runner.invoke(app, ["stylize", str(photo), "-s", str(style), "-o", str(tmp_path / "w.png"), "--tile", "100"])
    assert r.exit_code == 2 and "--tile must be a multiple of 16" in r.output and not (tmp_path / "w.png").exists()


def test_python_api_tiles_on_request_and_equals_the_cli_path():
    photo, style = data_file("content/000000000030.jpg"), data_file("styles/starry_night.jpg")
    whole = atelier.stylize(photo, style, method="adain", size=384, tile="off", precision="fp32")
    tiled = atelier.stylize(photo, style, method="adain", size=384, tile=192, precision="fp32")
    ff_whole = atelier.stylize(photo, method="starry_night", size=384, tile="off", precision="fp32")
    ff_tiled = atelier.stylize(photo, method="starry_night", size=384, tile=192, precision="fp32")
    import numpy as np

    def psnr(a, b):
        d = (np.asarray(a, np.float32) - np.asarray(b, np.float32)) / 255
        return float(-10 * np.log10((d ** 2).mean()))
    assert tiled.size == whole.size and psnr(tiled, whole) > 35
    assert ff_tiled.size == ff_whole.size and psnr(ff_tiled, ff_whole) > 30
    # an impossible budget is refused before any work; a method that is not tiled says so
    from atelier.core.errors import InputError
    with pytest.raises(InputError, match="does not fit"):
        atelier.stylize(photo, style, method="adain", size=384, max_memory="1M")

