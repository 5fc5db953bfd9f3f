"""Video style transfer from a file to a file (issue 13): the Python API behind ``atelier video``
and ``atelier evaluate-video``.

    import atelier.api.video as av
    result = av.stylize_video("clip.mp4", "out.mp4", method="starry_night")          # feed-forward
    result = av.stylize_video("frames/", "out.mp4", method="adain", styles=["painting.jpg"])
    report = av.evaluate_video("out.mp4", source="clip.mp4")

Frames are streamed one at a time (memory stays flat whatever the length): decoded with PyAV,
stylized by :class:`~atelier.methods.video.VideoStylizer` (per frame, flow-guided blending, or
Gatys with a temporal loss), encoded with PyAV into a temporary file that is renamed onto the
output when it is closed. Ctrl-C closes the output with the frames done so far and writes the
progress file ``OUTPUT.atelier.json``; ``resume=True`` continues from there.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch

from ..io import images as img
from ..core.errors import InputError
from ..core.files import atomic_write, check_not_input
from ..imaging.flow import FlowEstimator, consistency_mask
from ..io.video import VideoWriter, announced_frames, count_stored_frames, even_size, expected_frames, probe, read_frames
from ..methods.video import TemporalConfig
from .video_engine import FrameSettings, LocalFrames, build_stylizer, to_array as _array, to_tensor as _tensor  # noqa: F401
from .video_eta import ESTIMATE_AFTER, Estimator, Notify  # noqa: F401

PathLike = os.PathLike | str
#: Called after each frame: (frames done, frames expected or None, the stylized frame (1, 3, H, W)).
FrameCallback = Callable[[int, Optional[int], torch.Tensor], None]


@dataclass
class VideoResult:
    """What :func:`stylize_video` did.

    Attributes:
        path: the output written; frames: frames in it (resumed ones included); new_frames: frames
        stylized in this call; seconds: wall time of this call; fps: new frames per second;
        interrupted: stopped by Ctrl-C (the output holds the frames done); stats: the
        :class:`VideoStylizer` stats; audio_note: why the audio was not copied, or None;
        frames_read: source frames read (resumed ones included); frames_announced: frames the
        source's container (or folder) announces for the window and ``every``, None when
        unknown; partial: fewer were read than announced (a truncated source, ``allow_partial``);
        warnings: the "warning" notices given (see :data:`Notify`).
    """

    path: pathlib.Path
    frames: int
    new_frames: int
    seconds: float
    fps: float
    interrupted: bool = False
    stats: dict = field(default_factory=dict)
    audio_note: Optional[str] = None
    frames_read: int = 0
    frames_announced: Optional[int] = None
    partial: bool = False
    warnings: list = field(default_factory=list)


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`stylize_video`: the output was closed with the frames done so far and
    the progress file written (``resume=True`` continues); ``.result`` is the :class:`VideoResult`."""

    def __init__(self, result: VideoResult):
        super().__init__("interrupted")
        self.result = result


def progress_path(output: PathLike) -> pathlib.Path:
    """The progress file of an output: ``OUTPUT.atelier.json`` beside it (parameters, frames done)."""
    p = pathlib.Path(os.fspath(output))
    return p.with_name(p.name + ".atelier.json")


