"""Video input: probe a video file or a folder of frames, and stream its frames one at a time.

A *video* here is either a file FFmpeg decodes (mp4, mov, mkv, webm, gif, ...; read with
PyAV) or a folder of frame images (png, jpg, jpeg, webp, bmp, tif, tiff; read with Pillow)
sorted by name naturally (``frame_2.png`` before ``frame_10.png``). A frame is a
``numpy.uint8`` array ``(H, W, 3)``, RGB, values 0..255. Times are seconds from the first
frame. Every problem with a user's file is an :class:`~atelier.core.errors.InputError`
whose one-line message names the file. The writer is in :mod:`atelier.io.video`,
which also re-exports everything here.
"""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np
from PIL import Image

from .decode import check_path, open_header, pil_pixel_limit, open_image
from ..core.errors import InputError

__all__ = ["AudioPackets", "FRAME_EXTENSIONS", "VIDEO_EXTENSIONS", "VideoInfo", "even_size", "is_video_path",
           "probe", "read_frames", "video_rate"]

#: Image extensions accepted as frames in a folder (lower case).
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

#: Extensions taken to be video files by :func:`is_video_path` (FFmpeg reads more).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".gif", ".avi", ".wmv", ".flv", ".mpg", ".mpeg",
                    ".ts", ".m2ts", ".mts", ".3gp", ".ogv", ".mxf", ".y4m")

#: Frame rate assumed for a folder of frames when none is given.
DEFAULT_FOLDER_FPS = 25.0


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found.

    Attributes:
        path: the file or folder.
        kind: ``"file"`` or ``"folder"``.
        width, height: frame size in pixels.
        fps: frames per second (a folder: the ``fps`` given to :func:`probe`, else 25.0).
        frames: number of frames: exact for a folder; for a file, the count its stream
            records, else ``round(duration * fps)`` (an estimate), else ``None``.
        duration: length in seconds (a folder: ``frames / fps``), ``None`` if unknown.
        has_audio: the file has an audio stream (always ``False`` for a folder).
        frames_exact: ``frames`` is a count the folder or the container's index gives (not an
            estimate from the duration).
    """

    path: pathlib.Path
    kind: str
    width: int
    height: int
    fps: float
    frames: int | None
    duration: float | None
    has_audio: bool
    frames_exact: bool = False


def is_video_path(path: str | os.PathLike) -> bool:
    """True when ``path`` names a video file by its extension (:data:`VIDEO_EXTENSIONS`,
    case-insensitive); False for an existing folder and for anything else."""
    p = pathlib.Path(os.fspath(path)).expanduser()
    return not p.is_dir() and p.suffix.lower() in VIDEO_EXTENSIONS


# --------------------------------------------------------------------------- helpers


def natural_key(name: str) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name.lower()) if t]


def positive_number(value, what: str = "fps", unit: str = "frames per second") -> float | None:
    """``value`` as a positive finite float (``None`` stays ``None``), else InputError."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = math.nan
    if not math.isfinite(f) or f <= 0:
        raise InputError(f"{what} must be a positive number ({unit}), got {value!r}")
    return f


def video_rate(fps) -> Fraction:
    """A frame rate as an exact fraction: a ``Fraction`` is kept; decimal NTSC rates (23.976,
    29.97, 59.94, ... within 0.005) become ``n*1000/1001``; others the nearest fraction
    with denominator <= 1001. Raises InputError for a rate that is not positive and finite."""
    if isinstance(fps, Fraction) and fps > 0:
        return fps
    f = positive_number(fps)
    for n in (24, 30, 48, 60, 120, 240):
        if abs(f - n * 1000 / 1001) < 0.005:
            return Fraction(n * 1000, 1001)
    return Fraction(f).limit_denominator(1001)


def whole_number(value, name: str, lo: int, hi: int | None = None) -> int:
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo
            or (hi is not None and value > hi)):
        raise InputError(f"{name} must be a whole number from {lo}{f' to {hi}' if hi else ' up'}, got {value!r}")
    return int(value)


def _frame_files(folder: pathlib.Path) -> list[pathlib.Path]:
    """The frame images of ``folder`` in natural order; hidden files and subfolders are skipped."""
    try:
        entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    except PermissionError:
        raise InputError("permission denied; make the folder readable", folder) from None
    except OSError as e:
        raise InputError(f"cannot list the folder ({e.strerror or e})", folder) from None
    files = []
    for e in sorted(entries, key=lambda e: natural_key(e.name)):
        if e.is_dir():
            continue
        if e.suffix.lower() not in FRAME_EXTENSIONS:
            raise InputError("is not a frame image (a folder of frames may hold only "
                             f"{', '.join(x[1:] for x in FRAME_EXTENSIONS)} files); move it out of the folder", e)
        files.append(e)
    if not files:
        raise InputError("folder holds no frame images (png, jpg, webp, bmp or tif); give a video file or a "
                         "folder of frames", folder)
    return files


