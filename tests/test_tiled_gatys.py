"""Gatys at print sizes (issue 24): a level optimized tile by tile sees the gradient of the whole
image's objective (the margins make it so), on a grid that shifts every iteration; the plan is
printed and recorded, refused when nothing fits, its memory estimate checked against the
measured peak, and Ctrl-C keeps the whole current image."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import atelier
from atelier.cli import app
from atelier.losses import StyleTarget
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer, StyleTransferInterrupted
from atelier.methods.gatys.tiled import GRID, TiledObjective, _side, _tiles, grid_bounds, plan_level
from conftest import data_file

runner = CliRunner()
PHOTO, STYLE = data_file("content/000000000030.jpg"), data_file("styles/starry_night.jpg")


@pytest.fixture(scope="module")
def st():
    return GatysStyleTransfer(GatysConfig(precision="fp32", device="cpu"))


def _gradients(st, x, c, style_target, margin):
    cfg = st.config
    plan = plan_level(*c.shape[-2:], None, tile=64, margin=margin)
    obj = TiledObjective(st.encoder, c, cfg.content_layers, cfg.style_layers, style_target, plan,
                         (cfg.content_weight, cfg.style_weight, cfg.tv_weight))
    return obj(x, 3)


def test_tiles_see_the_gradient_of_the_whole_images_objective(st):
    c = atelier.load_image(PHOTO, size=192)  # 192 x 128, 3x2 tiles of 64 px
    s = atelier.load_image(STYLE, size=192)
    style_target = StyleTarget(st.style_grams([s], 192))
    x = (c + 0.1 * torch.randn(c.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    with torch.no_grad():
        targets = st.encoder(c, st.config.content_layers, "fp32")
    xv = x.clone().requires_grad_(True)
    whole = st.losses(xv, targets, style_target)
    whole["total"].backward()
    losses, grad = _gradients(st, x, c, style_target, margin=64)
    for k in ("content", "style", "tv", "total"):
        assert float(losses[k]) == pytest.approx(float(whole[k].detach()), rel=1e-4), k
    err = float((grad - xv.grad).norm() / xv.grad.norm())
    _, cut = _gradients(st, x, c, style_target, margin=0)  # tiles without margins: their edges are wrong
    err0 = float((cut - xv.grad).norm() / xv.grad.norm())
    assert err < 0.01 and err0 > 0.2, (err, err0)  # measured 0.13 % with 64 px margins, 70-80 % without


def test_the_grid_shifts_every_iteration_and_stays_on_relu5_1s_grid():
    plan = plan_level(2550, 3840, 8 * 2**30, tile="auto", untiled_bytes=10**12)
    assert plan is not None and plan.count > 1 and plan.peak_bytes <= 8 * 2**30
    seen = set()
    for i in range(12):
        rows, cols = plan.bounds(i)
        seen.add((tuple(rows), tuple(cols)))
        assert rows[0] == 0 and rows[-1] == 2550 and cols[0] == 0 and cols[-1] == 3840
        assert len(rows) == plan.rows + 1 and len(cols) == plan.cols + 1  # the count never changes
        assert all(b % GRID == 0 for b in rows[1:-1] + cols[1:-1]) and rows == sorted(set(rows))
        for t in _tiles(rows, cols, plan.margin, 2550, 3840):  # the memory plan's largest tile holds
            assert t.ty1 - t.ty0 <= _side(2550, plan.rows, plan.margin)
            assert t.tx1 - t.tx0 <= _side(3840, plan.cols, plan.margin)
        if i:
            assert (rows, cols) != plan.bounds(i - 1)
    assert len(seen) == 12
    assert grid_bounds(100, 1, 0.2) == [0, 100]


def test_tiled_run_is_deterministic_and_ctrl_c_keeps_the_whole_image():
    cfg = GatysConfig(size=192, iterations=1, seed=3, precision="fp32", device="cpu", scales=1)
    a = GatysStyleTransfer(cfg, tile=64).run(PHOTO, [STYLE])
    b_st = GatysStyleTransfer(cfg, tile=64)
    b = b_st.run(PHOTO, [STYLE])
    assert torch.equal(a, b) and b_st.stats["tiles"][0]["count"] == 6 and a.shape[-2:] == (128, 192)
    calls = []

    def stop(done, total):
        calls.append((done, total))
        if len(calls) == total + 3:  # in the second iteration's Gram pass
            raise KeyboardInterrupt

    c_st = GatysStyleTransfer(cfg, tile=64, iterations=2)
    c_st.tile_progress = stop
    with pytest.raises(StyleTransferInterrupted) as e:
        c_st.run(PHOTO, [STYLE])
    assert e.value.image.shape[-2:] == (128, 192) and e.value.iteration == 2 and calls[0][1] == 12


def test_cli_prints_the_plan_first_records_it_and_refuses_what_cannot_fit(tmp_path):
    out = tmp_path / "t.png"
    r = runner.invoke(app, ["stylize", str(PHOTO), "-s", str(STYLE), "-o", str(out), "--size", "192",
                            "--scale-iterations", "1", "--tile", "64", "--precision", "fp32", "--scales", "1"])
    assert r.exit_code == 0, r.output
    assert r.output.index("print size: scale 1/1 192x128: 3x2 tiles of about 64 px") < r.output.index("stylizing")
    assert "print size: about" in r.output
    with Image.open(out) as im:
        meta = json.loads(im.info["atelier"])
    assert meta["tiles"] == [{"tile": 64, "margin": 64, "count": 6, "optimizer": "lbfgs"}]
    assert meta["parameters"]["scale_iterations"] == [1] and meta["losses"]["total"] > 0
    for args, message in ((["--size", "3840", "--max-memory", "300M"], "does not fit 0.3 GiB"),
                          (["--size", "192", "--tile", "100"], "--tile must be a multiple of 16"),
                          (["--size", "192", "--tile", "64", "--max-memory", "1M"], "more than the 0.0 GiB allowed"),
                          (["--size", "192", "--tile", "64", "--max-memory", "lots"], "--max-memory expects"),
                          (["--size", "640", "--scale-iterations", "3"], "1 value(s) for 2 scale(s)")):
        bad = tmp_path / "bad.png"
        r = runner.invoke(app, ["stylize", str(PHOTO), "-s", str(STYLE), "-o", str(bad), "-n", "1", *args])
        assert r.exit_code == 2 and message in r.output and not bad.exists(), (args, r.output)
    mask = tmp_path / "m.png"
    Image.new("L", (64, 64), 255).save(mask)
    r = runner.invoke(app, ["stylize", str(PHOTO), "-s", str(STYLE), "-s", str(STYLE), "--mask", str(mask), "-o",
                            str(tmp_path / "m_out.png"), "--size", "192", "--tile", "64", "-n", "1"])
    assert r.exit_code == 2 and "not tiled" in r.output and not (tmp_path / "m_out.png").exists()


def test_the_memory_plan_is_within_30_percent_of_the_measured_peak(tmp_path):
    """One tiled iteration at 768 px in 2x2 tiles, in a fresh process: its peak RSS against the plan
    (measured 1.23 GB for 1.34 GB planned; 1.61 for 1.81 at 1024 px)."""
    from atelier.methods.gatys.tiled import plan_levels

    cfg = GatysConfig(size=768, scales=1)
    with Image.open(PHOTO) as im:
        hw = (im.height, im.width)
    plan = plan_levels(cfg, hw, [768], tile=384)[0]
    assert plan.count == 4
    exe = str(Path(sys.executable).with_name("atelier"))
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)")
    peak = int(subprocess.run([sys.executable, "-c", probe, exe, "stylize", str(PHOTO), "-s", str(STYLE), "-o",
                               str(tmp_path / "p.png"), "--size", "768", "--scales", "1", "-n", "1", "--tile", "384",
                               "--precision", "fp32", "-q"], capture_output=True, text=True, check=True).stdout)
    assert 0.7 * plan.peak_bytes <= peak <= 1.3 * plan.peak_bytes, (peak, plan.peak_bytes)


def test_sketch_tiles_the_contour_network_and_records_the_plan(tmp_path):
    """``atelier sketch`` at print sizes (issue 24): the boundary map in tiles with 96 px margins is
    within 2/255 of the untiled one (measured 0.64/255 at 512 px; 4.5/255 with 64 px margins)."""
    from atelier.imaging.tiles import tile_plan
    from atelier.methods.sketch.contours import boundary_map, load_contour_net

    x = atelier.load_image(PHOTO, size=512)
    net = load_contour_net()
    full = boundary_map(x, net)
    tiled = boundary_map(x, net, plan=tile_plan(*x.shape[-2:], 256, 96))
    assert tiled.shape == full.shape and float((tiled - full).abs().mean()) * 255 < 2
    out = tmp_path / "s.png"
    r = runner.invoke(app, ["sketch", str(PHOTO), "-o", str(out), "--size", "256", "--tile", "128"])
    assert r.exit_code == 0, r.output
    assert "print size: 2x2 tiles of 128 px" in r.output
    with Image.open(out) as im:
        assert json.loads(im.info["atelier"])["tiles"]["count"] == 4
    for args in (["--tile", "100"], ["--max-memory", "lots"]):
        r = runner.invoke(app, ["sketch", str(PHOTO), "-o", str(tmp_path / "bad.png"), *args])
        assert r.exit_code == 2 and not (tmp_path / "bad.png").exists(), r.output