def stylize_video(source: PathLike, output: PathLike, *, method: str = "starry_night",
                  styles: Sequence[PathLike] = (), temporal: str = "auto", temporal_weight: Optional[float] = None,
                  long_term: bool = False, flow: str = "dis", flow_preset: str = "fast", size: Optional[int] = None,
                  start: float = 0.0, duration: Optional[float] = None, every: int = 1,
                  preserve_color: bool = False, photometric_check: bool = True, style_index: int = 0,
                  alpha: float = 1.0, iterations: int = 100,
                  device: str = "auto", precision: str = "auto", resume: bool = False, overwrite: bool = False,
                  allow_partial: bool = False, callback: Optional[FrameCallback] = None,
                  notify: Optional[Notify] = None, on_start: Optional[Callable[[Optional[int]], None]] = None,
                  engine=None, tile="auto", max_memory=None) -> VideoResult:
    """Stylize a video file or a folder of frames into a video file or a folder of frames.

    Args:
        source: a video file (mp4, mov, mkv, webm, gif, ...) or a folder of frames.
        output: a video file (by extension) or a folder (PNG frames). The frame rate (divided by
            ``every``), the size (or ``size``) and the audio track (copied, not re-encoded) are kept.
        method, styles, style_index, alpha, iterations: see :func:`build_stylizer`.
        temporal: ``"auto"`` (blend, or optimize for Gatys), ``"none"``, ``"blend"`` or
            ``"optimize"`` (Gatys only); ``temporal_weight``, ``long_term``, ``flow``,
            ``flow_preset``: see :class:`~atelier.methods.video.TemporalConfig` (the blend
            weight's default is 0.7, for AdaIN 0.5: the method's ``video_blend_weight``).
        size: longest side of the output in px (default: the source's); larger than the
            source's gives a "warning" notice (an upscale adds pixels, not detail).
        start, duration: seconds of the source to stylize; every: keep every N-th frame (previews).
        preserve_color: keep the source's colours (luminance transfer).
        photometric_check: distrust the flow where it does not explain the input frames (fewer
            ghosts of fast-moving limbs; see :class:`~atelier.methods.video.TemporalConfig`).
        resume: continue a stopped run into ``output`` (same parameters; see
            :func:`progress_path`); the flow statistics continue those of the stopped run.
        overwrite: allow ``output`` to be one of the inputs (refused otherwise).
        allow_partial: a source that holds fewer frames than its container announces (a cut
            file) is stylized up to the break with a "warning" notice, and the result says
            ``partial``; without it such a source is refused.
        callback: called after each frame (:data:`FrameCallback`).
        notify: called with notices (:data:`Notify`): warnings, Gatys' iteration progress, and a
            time estimate when the run looks longer than :data:`ESTIMATE_AFTER` s
            (:class:`~atelier.api.video_eta.Estimator`).
        on_start: called once, with the frames expected (or None; for a truncated source with
            ``allow_partial``, those it holds), when the input checks are done and the first frame
            is about to be stylized.
        engine: where the frames are stylized (see :mod:`atelier.api.video_engine`): None, this
            process (:class:`~atelier.api.video_engine.LocalFrames`); a
            :class:`~atelier.api.ray_video.RayFrames`: chunks of frames on Ray workers
            (:func:`atelier.api.ray_video.stylize_video_on_ray`).
        tile, max_memory: print sizes (issue 24): frames above the budget stylized in tiles by the
            one-pass methods (see :func:`~atelier.api.video_engine.build_stylizer`).

    Returns:
        A :class:`VideoResult`.

    Raises:
        VideoInterrupted: Ctrl-C; the output holds the frames done so far (a KeyboardInterrupt).
        InputError: a bad source (not a video, no video stream, empty, mixed frame sizes, a
            non-image file in a frame folder, fewer frames than the container announces without
            ``allow_partial``: checked from the packets before stylizing and again from the frames
            decoded), an unwritable output, or a resume whose parameters differ; nothing is left
            at ``output`` on error.
        ValueError: bad options.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, not {every}")
    from ..methods.registry import get_method

    spec = get_method(method)
    mode = spec.temporal if temporal == "auto" else temporal
    if temporal_weight is None and mode == "blend":
        temporal_weight = spec.video_blend_weight
    if mode == "optimize" and spec.family != "optimization":
        raise ValueError("the optimize temporal mode needs --method gatys; use blend for one-pass methods")
    tconf = TemporalConfig(mode=mode, temporal_weight=temporal_weight, long_term=long_term, flow=flow,
                           flow_preset=flow_preset, preserve_color=preserve_color,
                           photometric_check=photometric_check).validate()
    check_not_input(output, [("source", source), *(("style", st) for st in styles)], overwrite, "output")
    info = probe(source)
    params = {"source": str(pathlib.Path(os.fspath(source)).resolve()), "method": method,
              "styles": [str(pathlib.Path(os.fspath(s)).resolve()) for s in styles], "temporal": mode,
              "temporal_weight": tconf.weight, "long_term": long_term, "flow": flow, "flow_preset": flow_preset,
              "size": size, "start": start, "duration": duration, "every": every, "preserve_color": preserve_color,
              "photometric_check": photometric_check, "style_index": style_index, "alpha": alpha, "iterations": iterations}
    prog = progress_path(output)
    before: dict = {}
    if resume:
        if not prog.is_file() or not pathlib.Path(os.fspath(output)).exists():
            raise InputError("nothing to resume: no output and progress file from a stopped run", output)
        before = json.loads(prog.read_text())
        if before.get("complete"):
            raise InputError("the output is already complete; nothing to resume", output)
        if before.get("params") != params:
            diff = sorted(k for k in params if before.get("params", {}).get(k) != params[k])
            raise InputError(f"cannot resume: the parameters differ from the stopped run's ({', '.join(diff)})", output)
    expected = expected_frames(info, start, duration, every)  # exact from an index or a folder, else an estimate
    warnings: list = []

    def warn(message: str) -> None:
        warnings.append(message)
        if notify is not None:
            notify("warning", message)

    partial, total = False, expected  # total: the frames this run should give (for the progress bar)
    where = "" if not start and duration is None else " in the requested window"
    if info.kind == "file" and info.frames_exact:  # a cut file announces more than it holds: say so before any work
        announced, stored = announced_frames(info, start, duration), count_stored_frames(info, start, duration)
        if announced and stored < announced:
            message = (f"the container announces {announced} frames{where} but the file holds only {stored}: it is "
                       "truncated")
            if not allow_partial:
                raise InputError(f"{message}; re-export or re-download it, or pass --allow-partial to stylize the "
                                 f"{stored} frames there", source)
            warn(f"{message}; stylizing the frames there (--allow-partial)")
            partial, total = True, -(-stored // every)
    if size is not None and size > max(info.width, info.height):
        h, w = even_size(info.height, info.width, size)
        warn(f"--size {size} upscales the {info.width}x{info.height} source {w / info.width:.1f}x to {w}x{h} "
             f"({w * h / (info.width * info.height):.1f}x the pixels: slower, and no detail is added); leave out "
             "--size to keep the source's size")
    timer = Estimator(total, iterations if spec.family == "optimization" else None, notify)
    settings = FrameSettings(method, tuple(styles), style_index, alpha, iterations,
                             device, precision, tconf, tile, max_memory)
    engine = engine if engine is not None else LocalFrames()
    try:
        engine.open(settings, timer.iteration)
        return _run(engine, source, output, info, params, before, prog, resume, expected, total, partial, where,
                    warn, warnings, allow_partial, timer, start, duration, every, size, callback, on_start)
    finally:
        engine.close()


def _run(engine, source, output, info, params, before, prog, resume, expected, total, partial, where, warn, warnings,
         allow_partial, timer, start, duration, every, size, callback, on_start) -> VideoResult:
    """The frames of :func:`stylize_video` through ``engine`` into the writer (its checks done)."""
    frames = read_frames(source, start=start, duration=duration, every=every, size=size)
    first = next(frames, None)
    if first is None:
        raise InputError("no frame in the requested range (check --start and --duration)", source)
    height, width = first[1].shape[:2]
    audio = source if info.kind == "file" and info.has_audio else None
    t0 = time.perf_counter()
    new = read = 0
    counted = engine.counters()  # the flow statistics of the frames in the output (saved for a resume)

    def _finish(complete: bool) -> VideoResult:
        _write_progress(prog, {"params": params, "frames": writer.frames_written, "complete": complete,
                               "counters": counted})
        seconds = time.perf_counter() - t0
        return VideoResult(pathlib.Path(os.fspath(output)), writer.frames_written, new, seconds,
                           new / max(seconds, 1e-9), not complete, engine.stats, getattr(writer, "audio_note", None),
                           read, expected if info.frames_exact else None, partial, warnings)

    def _decoded():
        nonlocal read
        for _, frame in _chain(pending, frames):
            read += 1
            yield frame

    writer = VideoWriter(output, info.fps / every, width, height, audio_from=audio, audio_start=start,
                         audio_duration=duration, resume=resume)
    try:
        with writer:  # closes the output on success and on Ctrl-C, removes it on any other error
            skip = writer.resume_frames if resume else 0
            if skip:
                engine.restore_counters(before.get("counters", {}))
                counted = engine.counters()
            pending = [first]
            for i in range(skip):  # frames already in the output: the last one primes the stylizer
                item = pending.pop() if pending else next(frames, None)
                if item is None:
                    break
                read += 1
                if i == skip - 1 and writer.last_frame is not None:
                    engine.prime(item[1], writer.last_frame)
            if on_start is not None:
                on_start(total)
            timer.begin()
            for y in engine.run(_decoded()):
                writer.write(_array(y))
                counted = engine.counters()
                new += 1
                timer.frame(new)
                if callback is not None:
                    callback(writer.frames_written, total, y)
            if info.frames_exact and expected is not None and read < expected:
                # fewer decoded than announced: after a cut (allowed above), or frames the decoder dropped
                partial = True
                warn(f"read {read} of the {expected} frames the container announces{where}"
                     + ("" if allow_partial else "; the rest could not be decoded (the output has the frames read)"))
    except KeyboardInterrupt:
        raise VideoInterrupted(_finish(False)) from None
    return _finish(True)


def _chain(first: list, rest):
    yield from first
    yield from rest


def _write_progress(path: pathlib.Path, state: dict) -> None:
    with atomic_write(path, "w") as f:
        f.write(json.dumps(state, indent=1) + "\n")


def evaluate_video(stylized: PathLike, source: PathLike, *, styles: Sequence[PathLike] = (), losses: bool = True,
                   long_term_gap: int = 10, flow: str = "dis", flow_preset: str = "medium",
                   start: Optional[float] = None, duration: Optional[float] = None, every: Optional[int] = None,
                   callback: Optional[Callable[[int], None]] = None) -> dict:
    """Temporal consistency and style/content of a stylized video against its source.

    Short-term warping error (Lai et al. 2018; ReCoNet): for each frame t >= 1, the mean over the
    pixels whose flow is reliable of the squared difference between stylized frame t and stylized
    frame t-1 warped by the optical flow of the *source* frames (t -> t-1), images in [0, 1]
    (:func:`atelier.analysis.metrics.warping_error`; reliable = :func:`atelier.imaging.flow.consistency_mask`).
    Long-term: the same between t and t - ``long_term_gap``. Lower is steadier; the source's own
    warping error (the flow's residual on the input) is reported as the floor.

    Args:
        stylized, source: video files or frame folders; the source's frames in the window (below)
            must be as many as the stylized video's (the source is resized to the stylized size).
            The counts are compared up front from the containers (or folders) when both know
            theirs exactly, so a mismatch is refused before any frame is decoded.
        start, duration, every: the window of the source the stylized video was made from, as
            given to :func:`stylize_video` (seconds, seconds, every N-th frame). When all three are
            None they are read from the stylized video's progress file (:func:`progress_path`,
            written by :func:`stylize_video`) if it names this source, else the whole source.
        styles: style images for the per-frame style loss (none: no style loss).
        losses: compute per-frame content (and style) losses (a VGG pass per frame).
        callback: called with the number of frames done.

    Returns:
        dict: ``frames``; ``short_term`` and ``long_term`` (``mean``, ``per_frame``), and
        ``source_short_term`` (the floor); ``content_loss`` and ``style_loss`` (``mean``,
        ``per_frame``; None when not computed); ``luminance`` (``stylized`` and ``source`` per-frame
        means in [0, 1]) and ``luminance_drift`` (the stylized/source luminance ratio over the last
        tenth of the frames minus that over the first tenth: 0 = no drift); the flow settings;
        ``window`` (``start``, ``duration``, ``every`` used, and ``from``: ``"options"``,
        ``"progress file"`` or ``"whole source"``).

    Raises:
        InputError: unreadable inputs, or frame counts that differ (up front when the containers
            give exact counts, else when one video ends before the other).
    """
    from collections import deque

    from ..analysis.metrics import Scorer, evaluate, warping_error

    if long_term_gap < 1:
        raise ValueError(f"long_term_gap must be >= 1, not {long_term_gap}")
    window = _evaluation_window(stylized, source, start, duration, every)
    start, duration, every = window["start"], window["duration"], window["every"]
    a_info, b_info = probe(stylized), probe(source)
    n_a, n_b = a_info.frames, expected_frames(b_info, start, duration, every)
    if a_info.frames_exact and b_info.frames_exact and n_a != n_b:
        told = {"options": " in the window given", "progress file": " in the window of its progress file",
                "whole source": ""}[window["from"]]
        hint = ("; give the --start, --duration and --every it was stylized with" if window["from"] == "whole source"
                else "; the run was stopped: finish it with atelier video ... --resume" if window.get("stopped")
                else "")
        raise InputError(f"has {n_a} frames but its source {pathlib.Path(os.fspath(source)).name} has {n_b}{told}"
                         f"{hint}", stylized)
    est = FlowEstimator(flow, flow_preset)
    scorer = Scorer() if losses else None
    style_ts = [img.load_image(s) for s in styles]
    history: deque = deque(maxlen=long_term_gap + 1)  # (source uint8, stylized tensor, source tensor)
    out = {"short": [], "long": [], "source_short": [], "content": [], "style": [], "lum_out": [], "lum_src": []}
    a_iter, b_iter = read_frames(stylized), read_frames(source, start=start, duration=duration, every=every)
    n = 0
    while True:
        a, b = next(a_iter, None), next(b_iter, None)
        if a is None or b is None:
            if a is not None or b is not None:
                raise InputError(f"the stylized video and its source have different frame counts "
                                 f"(one ends after {n} frames)", stylized)
            break
        y = _tensor(a[1])
        x = img.resize_to(_tensor(b[1]), *y.shape[-2:])
        x8 = _array(x)
        if history:
            for gap, key in ((1, "short"), (long_term_gap, "long")):
                if len(history) >= gap:
                    p8, py, px = history[-gap]
                    backward, forward = est(x8, p8), est(p8, x8)
                    mask = consistency_mask(backward, forward)
                    out[key].append(warping_error(y, py, backward, mask))
                    if gap == 1:
                        out["source_short"].append(warping_error(x, px, backward, mask))
        if scorer is not None:
            r = evaluate(y, x, style_ts, st=scorer)
            out["content"].append(r["content_loss"])
            if style_ts:
                out["style"].append(r["style_loss"])
        out["lum_out"].append(float(y.mean()))
        out["lum_src"].append(float(x.mean()))
        history.append((x8, y, x))
        n += 1
        if callback is not None:
            callback(n)
    if n == 0:
        raise InputError("no frames", stylized)
    tenth = max(1, n // 10)
    ratio = [o / max(s, 1e-6) for o, s in zip(out["lum_out"], out["lum_src"])]

    def summary(values):
        return {"mean": sum(values) / len(values), "per_frame": values} if values else None

    return {"frames": n, "short_term": summary(out["short"]), "long_term": summary(out["long"]),
            "long_term_gap": long_term_gap, "source_short_term": summary(out["source_short"]),
            "content_loss": summary(out["content"]), "style_loss": summary(out["style"]),
            "luminance": {"stylized": out["lum_out"], "source": out["lum_src"]},
            "luminance_drift": sum(ratio[-tenth:]) / tenth - sum(ratio[:tenth]) / tenth,
            "flow": {"method": flow, "preset": flow_preset}, "window": window}


def _evaluation_window(stylized: PathLike, source: PathLike, start, duration, every) -> dict:
    """The source window of :func:`evaluate_video`: the options, else the progress file's, else all."""
    if start is not None or duration is not None or every is not None:
        return {"start": float(start or 0.0), "duration": duration, "every": int(every or 1), "from": "options"}
    prog = progress_path(stylized)
    try:
        state = json.loads(prog.read_text()) if prog.is_file() else {}
    except (OSError, ValueError):
        state = {}
    params = state.get("params", {}) if isinstance(state, dict) else {}
    if params.get("source") == str(pathlib.Path(os.fspath(source)).resolve()):
        return {"start": float(params.get("start") or 0.0), "duration": params.get("duration"),
                "every": int(params.get("every") or 1), "from": "progress file",
                "stopped": not state.get("complete", True)}
    return {"start": 0.0, "duration": None, "every": 1, "from": "whole source"}


def plot_evaluation(report: dict, path: PathLike, title: str = "") -> pathlib.Path:
    """Write a PNG of an :func:`evaluate_video` report: warping errors and luminance per frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for key, label in (("short_term", "short-term (t-1)"), ("long_term", f"long-term (t-{report['long_term_gap']})"),
                       ("source_short_term", "source, short-term (floor)")):
        if report.get(key):
            values = report[key]["per_frame"]
            first = report["frames"] - len(values)
            ax1.plot(range(first, report["frames"]), values, label=f"{label}: mean {report[key]['mean']:.4f}")
    ax1.set_ylabel("warping error (MSE)")
    ax1.legend(fontsize=8)
    ax1.set_title(title or "temporal consistency")
    ax2.plot(report["luminance"]["stylized"], label="stylized")
    ax2.plot(report["luminance"]["source"], label="source")
    ax2.set_ylabel("mean luminance")
    ax2.set_xlabel("frame")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = pathlib.Path(os.fspath(path))
    with atomic_write(out) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return out
