"""How many frames a video window should have and how many its file holds (issue 30): a file
whose index is at the front (an mp4 written with ``faststart``) and whose data was cut announces
every frame in its index but holds fewer; :func:`count_stored_frames` counts those it holds by
reading the packets (demuxing, no decoding), so a truncated source is caught before a long run.

Windows follow :func:`atelier.io.video_read.read_frames`: frame ``k`` is at ``k / fps`` seconds and
is in ``[start, start + duration)`` with a slack of a quarter frame interval.
"""

from __future__ import annotations

import contextlib
import math

import av

from .video_read import VideoInfo, _open_input, _video_stream

__all__ = ["announced_frames", "count_stored_frames", "expected_frames"]


def _in_window(t: float, start: float, end: float, fps: float) -> bool:
    tol = 0.25 / fps
    return start - tol <= t < end - min(tol, (end - start) / 2)


def _end(start: float, duration: float | None) -> float:
    return start + (math.inf if duration is None else float(duration))


def announced_frames(info: VideoInfo, start: float = 0.0, duration: float | None = None) -> int | None:
    """Frames of ``info.frames`` (the container's or folder's count; ``None`` when unknown) whose
    time lies in the window of ``start`` and ``duration`` seconds."""
    if not info.frames:
        return None
    start = float(start or 0.0)
    end = _end(start, duration)
    return sum(1 for k in range(info.frames) if _in_window(k / info.fps, start, end, info.fps))


def expected_frames(info: VideoInfo, start: float = 0.0, duration: float | None = None, every: int = 1) -> int | None:
    """Frames :func:`~atelier.io.video_read.read_frames` gives for the window with ``every``
    by the announced count (:func:`announced_frames`), ``None`` when unknown."""
    n = announced_frames(info, start, duration)
    return None if n is None else -(-n // every)


def count_stored_frames(info: VideoInfo, start: float = 0.0, duration: float | None = None) -> int:
    """Frames of the window whose data is in the file, counted from its video packets (demuxed,
    not decoded; a packet cut short counts as held). A folder: :func:`announced_frames`.

    Raises:
        InputError: the file cannot be opened (as :func:`~atelier.io.video_read.probe`).
    """
    start = float(start or 0.0)
    end = _end(start, duration)
    if info.kind == "folder":
        return announced_frames(info, start, duration) or 0
    n = 0
    with _open_input(info.path) as c:
        s = _video_stream(c, info.path)
        tb, origin = s.time_base, s.start_time or 0
        if start > 0 and tb:
            with contextlib.suppress(av.FFmpegError):
                c.seek(origin + int(start / tb), stream=s, backward=True)
        try:
            for index, p in enumerate(c.demux(s)):
                if not p.size:
                    continue
                ts = p.pts if p.pts is not None else p.dts
                t = float((ts - origin) * tb) if ts is not None and tb else index / info.fps
                n += _in_window(t, start, end, info.fps)
                dts = p.dts if p.dts is not None else ts
                if dts is not None and tb and float((dts - origin) * tb) > end + 2.0:
                    break  # past the window (2 s covers any frame reordering)
        except av.FFmpegError:
            pass  # the data ends here: what was counted is what the file holds
    return n
