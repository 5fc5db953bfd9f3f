"""Video input and output: :func:`probe` and :func:`read_frames` (from
:mod:`atelier.io.video_read`, re-exported here) and :class:`VideoWriter`.

A frame is a ``numpy.uint8`` array ``(H, W, 3)``, RGB, 0..255. The writer encodes with PyAV
(FFmpeg): H.264 for .mp4/.mov/.mkv, VP9 for .webm, GIF for .gif, or PNG frames into a
folder. Output is atomic: frames go into a hidden temporary sibling of the output
(``.NAME.XXXX.partial.mp4`` or ``.NAME.XXXX.partial/``) that :meth:`VideoWriter.close`
renames onto the output path, so a crash never leaves a half-written video there, and
Ctrl-C inside ``with VideoWriter(...)`` keeps the frames done so far as a valid video.
"""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
import re
import shutil
import signal
import tempfile
import threading

import av
import numpy as np
from PIL import Image

from .decode import open_image
from ..core.errors import InputError
from ..core.files import umask
from .video_read import (FRAME_EXTENSIONS, VIDEO_EXTENSIONS, AudioPackets, VideoInfo, header_size, natural_key,
                         positive_number, whole_number, even_size, is_video_path, probe, read_frames, video_rate)  # noqa: F401
from .video_count import announced_frames, count_stored_frames, expected_frames  # noqa: F401

__all__ = ["AudioPackets", "FRAME_EXTENSIONS", "OUTPUT_FORMATS", "VIDEO_EXTENSIONS", "VideoInfo", "VideoWriter",
           "announced_frames", "count_stored_frames", "even_size", "expected_frames", "is_video_path", "probe", "read_frames", "video_rate"]

#: Output extension -> (FFmpeg container, video encoders in order of preference).
OUTPUT_FORMATS = {
    ".mp4": ("mp4", ("libx264", "mpeg4")),
    ".mov": ("mov", ("libx264", "mpeg4")),
    ".mkv": ("matroska", ("libx264", "mpeg4")),
    ".webm": ("webm", ("libvpx-vp9", "libvpx")),
    ".gif": ("gif", ("gif",)),
}

#: File name of frame ``n`` (1-based) in a folder output.
FRAME_NAME = "frame_{:06d}.png"
_FRAME_RE = re.compile(r"frame_\d{6,}\.png")
_JUNK = {".DS_Store", "Thumbs.db", "desktop.ini"}  # allowed in a folder output we replace


