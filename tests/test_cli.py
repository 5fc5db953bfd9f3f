"""The command line end to end, on real images, including bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from atelier.io import images as img
from atelier.cli import app

runner = CliRunner()


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_layers_lists_names():
    r = cli("layers")
    assert r.exit_code == 0
    for name in ("relu1_1", "relu4_2", "relu5_4", "conv4_2", "pool3"):
        assert name in r.output


@pytest.mark.slow
def test_stylize_info_evaluate_metrics(tmp_path, content_path, style_path, style2_path):
    out = tmp_path / "out.png"
    metrics = tmp_path / "m.json"
    frames = tmp_path / "frames"
    r = cli("stylize", content_path, "--style", style_path, "--style", style2_path, "--style-blend", "0.7,0.3",
            "-o", out, "--size", 128, "--iterations", 20, "--seed", 1, "--metrics", metrics,
            "--save-every", 10, frames)
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.size == (128, 86) and im.mode == "RGB"
    assert sorted(p.name for p in frames.iterdir()) == ["scale1_iter00010.png", "scale1_iter00020.png"]

    meta = img.read_metadata(out)
    assert meta["parameters"]["style_blend"] == [0.7, 0.3]
    assert meta["parameters"]["iterations"] == 20 and meta["atelier_version"]
    # file names and sha256, not the user's folders (--metadata full keeps the paths)
    assert [s["file"] for s in meta["styles"]] == [style_path.name, style2_path.name]
    assert len(meta["content"]["sha256"]) == 64 and str(content_path.parent) not in json.dumps(meta)

    m = json.loads(metrics.read_text())
    for key in ("content_loss", "style_loss", "tv_loss", "ssim", "style_distance", "iterations", "wall_seconds",
                "seconds_per_iteration", "image_size", "device", "precision"):
        assert key in m, key
    assert len(m["style_distance"]) == 2 and m["iterations"] == 20 and m["image_size"] == [86, 128]
    assert 0 < m["ssim"] <= 1

    r = cli("info", out)
    assert r.exit_code == 0 and '"style_blend"' in r.output and "0.7" in r.output

    r = cli("evaluate", out, "--content", content_path, "--style", style_path, "--style", style2_path,
            "--style-blend", "0.7,0.3")
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)
    # same numbers as the metrics file, computed again from the saved (8-bit) image
    assert ev["ssim"] == pytest.approx(m["ssim"], abs=0.02)
    assert ev["style_loss"] == pytest.approx(m["style_loss"], rel=0.1)


def test_info_on_foreign_image(tmp_path, content_path):
    r = cli("info", content_path)
    assert r.exit_code == 2 and "carries no atelier parameters" in r.output


@pytest.mark.slow
def test_demo_subprocess(tmp_path):
    out = tmp_path / "demo.png"
    r = subprocess.run([sys.executable, "-m", "atelier.cli", "demo", "-o", str(out), "--size", "96",
                        "--iterations", "5", "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert img.read_metadata(out)["method"] == "gatys"
    with Image.open(out) as im:
        assert max(im.size) == 96


def _bad_cases(tmp_path, content_path):
    d = tmp_path
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.png").write_text("hello, I am not an image\n")
    data = content_path.read_bytes()
    (d / "cut.jpg").write_bytes(data[: len(data) // 2])
    (d / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    Image.new("RGB", (1, 1), "red").save(d / "dot.png")
    (d / "adir").mkdir()
    return {
        "missing": (d / "nope.jpg", "nope.jpg"),
        "directory": (d / "adir", "adir"),
        "empty": (d / "empty.jpg", "empty.jpg"),
        "truncated": (d / "cut.jpg", "cut.jpg"),
        "non-image": (d / "notes.png", "notes.png"),
        "unsupported": (d / "drawing.svg", "drawing.svg"),
        "1x1": (d / "dot.png", "dot.png"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated", "non-image", "unsupported", "1x1"])
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_image_exit_2_no_output(tmp_path, content_path, style_path, case, role):
    bad, name = _bad_cases(tmp_path, content_path)[case]
    out = tmp_path / "out.png"
    content, style = (bad, style_path) if role == "content" else (content_path, bad)
    r = cli("stylize", content, "--style", style, "-o", out, "--size", 64, "--iterations", 1)
    assert r.exit_code == 2, r.output
    assert name in r.output
    assert len(r.output.strip().splitlines()) <= 3  # one message (rich may wrap it)
    assert not out.exists()


def test_pixel_limit(tmp_path, content_path, style_path):
    out = tmp_path / "out.png"
    r = cli("stylize", content_path, "--style", style_path, "-o", out, "--max-pixels", 10000, "--iterations", 1)
    assert r.exit_code == 2 and "000000000030.jpg" in r.output and "max-pixels" in r.output
    assert not out.exists()


@pytest.mark.parametrize("args,needle", [
    (["--style-blend", "0.5,0.3,0.2"], "--style-blend (one weight per --style image) has 3 value(s) for 2"),
    (["--style-blend", "1,-1"], "non-negative"),
    (["--style-blend", "a,b"], "comma-separated"),
    (["--size", "0"], "size"),
    (["--optimizer", "sgd"], "optimizer"),
    (["--preserve-color", "maybe"], "preserve"),
    (["--style-layers", "relu9_1"], "relu9_1"),
])
def test_bad_options_exit_2(tmp_path, content_path, style_path, style2_path, args, needle):
    out = tmp_path / "out.png"
    r = cli("stylize", content_path, "--style", style_path, "--style", style2_path, "-o", out, *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output.lower()
    assert not out.exists()


@pytest.mark.parametrize("where", ["missing-dir", "is-dir", "bad-ext"])
def test_bad_output_path(tmp_path, content_path, style_path, where):
    out = {"missing-dir": tmp_path / "no" / "such" / "out.png", "is-dir": tmp_path,
           "bad-ext": tmp_path / "out.xyz"}[where]
    r = cli("stylize", content_path, "--style", style_path, "-o", out, "--iterations", 1, "--size", 64)
    assert r.exit_code == 2, r.output
    assert not (tmp_path / "out.xyz").exists()


@pytest.mark.slow
def test_ctrl_c_saves_current_image(tmp_path, content_path, style_path):
    out = tmp_path / "out.png"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "atelier.cli", "stylize", str(content_path), "--style", str(style_path),
                          "-o", str(out), "--size", "128", "--iterations", "100000", "--save-every", "1",
                          str(tmp_path / "frames")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((tmp_path / "frames").glob("*.png"))) < 3:
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr.decode()
    assert out.exists() and b"saved the current image" in stderr
    meta = img.read_metadata(out)
    assert meta["interrupted_at"]["iteration"] >= 3
    with Image.open(out) as im:
        assert im.size == (128, 86)
        assert np.asarray(im).std() > 10  # a real picture, not a blank
    assert not [f for f in os.listdir(tmp_path) if f.startswith("tmp")]


@pytest.mark.slow
def test_exif_rotated_rgba_inputs_give_upright_output(tmp_path, style_path):
    """A phone photo stored sideways with an EXIF orientation comes out upright; RGBA styles work."""
    from skimage import data

    photo = Image.fromarray(data.coffee())  # 600x400 landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    sideways = tmp_path / "sideways.jpg"
    photo.rotate(90, expand=True).save(sideways, exif=exif.tobytes())  # stored 400x600
    rgba = tmp_path / "style.png"
    s = Image.open(style_path).convert("RGBA")
    s.putalpha(200)
    s.save(rgba)
    out = tmp_path / "out.png"
    r = cli("stylize", sideways, "--style", rgba, "-o", out, "--size", 96, "--iterations", 2)
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.size == (96, 64)  # landscape again
