"""ONNX Runtime as the CPU fp32 engine of feed-forward inference (issue 25, item 3)."""

from __future__ import annotations

import pytest
from PIL import Image
from skimage import data

from atelier.core.padding import circular_padding
from atelier.io import images as img
from atelier.methods.feedforward import engine as eng
from atelier.methods.feedforward.apply import apply_model, load_model, stylize_tensor

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def photo():
    return img.resize_to(img.load_image(data.astronaut()), 96, 128)


@pytest.fixture(scope="module")
def multi():
    return load_model("multi10")


def test_auto_picks_onnxruntime_for_fp32_cpu_only(multi):
    assert eng.resolve_engine("auto", multi, "fp32") == "onnxruntime"
    assert eng.resolve_engine("auto", multi, "bf16") == "torch"
    assert eng.resolve_engine("torch", multi, "fp32") == "torch"
    with circular_padding(True):
        assert eng.resolve_engine("auto", multi, "fp32") == "torch"
        with pytest.raises(ValueError, match="circular padding"):
            eng.resolve_engine("onnxruntime", multi, "fp32")
    with pytest.raises(ValueError, match="bf16"):
        eng.resolve_engine("onnxruntime", multi, "bf16")
    with pytest.raises(ValueError, match="engine must be one of"):
        eng.check_engine("tensorrt")


def test_onnxruntime_matches_torch_on_a_real_photo(multi, photo):
    weights = [0.0, 0.3, 0.0, 0.0, 0.7, 0, 0, 0, 0, 0]
    a = stylize_tensor(multi, photo, weights, precision="fp32", engine="torch")
    b = stylize_tensor(multi, photo, weights, precision="fp32", engine="onnxruntime")
    assert a.shape == b.shape == photo.shape
    assert (a - b).abs().max().item() < 1e-4
    # a different style really changes the output: the weights reach the ONNX graph
    c = stylize_tensor(multi, photo, 4, precision="fp32", engine="onnxruntime")
    assert (b - c).abs().mean().item() > 0.01


def test_export_cached_once_per_weights(multi, tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(eng, "_RUNNERS", {})
    r1 = eng.onnx_runner(multi)
    files = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(files) == 1
    assert eng.onnx_runner(multi) is r1
    other = load_model("starry_night")
    eng.onnx_runner(other)
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 2
    # a damaged cache file is refused and removed, then exported again
    monkeypatch.setattr(eng, "_RUNNERS", {})
    files[0].write_bytes(b"not onnx")
    with pytest.raises(Exception):
        eng.onnx_runner(multi)
    assert not files[0].exists()
    eng.onnx_runner(multi)
    assert files[0].is_file()


def test_apply_auto_writes_what_torch_writes(tmp_path):
    net = load_model("starry_night")
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(data.coffee()).resize((120, 80)).save(src / "coffee.png")
    outs = {}
    for e in ("torch", "auto"):
        res = apply_model(net, [src], tmp_path / e, precision="fp32", engine=e)
        assert [p.name for p in res.written] == ["coffee.png"]
        outs[e] = img.load_image(tmp_path / e / "coffee.png")
    assert (outs["torch"] - outs["auto"]).abs().max().item() <= 1 / 255 + 1e-6


def test_cli_refuses_an_engine_that_cannot_run(tmp_path):
    from typer.testing import CliRunner

    from atelier.cli import app

    src = tmp_path / "in.png"
    Image.fromarray(data.coffee()).resize((64, 48)).save(src)
    r = CliRunner().invoke(app, ["apply", "starry_night", str(src), "-o", str(tmp_path / "out"),
                                 "--engine", "onnxruntime", "--tileable"])
    assert r.exit_code == 2
    assert "circular padding" in r.output
    assert not (tmp_path / "out").exists()
    r = CliRunner().invoke(app, ["apply", "starry_night", str(src), "-o", str(tmp_path / "out"), "--engine", "trt"])
    assert r.exit_code == 2 and "engine must be one of" in r.output
