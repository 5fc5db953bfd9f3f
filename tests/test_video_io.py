"""Video I/O (atelier.io.video): probe, read_frames, VideoWriter, on real Sintel frames
(../shared/data/video/sintel_mountain_2, 50 PNG frames 1024x436) and on short clips built
here with PyAV (an AAC sine as the audio track). Clips are 8-12 frames at 256 px so each
test takes well under a few seconds on two cores."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import tracemalloc
from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import data_file
from PIL import Image

from atelier.io import video as video_io
from atelier.core.errors import InputError
from atelier.io.video import VideoWriter, is_video_path, probe, read_frames, video_rate

W, H = 256, 108  # Sintel 1024x436 at size=256 (sides rounded down to even)


@pytest.fixture(scope="module")
def sintel():
    return data_file("video/sintel_mountain_2/frame_0001.png").parent


@pytest.fixture(scope="module")
def frames(sintel):
    """12 Sintel frames at 256x108."""
    out = [f for _, f in read_frames(sintel, duration=12 / 25, size=256)]
    assert len(out) == 12 and out[0].shape == (H, W, 3) and out[0].dtype == np.uint8
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory, frames):
    """A 12-frame, 24 fps H.264 mp4 of the Sintel frames."""
    p = tmp_path_factory.mktemp("clip") / "clip.mp4"
    with VideoWriter(p, 24, W, H) as w:
        for f in frames:
            w.write(f)
    return p


def _write(path, frames, fps=24, **kw):
    with VideoWriter(path, fps, frames[0].shape[1], frames[0].shape[0], **kw) as w:
        for f in frames:
            w.write(f)
    return w


def _mad(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _leftovers(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def _make_av(path, frames=None, fps=24, seconds=0.3, rate=44100):
    """A file with an optional H.264 video track and an AAC 440 Hz sine track, via PyAV."""
    with av.open(os.fspath(path), "w") as c:
        vs = None
        if frames is not None:
            vs = c.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        a = c.add_stream("aac", rate=rate)
        a.layout = "mono"
        for i, f in enumerate(frames or []):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            for p in vs.encode(vf):
                c.mux(p)
        if vs is not None:
            for p in vs.encode():
                c.mux(p)
        x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
        for k in range(0, len(x), 1024):
            af = av.AudioFrame.from_ndarray(x[None, k:k + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts = rate, k
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    return path


def _audio_packets(path):
    with av.open(os.fspath(path)) as c:
        s = c.streams.audio[0]
        return [(p.pts, p.time_base, bytes(p)) for p in c.demux(s) if p.size]


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fps", [24, Fraction(30000, 1001), 29.97])
def test_mp4_round_trip_keeps_size_rate_count_and_pixels(tmp_path, frames, fps):
    out = tmp_path / "out.mp4"
    w = _write(out, frames, fps)
    assert w.codec == "libx264" and w.frames_written == 12 and w.path == out
    info = probe(out)
    assert (info.kind, info.width, info.height, info.frames, info.has_audio) == ("file", W, H, 12, False)
    want = 24.0 if fps == 24 else 30000 / 1001  # 29.97 snaps to the NTSC rate
    assert info.fps == pytest.approx(want, rel=1e-9)
    assert info.duration == pytest.approx(12 / want, abs=1e-3)
    back = list(read_frames(out))
    assert [i for i, _ in back] == list(range(12))
    assert max(_mad(a, b) for a, (_, b) in zip(frames, back)) < 6
    assert _leftovers(tmp_path) == []


def test_read_frames_start_duration_every_size(clip, sintel, frames):
    every = [(i, f) for i, f in read_frames(clip)]
    assert [i for i, _ in read_frames(clip, every=3)] == [0, 3, 6, 9]
    got = list(read_frames(clip, start=0.25))  # 24 fps: frame 6 is at 0.25 s
    assert [i for i, _ in got] == list(range(6, 12))
    assert all(np.array_equal(f, every[i][1]) for i, f in got)  # seeking gives the same pixels
    assert [i for i, _ in read_frames(clip, start=0.25, duration=0.125)] == [6, 7, 8]
    assert [i for i, _ in read_frames(clip, start=0.25, duration=0.25, every=2)] == [6, 8, 10]
    assert list(read_frames(clip, start=5.0)) == []
    (_, small), = read_frames(clip, duration=0.01, size=128)
    assert small.shape == (54, 128, 3) and small.dtype == np.uint8
    (_, odd), = read_frames(clip, duration=0.01, size=101)  # 101x42.6 -> even 100x42
    assert odd.shape == (42, 100, 3)
    for src, size in ((clip, None), (clip, 64), (sintel, None), (sintel, 64)):  # the caller may change frames
        (_, f), = read_frames(src, duration=0.01, size=size)
        assert f.flags.writeable and f.flags.c_contiguous
    # a folder: frame time = index / fps (25 unless given)
    assert [i for i, _ in read_frames(sintel, start=0.2, duration=0.2, every=2, size=64)] == [5, 7, 9]
    assert [i for i, _ in read_frames(sintel, start=1.0, duration=0.5, fps=10, size=64)] == [10, 11, 12, 13, 14]
    assert probe(sintel, fps=10).duration == pytest.approx(5.0)
    for bad in (dict(every=0), dict(start=-1), dict(duration=0), dict(size=1), dict(fps=0)):
        with pytest.raises(InputError):
            read_frames(clip, **bad)


def test_seeking_lands_on_the_right_frame(tmp_path, frames):
    """60 frames with a keyframe every 12: start=2.0 s seeks to a keyframe and decodes on."""
    p = tmp_path / "gop.mp4"
    small = [np.ascontiguousarray(f[::2, ::2]) for f in frames]  # 128x54
    with av.open(os.fspath(p), "w") as c:
        s = c.add_stream("libx264", rate=24, options={"x264-params": "keyint=12:min-keyint=12:scenecut=0"})
        s.width, s.height, s.pix_fmt = 128, 54, "yuv420p"
        for i in range(60):
            vf = av.VideoFrame.from_ndarray(np.clip(small[i % 12].astype(int) + i, 0, 255).astype(np.uint8),
                                            format="rgb24")
            vf.pts = i
            for pkt in s.encode(vf):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    with av.open(os.fspath(p)) as c:
        keys = [pkt.pts * pkt.time_base * 24 for pkt in c.demux(video=0) if pkt.is_keyframe]
    assert keys == [0, 12, 24, 36, 48]
    everything = dict(read_frames(p))
    # a frame within a quarter frame interval of start counts as at start (rounded timestamps)
    for start, first in ((2.0, 48), (1.32, 32), (1.3, 31), (0.49, 12), (31 / 24 + 0.012, 32)):
        got = list(read_frames(p, start=start, duration=0.2))
        assert [i for i, _ in got] == list(range(first, first + len(got))) and len(got) in (4, 5)
        assert all(np.array_equal(f, everything[i]) for i, f in got)


def test_folder_round_trip_is_exact(tmp_path, sintel):
    src = list(read_frames(sintel, duration=8 / 25))
    a, b = tmp_path / "a", tmp_path / "b"
    for out, frames in ((a, [f for _, f in src]), (b, None)):
        frames = frames or [f for _, f in read_frames(a)]
        w = _write(out, frames, 25)
        assert w.codec == "png" and w.kind == "folder"
    names = [f"frame_{i:06d}.png" for i in range(1, 9)]
    assert sorted(os.listdir(a)) == names
    info = probe(a)
    assert (info.kind, info.width, info.height, info.frames, info.fps) == ("folder", 1024, 436, 8, 25.0)
    for (i, f), (j, g) in zip(src, read_frames(a)):
        assert i == j and np.array_equal(f, g)  # pixel-exact
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)  # and byte-exact after that
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("ext,codec,tol", [(".gif", "gif", 8), (".webm", "libvpx-vp9", 6), (".mkv", "libx264", 6),
                                           (".mov", "libx264", 6)])
def test_other_containers_are_readable(tmp_path, frames, ext, codec, tol):
    out = tmp_path / f"out{ext}"
    assert _write(out, frames[:8], 24).codec == codec
    info = probe(out)
    assert (info.width, info.height, info.frames) == (W, H, 8)
    if ext != ".gif":  # GIF keeps delays in 1/100 s
        assert info.fps == pytest.approx(24.0)
    back = [f for _, f in read_frames(out)]
    assert len(back) == 8 and max(_mad(a, b) for a, b in zip(frames, back)) < tol


def test_missing_encoders_fall_back(tmp_path, frames, monkeypatch):
    have = video_io._have_encoder
    monkeypatch.setattr(video_io, "_have_encoder", lambda n: n not in ("libx264", "libvpx-vp9") and have(n))
    for ext, codec in ((".mp4", "mpeg4"), (".webm", "libvpx")):
        out = tmp_path / f"fb{ext}"
        assert _write(out, frames[:8], 24).codec == codec
        back = [f for _, f in read_frames(out)]
        assert probe(out).frames == 8 and max(_mad(a, b) for a, b in zip(frames, back)) < 8
    monkeypatch.setattr(video_io, "_have_encoder", lambda n: False)
    with pytest.raises(InputError, match="no encoder"):
        VideoWriter(tmp_path / "none.mp4", 24, W, H)
    assert _leftovers(tmp_path) == []


def test_odd_size_is_padded_to_even(tmp_path, frames):
    odd = [np.ascontiguousarray(f[:55, :101]) for f in frames[:4]]
    out = _write(tmp_path / "odd.mp4", odd).path
    assert (probe(out).width, probe(out).height) == (102, 56)
    back = [f for _, f in read_frames(out)]
    assert max(_mad(a, b[:55, :101]) for a, b in zip(odd, back)) < 6


def test_phone_rotation_is_applied(tmp_path, frames):
    """A phone held upright stores landscape pixels and a display rotation of -90 degrees."""
    p = tmp_path / "phone.mp4"
    with av.open(os.fspath(p), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.set_display_rotation(-90)
        for i, f in enumerate(frames[:3]):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            for pkt in s.encode(vf):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    assert (probe(p).width, probe(p).height) == (H, W)
    back = [f for _, f in read_frames(p)]
    assert back[0].shape == (W, H, 3) and _mad(back[0], np.rot90(frames[0], -1)) < 6
    (_, small), = read_frames(p, duration=0.01, size=128)
    assert small.shape == (128, 54, 3)


# --------------------------------------------------------------------------- audio


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_audio_is_copied_not_reencoded(tmp_path, frames, ext):
    src = _make_av(tmp_path / "src.mp4", frames, seconds=0.3)  # video 0.5 s, audio 0.3 s
    assert probe(src).has_audio
    out = tmp_path / f"out{ext}"
    with VideoWriter(out, probe(src).fps, W, H, audio_from=src) as w:
        for _, f in read_frames(src):
            w.write(f)
    assert w.audio_note is None and probe(out).has_audio and probe(out).frames == 12
    assert [b for *_, b in _audio_packets(out)] == [b for *_, b in _audio_packets(src)]


def test_audio_trim_and_cut_at_video_end(tmp_path, frames):
    src = _make_av(tmp_path / "src.mp4", frames, seconds=0.5)
    pk = _audio_packets(src)
    # trim to [0.1, 0.3): packets overlapping that window, shifted so 0.1 s plays with frame 0
    out = _write(tmp_path / "trim.mp4", frames, audio_from=src, audio_start=0.1, audio_duration=0.2).path
    want = [b for pts, tb, b in pk if pts * tb + 1024 * tb > 0.1 and pts * tb < 0.3]
    got = _audio_packets(out)
    assert [b for *_, b in got] == want and len(want) < len(pk)
    assert float(got[1][0] * got[1][1]) == pytest.approx(float([pts * tb for pts, tb, b in pk
                                                                if b == want[1]][0]) - 0.1, abs=1e-3)
    # a video shorter than the audio (Ctrl-C after 5 frames) keeps the audio of its 5 frames only
    out = _write(tmp_path / "short.mkv", frames[:5], audio_from=src).path
    assert [b for *_, b in _audio_packets(out)] == [b for pts, tb, b in pk if pts * tb < 5 / 24]


def test_audio_that_cannot_be_copied_is_skipped_with_a_note(tmp_path, frames, sintel):
    src = _make_av(tmp_path / "src.mp4", frames[:4], seconds=0.2)
    for name, words in (("o.webm", "aac"), ("o.gif", "GIF"), ("o", "folder")):
        w = _write(tmp_path / name, frames[:4], audio_from=src)
        assert words in w.audio_note and "\n" not in w.audio_note and not probe(w.path).has_audio
    w = _write(tmp_path / "silent.mp4", frames[:4], audio_from=sintel)
    assert "no audio" in w.audio_note and not probe(w.path).has_audio


# --------------------------------------------------------------------------- interruption and resume


def test_ctrl_c_keeps_the_frames_done(tmp_path, frames):
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, 24, W, H) as w:
            for i, f in enumerate(frames):
                if i == 5:
                    raise KeyboardInterrupt
                w.write(f)
    assert probe(out).frames == 5 and len(list(read_frames(out))) == 5
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_ctrl_c_during_write_still_writes_that_frame(tmp_path, frames):
    out = tmp_path / "out.mp4"
    w = VideoWriter(out, 24, W, H)
    encode = w._encode

    def interrupted(a):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands in the middle of the frame
        encode(a)

    with pytest.raises(KeyboardInterrupt):
        with w:
            for i, f in enumerate(frames[:5]):
                w._encode = interrupted if i == 4 else encode
                w.write(f)
    assert w.frames_written == 5 and probe(out).frames == 5 and os.listdir(tmp_path) == ["out.mp4"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("name", ["out.mp4", "frames"])
def test_other_errors_leave_no_output(tmp_path, frames, name):
    out = tmp_path / name
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 24, W, H) as w:
            for f in frames[:3]:
                w.write(f)
            raise RuntimeError("stylizer failed")
    assert os.listdir(tmp_path) == []
    with pytest.raises(InputError, match="no frames"):  # nothing written: nothing saved
        VideoWriter(out, 24, W, H).close()
    w = VideoWriter(out, 24, W, H)
    w.write(frames[0])
    w.abort()
    assert os.listdir(tmp_path) == []


def test_existing_output_is_untouched_until_close(tmp_path, frames):
    out = tmp_path / "out.mp4"
    _write(out, frames[:4])
    before = out.read_bytes()
    w = VideoWriter(out, 24, W, H)
    for f in frames:
        w.write(f)
        assert out.read_bytes() == before
    w.close()
    assert probe(out).frames == 12 and _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["out.mp4", "frames"])
def test_resume_continues_a_stopped_run(tmp_path, frames, name):
    out = tmp_path / name
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, 24, W, H) as w:
            for f in frames[:5]:
                w.write(f)
            raise KeyboardInterrupt
    first = [p.read_bytes() for p in sorted(out.iterdir())] if out.is_dir() else None
    with VideoWriter(out, 24, W, H, resume=True) as w:
        assert w.resume_frames == w.frames_written == 5
        assert w.last_frame.shape == (H, W, 3) and _mad(w.last_frame, frames[4]) < 6
        for f in frames[5:8]:
            w.write(f)
    assert probe(out).frames == 8 and w.frames_written == 8
    back = [f for _, f in read_frames(out)]
    assert len(back) == 8 and max(_mad(a, b) for a, b in zip(frames, back)) < 6
    if first is not None:  # PNG frames are copied as they are, under their own names, and numbered on
        assert [p.read_bytes() for p in sorted(out.iterdir())][:5] == first
        assert [p.name for p in sorted(out.iterdir())] == [f"frame_{i:06d}.png" for i in range(1, 9)]
    assert _leftovers(tmp_path) == []
    w = VideoWriter(tmp_path / "new.mp4", 24, W, H, resume=True)  # nothing to resume
    assert (w.resume_frames, w.last_frame) == (0, None)
    w.abort()
    with pytest.raises(InputError, match="cannot resume"):
        VideoWriter(out, 24, 128, 54, resume=True)
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- bad input


def _one_line(e: pytest.ExceptionInfo, name: str) -> None:
    msg = str(e.value)
    assert "\n" not in msg and name in msg, msg


def test_probe_rejects_bad_inputs_naming_the_file(tmp_path, sintel, frames):
    cases = {}
    cases["missing.mp4"] = tmp_path / "missing.mp4"
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases["empty.mp4"] = tmp_path / "empty.mp4"
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n" * 40)
    cases["notes.mp4"] = tmp_path / "notes.mp4"
    cases["song.m4a"] = _make_av(tmp_path / "song.m4a", None, seconds=0.2)
    (tmp_path / "nothing").mkdir()
    cases["nothing"] = tmp_path / "nothing"
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(frames[0]).save(mixed / "f1.png")
    (mixed / "readme.txt").write_text("hi")
    cases["readme.txt"] = mixed
    sizes = tmp_path / "sizes"
    sizes.mkdir()
    Image.fromarray(frames[0]).save(sizes / "f1.png")
    Image.fromarray(frames[1]).save(sizes / "f2.png")
    Image.fromarray(frames[2][:100]).save(sizes / "f10.png")  # natural order: f1, f2, f10
    cases["f10.png: frame is 256x100 but f1.png is 256x108"] = sizes
    for name, path in cases.items():
        with pytest.raises(InputError) as e:
            probe(path)
        _one_line(e, name)
        with pytest.raises(InputError):
            read_frames(path)
    assert "no video stream" in str(pytest.raises(InputError, probe, cases["song.m4a"]).value)


def test_a_corrupt_frame_mid_stream_names_it(tmp_path, frames):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames[:4]):
        Image.fromarray(f).save(folder / f"f{i}.png")
    data = (folder / "f2.png").read_bytes()
    (folder / "f2.png").write_bytes(data[:len(data) // 2])  # the header is fine, the pixels are cut
    it = read_frames(folder)
    assert [i for i, _ in (next(it), next(it))] == [0, 1]
    with pytest.raises(InputError) as e:
        next(it)
    _one_line(e, "f2.png")


def test_a_damaged_video_mid_stream_names_it(tmp_path, frames):
    good = _write(tmp_path / "good.mkv", frames).path
    data = bytearray(good.read_bytes())
    with av.open(os.fspath(good)) as c:  # the 7th packet in decoding order: a P-frame after the keyframe
        pos, size = [(p.pos, p.size) for p in c.demux(video=0) if p.size][6]
    data[pos + 8:pos + size] = np.random.default_rng(0).integers(0, 256, size - 8, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    assert probe(bad).frames == 12  # the header is fine
    got = []
    with pytest.raises(InputError) as e:
        for i, _ in read_frames(bad):
            got.append(i)
    _one_line(e, "bad.mkv")
    assert "truncated or corrupt" in str(e.value) and len(got) < 12


@contextlib.contextmanager
def _unprivileged():
    """Drop root's privileges (effective uid only) so that permissions apply; no-op otherwise."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_unwritable_outputs_are_refused_up_front(tmp_path, frames):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for path, words in ((blocker / "out.mp4", "not a directory"), (tmp_path / "no" / "out.mp4", "does not exist"),
                        (tmp_path / "out.avi", "unsupported"), (blocker, "unsupported"), (tmp_path / "out.mp4", "fps")):
        with pytest.raises(InputError) as e:
            VideoWriter(path, 0 if words == "fps" else 24, W, H)
        _one_line(e, words)
    ro = tempfile.mkdtemp(prefix="atelier-ro-")  # not under tmp_path: an unprivileged user must reach it
    try:
        os.chmod(ro, 0o555)
        for name in ("out.mp4", "frames"):
            with _unprivileged(), pytest.raises(InputError) as e:
                VideoWriter(os.path.join(ro, name), 24, W, H)
            _one_line(e, name)
            assert "cannot write" in str(e.value)
    finally:
        os.chmod(ro, 0o755)
        os.rmdir(ro)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="holiday.jpg"):  # never replace a folder of the user's own files
        VideoWriter(folder, 24, W, H)
    w = VideoWriter(tmp_path / "ok.mp4", 24, W, H)
    for bad in (frames[0][:50], frames[0].astype(np.float32), frames[0][..., :2]):
        with pytest.raises(ValueError):
            w.write(bad)
    w.abort()
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- memory, helpers


