"""Video from a file to a file (issue 13): ``atelier.api.video.stylize_video`` / ``evaluate_video`` and
the ``atelier video`` / ``evaluate-video`` commands, on real Sintel frames: outputs, Ctrl-C and
resume, bad input (exit 2, no output left), and ``atelier train --temporal``."""

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from atelier.cli import app
from atelier.io.video import probe, read_frames
from atelier.api.video import VideoInterrupted, evaluate_video, progress_path, stylize_video
from conftest import DATA

CLIP = DATA / "video" / "sintel_mountain_2"
STYLE = DATA / "styles" / "starry_night.jpg"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """8 Sintel frames at 160 x 68 as a frame folder."""
    d = tmp_path_factory.mktemp("clip") / "frames"
    d.mkdir()
    for p in sorted(CLIP.glob("*.png"))[:8]:
        with Image.open(p) as im:
            im.convert("RGB").resize((160, 68), Image.Resampling.LANCZOS).save(d / p.name)
    return d


def test_feedforward_video_to_mp4_and_its_evaluation(clip, tmp_path):
    out = tmp_path / "out.mp4"
    seen = []
    res = stylize_video(clip, out, method="starry_night", callback=lambda done, total, frame: seen.append((done, total)))
    assert res.frames == 8 and res.new_frames == 8 and seen[-1] == (8, 8)
    info = probe(out)
    assert (info.width, info.height, info.frames) == (160, 68, 8) and abs(info.fps - 25.0) < 1e-6
    assert json.loads(progress_path(out).read_text())["complete"] is True
    rep = evaluate_video(out, clip, styles=[STYLE])
    assert rep["frames"] == 8 and len(rep["short_term"]["per_frame"]) == 7
    assert rep["long_term"] is None  # 8 frames: no pair 10 apart
    assert 0 < rep["short_term"]["mean"] < 0.05 and rep["style_loss"]["mean"] > 0
    assert abs(rep["luminance_drift"]) < 0.1


def test_blending_is_steadier_than_per_frame_end_to_end(clip, tmp_path):
    reps = {}
    for mode in ("none", "blend"):
        stylize_video(clip, tmp_path / mode, method="starry_night", temporal=mode)
        reps[mode] = evaluate_video(tmp_path / mode, clip, losses=False)
    assert reps["blend"]["short_term"]["mean"] < 0.7 * reps["none"]["short_term"]["mean"]
    assert len(list((tmp_path / "blend").glob("frame_*.png"))) == 8


def test_every_and_size_and_adain(clip, tmp_path):
    res = stylize_video(clip, tmp_path / "o", method="adain", styles=[STYLE], every=2, size=96)
    frames = [f for _, f in read_frames(tmp_path / "o")]
    assert res.frames == 4 and len(frames) == 4 and frames[0].shape == (40, 96, 3)  # 68 * 96 / 160, even
    # AdaIN blends less by default (0.5, not 0.7): its texture softens under repeated warping
    assert json.loads(progress_path(tmp_path / "o").read_text())["params"]["temporal_weight"] == 0.5
    # --every 2 keeps source frames 0, 2, 4, 6: the first is frame 0 stylized alone (nothing to blend
    # with yet), and each later one is nearer the per-frame results of frames 2k-1 ... 2k than of others
    stylize_video(clip, tmp_path / "e1", method="adain", styles=[STYLE], size=96, temporal="none")
    e1 = [f.astype(np.float32) for _, f in read_frames(tmp_path / "e1")]
    assert len(e1) == 8 and np.array_equal(frames[0], e1[0])
    for k in (1, 2, 3):
        dist = [float(np.abs(frames[k] - e).mean()) for e in e1]
        assert int(np.argmin(dist)) in (2 * k - 1, 2 * k) and dist[2 * k] < 5, (k, dist)
        assert dist[2 * k] > 0.5  # blended: not the per-frame result


@pytest.mark.slow
def test_gatys_video_per_frame_and_with_the_temporal_loss(clip, tmp_path):
    for mode in ("none", "auto"):
        res = stylize_video(clip, tmp_path / mode, method="gatys", styles=[STYLE], temporal=mode, iterations=3,
                            duration=3 / 25, size=64)
        assert res.frames == 3 and res.stats["frames"] == 3
    assert res.stats["temporal_terms"] == 1
    a = [f for _, f in read_frames(tmp_path / "none")]
    b = [f for _, f in read_frames(tmp_path / "auto")]
    assert len(a) == len(b) == 3 and a[0].shape == (26, 64, 3)
    # the first frame has no previous one: the same optimization in both modes; the next ones start
    # from the warped previous result with the temporal term, so they differ
    assert np.array_equal(a[0], b[0])
    assert all(np.abs(x.astype(np.float32) - y).mean() > 0.5 for x, y in zip(a[1:], b[1:]))


def test_ctrl_c_keeps_the_frames_done_and_resume_finishes(clip, tmp_path):
    out = tmp_path / "out.mp4"

    def stop_after_three(done, total, frame):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(VideoInterrupted) as e:
        stylize_video(clip, out, method="starry_night", callback=stop_after_three)
    assert e.value.result.frames == 3 and probe(out).frames == 3
    assert json.loads(progress_path(out).read_text())["complete"] is False
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
    # other parameters: refused; the same ones: continued to the end
    from atelier.core.errors import InputError

    with pytest.raises(InputError, match="temporal_weight"):
        stylize_video(clip, out, method="starry_night", temporal_weight=0.2, resume=True)
    res = stylize_video(clip, out, method="starry_night", resume=True)
    assert res.frames == 8 and res.new_frames == 5 and probe(out).frames == 8


