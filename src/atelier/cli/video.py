"""Video commands: ``video`` (stylize a clip without flicker) and ``evaluate-video`` (warping errors,
per-frame losses, luminance drift)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .common import _fail, _runtime, _write_json_or_fail, app, err

TEMPORAL = ("auto", "none", "blend", "optimize")


@app.command()
def video(
    source: Path = typer.Argument(..., help="Video file (mp4, mov, mkv, webm, gif, ...) or a folder of frames."),
    output: Path = typer.Option(..., "--output", "-o", help="Video file (by extension) or a folder (PNG frames)."),
    method: str = typer.Option("starry_night", "--method", "-m",
                               help="A feed-forward model (shipped name or .safetensors), adain, wct or gatys."),
    style: List[Path] = typer.Option([], "--style", "-s", help="Style image (adain, wct, gatys); repeat to blend."),
    temporal: str = typer.Option("auto", help="auto (blend; optimize for gatys), none (per frame), blend, optimize."),
    temporal_weight: Optional[float] = typer.Option(
        None, help="blend: share of the warped previous frame in [0, 1] (0.7; adain 0.5); optimize: loss weight (20)."),
    long_term: bool = typer.Option(False, "--long-term", help="gatys: also keep frames t-10 and t-20 steady."),
    flow: str = typer.Option("dis", help="Optical flow: dis or farneback (OpenCV)."),
    flow_preset: str = typer.Option("fast", help="DIS preset: ultrafast, fast or medium."),
    photometric_check: bool = typer.Option(
        True, "--photometric-check/--no-photometric-check",
        help="Distrust the flow where it does not explain the input frames (fewer ghosts of moving limbs)."),
    size: Optional[int] = typer.Option(None, help="Longest side of the output in px (default: the source's)."),
    start: float = typer.Option(0.0, help="Start at this second of the source."),
    duration: Optional[float] = typer.Option(None, help="Stylize this many seconds."),
    every: int = typer.Option(1, help="Keep every N-th frame (a quick preview)."),
    preserve_color: bool = typer.Option(False, "--preserve-color", help="Keep the source's colours."),
    style_index: int = typer.Option(0, help="Which style of a multi-style model."),
    alpha: float = typer.Option(1.0, help="Style strength of adain/wct in [0, 1]."),
    iterations: int = typer.Option(100, help="gatys: L-BFGS iterations per frame."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    tile: str = typer.Option("auto", help="Print sizes: auto (frames that would not fit --max-memory are stylized in "
                             "tiles), off, or a tile side in px (one-pass methods)."),
    max_memory: Optional[str] = typer.Option(None, help="Memory a frame may use, e.g. 8G [default: 80% of the memory "
                                             "available now]."),
    resume: bool = typer.Option(False, "--resume", help="Continue a stopped run into OUTPUT."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow OUTPUT to be an input file."),
    allow_partial: bool = typer.Option(False, "--allow-partial",
                                       help="Stylize a truncated source up to the break (a warning, exit 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no estimate (warnings still show)."),
    ray: bool = typer.Option(False, "--ray", help="Stylize chunks of frames on Ray workers (a local Ray cluster on "
                             "this machine's cores, or --ray-address), joined in order into OUTPUT."),
    ray_address: Optional[str] = typer.Option(None, help="With --ray: 'auto' (the cluster 'ray start' made here) or "
                                              "ray://HOST:10001 [default: a new local cluster]."),
    workers: Optional[int] = typer.Option(None, help="With --ray: Ray workers, each loads the model once "
                                          "[default: one per CPU, or per GPU with --device cuda/auto]."),
    chunk_frames: Optional[int] = typer.Option(None, help="With --ray: frames per chunk [default: 48]."),
    overlap: Optional[int] = typer.Option(None, help="With --ray: frames before each chunk stylized first and "
                                          "dropped, so its first frame is blended like the others [default: 8]."),
):
    """Stylize a video without flicker (optical-flow blending; Gatys with a temporal loss)."""
    from ..core.errors import InputError
    from ..api.ray_video import WorkerError
    from ..api.video import VideoInterrupted, stylize_video
    from .scale import _ray_flags

    if temporal not in TEMPORAL:
        raise _fail(f"--temporal must be one of {', '.join(TEMPORAL)}, got {temporal!r}")
    use_ray = _ray_flags(ray, ray_address, workers)
    engine = None
    if use_ray:
        from ..api.ray_video import DEFAULT_CHUNK_FRAMES, DEFAULT_OVERLAP, RayFrames

        try:
            engine = RayFrames(ray_address, workers, DEFAULT_CHUNK_FRAMES if chunk_frames is None else chunk_frames,
                               DEFAULT_OVERLAP if overlap is None else overlap)
        except ValueError as e:
            raise _fail(str(e)) from None
    else:
        for flag, value in (("--chunk-frames", chunk_frames), ("--overlap", overlap)):
            if value is not None:
                raise _fail(f"{flag} applies only with --ray")
    # resolved once, passed down; --ray: the workers' device is resolved on the cluster (cuda: one GPU per worker)
    checked = str(_runtime("cpu" if use_ray else device, precision))
    device = device if use_ray else checked
    bar = _LazyBar("frames", quiet, info=True)

    def notify(kind, message):
        if kind == "warning":
            bar.print(f"[yellow]warning:[/] {message}")
        elif kind == "progress":
            bar.detail(message)
        elif not quiet:
            bar.print(message)

    try:
        result = stylize_video(source, output, method=method, styles=style, temporal=temporal,
                               temporal_weight=temporal_weight, long_term=long_term, flow=flow,
                               flow_preset=flow_preset, size=size, start=start, duration=duration, every=every,
                               preserve_color=preserve_color, photometric_check=photometric_check,
                               style_index=style_index, alpha=alpha,
                               iterations=iterations, device=device, precision=precision, resume=resume,
                               overwrite=overwrite, allow_partial=allow_partial, callback=bar.frame, notify=notify,
                               on_start=bar.start, engine=engine, tile=tile, max_memory=max_memory)
    except VideoInterrupted as e:
        bar.stop()
        err.print(f"interrupted; {e.result.path} holds the {e.result.frames} frames done; continue with the "
                  "same command and --resume", highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    except (InputError, ValueError, ImportError, ConnectionError, WorkerError) as e:
        bar.stop()
        raise _fail(str(e)) from None
    finally:
        bar.stop()
    if result.audio_note:
        err.print(f"[yellow]note:[/] {result.audio_note}")
    stats = result.stats
    reliable = f", flow reliable on {100 * stats['reliable']:.0f} % of pixels" if stats.get("reliable") else ""
    of = f" of {result.frames_announced} announced" if result.partial and result.frames_announced else ""
    on_ray = (f"; {stats['chunks']} chunk(s) of {stats['chunk_frames']} on {stats['workers']} Ray worker(s), "
              f"overlap {stats['overlap']}" + (f", {len(stats['nodes'])} nodes" if len(stats["nodes"]) > 1 else "")
              if use_ray and "chunks" in stats else "")
    err.print(f"wrote {result.path} ({result.frames} frames{of}, {result.fps:.2f} frames/s{reliable}{on_ray})",
              highlight=False, soft_wrap=True)


class _LazyBar:
    """A progress bar drawn only once work starts (:meth:`start`), so an error found while checking
    the inputs is one line with no empty bar above it; messages print above the bar when it is up."""

    def __init__(self, label: str, quiet: bool, info: bool = False):
        self.label, self.quiet, self.info = label, quiet, info
        self.bar = self.task = None
        self.t0, self.n0 = None, 0
        self.rate, self.extra = "", ""

    def start(self, total=None) -> None:
        if self.quiet or self.bar is not None:
            return
        columns = [TextColumn(f"[bold]{self.label}"), BarColumn(), MofNCompleteColumn()]
        if self.info:
            columns.append(TextColumn("{task.fields[info]}"))
        columns += [TimeElapsedColumn(), TimeRemainingColumn()]
        self.bar = Progress(*columns, console=err)
        self.task = self.bar.add_task(self.label, total=total, info="")
        self.bar.start()

    def frame(self, done, expected=None, _frame=None) -> None:
        import time

        self.start(expected)
        if self.bar is None:
            return
        if self.t0 is None:
            self.t0, self.n0 = time.perf_counter(), done
        rate = (done - self.n0) / max(time.perf_counter() - self.t0, 1e-9)
        self.rate = f"{rate:.2f} fps" if done > self.n0 else ""
        self.bar.update(self.task, completed=done, total=expected, info=self.rate)

    def detail(self, text: str) -> None:
        """Show ``text`` (Gatys: the iteration within the frame) beside the frame rate."""
        if self.bar is not None:
            self.bar.update(self.task, info=" ".join(t for t in (self.rate, text) if t))

    def print(self, message: str) -> None:
        (self.bar.console if self.bar is not None else err).print(message, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@app.command("evaluate-video")
def evaluate_video(
    stylized: Path = typer.Argument(..., help="The stylized video (file or frame folder)."),
    source: Path = typer.Option(..., "--source", help="The video it was made from (same frame count)."),
    style: List[Path] = typer.Option([], "--style", "-s", help="Style image(s) for the per-frame style loss."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report as JSON here."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG plot of the per-frame measures here."),
    no_losses: bool = typer.Option(False, "--no-losses", help="Skip the per-frame content/style losses (faster)."),
    long_term_gap: int = typer.Option(10, help="Frames between the two of the long-term warping error."),
    flow: str = typer.Option("dis", help="Optical flow: dis or farneback."),
    flow_preset: str = typer.Option("medium", help="DIS preset: ultrafast, fast or medium."),
    start: Optional[float] = typer.Option(None, help="The --start the video was stylized with (seconds of the "
                                          "source; default: from its progress file, else 0)."),
    duration: Optional[float] = typer.Option(None, help="The --duration it was stylized with (seconds)."),
    every: Optional[int] = typer.Option(None, help="The --every it was stylized with."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Temporal consistency of a stylized video: short/long-term warping error, losses, drift.

    The source window (--start, --duration, --every) is read from the stylized video's progress
    file (OUTPUT.atelier.json, written by atelier video) when it is not given."""
    from ..core.errors import InputError
    from ..api.video import evaluate_video as run, plot_evaluation

    bar = _LazyBar("evaluating", quiet)
    try:
        report = run(stylized, source, styles=style, losses=not no_losses, long_term_gap=long_term_gap,
                     flow=flow, flow_preset=flow_preset, start=start, duration=duration, every=every,
                     callback=bar.frame)
    except (InputError, ValueError) as e:
        bar.stop()
        raise _fail(str(e)) from None
    finally:
        bar.stop()
    if output is not None:
        _write_json_or_fail(output, report)
    if plot is not None:
        plot_evaluation(report, plot, title=stylized.name)

    def mean(key):
        return f"{report[key]['mean']:.5f}" if report.get(key) else "n/a"

    print(f"frames {report['frames']}  short-term warping error {mean('short_term')} (source floor "
          f"{mean('source_short_term')})  long-term {mean('long_term')}  content {mean('content_loss')}  "
          f"style {mean('style_loss')}  luminance drift {report['luminance_drift']:+.4f}")