def test_reading_keeps_memory_flat(sintel, tmp_path):
    frame_bytes = 1024 * 436 * 3
    tracemalloc.start()
    try:
        n = 0
        for i, f in read_frames(sintel):  # 50 full-size frames
            n += 1
            del f
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the caller's frame, the next one and Pillow's transient copy: 3 frames, never 50
    assert n == 50 and peak < 4 * frame_bytes, peak / frame_bytes
    # a video file too: 50 frames decoded, at most a couple alive
    clip = tmp_path / "long.mkv"
    with VideoWriter(clip, 25, 64, 32, quality=30) as w:
        for k in range(50):
            w.write(np.full((32, 64, 3), k * 5, np.uint8))
    tracemalloc.start()
    try:
        it = read_frames(clip, size=1024)  # upscaled, so one frame (1.5 MB) dwarfs everything else
        n = sum(1 for _ in it)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 50 and peak < 4 * 1024 * 512 * 3, peak / (1024 * 512 * 3)


def test_helpers():
    assert is_video_path("a.MP4") and is_video_path("x/y.webm") and is_video_path("c.gif")
    assert not is_video_path("a.png") and not is_video_path("frames") and not is_video_path(".")
    assert video_rate(23.976) == Fraction(24000, 1001) and video_rate(29.97) == Fraction(30000, 1001)
    assert video_rate(25) == 25 and video_rate(12.5) == Fraction(25, 2)
    assert video_rate(Fraction(30000, 1001)) == Fraction(30000, 1001)
    with pytest.raises(InputError):
        video_rate(float("nan"))
