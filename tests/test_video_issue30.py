"""``atelier video`` / ``evaluate-video`` as a new user meets them (issue 30, items 5-8 and 10), on
real Sintel frames: a truncated mp4 (index at the front, data cut) refused unless --allow-partial,
the flow-reliability share after --resume, the upscale warning and the time estimate, the source
window of evaluate-video, and one-line errors with no empty progress bar above them."""

import json

import av
import pytest
from PIL import Image
from typer.testing import CliRunner

import atelier.api.video_eta as video_eta
from atelier.api.video import VideoInterrupted, evaluate_video, progress_path, stylize_video
from atelier.cli import app
from atelier.core.errors import InputError
from atelier.io.video import probe, read_frames
from conftest import DATA

CLIP = DATA / "video" / "sintel_mountain_2"
STYLE = DATA / "styles" / "starry_night.jpg"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """8 Sintel frames at 96 x 40 as a frame folder (25 frames/s)."""
    d = tmp_path_factory.mktemp("clip30") / "frames"
    d.mkdir()
    for p in sorted(CLIP.glob("*.png"))[:8]:
        with Image.open(p) as im:
            im.convert("RGB").resize((96, 40), Image.Resampling.LANCZOS).save(d / p.name)
    return d


@pytest.fixture(scope="module")
def cut_mp4(small, tmp_path_factory):
    """An H.264 mp4 of the 8 frames encoded with PyAV, its index (moov) at the front (faststart),
    cut in the middle of its 5th video packet: the container announces 8 frames, the file holds 5."""
    folder = tmp_path_factory.mktemp("cut")
    good = folder / "good.mp4"
    with av.open(str(good), "w", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 96, 40, "yuv420p"
        for i, (_, f) in enumerate(read_frames(small)):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(str(good)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    assert len(packets) == 8 and packets[0][0] < packets[-1][0]
    data = good.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # the index is at the front
    pos, size = packets[4]
    cut = folder / "cut.mp4"
    cut.write_bytes(data[:pos + size // 2])
    assert probe(cut).frames == 8  # the container still announces all 8
    return cut


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_a_truncated_mp4_is_refused_up_front_unless_allow_partial(cut_mp4, tmp_path):
    out = tmp_path / "o.mp4"
    r = CliRunner().invoke(app, ["video", str(cut_mp4), "-o", str(out), "-m", "starry_night"])
    assert r.exit_code == 2, r.output
    line = _one_line(r.stderr)
    assert "cut.mp4" in line and "announces 8 frames" in line and "holds only 5" in line and "--allow-partial" in line
    assert not out.exists() and not progress_path(out).exists() and not list(tmp_path.glob("*partial*"))

    r = CliRunner().invoke(app, ["video", str(cut_mp4), "-o", str(out), "-m", "starry_night", "--allow-partial",
                                 "-q"])
    assert r.exit_code == 0, r.output
    assert "warning:" in r.stderr and "holds only 5" in r.stderr
    got = probe(out).frames
    assert 1 <= got < 8 and f"({got} frames of 8 announced" in r.stderr
    assert json.loads(progress_path(out).read_text())["complete"] is True


def test_after_resume_the_reliable_share_is_that_of_a_fresh_run(small, tmp_path):
    fresh = stylize_video(small, tmp_path / "fresh", method="starry_night")
    out = tmp_path / "resumed"

    def stop_after_three(done, total, frame):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(VideoInterrupted):
        stylize_video(small, out, method="starry_night", callback=stop_after_three)
    with pytest.raises(InputError, match="has 3 frames but .* the run was stopped: finish it .*--resume"):
        evaluate_video(out, small, losses=False)  # refused from the counts, before any decoding
    r = CliRunner().invoke(app, ["video", str(small), "-o", str(out), "-m", "starry_night", "--resume", "-q"])
    assert r.exit_code == 0, r.output
    share = float(r.stderr.split("flow reliable on ")[1].split(" %")[0])
    assert 0 < share <= 100
    assert abs(share - 100 * fresh.stats["reliable"]) <= 1.0  # the printed share is rounded to a percent
    counters = json.loads(progress_path(out).read_text())["counters"]
    assert counters["pairs"] == 7 and 0 < counters["reliable_sum"] <= 7
    assert abs(counters["reliable_sum"] / 7 - fresh.stats["reliable"]) < 1e-3


def test_an_upscale_is_warned_and_a_long_run_gets_an_estimate(small, tmp_path, monkeypatch):
    monkeypatch.setattr(video_eta, "ESTIMATE_AFTER", 0.0)  # every run counts as long: the estimate is printed
    out = tmp_path / "up"
    r = CliRunner().invoke(app, ["video", str(small), "-o", str(out), "-m", "starry_night", "--size", "192",
                                 "--duration", str(3 / 25)])
    assert r.exit_code == 0, r.output
    assert "warning: --size 192 upscales the 96x40 source 2.0x to 192x80 (4.0x the pixels" in r.stderr
    estimate = [ln for ln in r.stderr.splitlines() if ln.startswith("estimate:")]
    assert len(estimate) == 1 and "per frame, about" in estimate[0] and "for the 2 frames to go" in estimate[0]
    assert next(read_frames(out))[1].shape == (80, 192, 3)
    # no warning when the size is not larger than the source's
    r = CliRunner().invoke(app, ["video", str(small), "-o", str(tmp_path / "down"), "-m", "starry_night", "--size",
                                 "64", "--duration", str(2 / 25), "-q"])
    assert r.exit_code == 0 and "upscales" not in r.stderr


def test_gatys_is_estimated_from_its_first_iterations(small, tmp_path, monkeypatch):
    monkeypatch.setattr(video_eta, "ESTIMATE_AFTER", 0.0)
    notes = []
    res = stylize_video(small, tmp_path / "g", method="gatys", styles=[STYLE], iterations=4, size=48,
                        duration=2 / 25, notify=lambda kind, msg: notes.append((kind, msg)))
    assert res.frames == 2
    estimates = [m for k, m in notes if k == "estimate"]
    assert len(estimates) == 1 and "iteration 2 of frame 1" in estimates[0]
    assert "for the 2 frames to go" in estimates[0]


def test_evaluate_video_takes_the_window_and_refuses_a_mismatch_up_front(small, tmp_path):
    out = tmp_path / "w.mp4"
    r = CliRunner().invoke(app, ["video", str(small), "-o", str(out), "-m", "starry_night", "--start", str(2 / 25),
                                 "--duration", str(3 / 25), "-q"])
    assert r.exit_code == 0, r.output
    assert probe(out).frames == 3
    # one command: the window is read from the progress file beside the output
    r = CliRunner().invoke(app, ["evaluate-video", str(out), "--source", str(small), "--no-losses", "-q",
                                 "-o", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["frames"] == 3 and rep["window"]["from"] == "progress file"
    # the same with the options, and the frames compared are the right ones (source frames 2, 3, 4)
    progress_path(out).unlink()
    r = CliRunner().invoke(app, ["evaluate-video", str(out), "--source", str(small), "--no-losses", "-q",
                                 "--start", str(2 / 25), "--duration", str(3 / 25)])
    assert r.exit_code == 0 and "frames 3" in r.stdout, r.output
    right = evaluate_video(out, small, losses=False, start=2 / 25, duration=3 / 25)
    wrong = evaluate_video(out, small, losses=False, start=0.0, duration=3 / 25)
    assert right["window"]["from"] == "options"
    assert right["luminance"]["source"] == pytest.approx(rep["luminance"]["source"], abs=1e-6)
    assert right["luminance"]["source"] != pytest.approx(wrong["luminance"]["source"], abs=1e-4)
    # a mismatch (3 stylized frames, the whole 8-frame source): refused from the counts, one line
    r = CliRunner().invoke(app, ["evaluate-video", str(out), "--source", str(small), "--no-losses"])
    assert r.exit_code == 2
    line = _one_line(r.stderr)
    assert "w.mp4" in line and "has 3 frames but its source frames has 8" in line and "--start" in line


@pytest.mark.parametrize("command", ["video", "evaluate-video"])
def test_a_bad_input_error_is_one_line_with_no_progress_bar(command, small, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    args = (["video", str(bad), "-o", str(tmp_path / "o.mp4")] if command == "video" else
            ["evaluate-video", str(bad), "--source", str(small), "--no-losses"])
    r = CliRunner().invoke(app, args)  # no -q: the bar is on
    assert r.exit_code == 2
    line = _one_line(r.stderr)
    assert line.startswith("error:") and "notes.mp4" in line