def test_cli_video_and_evaluate_video(clip, tmp_path):
    r = CliRunner().invoke(app, ["video", str(clip), "-o", str(tmp_path / "o"), "--method", "starry_night", "-q"])
    assert r.exit_code == 0, r.output
    assert re.search(r"wrote .*\(8 frames, [0-9.]+ frames/s, flow reliable on [0-9]+ % of pixels\)",
                     " ".join(r.output.split())), r.output
    cli_frames = [f.astype(np.float32) for _, f in read_frames(tmp_path / "o")]
    source = [f.astype(np.float32) for _, f in read_frames(clip)]
    assert len(cli_frames) == 8 and cli_frames[0].shape == (68, 160, 3)
    assert min(np.abs(a - b).mean() for a, b in zip(cli_frames, source)) > 10  # stylized, not copied
    r = CliRunner().invoke(app, ["evaluate-video", str(tmp_path / "o"), "--source", str(clip), "--no-losses",
                                 "-o", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png"), "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "r.json").read_text())
    want = evaluate_video(tmp_path / "o", clip, losses=False)
    assert report["frames"] == 8 and len(report["short_term"]["per_frame"]) == 7
    assert report["short_term"]["per_frame"] == pytest.approx(want["short_term"]["per_frame"], rel=1e-9)
    assert 0 < report["short_term"]["mean"] < 0.05 and report["content_loss"] is None
    assert f"frames 8  short-term warping error {report['short_term']['mean']:.5f}" in r.output, r.output
    with Image.open(tmp_path / "r.png") as im:
        assert im.size[0] > 400 and len(set(im.convert("L").getdata())) > 10  # a drawn plot, not a blank


@pytest.mark.parametrize("case", ["not_video", "empty", "mixed", "stray", "no_style", "style_for_ff", "unwritable"])
def test_bad_input_exits_2_with_one_line_and_no_output(case, clip, tmp_path):
    src, extra = clip, []
    if case == "not_video":
        src = tmp_path / "notes.mp4"
        src.write_text("not a video")
    elif case == "empty":
        src = tmp_path / "empty.mp4"
        src.write_bytes(b"")
    elif case in ("mixed", "stray"):
        src = tmp_path / "frames"
        shutil.copytree(clip, src)
        if case == "mixed":
            Image.new("RGB", (50, 50)).save(src / "frame_0099.png")
        else:
            (src / "readme.txt").write_text("hello")
    elif case == "no_style":
        extra = ["--method", "adain"]
    elif case == "style_for_ff":
        extra = ["--method", "udnie", "--style", str(STYLE)]
    out = tmp_path / "out.mp4" if case != "unwritable" else tmp_path / "missing-dir" / "out.mp4"
    r = CliRunner().invoke(app, ["video", str(src), "-o", str(out), "-q", *extra])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and len(r.output.strip().splitlines()) == 1
    assert not out.exists() and not progress_path(out).exists()
    if out.parent.exists():
        assert not list(out.parent.glob("*partial*"))


def test_train_temporal_option(tmp_path):
    r = CliRunner().invoke(app, ["train", "--style", str(STYLE), "--content-dir", str(DATA / "content"), "-o",
                                 str(tmp_path / "m.safetensors"), "--steps", "2", "--image-size", "32", "--batch-size",
                                 "1", "--width", "0.25", "--temporal", "--temporal-weight", "4", "-q",
                                 "--precision", "fp32", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["hyperparameters"]["temporal_weight"] == 4.0 and card["final_losses"]["temporal"] > 0


def test_a_video_file_keeps_its_rate_and_its_audio_track(clip, tmp_path):
    from test_video_io import _audio_packets, _make_av

    frames = [f for _, f in read_frames(clip)]
    src = _make_av(tmp_path / "with-audio.mp4", frames, fps=24, seconds=8 / 24)
    out = tmp_path / "styled.mkv"
    res = stylize_video(src, out, method="starry_night_temporal", temporal="none")
    assert res.audio_note is None and res.frames == 8
    info = probe(out)
    assert info.has_audio and abs(info.fps - 24) < 1e-6 and (info.width, info.height) == (160, 68)
    # copied packet for packet, not re-encoded
    assert [p[2] for p in _audio_packets(out)] == [p[2] for p in _audio_packets(src)][: len(_audio_packets(out))]
    assert len(_audio_packets(out)) >= len(_audio_packets(src)) - 1


def test_frames_above_the_budget_are_stylized_in_tiles(tmp_path):
    """Print sizes in video (issue 24): the one-pass tiling per frame (here forced: 256 px tiles on
    512 x 218 frames), the same frames as untiled within 2/255."""
    src = tmp_path / "frames"
    src.mkdir()
    for p in sorted(CLIP.glob("*.png"))[:3]:
        with Image.open(p) as im:
            im.convert("RGB").resize((512, 218), Image.Resampling.LANCZOS).save(src / p.name)
    stylize_video(src, tmp_path / "whole", method="starry_night", temporal="none", tile="off", precision="fp32")
    stylize_video(src, tmp_path / "tiled", method="starry_night", temporal="none", tile=256, precision="fp32")
    whole = [f.astype(np.float32) for _, f in read_frames(tmp_path / "whole")]
    tiled = [f.astype(np.float32) for _, f in read_frames(tmp_path / "tiled")]
    assert len(tiled) == len(whole) == 3
    err = max(float(np.abs(a - b).mean()) for a, b in zip(whole, tiled))
    assert 0 < err < 2, err  # tiled (not the same code path), and within 2/255
    r = CliRunner().invoke(app, ["video", str(src), "-o", str(tmp_path / "bad"), "--method", "starry_night",
                                 "--tile", "256", "--max-memory", "1K"])
    assert r.exit_code == 2 and "allowed" in r.output and not (tmp_path / "bad").exists(), r.output
