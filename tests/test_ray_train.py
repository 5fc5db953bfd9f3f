"""Training under Ray Train (issue 26): ``atelier train --ray-workers 2`` runs the same training
command as two ``TorchTrainer`` workers on a local Ray cluster, follows one process at the same
global batch, and leaves a checkpoint that one process resumes exactly."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from conftest import data_file, require_extra
from test_distributed import _args, _history


def test_two_ray_train_workers_follow_one_process_and_one_process_resumes(tmp_path):
    require_extra("ray.train.torch")
    from atelier.cli import app

    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    r = CliRunner().invoke(app, _args(one, "--steps", "8"))
    assert r.exit_code == 0, r.output
    run = subprocess.run([sys.executable, "-m", "atelier.cli", *_args(two, "--steps", "5", "--ray-workers", "2")],
                         capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    card = json.loads(two.with_suffix(".json").read_text())
    assert card["processes"] == 2 and card["backend"] == "gloo" and card["steps"] == 5
    r = CliRunner().invoke(app, _args(two, "--steps", "8", "--resume"))  # one process continues the Ray run
    assert r.exit_code == 0, r.output
    a, b = _history(one), _history(two)
    assert [h["step"] for h in b] == list(range(1, 9))
    rel = [abs(x["total"] - y["total"]) / x["total"] for x, y in zip(a, b)]
    # the global batch's loss on 2 workers; other crops (a wrong shard) move it by 1-4 % per step
    assert max(rel[:3]) < 1e-5, rel
    assert max(rel) < 5e-3, rel


def test_ray_workers_options_are_checked_before_ray_starts(tmp_path):
    from atelier.cli import app

    style, content = data_file("styles/starry_night.jpg"), data_file("content/000000000030.jpg")
    base = ["train", "-s", str(style), "-c", str(content), "-o", str(tmp_path / "m.safetensors")]
    r = CliRunner().invoke(app, base + ["--ray-workers", "3", "--batch-size", "4"])
    assert r.exit_code == 2 and "multiple of --ray-workers (3)" in r.output
    r = CliRunner().invoke(app, base + ["--ray-address", "auto"])
    assert r.exit_code == 2 and "--ray-address applies only with --ray-workers" in r.output
    r = CliRunner().invoke(app, base + ["--ray-workers", "2", "--nproc", "2"])
    assert r.exit_code == 2 and "two launchers" in r.output
    assert not any(tmp_path.iterdir())
