"""Batch jobs on Ray Data (issue 26): the same outputs as the single-machine path, bad files
reported and skipped, resume of verified outputs. One local Ray cluster for the session
(conftest.py's ``ray_cluster``: 2 CPUs, no dashboard), shut down at the end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import data_file

ASSETS = Path(__file__).resolve().parents[1] / "src" / "atelier" / "assets"
SIZE = 96


@pytest.fixture()
def photos(tmp_path):
    """Three real photos (two of equal size, so they share a batch), a bad file, a text file."""
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    shutil.copy(ASSETS / "chelsea.jpg", d / "chelsea.jpg")
    shutil.copy(data_file("content/000000000030.jpg"), d / "a.jpg")
    shutil.copy(data_file("content/000000000086.jpg"), d / "sub" / "b.jpg")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (d / "notes.txt").write_text("not an image")
    return d


def _single(photos, out):
    from atelier.methods.feedforward.apply import apply_model, load_model

    net = load_model("starry_night", device="cpu")
    return apply_model(net, [photos], out, size=SIZE, precision="fp32", metadata=_meta(net))


def _meta(net):
    return {"method": "feedforward", "model": "starry_night", "model_sha256": net.card["sha256"],
            "style_weights": None, "preserve_color": "none"}


def _job(**kw):  # noqa: D401 - the Ray job of the single-machine settings
    from atelier.api.batch import ApplyJob
    from atelier.methods.feedforward.apply import load_model

    meta = _meta(load_model("starry_night", device="cpu"))
    meta.update(kw.pop("meta", {}))
    return ApplyJob(model="starry_night", metadata=meta, device="cpu", size=SIZE, precision="fp32", **kw)


def _pairs(photos, out):
    from atelier.methods.feedforward.apply import list_inputs

    return [(str(s), str(out / rel)) for s, rel in list_inputs([photos])]


def test_ray_apply_equals_single_machine_and_skips_bad_files(ray_cluster, photos, tmp_path):
    from atelier.api.ray_batch import run_batch
    from atelier.io.images import read_metadata

    single = _single(photos, tmp_path / "single")
    s = run_batch(_job(), _pairs(photos, tmp_path / "ray"), workers=2, batch_size=2)
    assert sorted(Path(d).name for _, d in s.done) == ["a.jpg", "b.jpg", "chelsea.jpg"]
    assert s.workers == 2 and sum(s.pids.values()) == 4
    # the bad file: reported with the single-machine path's one-line reason, not written
    assert [Path(p).name for p, _ in s.failed] == ["broken.png"]
    assert s.failed[0][1] == single.failed[0][1] and "\n" not in s.failed[0][1]
    assert not (tmp_path / "ray" / "broken.png").exists()
    for rel in ("a.jpg", "sub/b.jpg", "chelsea.jpg"):
        a = np.asarray(Image.open(tmp_path / "single" / rel), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "ray" / rel), dtype=np.int16)
        assert a.shape == b.shape and max(a.shape[:2]) == SIZE
        assert np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.05, rel  # JPEG of fp-equal pixels
        assert read_metadata(tmp_path / "ray" / rel) == read_metadata(tmp_path / "single" / rel)
    assert not list((tmp_path / "ray").rglob("*.tmp*"))  # atomic writes leave nothing behind


def test_verify_output_needs_same_parameters_and_whole_pixels(photos, tmp_path):
    from atelier.api.ray_batch import verify_output
    from atelier.io.images import read_metadata

    _single(photos, tmp_path / "single")
    out = tmp_path / "single" / "chelsea.jpg"
    meta = read_metadata(out)
    assert verify_output(out, meta)
    assert not verify_output(out, {**meta, "preserve_color": "luminance"})
    assert not verify_output(tmp_path / "single" / "missing.jpg", meta)
    out.write_bytes(out.read_bytes()[:2000])  # truncated: the header reads, the pixels do not
    assert read_metadata(out) == meta and not verify_output(out, meta)


def test_cli_apply_ray_summary_and_resume(ray_cluster, photos, tmp_path):
    from atelier.cli import app

    runner = CliRunner()
    out = tmp_path / "out"
    args = ["apply", "starry_night", str(photos), "-o", str(out), "--size", str(SIZE), "--ray", "--workers", "2",
            "--precision", "fp32", "-q"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output  # as the single-machine path: the others done, one input failed
    assert "done 3, skipped 1 (0 already there and verified), failed 1" in r.output
    assert "broken.png" in r.output and "notes.txt: not an image file" in r.output
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    victim = out / "chelsea.jpg"
    victim.write_bytes(victim.read_bytes()[:2000])  # a truncated output does not verify: redone
    r = runner.invoke(app, args)
    assert "done 1, skipped 3 (2 already there and verified), failed 1" in r.output, r.output
    assert (out / "a.jpg").stat().st_mtime_ns == stamp[out / "a.jpg"]
    assert (out / "sub" / "b.jpg").stat().st_mtime_ns == stamp[out / "sub" / "b.jpg"]
    Image.open(victim).load()  # whole again
    r = runner.invoke(app, ["apply", "starry_night", str(photos), "-o", str(out), "--workers", "2"])
    assert r.exit_code == 2 and "--workers applies only with --ray" in r.output


def test_cli_sketch_ray_equals_single_machine(ray_cluster, photos, tmp_path):
    from atelier.cli import app
    from atelier.io.images import read_metadata

    runner = CliRunner()
    common = ["sketch", str(photos), "--size", str(SIZE), "--precision", "fp32", "-q"]
    r1 = runner.invoke(app, common + ["-o", str(tmp_path / "single")])
    r2 = runner.invoke(app, common + ["-o", str(tmp_path / "ray"), "--ray", "--workers", "1"])
    assert r1.exit_code == r2.exit_code == 2, r2.output  # broken.png: reported, skipped, the others written
    assert "done 3, skipped 1 (0 already there and verified), failed 1" in r2.output
    reason = [ln for ln in r1.output.splitlines() if "broken.png" in ln][0].split("skipped: ", 1)[1]
    assert reason in r2.output
    for rel in ("a.png", "sub/b.png", "chelsea.png"):
        a = np.asarray(Image.open(tmp_path / "single" / rel), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "ray" / rel), dtype=np.int16)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, rel
        assert read_metadata(tmp_path / "ray" / rel) == read_metadata(tmp_path / "single" / rel)
    r3 = runner.invoke(app, common + ["-o", str(tmp_path / "ray"), "--ray", "--workers", "1"])
    assert "done 0, skipped 4 (3 already there and verified), failed 1" in r3.output


def test_cli_stylize_gatys_on_ray_one_task_per_photo(ray_cluster, photos, tmp_path):
    """Any method runs on Ray, Gatys too: the same pixels (fp tolerance: 1 vs 2 threads) and
    metadata as the single-machine command, a bad photo reported with its reason, resume."""
    from atelier.cli import app
    from atelier.io.images import read_metadata

    runner = CliRunner()
    style = str(data_file("styles/starry_night.jpg"))
    opts = ["-s", style, "--size", "64", "-n", "3", "--seed", "0", "--precision", "fp32", "--device", "cpu", "-q"]
    single = tmp_path / "single.jpg"
    r = runner.invoke(app, ["stylize", str(photos / "a.jpg"), "-o", str(single)] + opts)
    assert r.exit_code == 0, r.output
    out = tmp_path / "ray"
    r = runner.invoke(app, ["stylize", str(photos), "-o", str(out), "--ray", "--workers", "1"] + opts)
    assert r.exit_code == 2 and "done 3, skipped 1 (0 already there and verified), failed 1" in r.output, r.output
    assert "broken.png" in r.output
    a = np.asarray(Image.open(single), dtype=np.int16)
    b = np.asarray(Image.open(out / "a.jpg"), dtype=np.int16)
    assert a.shape == b.shape and np.abs(a - b).mean() < 1.0 and np.abs(a - b).max() <= 12
    ma, mb = read_metadata(single), read_metadata(out / "a.jpg")
    assert ma["parameters"] == mb["parameters"] and ma["content"] == mb["content"] and ma["styles"] == mb["styles"]
    r = runner.invoke(app, ["stylize", str(photos), "-o", str(out), "--ray", "--workers", "1"] + opts)
    assert "done 0, skipped 4 (3 already there and verified), failed 1" in r.output, r.output
    from atelier.api.ray_batch import verify_output
    from atelier.cli.stylize import StylizeJob

    import atelier.cli.stylize as st

    def job_of(*extra):  # the job the command builds, without running it
        jobs = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(st, "_run_on_ray", lambda job, *a, **k: jobs.append(job))
            assert runner.invoke(app, ["stylize", str(photos), "-o", str(out), "--ray"] + opts + list(extra)).exit_code == 0
        return jobs[0]

    same, other = job_of(), job_of("-n", "4")
    assert isinstance(same, StylizeJob)
    src = str(photos / "a.jpg")
    assert verify_output(out / "a.jpg", same.expected_metadata(src))
    assert not verify_output(out / "a.jpg", other.expected_metadata(src))  # other parameters: redone


def test_cli_index_on_ray_equals_one_process(ray_cluster, photos, tmp_path):
    from atelier.analysis.index import Collection
    from atelier.cli import app

    runner = CliRunner()
    r1 = runner.invoke(app, ["index", str(photos), "-o", str(tmp_path / "one.db"), "--size", "64", "-q"])
    r2 = runner.invoke(app, ["index", str(photos), "-o", str(tmp_path / "ray.db"), "--size", "64", "-q",
                             "--ray", "--workers", "2"])
    assert r1.exit_code == r2.exit_code == 0, r2.output
    assert "3 images (3 embedded, 0 reused by hash, 0 unchanged, 0 removed, 1 skipped)" in r2.output
    reason = [ln for ln in r1.output.splitlines() if "broken.png" in ln]
    assert reason and reason[0] in r2.output  # the same one-line reason
    with Collection.open(tmp_path / "one.db") as a, Collection.open(tmp_path / "ray.db") as b:
        (pa, va), (pb, vb) = a.items(), b.items()
        order = [pb.index(p) for p in pa]
        assert sorted(pa) == sorted(pb) and np.allclose(va, vb[order], atol=1e-5)
    r3 = runner.invoke(app, ["index", str(photos), "-o", str(tmp_path / "ray.db"), "--size", "64", "-q", "--ray"])
    assert "(0 embedded, 0 reused by hash, 3 unchanged" in r3.output, r3.output
