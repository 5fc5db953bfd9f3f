"""SVG, GIF and JSON output of paintings (issue 27)."""

import json

import numpy as np
import torch
from PIL import Image

from atelier.io.images import load_image
from atelier.methods.paint.export import (rasterize_svg, read_svg, write_strokes_json, write_svg,
                                          write_timelapse)
from atelier.methods.paint.optimize import greedy_strokes
from atelier.methods.paint.plan import Painting
from conftest import DATA

PHOTO = str(DATA / "content" / "000000000030.jpg")


def _painting():
    return greedy_strokes(load_image(PHOTO, size=128), strokes=40, size=64, candidates=8, seed=1)


def test_svg_parses_and_its_rasterization_matches_the_png(tmp_path):
    p = _painting()
    assert p.info["kept"] >= 30
    write_svg(p, tmp_path / "p.svg", longest=256)
    parsed = read_svg(tmp_path / "p.svg")  # xml.etree
    assert len(parsed["strokes"]) == p.strokes.shape[0]
    png = p.render(256)
    assert (parsed["height"], parsed["width"]) == tuple(png.shape[-2:])
    svg = rasterize_svg(parsed)
    diff = (svg - png).abs()
    assert float(diff.mean()) < 0.006, float(diff.mean())
    assert float((diff > 0.1).float().mean()) < 0.01  # only along edges
    # and it is not trivially equal: an empty painting differs from the PNG
    empty = Painting(p.strokes[:0], p.background, p.height, p.width)
    write_svg(empty, tmp_path / "e.svg", longest=256)
    assert float((rasterize_svg(read_svg(tmp_path / "e.svg")) - png).abs().mean()) > 0.03


def test_timelapse_gif_is_in_painting_order(tmp_path):
    p = _painting()
    n = write_timelapse(p, tmp_path / "t.gif", longest=96, frames=10)
    im = Image.open(tmp_path / "t.gif")
    assert im.n_frames == n >= 5
    final = np.asarray(p.render(96)[0].permute(1, 2, 0) * 255)
    errs = []
    for i in range(im.n_frames):
        im.seek(i)
        errs.append(np.abs(np.asarray(im.convert("RGB"), dtype=np.float32) - final).mean())
    assert errs[-1] < 4 and errs[0] > errs[-1] + 5  # fills in towards the finished painting
    assert sum(b <= a + 0.5 for a, b in zip(errs, errs[1:])) >= len(errs) - 2


def test_timelapse_mp4_fills_in_and_ends_on_the_painting(tmp_path):
    from atelier.io.video import probe, read_frames

    p = _painting()
    n = write_timelapse(p, tmp_path / "t.mp4", longest=96, frames=10, frame_ms=100, hold_ms=500)
    info = probe(tmp_path / "t.mp4")
    h, w = p.size_for(96)
    assert (info.width, info.height) == (w, h) and abs(float(info.fps) - 10) < 1e-6
    frames = [f for _, f in read_frames(tmp_path / "t.mp4")]
    assert len(frames) == n >= 10
    final = np.asarray(p.render(96)[0].permute(1, 2, 0) * 255)
    errs = [np.abs(np.asarray(f, dtype=np.float32) - final).mean() for f in frames]
    assert errs[-1] < 6 and errs[0] > errs[-1] + 5  # H.264 (CRF 18) ends on the finished painting
    assert max(errs[-5:]) < 6  # the finished painting is held (0.5 s at 10 frames/s)


def test_strokes_json_round_trip(tmp_path):
    p = _painting()
    write_strokes_json(p, tmp_path / "s.json")
    q = Painting.from_dict(json.loads((tmp_path / "s.json").read_text()))
    assert torch.allclose(q.strokes, p.strokes, atol=1e-6) and q.method == "greedy"
    assert float((q.render(128) - p.render(128)).abs().max()) < 1e-3


def test_brushes_change_how_the_plan_is_painted_and_travel_with_it(tmp_path):
    from atelier.methods.paint.strokes import apply_brush

    p = _painting()
    oil = p.render(256)
    water = Painting(apply_brush(p.strokes, "watercolour"), p.background, p.height, p.width, brush="watercolour")
    marker = Painting(apply_brush(p.strokes, "marker"), p.background, p.height, p.width, brush="marker")
    bg = torch.tensor(p.background).reshape(1, 3, 1, 1)

    def sharpness(x):  # mean gradient magnitude: soft edges have less
        return float((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean())
    w = water.render(256)
    assert sharpness(w) < 0.8 * sharpness(oil)
    assert float((w - bg).abs().mean()) < float((oil - bg).abs().mean())  # translucent washes: nearer the paper
    # the soft edge scales with the output: as soft at 4x the size (relative to the size)
    assert abs(sharpness(water.render(1024)) * 4 - sharpness(w)) < 0.35 * sharpness(w)
    assert torch.equal(marker.strokes[:, 6], marker.strokes[:, 7]) and float(marker.strokes[:, 11].max()) <= 0.85 + 1e-6
    # the brush is saved with the strokes, and the SVG blurs a watercolour's strokes
    write_strokes_json(water, tmp_path / "w.json")
    q = Painting.from_dict(json.loads((tmp_path / "w.json").read_text()))
    assert q.brush == "watercolour" and float((q.render(128) - water.render(128)).abs().max()) < 1e-3
    write_svg(water, tmp_path / "w.svg", longest=256)
    assert "feGaussianBlur" in (tmp_path / "w.svg").read_text()
    write_svg(p, tmp_path / "o.svg", longest=256)
    assert "feGaussianBlur" not in (tmp_path / "o.svg").read_text()