def header_size(path: pathlib.Path) -> tuple[int, int]:
    head = check_path(path)
    with pil_pixel_limit(None):
        with open_header(path, head) as im:
            return im.size


def _video_stream(container, path):
    """The first real video stream of an open container (cover art is not video)."""
    for s in container.streams.video:
        if not (int(s.disposition) & int(av.stream.Disposition.attached_pic)):
            return s
    raise InputError("has no video stream (audio only?); give a video file or a folder of frames", path)


def _open_input(path: pathlib.Path):
    """``av.open`` a user's file for reading, with every failure an InputError naming it."""
    if not path.exists():
        raise InputError("file not found; check the path and spelling", path)
    try:
        if path.stat().st_size == 0:
            raise InputError("file is empty (0 bytes); re-export or re-download the video", path)
        return av.open(os.fspath(path), mode="r")
    except InputError:
        raise
    except (PermissionError, av.error.PermissionError):
        raise InputError("permission denied; make the file readable", path) from None
    except (av.FFmpegError, OSError) as e:
        reason = getattr(e, "strerror", None) or str(e).split(":")[0]
        raise InputError(f"not a video FFmpeg can read ({reason}); give a video file (mp4, mov, mkv, webm, gif, "
                         "...) or a folder of frames", path) from None


def _stream_rate(stream, fallback: float | None) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return Fraction(fallback or DEFAULT_FOLDER_FPS).limit_denominator(1001)


# --------------------------------------------------------------------------- probe


def probe(path: str | os.PathLike, fps: float | None = None) -> VideoInfo:
    """Describe a video file or a folder of frames. A folder's frame headers are read (not
    their pixels); a file's first frame is decoded, for its display rotation: a video shot
    on a phone held upright is reported (and read by :func:`read_frames`) upright.

    Args:
        path: a video file (anything FFmpeg decodes) or a folder of frame images
            (:data:`FRAME_EXTENSIONS`; hidden files and subfolders are ignored).
        fps: frames per second of a folder (default 25.0); for a file, used only when
            the file records no rate of its own.

    Returns:
        A :class:`VideoInfo`.

    Raises:
        InputError: one line naming the file, for: a missing path; an empty (0-byte) file;
            a file FFmpeg cannot open; a file with no video stream (audio only); a video
            codec this FFmpeg cannot decode; an empty folder; a folder holding a file that
            is not a frame image (named); frames of different sizes (the first mismatching
            frame and both sizes are named); a frame whose header cannot be read; a bad ``fps``.
    """
    fps = positive_number(fps)
    p = pathlib.Path(os.fspath(path)).expanduser()
    if p.is_dir():
        files = _frame_files(p)
        w, h = header_size(files[0])
        for f in files[1:]:
            size = header_size(f)
            if size != (w, h):
                raise InputError(f"frame is {size[0]}x{size[1]} but {files[0].name} is {w}x{h}; all frames of "
                                 "a folder must have the same size", f)
        rate = fps or DEFAULT_FOLDER_FPS
        return VideoInfo(p, "folder", w, h, rate, len(files), len(files) / rate, False, True)
    with _open_input(p) as c:
        s = _video_stream(c, p)
        cc = s.codec_context
        if cc is None or not cc.width or not cc.height:
            raise InputError("video codec cannot be decoded by this FFmpeg build; convert the video to H.264 "
                             "(mp4)", p)
        rate = float(_stream_rate(s, fps))
        try:  # the first frame, for its display rotation (phone videos are often stored sideways)
            turns = next((_turns(f) for f in c.decode(s)), 0)
        except av.FFmpegError as e:
            raise _damaged(p, f"cannot decode the first frame ({e.strerror or e})") from None
        w, h = (cc.height, cc.width) if turns % 2 else (cc.width, cc.height)
        duration = None
        if s.duration and s.time_base:
            duration = float(s.duration * s.time_base)
        elif c.duration:  # the container's: from its first timestamp (any stream) to its end
            duration = c.duration / av.time_base
            if s.start_time is not None and c.start_time is not None:
                duration -= float(s.start_time * s.time_base) - c.start_time / av.time_base
        frames = s.frames or (round(duration * rate) if duration else None)
        return VideoInfo(p, "file", w, h, rate, frames, duration, bool(c.streams.audio), bool(s.frames))


# --------------------------------------------------------------------------- reading


