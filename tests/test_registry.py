"""The method registry (issue 23): one registration and a method appears everywhere: the CLI
(``atelier methods``, ``atelier stylize --method``), the Python API, video and the studio."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import atelier
from atelier.cli import app
from atelier.core.errors import InputError
from atelier.io.video import read_frames
from atelier.methods.registry import Method, get_method, list_methods, register_method, unregister_method

from conftest import data_file

runner = CliRunner()
NAME = "colour-stats"


def colour_statistics(model, content, styles, *, alpha=1.0, blend=None, mask=None, preserve_color="none",
                      precision=None):
    """Colour transfer by per-channel mean and standard deviation (Reinhard et al. 2001, in RGB):
    a real, tiny 'arbitrary style' method whose result is known exactly."""
    s = styles[0]
    mc, sc = content.mean((2, 3), keepdim=True), content.std((2, 3), keepdim=True) + 1e-5
    ms, ss = s.mean((2, 3), keepdim=True), s.std((2, 3), keepdim=True)
    out = (content - mc) / sc * ss + ms
    return (alpha * out + (1 - alpha) * content).clamp(0, 1).cpu()


@pytest.fixture
def registered():
    loads = []
    register_method(Method(NAME, "Colour statistics", "arbitrary", "Reinhard et al. 2001, Color Transfer",
                           load=lambda device, precision, **kw: loads.append(device) or "no weights",
                           run=colour_statistics, options=("alpha", "style_size")))
    yield loads
    unregister_method(NAME)


def _means(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(0) / 255


def test_builtins_and_models_are_listed_and_unknown_names_refused():
    names = [m.name for m in list_methods()]
    assert names[:3] == ["gatys", "adain", "wct"] and "starry_night" in names and "multi10" in names
    assert get_method("adain").masks and not get_method("starry_night").masks
    assert get_method("starry_night").styles == "builtin" and get_method("gatys").family == "optimization"
    with pytest.raises(InputError, match="unknown method 'nope'"):
        get_method("nope")
    with pytest.raises(ValueError, match="built-in"):
        register_method(Method("adain", "x", "arbitrary", load=lambda **k: None, run=colour_statistics))
    r = runner.invoke(app, ["stylize", str(data_file("content/000000000030.jpg")), "--method", "nope",
                            "-o", "never.png"])
    assert r.exit_code == 2 and "unknown method 'nope'" in r.output and len(r.output.strip().splitlines()) == 1


def test_a_registered_method_appears_in_cli_api_video_and_studio(registered, tmp_path, style_path, content_path):
    # CLI: listed, runs, and its options are checked from the registration
    r = runner.invoke(app, ["methods"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and NAME in r.output
    out = tmp_path / "cli.png"
    r = runner.invoke(app, ["stylize", str(content_path), "--style", str(style_path), "--method", NAME, "-o", str(out),
                            "--size", "128", "-q"])
    assert r.exit_code == 0, r.output
    style_mean, content_mean = _means(style_path), _means(content_path)
    got = _means(out)
    assert np.abs(got - style_mean).max() < 0.03 < np.abs(content_mean - style_mean).max()
    r = runner.invoke(app, ["stylize", str(content_path), "--style", str(style_path), "--method", NAME,
                            "-o", str(tmp_path / "x.png"), "--wct-layers", "relu1_1"])
    assert r.exit_code == 2 and "--wct-layers does not apply to --method colour-stats" in r.output
    with Image.open(out) as im:
        assert json.loads(im.info["atelier"])["method"] == NAME

    # Python API
    half = atelier.stylize(content_path, style_path, method=NAME, size=96, alpha=0.5)
    full = atelier.stylize(content_path, style_path, method=NAME, size=96)
    assert max(half.size) == 96
    photo = atelier.load_image(content_path, size=96)[0].permute(1, 2, 0).numpy()
    expect = (np.asarray(full, dtype=np.float64) / 255 + photo) / 2
    assert np.abs(np.asarray(half, dtype=np.float64) / 255 - expect).mean() < 0.01

    # video
    from atelier.api.video import stylize_video

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in (1, 2, 3):
        with Image.open(data_file(f"video/sintel_mountain_2/frame_000{i}.png")) as im:
            im.convert("RGB").resize((96, 40)).save(frames / f"frame_000{i}.png")
    res = stylize_video(frames, tmp_path / "vid", method=NAME, styles=[style_path], temporal="none")
    assert res.frames == 3
    first = next(iter(read_frames(tmp_path / "vid")))[1]
    assert np.abs(first.reshape(-1, 3).mean(0) / 255 - _small_style_mean(style_path)).max() < 0.05

    # studio: listed by the API and runs as a job
    from fastapi.testclient import TestClient

    from atelier.studio.app import create_app

    studio = create_app(tmp_path / "studio")
    with TestClient(studio, base_url="http://127.0.0.1") as client:
        listed = {m["name"]: m for m in client.get("/api/methods").json()}
        assert listed[NAME]["family"] == "arbitrary" and listed[NAME]["styles"] == "images"
        assert listed[NAME]["masks"] is False
        job = client.post("/api/jobs", json={"method": NAME, "content": "bundled-chelsea",
                                             "styles": ["bundled-starry_night"], "size": 96}).json()
        state = studio.state.queue.wait(job["id"], 60)
        assert state["status"] == "done", state
        # regions work with any registered method (issue 28: one pass per style, placed by the mask)
        masked = client.post("/api/jobs", json={"method": NAME, "content": "bundled-chelsea", "size": 96,
                                                "styles": ["bundled-starry_night", "bundled-starry_night"],
                                                "mask": "bundled-chelsea"}).json()
        assert studio.state.queue.wait(masked["id"], 60)["status"] == "done"
        refused = client.post("/api/jobs", json={"method": NAME, "content": "bundled-chelsea", "size": 96,
                                                 "styles": ["bundled-starry_night"] * 3, "mask": "bundled-chelsea"})
        assert refused.status_code == 400 and "one mask per style" in refused.json()["detail"]
    studio.state.queue.stop()
    assert registered  # the loader was called (no weights, but the same path as a real model)


def _small_style_mean(path):
    return np.asarray(atelier.load_image(path, size=512)[0].permute(1, 2, 0).reshape(-1, 3).mean(0))


def test_feedforward_runner_mixes_alpha_and_refuses_styles():
    spec = get_method("starry_night")
    model = spec.build(device="cpu", precision="fp32")
    x = atelier.load_image(data_file("content/000000000030.jpg"), size=64)
    full = spec.stylize(model, x)
    half = spec.stylize(model, x, alpha=0.5)
    assert torch.allclose(half, (0.5 * full + 0.5 * x).clamp(0, 1), atol=1e-5)
    with pytest.raises(ValueError, match="built in"):
        spec.stylize(model, x, [x])
