"""Issue 11: never destroy a user's file, never exhaust the machine. Bounds checked before work,
no silent overwrite, save failures that keep the result, GIFs in apply, one device/precision
check, API input checks, no silently ignored option, and the smaller cases."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from atelier.io import images as img
from atelier.core.errors import InputError

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def atelier(*args, env=None, timeout=240, **kw):
    return subprocess.run([sys.executable, "-m", "atelier.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**ENV, **(env or {})}, **kw)


def one_line_error(r):
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().startswith("error:"), r.stderr
    return r.stderr


@pytest.fixture
def photo(tmp_path, content_path):
    p = tmp_path / "victim.jpg"
    shutil.copy(content_path, p)
    return p


# 1. sizes bounded before any work starts -------------------------------------------------

@pytest.mark.parametrize("args", [
    ["stylize", "{photo}", "-s", "{style}", "-o", "{out}/o.png", "--size", "100000", "-n", "3"],
    ["stylize", "{photo}", "-s", "{style}", "-o", "{out}/o.png", "--size", "256", "--style-scale", "400"],
    ["stylize", "{photo}", "-s", "{style}", "-o", "{out}/o.png", "--method", "adain", "--style-size", "100000"],
    ["apply", "starry_night", "{photo}", "-o", "{out}", "--size", "100000"],
])
def test_sizes_above_the_pixel_limit_are_refused_before_work(tmp_path, photo, style_path, args):
    out = tmp_path / "out"
    out.mkdir()
    fill = {"photo": photo, "style": style_path, "out": out}
    t0 = time.time()
    r = atelier(*[a.format(**fill) for a in args])
    assert r.returncode == 2 and "above the limit" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert time.time() - t0 < 60 and not any(out.iterdir())


def test_memory_estimate_refuses_a_run_this_machine_cannot_hold(tmp_path, photo, style_path):
    r = atelier("stylize", photo, "-s", style_path, "-o", tmp_path / "o.png", "--size", "20000",
                env={"ATELIER_MAX_PIXELS": "100000000000"})
    err = one_line_error(r)
    # print sizes (issue 24): refused only when even the smallest tiles with Adam do not fit
    assert "does not fit" in err and "GiB even in 256 px tiles" in err and "--max-memory" in err
    assert not (tmp_path / "o.png").exists()


def test_ctrl_c_keeps_the_current_image_at_its_own_size(content_path, style_path):
    from atelier import GatysConfig, GatysStyleTransfer, StyleTransferInterrupted

    st = GatysStyleTransfer(GatysConfig(size=128, scales=2, iterations=5, seed=0, precision="fp32"))

    def stop(p):
        if p.iteration == 2:
            raise KeyboardInterrupt

    with pytest.raises(StyleTransferInterrupted) as e:
        st.run(img.load_image(content_path), [img.load_image(style_path)], callback=stop)
    assert max(e.value.image.shape[-2:]) == 64 and e.value.scale == 0  # not enlarged to 128


# 2. no output over an input --------------------------------------------------------------

def test_output_that_is_an_input_is_refused(tmp_path, photo, style_path):
    original = photo.read_bytes()
    style = tmp_path / "style.jpg"
    shutil.copy(style_path, style)
    (tmp_path / "link.jpg").symlink_to(photo)
    os.link(photo, tmp_path / "hard.jpg")
    for out in (photo, style, tmp_path / "link.jpg", tmp_path / "hard.jpg"):
        r = atelier("stylize", photo, "-s", style, "-o", out, "-n", "1", "--size", "64")
        assert "would destroy it" in one_line_error(r)
    r = atelier("stylize", photo, "-s", style, "--method", "adain", "-o", tmp_path / "o.png", "--metrics", photo)
    assert "--metrics is the content input" in one_line_error(r)
    r = atelier("evaluate", photo, "-c", photo, "-s", style, "-o", style)
    assert "would destroy it" in one_line_error(r)
    assert photo.read_bytes() == original and style.read_bytes() == style_path.read_bytes()


def test_apply_into_its_own_input_folder_is_refused_unless_overwrite(tmp_path, content_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(content_path, photos / "a.jpg")
    before = (photos / "a.jpg").read_bytes()
    (tmp_path / "alias").symlink_to(photos)
    for out in (photos, tmp_path / "alias"):
        r = atelier("apply", "starry_night", photos, "-o", out, "--size", "64")
        assert "would destroy it" in one_line_error(r)
    assert (photos / "a.jpg").read_bytes() == before
    r = atelier("apply", "starry_night", photos, "-o", photos, "--size", "64", "--overwrite", "-q")
    assert r.returncode == 0, r.stderr
    assert (photos / "a.jpg").read_bytes() != before


def test_training_output_over_an_input_and_zero_steps_are_refused(tmp_path, style_path, content_path):
    from typer.testing import CliRunner
    from atelier.cli import app

    style = tmp_path / "s.json"  # the card of output "s" would replace this file
    style.write_text("{}")
    r = CliRunner().invoke(app, ["train", "-s", str(style), "-c", str(content_path), "-o", str(tmp_path / "s")])
    assert r.exit_code == 2 and "would destroy it" in r.output
    r = CliRunner().invoke(app, ["train", "-s", str(style_path), "-c", str(content_path), "-o",
                                 str(tmp_path / "m.safetensors"), "--steps", "0"])
    assert r.exit_code == 2 and "--steps must be at least 1" in r.output
    assert not (tmp_path / "m.safetensors").exists()


# 3. a failed save keeps the result -------------------------------------------------------

def test_unwritable_output_is_rescued_to_the_temporary_folder(tmp_path, photo, style_path):
    r = atelier("stylize", photo, "-s", style_path, "--method", "adain", "-o", "/proc/o.png", "--size", "64",
                env={"TMPDIR": str(tmp_path)})
    err = one_line_error(r)
    rescued = list(tmp_path.glob("atelier-recovered-*-o.png"))
    assert len(rescued) == 1 and str(rescued[0]) in err.replace("\n", "")
    assert img.read_metadata(rescued[0])["method"] == "adain"


def _small_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.parametrize("method", ["gatys", "adain"])
def test_full_disk_gives_one_line_and_no_partial_file(tmp_path, photo, style_path, method):
    out = tmp_path / "o.png"
    r = subprocess.run([sys.executable, "-m", "atelier.cli", "stylize", str(photo), "-s", str(style_path),
                        "--method", method, "-o", str(out), "--size", "96", *(["-n", "2"] if method == "gatys" else []),
                        "-q"], capture_output=True, text=True, timeout=240, env={**ENV, "TMPDIR": str(tmp_path)},
                       preexec_fn=_small_files)
    err = one_line_error(r)
    assert "could not write" in err and "File too large" in err.replace("\n", " ")
    assert not out.exists() and not list(tmp_path.glob(".o.png.*"))


def test_evaluate_output_write_failure_is_one_line(tmp_path, photo, style_path):
    r = atelier("evaluate", photo, "-c", photo, "-s", style_path, "-o", "/proc/m.json")
    err = one_line_error(r)
    assert "printed above" in err and json.loads(r.stdout)["ssim"] > 0.99


# 4. GIF in apply -------------------------------------------------------------------------

def test_apply_reads_gifs_writes_png_and_reports_skipped_files(tmp_path, content_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    frame = Image.open(content_path).convert("RGB").resize((96, 64))
    frame.save(photos / "anim.gif", save_all=True, append_images=[frame.rotate(180)])
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    r = atelier("apply", "starry_night", photos, "-o", out, "--size", "64")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["anim.png"]
    assert "notes.txt" in r.stderr and "skipped" in r.stderr
    r = atelier("apply", "starry_night", photos / "anim.gif", "-o", out, "--size", "64")
    assert r.returncode == 0 and "could not" not in r.stderr, r.stderr


# 5. one check of device and precision ----------------------------------------------------

@pytest.mark.parametrize("args", [
    ["apply", "starry_night", "{photo}", "-o", "{out}", "--precision", "banana"],
    ["stylize", "{photo}", "--method", "starry_night", "-o", "{out}/o.png", "--precision", "fp16"],
    ["stylize", "{photo}", "-s", "{photo}", "-o", "{out}/o.png", "--device", "tpu"],
    ["evaluate", "{photo}", "-c", "{photo}", "-s", "{photo}", "--device", "tpu"],
    ["train", "-s", "{photo}", "-c", "{photo}", "-o", "{out}/m", "--precision", "fp16"],
])
def test_bad_device_or_precision_exit_2(tmp_path, photo, args):
    r = atelier(*[a.format(photo=photo, out=tmp_path) for a in args])
    assert ("--device" in r.stderr or "--precision" in r.stderr) and one_line_error(r)


# 6. the Python API checks what it is given ----------------------------------------------

@pytest.mark.parametrize("bad,needle", [
    (lambda t: t * 255, "must lie in [0, 1]"),
    (lambda t: t * float("nan"), "NaN"),
    (lambda t: t[..., :8, :8], "too small (8x8)"),
])
def test_api_refuses_bad_tensors(content_path, bad, needle):
    t = img.load_image(content_path, size=64)[0]
    for load in (img.load_image, img.open_image):
        with pytest.raises(InputError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            load(bad(t))


def test_load_model_with_an_empty_name():
    import atelier

    with pytest.raises(InputError, match="no model given"):
        atelier.load_model("")


# 7. no option silently ignored -----------------------------------------------------------

@pytest.mark.parametrize("method,option", [
    ("adain", ["--iterations", "5"]), ("wct", ["--optimizer", "adam"]), ("starry_night", ["--seed", "1"]),
    ("starry_night", ["--alpha", "0.5"]), ("gatys", ["--alpha", "0.5"]), ("gatys", ["--style-size", "256"]),
])
def test_options_a_method_does_not_use_are_refused(tmp_path, photo, style_path, method, option):
    styles = [] if method == "starry_night" else ["-s", style_path]
    r = atelier("stylize", photo, *styles, "--method", method, "-o", tmp_path / "o.png", *option)
    err = one_line_error(r)
    assert option[0] in err and f"--method {method}" in err


@pytest.mark.parametrize("method", ["adain", "starry_night"])
def test_metrics_for_one_pass_methods(tmp_path, photo, style_path, method):
    styles = [] if method == "starry_night" else ["-s", style_path]
    m = tmp_path / "m.json"
    r = atelier("stylize", photo, *styles, "--method", method, "-o", tmp_path / "o.png", "--size", "96",
                "--metrics", m)
    assert r.returncode == 0, r.stderr
    scores = json.loads(m.read_text())
    for key in ("content_loss", "style_loss", "tv_loss", "ssim", "style_distance", "wall_seconds", "image_size",
                "device", "precision"):
        assert key in scores, key
    assert scores["image_size"] == [64, 96] and scores["wall_seconds"] > 0


# 8. the smaller ones ---------------------------------------------------------------------

def test_ctrl_c_during_start_up_is_one_line(tmp_path, photo, style_path):
    p = subprocess.Popen([sys.executable, "-m", "atelier.cli", "stylize", str(photo), "-s", str(style_path),
                          "-o", str(tmp_path / "o.png")], stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(0.8)  # inside the imports (torch takes seconds)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "nothing was saved" in err


def test_sigterm_before_the_first_iteration_says_nothing_was_saved(tmp_path, photo, style_path):
    p = subprocess.Popen([sys.executable, "-m", "atelier.cli", "stylize", str(photo), "-s", str(style_path),
                          "-o", str(tmp_path / "o.png"), "--size", "800", "-q"], stderr=subprocess.PIPE, text=True,
                         env=ENV)
    time.sleep(8)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and ("nothing was saved" in err or "saved the current image" in err)


def test_nan_weights_are_refused_at_load(tmp_path):
    import hashlib

    from safetensors.torch import load_file, save_file

    from atelier.training.zoo import model_path
    import atelier

    src = model_path("starry_night")
    state = load_file(str(src))
    name = sorted(state)[0]
    state[name] = torch.full_like(state[name], float("nan"))
    dst = tmp_path / "broken.safetensors"
    save_file(state, str(dst))
    card = json.loads(src.with_suffix(".json").read_text())
    card["sha256"] = hashlib.sha256(dst.read_bytes()).hexdigest()
    dst.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="NaN or infinity") as e:
        atelier.load_model(dst)
    assert "broken.safetensors" in str(e.value)


def test_apply_that_writes_nothing_says_so(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    r = atelier("apply", "starry_night", bad, "-o", tmp_path / "out")
    assert r.returncode == 2 and "nan" not in r.stderr.lower() and "wrote nothing" in r.stderr


def test_help_has_no_markup_leftovers():
    for cmd in ("stylize", "apply", "evaluate", "train"):
        r = atelier(cmd, "--help", env={"COLUMNS": "200"})
        assert r.returncode == 0
        text = " ".join(r.stdout.split())
        assert "pixels ." not in text and "<bool>" not in text and "--style <list" not in text, r.stdout