def _check_read_args(start, duration, every, size) -> tuple[float, float, int, int | None]:
    start = positive_number(start, "start", "seconds") if start else 0.0
    end = start + (positive_number(duration, "duration", "seconds") or math.inf)
    return start, end, whole_number(every, "every", 1), None if size is None else whole_number(size, "size", 2)


def even_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(H, W)`` of a ``height x width`` frame resized so that its longest side is ``size``
    (aspect kept), each side then rounded down to an even number (at least 2)."""
    s = size / max(height, width)
    h, w = max(2, round(height * s)), max(2, round(width * s))
    return h - h % 2, w - w % 2


def _resized(frame: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return frame
    h, w = even_size(frame.shape[0], frame.shape[1], size)
    if (h, w) == frame.shape[:2]:
        return frame
    return np.array(Image.fromarray(frame).resize((w, h), Image.Resampling.LANCZOS))  # writable


def read_frames(path: str | os.PathLike, *, start: float = 0.0, duration: float | None = None, every: int = 1,
                size: int | None = None, fps: float | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Stream the frames of a video file or a folder of frames, one at a time.

    Frames are decoded lazily (one frame in memory at a time, whatever the length of
    the video); the file is closed when the iterator is exhausted or closed.

    Args:
        path: as for :func:`probe`.
        start: seconds; the first frame given is the first whose time is at or after
            ``start`` (a frame's time: its timestamp relative to the video stream's first
            one, or ``index / fps`` when it has none; folders: ``index / fps``). Times are
            compared with a slack of a quarter frame interval, as containers round
            timestamps (so ``start = n / fps`` gives frame n). A file is seeked (to the
            keyframe before ``start``) rather than decoded from the top.
        duration: seconds from ``start``; frames whose time is at or after
            ``start + duration`` (same slack) are not given. ``None``: to the end.
        every: give every ``every``-th frame of the selected range, starting with its first.
        size: longest side of the frames given, in pixels (up or down, aspect kept, Pillow
            Lanczos), then each side rounded down to an even number so H.264 accepts it
            (:func:`even_size`); ``None``: the source's size.
        fps: frames per second of a folder (default 25.0); for a file, used only when the
            file records no rate.

    Yields:
        ``(index, frame)``: ``index`` is the frame's number in the source, 0-based (so with
        ``start=0``, ``every=N`` gives 0, N, 2N, ...; after a seek it is computed from the
        timestamp, exact for constant-frame-rate video); ``frame`` is ``numpy.uint8``
        ``(H, W, 3)`` RGB, a new array the caller may keep or change.

    Raises:
        InputError: everything :func:`probe` raises (checked before the first frame); a
            frame that cannot be decoded mid-stream (names the file and the frame); bad
            ``start``, ``duration``, ``every``, ``size`` or ``fps``.
    """
    start, end, every, size = _check_read_args(start, duration, every, size)
    info = probe(path, fps)  # raises early, before the caller's first next()
    if info.kind == "folder":
        return _read_folder(info, start, end, every, size)
    return _read_file(info, start, end, every, size, fps)


def _read_folder(info: VideoInfo, start, end, every, size) -> Iterator[tuple[int, np.ndarray]]:
    tol = 0.25 / info.fps
    end_tol = min(tol, (end - start) / 2)
    first = None
    for index, f in enumerate(_frame_files(info.path)):
        t = index / info.fps
        if t < start - tol:
            continue
        if t >= end - end_tol:
            break
        first = index if first is None else first
        if (index - first) % every:
            continue
        frame = np.array(open_image(f))  # a writable copy (Pillow's buffer is read-only)
        if frame.shape[:2] != (info.height, info.width):
            raise InputError(f"frame is {frame.shape[1]}x{frame.shape[0]} but the first frame is "
                             f"{info.width}x{info.height}; all frames must have the same size", f)
        frame = _resized(frame, size)
        yield index, frame
        del frame  # the caller holds the only reference: one frame alive at a time


def _turns(frame: "av.VideoFrame") -> int:
    """Quarter turns counterclockwise that show ``frame`` upright (its display matrix)."""
    try:
        return round((frame.rotation or 0) / 90) % 4
    except Exception:  # no or odd side data
        return 0


def _frame_rgb(frame: "av.VideoFrame", width: int, height: int) -> np.ndarray:
    """RGB pixels at the stream's size (a mid-stream size change is scaled back), upright."""
    # The frame's own colour range (a full-range "JPEG" video must not be stretched); its
    # colour matrix (BT.601/709) is PyAV's default already.
    rng = int(frame.color_range) if frame.color_range else None
    a = frame.to_ndarray(format="rgb24", src_color_range=rng, width=width, height=height)
    k = _turns(frame)
    return np.ascontiguousarray(np.rot90(a, k)) if k else a


