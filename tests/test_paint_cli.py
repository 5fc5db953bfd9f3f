"""atelier paint (CLI and Python API) and the painting actor's training (issue 27)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import DATA

PHOTO = str(DATA / "content" / "000000000030.jpg")
STYLE = str(DATA / "styles")
TRAIN = sorted((DATA / "train" / "photos").glob("*.jpg"))[:6]


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "atelier.cli", "paint", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_cli_greedy_writes_png_svg_gif_and_json(tmp_path):
    r = _run(PHOTO, "-o", tmp_path / "p.png", "--method", "greedy", "--strokes", "30", "--plan-size", "64",
             "--size", "200", "--svg", tmp_path / "p.svg", "--timelapse", tmp_path / "p.gif",
             "--strokes-json", tmp_path / "p.json", "-q")
    assert r.returncode == 0, r.stderr
    from PIL import Image

    im = Image.open(tmp_path / "p.png")
    from atelier.io.images import METADATA_KEY

    assert max(im.size) == 200 and json.loads(im.info[METADATA_KEY])["method"] == "paint/greedy"
    d = json.loads((tmp_path / "p.json").read_text())
    assert d["format"] == "atelier-strokes" and 20 <= len(d["strokes"]) <= 30
    assert (tmp_path / "p.svg").read_text().startswith("<svg")
    assert Image.open(tmp_path / "p.gif").n_frames > 3


@pytest.mark.parametrize("args,needle", [
    (["/no/such/photo.jpg"], "not found"),
    ([PHOTO, "--method", "paintbrush"], "unknown --method"),
    ([PHOTO, "--style", PHOTO], "--style needs --method optimize"),
    ([PHOTO, "--strokes", "0"], "--strokes"),
    ([PHOTO, "--timelapse", "{tmp}/t.avi"], ".gif or .mp4"),
    ([PHOTO, "--svg", "{tmp}/t.png"], ".svg"),
    ([PHOTO, "--svg", "{tmp}/missing/t.svg"], "does not exist"),
    (["{tmp}/bad.jpg"], "bad.jpg"),
])
def test_cli_bad_input_one_line_exit_2_nothing_written(tmp_path, args, needle):
    (tmp_path / "bad.jpg").write_text("not an image")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = _run(*args, "-o", tmp_path / "out.png")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jpg"]


def test_python_api_optimize_with_a_style_lowers_the_style_loss():
    import atelier
    from atelier.encoders.vgg import get_encoder
    from atelier.io.images import load_image
    from atelier.losses import gram_matrix, relative_mse
    from atelier.methods.paint.optimize import STYLE_LAYERS

    style = sorted(Path(STYLE).glob("*"))[0]
    plain = atelier.paint(PHOTO, strokes=24, method="optimize", plan_size=64, iterations=10)
    styled = atelier.paint(PHOTO, strokes=24, method="optimize", plan_size=64, iterations=10, style=style)
    enc = get_encoder()
    with torch.no_grad():
        g = {n: gram_matrix(f) for n, f in enc(load_image(style, size=128), STYLE_LAYERS).items()}

        def sl(p):
            f = enc(p.render(64), STYLE_LAYERS)
            return float(sum(relative_mse(gram_matrix(f[n]), g[n]) for n in STYLE_LAYERS))
    assert sl(styled) < 0.8 * sl(plain)
    assert plain.strokes.shape == (24, 12) and plain.method == "optimize"


def test_actor_training_resumes_exactly(tmp_path):
    from atelier.methods.paint.train import PaintTrainConfig, PaintTrainer

    def cfg(out, steps):
        return PaintTrainConfig(photos=TRAIN, out=tmp_path / out, image_size=32, batch_size=2, steps=steps,
                                episode_steps=2, width=8, checkpoint_every=1, warmup_max=2)

    straight = PaintTrainer(cfg("a", 4))
    card = straight.train()
    first = PaintTrainer(cfg("b", 2))
    first.train()
    resumed = PaintTrainer(cfg("b", 4))
    resumed.train(resume=True)
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert [h["total"] for h in straight.history] == [h["total"] for h in resumed.history]
    assert card["format"] == "atelier-paint-actor" and card["steps"] == 4
    assert (tmp_path / "a.safetensors").is_file() and json.loads((tmp_path / "a.json").read_text())["sha256"]


def test_cli_train_paint_resumes_and_its_actor_paints(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in TRAIN[:4]:
        (photos / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "actor.safetensors"

    def train(*extra):
        return subprocess.run([sys.executable, "-m", "atelier.cli", "train-paint", "-p", str(photos), "-o", str(out),
                               "--image-size", "32", "--batch-size", "2", "--episode-steps", "2", "--warmup-max", "1",
                               "-q", *extra], capture_output=True, text=True,
                              env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})

    r = train("--steps", "2")
    assert r.returncode == 0, r.stderr
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["steps"] == 2 and card["architecture"]["error_input"] is True
    assert train("--steps", "3").returncode == 2  # a checkpoint is there: refused without --resume
    r = train("--steps", "3", "--resume")
    assert r.returncode == 0, r.stderr
    assert json.loads(out.with_suffix(".json").read_text())["steps"] == 3
    r = _run(PHOTO, "-o", tmp_path / "p.png", "--model", out, "--strokes", "20", "--plan-size", "32", "-q")
    assert r.returncode == 0, r.stderr
    from PIL import Image
    assert Image.open(tmp_path / "p.png").size[0] > 32