def _have_encoder(name: str) -> bool:
    """This PyAV build has the encoder ``name``."""
    try:
        av.Codec(name, "w")
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _holding_ctrl_c():
    """Hold Ctrl-C (SIGINT) until the block ends, so that a frame is never half-muxed; then
    hand it to the handler that was there (normally: raise KeyboardInterrupt). A no-op off
    the main thread, where Python delivers no signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list = []
    old = signal.signal(signal.SIGINT, lambda *a: got.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)
        if got and callable(old):
            old(*got[0])
        elif got and old != signal.SIG_IGN:
            raise KeyboardInterrupt


class VideoWriter:
    """Write frames to a video file or a folder of PNG frames, atomically.

    Args:
        path: output. By extension: ``.mp4``, ``.mov``, ``.mkv`` -> H.264 (``libx264``, CRF
            ``quality``, yuv420p, tagged BT.709) or, when this PyAV lacks it, MPEG-4 Part 2
            (``mpeg4``); ``.webm`` -> VP9 (``libvpx-vp9``, CRF ``quality``) or VP8; ``.gif`` ->
            GIF (an adaptive 256-colour palette per frame; GIF stores delays in 1/100 s, so its
            rate is approximate: 24 fps reads back as 25). No extension, or an existing folder:
            a folder of ``frame_000001.png``, ``frame_000002.png``, ... (lossless). yuv420p
            needs even sides: an odd width or height is padded by one repeated column or row.
        fps: frames per second (``float`` or ``Fraction``; see :func:`video_rate`), > 0.
        width, height: frame size in pixels, >= 1; every frame must have it.
        audio_from: a video or audio file whose first audio stream is copied (packets
            remuxed, not re-encoded) into the output as frames are written, trimmed to the
            packets whose time (seconds from the first video frame of ``audio_from``) lies
            in ``[audio_start, audio_start + audio_duration)`` and before the end of the
            video written (a packet straddling ``audio_start`` is kept; it is shifted so
            that ``audio_start`` plays with the first frame). When it cannot be copied (a
            GIF or folder output, a codec the container does not take such as AAC in
            WebM, no audio stream) the video is written without it and :attr:`audio_note`
            says why, in one line.
        audio_start, audio_duration: seconds (>= 0; > 0 or ``None`` for to the end).
        resume: when a finished output (made by :meth:`close`) is already at ``path``, start
            from its frames: they are copied into the new output first (a video is decoded
            and re-encoded, PNG frames are copied as files), so :attr:`frames_written`
            starts at their count.
        quality: 0..63, lower is better: the CRF of H.264 (0..51; 18 looks lossless) and
            VP9; mapped to a fixed quantizer for the MPEG-4 and VP8 fallbacks; unused
            for GIF and PNG.

    Attributes:
        path: the absolute output path. kind: ``"file"`` or ``"folder"``.
        codec: the video encoder used (``"libx264"``, ``"mpeg4"``, ``"libvpx-vp9"``,
            ``"libvpx"``, ``"gif"``, ``"png"``). fps: the frame rate (``Fraction``).
        frames_written: frames in the output so far (resumed ones included).
        resume_frames: frames taken over from a previous output (0 without one).
        last_frame: the last of those (uint8 ``(H, W, 3)``), else ``None``.
        audio_note: why the audio of ``audio_from`` was not copied, else ``None``.

    Used as a context manager, the output is closed (saved) when the block ends normally
    or with ``KeyboardInterrupt`` (which still propagates), and aborted on any other exception.
    Ctrl-C during :meth:`write` or :meth:`close` (main thread) is held until that call has
    finished, so the frame or the file is complete when ``KeyboardInterrupt`` is raised.

    Raises:
        InputError: at construction, for an unknown extension, a missing encoder, an
            output directory that does not exist or cannot be written, a folder output
            path that is a file or a folder holding other files, an unreadable
            ``audio_from``, a resumed output of another size, bad numbers; in
            :meth:`write`/:meth:`close`, when writing fails (e.g. disk full).
    """

    def __init__(self, path, fps: float, width: int, height: int, *, audio_from=None,
                 audio_start: float = 0.0, audio_duration: float | None = None, resume: bool = False,
                 quality: int = 18):
        p = pathlib.Path(os.fspath(path)).expanduser()
        self.fps = video_rate(fps)
        self.width, self.height = whole_number(width, "width", 1), whole_number(height, "height", 1)
        self.quality = whole_number(quality, "quality", 0, 63)
        self.audio_start = float(positive_number(audio_start, "audio_start", "seconds") if audio_start else 0.0)
        self.audio_end = self.audio_start + (positive_number(audio_duration, "audio_duration", "seconds") or math.inf)
        self.frames_written = self.resume_frames = 0
        self.last_frame: np.ndarray | None = None
        self.audio_note: str | None = None
        self._tmp: pathlib.Path | None = None
        self._out = self._vs = self._as = self._audio = None
        self._closed = self._saved = False
        self.kind = "folder" if p.is_dir() or not p.suffix else "file"
        ext = p.suffix.lower()
        if self.kind == "file" and ext not in OUTPUT_FORMATS:
            raise InputError(f"unsupported video output format {ext!r}; use .mp4 (H.264), .mov, .mkv, .webm, .gif "
                             "or a folder (a path without extension) for PNG frames", p)
        parent = p.parent if str(p.parent) else pathlib.Path.cwd()
        if not parent.exists():
            raise InputError(f"output directory {parent} does not exist; create it first", p)
        if not parent.is_dir():
            raise InputError(f"{parent} is not a directory; choose an output path inside a directory", p)
        self.path = parent.resolve() / p.name
        pad = self.kind == "file" and ext != ".gif"
        self._enc_w, self._enc_h = self.width + (self.width % 2 if pad else 0), self.height + (
            self.height % 2 if pad else 0)
        try:
            if self.kind == "folder":
                self._open_folder()
            else:
                self._open_file(ext, audio_from)
            if audio_from is not None and self.kind == "folder":
                self.audio_note = "a folder of PNG frames has no audio; the audio track was not kept"
            if resume:
                self._resume()
        except BaseException:
            self.abort()
            raise

    # ------------------------------------------------------------------ opening

    def _make_temp(self, folder: bool, suffix: str) -> None:
        try:
            if folder:
                self._tmp = pathlib.Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                                          suffix=".partial"))
            else:
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.",
                                           suffix=f".partial{suffix}")
                os.close(fd)
                self._tmp = pathlib.Path(tmp)
        except OSError as e:
            raise InputError(f"cannot write in {self.path.parent} ({e.strerror or e}); choose another output "
                             "location or fix its permissions", self.path) from None

    def _open_folder(self) -> None:
        self.codec = "png"
        if self.path.exists():
            if not self.path.is_dir():
                raise InputError("exists and is a file; a folder output needs a new or existing folder", self.path)
            other = [e.name for e in self.path.iterdir() if not (_FRAME_RE.fullmatch(e.name) or e.name in _JUNK)]
            if other:
                raise InputError(f"folder holds files that are not frames written by atelier (e.g. {other[0]}); "
                                 "choose a new or empty folder", self.path)
        self._make_temp(True, "")

    def _open_file(self, ext: str, audio_from) -> None:
        fmt, codecs = OUTPUT_FORMATS[ext]
        self.codec = next((c for c in codecs if _have_encoder(c)), None)
        if self.codec is None:
            raise InputError(f"this PyAV/FFmpeg build has no encoder for {ext} ({' or '.join(codecs)}); use "
                             ".mp4 or a folder of PNG frames", self.path)
        template = self._audio_input(audio_from, ext, fmt) if audio_from is not None else None
        self._make_temp(False, ext)
        try:
            self._start(fmt, template)
        except av.FFmpegError as e:
            if template is None:
                raise InputError(f"cannot start the {self.codec} encoder ({e}); try another format", self.path) \
                    from None
            self.audio_note = f"the {self._audio.codec} audio track could not be copied ({e}); the video has " \
                              "no audio"
            self._close_audio()
            self._start(fmt, None)

    def _audio_input(self, audio_from, ext: str, fmt: str):
        """Open ``audio_from``; return its audio stream when it can be copied, else set the note."""
        self._audio = AudioPackets(audio_from, self.audio_start, self.audio_end)
        a = self._audio.stream
        if a is None:
            self.audio_note = self._audio.note
        elif ext == ".gif":
            self.audio_note = "GIF has no sound; the audio track was not kept (write .mp4 to keep it)"
        else:
            with av.open(os.devnull, "w", format=fmt) as probe_out:
                if self._audio.codec in probe_out.supported_codecs:
                    return a
            self.audio_note = (f"{ext} cannot hold the {self._audio.codec} audio track of "
                               f"{pathlib.Path(audio_from).name} without re-encoding; the video has no audio "
                               "(write .mp4 or .mkv to keep it)")
        self._close_audio()
        return None

    def _start(self, fmt: str, template) -> None:
        opts = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        if self._out is not None:
            with contextlib.suppress(Exception):
                self._out.close()
        self._out = av.open(os.fspath(self._tmp), "w", format=fmt, options=opts)
        vs = self._vs = self._out.add_stream(self.codec, rate=self.fps)
        vs.width, vs.height = self._enc_w, self._enc_h
        cc = vs.codec_context
        if self.codec == "gif":
            vs.pix_fmt = "pal8"
        else:
            vs.pix_fmt = "yuv420p"
            cc.colorspace = cc.color_primaries = cc.color_trc = 1  # BT.709
            cc.color_range = 1  # limited ("TV") range
        q = str(self.quality)
        if self.codec == "libx264":
            vs.options = {"crf": str(min(self.quality, 51)), "preset": "medium"}
        elif self.codec == "libvpx-vp9":
            vs.options = {"crf": q, "b:v": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}
        elif self.codec == "libvpx":
            vs.options = {"crf": str(max(4, self.quality)), "b:v": "50M", "deadline": "good", "cpu-used": "4"}
        elif self.codec == "mpeg4":
            cc.qscale = True
            cc.global_quality = max(2, min(31, round(self.quality / 6))) * 118  # FF_QP2LAMBDA
        self._as = self._out.add_stream_from_template(template) if template is not None else None
        self._out.start_encoding()

    def _close_audio(self) -> None:
        if self._audio is not None:
            self._audio.close()
        self._audio = None

    def _resume(self) -> None:
        if not self.path.exists():
            return
        if self.kind == "folder":
            files = sorted((e for e in self.path.iterdir() if _FRAME_RE.fullmatch(e.name)),
                           key=lambda e: natural_key(e.name))
            for f in files:
                self._check_size(*header_size(f))
                shutil.copyfile(f, self._tmp / FRAME_NAME.format(self.frames_written + 1))
                self.frames_written += 1
            self.last_frame = np.array(open_image(files[-1])) if files else None
        else:
            info = probe(self.path)
            self._check_size(info.width, info.height, (self._enc_w, self._enc_h))
            for _, frame in read_frames(self.path):
                self.last_frame = np.ascontiguousarray(frame[:self.height, :self.width])
                self.write(self.last_frame)
        self.resume_frames = self.frames_written

    def _check_size(self, w: int, h: int, want: tuple[int, int] | None = None) -> None:
        if (w, h) != (want or (self.width, self.height)):
            raise InputError(f"cannot resume: the output there is {w}x{h} but this run makes "
                             f"{self.width}x{self.height}; remove it or start without resume", self.path)

    # ------------------------------------------------------------------ writing

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: ``numpy.uint8`` ``(height, width, 3)`` RGB.

        Raises:
            ValueError: another shape or dtype, or the writer is closed.
            InputError: the output cannot be written (e.g. disk full).
        """
        if self._closed:
            raise ValueError("this VideoWriter is closed")
        a = np.asarray(frame)
        if a.dtype != np.uint8 or a.shape != (self.height, self.width, 3):
            raise ValueError(f"frame must be uint8 of shape ({self.height}, {self.width}, 3), got {a.dtype} "
                             f"{a.shape}")
        with _holding_ctrl_c():  # a frame is written whole or not at all
            try:
                if self.kind == "folder":
                    Image.fromarray(a, "RGB").save(self._tmp / FRAME_NAME.format(self.frames_written + 1), "PNG")
                else:
                    self._encode(a)
            except (OSError, av.FFmpegError) as e:
                raise InputError(f"could not write frame {self.frames_written + 1} ({e}); check free disk space",
                                 self.path) from None
            self.frames_written += 1
            self._mux_audio()

    def _encode(self, a: np.ndarray) -> None:
        if (self._enc_h, self._enc_w) != a.shape[:2]:
            a = np.pad(a, ((0, self._enc_h - a.shape[0]), (0, self._enc_w - a.shape[1]), (0, 0)), mode="edge")
        if self.codec == "gif":
            q = Image.fromarray(a, "RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            rgb = np.array(q.getpalette()[:768], np.uint8).reshape(-1, 3)
            pal = np.zeros((256, 4), np.uint8)
            pal[:, 0], pal[:len(rgb), 1:] = 255, rgb  # ARGB
            vf = av.VideoFrame.from_ndarray((np.asarray(q), pal), format="pal8")
        else:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
            vf = vf.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
        vf.pts = self.frames_written
        for pkt in self._vs.encode(vf):
            self._out.mux(pkt)

    def _mux_audio(self) -> None:
        """Copy the audio packets that play before the end of the frames written."""
        if self._as is not None and self._audio is not None:
            for p in self._audio.take(self.frames_written / self.fps):
                p.stream = self._as
                self._out.mux(p)

    # ------------------------------------------------------------------ finishing

    def close(self) -> pathlib.Path:
        """Flush the encoder, copy the audio, and rename the output onto :attr:`path`.

        Returns:
            :attr:`path`. Calling it again after success returns it again.

        Raises:
            InputError: no frame was written (nothing is saved), or writing failed; the
                temporary output is removed and ``path`` left as it was.
        """
        if self._closed:
            if self._saved:
                return self.path
            raise ValueError("this VideoWriter was aborted")
        if not self.frames_written:
            self.abort()
            raise InputError("no frames were written, so nothing was saved; check start and duration against "
                             "the length of the video", self.path)
        try:
            with _holding_ctrl_c():  # Ctrl-C during the flush must not lose the whole video
                self._finish()
        except BaseException as e:
            self.abort()
            if isinstance(e, (OSError, av.FFmpegError)):
                raise InputError(f"could not finish the video ({e}); check free disk space", self.path) from None
            raise
        self._tmp, self._closed, self._saved = None, True, True
        with contextlib.suppress(OSError):  # make the rename durable
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return self.path

    def _finish(self) -> None:
        """Flush the encoder, copy the rest of the audio, rename the output into place."""
        mode = 0o777 if self.kind == "folder" else 0o666
        if self.kind == "file":
            for pkt in self._vs.encode(None):
                self._out.mux(pkt)
            self._mux_audio()
            self._close_audio()
            self._out.close()
            fd = os.open(self._tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(self._tmp, mode & ~umask())
        if self.kind == "folder" and self.path.exists():
            old = pathlib.Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                                suffix=".old"))
            os.replace(self.path, old / "x")
            os.replace(self._tmp, self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the output: remove the temporary file or folder; :attr:`path` is left untouched."""
        self._closed = True
        self._close_audio()
        if self._out is not None:
            with contextlib.suppress(Exception):
                self._out.close()
            self._out = None
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._closed:
            return False
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt) and self.frames_written:
            with contextlib.suppress(Exception):  # Ctrl-C: keep what is done; the interrupt goes on
                self.close()
        else:
            self.abort()
        return False

    def __del__(self):
        with contextlib.suppress(Exception):
            if not self._closed:
                self.abort()
