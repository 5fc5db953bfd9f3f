"""Print sizes with feed-forward models (issue 24, first part): tiles that share one set of
instance-norm statistics give the untiled result without seams; the memory plan is checked
before any work."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import atelier
from atelier.cli import app
from atelier.methods.feedforward.apply import load_model, stylize_tensor
from atelier.methods.feedforward.tiled import choose_tile, stylize_tiled, tile_plan

from conftest import data_file

runner = CliRunner()


def _psnr(a, b):
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def model():
    return load_model("starry_night")


def test_tiles_with_shared_statistics_match_the_untiled_result(model):
    x = atelier.load_image(data_file("content/000000000030.jpg"), size=256)
    full = stylize_tensor(model, x, precision="fp32")
    tiled = stylize_tiled(model, x, tile=128, overlap=64, stats_size=None)
    naive = torch.zeros_like(full)  # what tiling without shared statistics gives: seams
    for r in range(0, x.shape[-2], 128):
        for c in range(0, x.shape[-1], 128):
            naive[:, :, r:r + 128, c:c + 128] = stylize_tensor(model, x[:, :, r:r + 128, c:c + 128], precision="fp32")
    assert tiled.shape == full.shape
    assert _psnr(tiled, full) > 35 > _psnr(naive, full) + 10


def test_the_plan_counts_tiles_and_memory():
    plan = tile_plan(2160, 3840, 1024, 96)
    assert (plan.rows, plan.cols, plan.count) == (3, 4, 12)
    assert plan.peak_bytes < 3 * 2**30 and "4x3 tiles of 1024 px" in plan.describe()
    small = choose_tile(4320, 7680, 2 * 2**30)  # 8K in 2 GiB
    assert small is not None and small.peak_bytes <= 2 * 2**30 and small.tile < 1024
    assert choose_tile(4320, 7680, 10 * 2**20) is None
    with pytest.raises(ValueError, match="multiple of 4"):
        tile_plan(100, 100, 130)


def test_cli_tiles_on_request_refuses_an_impossible_budget_and_records_the_plan(tmp_path):
    photo = data_file("content/000000000030.jpg")
    out = tmp_path / "t.png"
    r = runner.invoke(app, ["stylize", str(photo), "--method", "starry_night", "-o", str(out), "--size", "256",
                            "--tile", "128"])
    assert r.exit_code == 0, r.output
    assert "print size: 2x2 tiles of 128 px" in r.output
    with Image.open(out) as im:
        assert max(im.size) == 256 and json.loads(im.info["atelier"])["tiles"]["count"] == 4
    r = runner.invoke(app, ["stylize", str(photo), "--method", "starry_night", "-o", str(tmp_path / "x.png"),
                            "--size", "256", "--max-memory", "1M"])
    assert r.exit_code == 2 and "does not fit" in r.output and not (tmp_path / "x.png").exists()
    r = runner.invoke(app, ["stylize", str(photo), "-s", str(photo), "-o", str(tmp_path / "y.png"), "--tile", "250"])
    assert r.exit_code == 2 and "--tile must be a multiple of 16" in r.output  # Gatys tiles too (on its 16 px grid)


def _high_frequency(x):
    """Mean absolute Laplacian of the luminance: falls as strokes get larger."""
    y = x.mean(1, keepdim=True)
    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    return float(torch.nn.functional.conv2d(y, k).abs().mean())


def test_stroke_scale_paints_the_strokes_larger_at_the_same_output_size(tmp_path):
    """--stroke-scale 2 at 512 px is the 256 px stylization scaled up 2x (strokes twice as large),
    not the 512 px one; its metadata says so; a bad scale or one with --mask is refused."""
    photo = data_file("content/000000000030.jpg")
    outs = {}
    for name, args in (("s2", ["--size", "512", "--stroke-scale", "2"]), ("s1", ["--size", "512"]),
                       ("half", ["--size", "256"])):
        outs[name] = tmp_path / f"{name}.png"
        r = runner.invoke(app, ["stylize", str(photo), "--method", "starry_night", "-o", str(outs[name]), *args])
        assert r.exit_code == 0, r.output
    with Image.open(outs["s2"]) as im:
        assert im.size == Image.open(outs["s1"]).size and max(im.size) == 512
        assert json.loads(im.info["atelier"])["stroke_scale"] == 2.0
    s2, s1, half = (atelier.load_image(outs[k]) for k in ("s2", "s1", "half"))
    up = torch.nn.functional.interpolate(half, size=s2.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
    assert _psnr(s2, up) > 30 > _psnr(s2, s1) + 5
    assert _high_frequency(s2) < 0.6 * _high_frequency(s1)
    for bad, message in ((["--stroke-scale", "0"], "--stroke-scale must be from 0.25 to 16"),
                         (["--stroke-scale", "2", "--mask", str(photo)], "--stroke-scale does not combine")):
        out = tmp_path / "bad.png"
        r = runner.invoke(app, ["stylize", str(photo), "--method", "starry_night", "-o", str(out), "--size", "128",
                                *bad])
        assert r.exit_code == 2 and message in r.output and not out.exists(), r.output


def test_stroke_scale_in_python_and_for_gatys(tmp_path):
    """The Python API gives the CLI's one-pass result at the same size; Gatys takes its style image
    S times larger (recorded as style_scale)."""
    photo = data_file("content/000000000030.jpg")
    big = atelier.stylize(photo, method="starry_night", size=256, stroke_scale=2)
    small = atelier.stylize(photo, method="starry_night", size=128)
    assert big.size == (256, 171) and small.size == (128, 86)
    up = torch.nn.functional.interpolate(atelier.load_image(small), size=(171, 256), mode="bicubic",
                                         align_corners=False).clamp(0, 1)
    assert _psnr(atelier.load_image(big), up) > 30
    with pytest.raises(ValueError, match="stroke_scale must be from 0.25 to 16"):
        atelier.stylize(photo, method="starry_night", size=64, stroke_scale=20)
    out = tmp_path / "g.png"
    r = runner.invoke(app, ["stylize", str(photo), "-s", str(data_file("styles/starry_night.jpg")), "-o", str(out),
                            "--size", "64", "-n", "1", "--style-scale", "0.5", "--stroke-scale", "3", "-q"])
    assert r.exit_code == 0, r.output
    from atelier.io.images import read_metadata

    assert read_metadata(out)["parameters"]["style_scale"] == 1.5