def _read_file(info: VideoInfo, start, end, every, size, fps) -> Iterator[tuple[int, np.ndarray]]:
    path = info.path
    with _open_input(path) as c:
        s = _video_stream(c, path)
        s.thread_type = "AUTO"
        rate = _stream_rate(s, fps)
        tb = s.time_base
        origin = s.start_time or 0
        tol = 0.25 / float(rate)  # timestamps are rounded to the time base: compare with slack
        end_tol = min(tol, (end - start) / 2)
        seeked = False
        if start > 0 and tb:
            try:
                c.seek(origin + int(start / tb), stream=s, backward=True)
                seeked = True
            except av.FFmpegError:
                pass  # not seekable: decode from the top, dropping frames before start
        first = index = None
        try:
            for frame in c.decode(s):
                if frame.pts is not None and tb:
                    t = float((frame.pts - origin) * tb)
                    index = (round(t * rate) if seeked else 0) if index is None else index + 1
                else:
                    index = 0 if index is None else index + 1
                    t = index / float(rate)
                if t < start - tol:
                    continue
                if t >= end - end_tol:
                    break
                first = index if first is None else first
                if (index - first) % every:
                    continue
                if frame.is_corrupt:  # damage that the decoder concealed
                    raise _damaged(path, f"frame {index + 1} is damaged")
                yield index, _resized(_frame_rgb(frame, s.codec_context.width, s.codec_context.height), size)
        except av.FFmpegError as e:
            where = "at the first frame" if index is None else f"after frame {index + 1}"
            raise _damaged(path, f"cannot decode the video {where} ({e.strerror or e})") from None


def _damaged(path, what: str) -> InputError:
    return InputError(f"{what}; the file is probably truncated or corrupt: re-export or re-download it", path)


# --------------------------------------------------------------------------- audio packets


class AudioPackets:
    """The packets of the first audio stream of a file in a time window, for copying (remuxing
    without re-encoding) into another file.

    Times are seconds from the first frame of the file's video stream (its start when it has
    none). A packet is taken when it overlaps ``[start, end)`` (all packets before ``end``
    when ``start`` is 0, encoder priming included); its timestamps are shifted so that
    ``start`` becomes 0. Packets are read lazily, in file order.

    Attributes:
        stream: the audio stream (a template for the output stream), ``None`` when the file
            has none. codec: its codec name (e.g. ``"aac"``). note: why there is no audio
            to copy, else ``None``.

    Raises:
        InputError: the file cannot be opened (as :func:`probe`).
    """

    def __init__(self, path: str | os.PathLike, start: float = 0.0, end: float = math.inf):
        src = pathlib.Path(os.fspath(path)).expanduser()
        self.start, self.end, self.stream, self.codec, self.note = start, end, None, None, None
        self._c = self._pending = self._packets = None
        if src.is_dir():
            self.note = f"{src.name} is a folder of frames, which has no audio; the video has no audio"
            return
        self._c = _open_input(src)
        if not self._c.streams.audio:
            self.note = f"{src.name} has no audio track; the video has no audio"
            return self.close()
        a = self.stream = self._c.streams.audio[0]
        self.codec = getattr(a.codec_context, "name", None) or "unknown"
        v = [s for s in self._c.streams.video if s.start_time is not None]
        origin = Fraction(v[0].start_time) * v[0].time_base if v else Fraction(0)
        self._shift = round((origin + Fraction(start)) / a.time_base)  # in a.time_base units
        if start > 0:
            with contextlib.suppress(av.FFmpegError):
                self._c.seek(self._shift, stream=a, backward=True)
        self._packets = self._c.demux(a)

    def take(self, until: float) -> Iterator["av.Packet"]:
        """The next packets whose (shifted) time is before ``until`` seconds, shifted."""
        while self._packets is not None:
            p = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if p is None:
                return self.close()
            pts = p.pts if p.pts is not None else p.dts
            if not p.size or pts is None:
                continue
            t = float((pts - self._shift) * p.time_base)
            if t >= min(until, self.end - self.start) - 1e-9:
                if t < self.end - self.start - 1e-9:
                    self._pending = p  # not yet: keep it for a later call
                    return
                return self.close()
            if self.start > 0 and t + float((p.duration or 0) * p.time_base) <= 1e-9:
                continue  # ends before start
            p.pts, p.dts = pts - self._shift, None if p.dts is None else p.dts - self._shift
            yield p

    def close(self) -> None:
        self._packets = self._pending = None
        if self._c is not None:
            with contextlib.suppress(Exception):
                self._c.close()
            self._c = None
