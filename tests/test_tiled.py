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
