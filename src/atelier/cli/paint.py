"""``atelier paint``: a photo painted with brush strokes, as PNG, SVG, GIF time-lapse and stroke list."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import _fail, _save_result, _write_json_or_fail, app, err


def _check_side_file(path: Optional[Path], suffixes: tuple, option: str, inputs: list) -> None:
    from ..core.errors import InputError
    from ..core.files import check_not_input

    if path is None:
        return
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{option} needs a file name ending in {' or '.join(suffixes)}", path)
    if path.is_dir():
        raise InputError(f"{option} is a directory; give a file name", path)
    if not path.resolve().parent.is_dir():
        raise InputError(f"the folder for {option} does not exist; create it first", path)
    check_not_input(path, inputs, False, option)


@app.command()
def paint(
    photo: Path = typer.Argument(..., metavar="PHOTO", help="The photo to paint."),
    output: Path = typer.Option(..., "--output", "-o", help="The painting (PNG recommended)."),
    strokes: int = typer.Option(200, help="Number of brush strokes (1-5000)."),
    method: str = typer.Option("agent", help="agent (trained actor, fast), optimize (gradient descent on the "
                               "strokes, slow, closest; takes --style) or greedy (baseline)."),
    style: Optional[Path] = typer.Option(None, help="A painting whose style the strokes take (Gatys style loss; "
                                         "--method optimize)."),
    size: Optional[int] = typer.Option(None, help="Longest side of the PNG in pixels [default: the photo's]; the "
                                       "strokes re-render sharp at any size."),
    plan_size: int = typer.Option(128, "--plan-size", help="Longest side (px) at which the strokes are planned."),
    brush: str = typer.Option("oil", help="oil (opaque, tapered, crisp), watercolour (translucent, soft edges) or "
                              "marker (one width, slightly translucent)."),
    svg: Optional[Path] = typer.Option(None, "--svg", help="Also write the painting as SVG (vector) here."),
    timelapse: Optional[Path] = typer.Option(None, "--timelapse", help="Also write a time-lapse of the painting "
                                             "being painted, in painting order: .gif, .mp4, .mov, .mkv or .webm."),
    strokes_json: Optional[Path] = typer.Option(None, "--strokes-json", help="Also write the stroke list (JSON)."),
    iterations: int = typer.Option(40, help="Adam steps per group of strokes (--method optimize)."),
    seed: int = typer.Option(0, help="Seed of the optimizer's and greedy's random draws."),
    model: Optional[Path] = typer.Option(None, help="A painting actor (.safetensors) instead of the shipped one."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Paint a photo with brush strokes (quadratic Bezier strokes; Huang et al. 2019, Zou et al. 2021).

    Everything is checked before painting: bad input gives one line and exit code 2, nothing written.
    """
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .. import __version__
    from ..api.paint import MAX_STROKES, METHODS, paint_tensor
    from ..core.errors import InputError
    from ..core.files import check_not_input
    from ..io import images as img

    from ..methods.paint.strokes import BRUSHES

    if method not in METHODS:
        raise _fail(f"unknown --method {method!r}; choose one of {', '.join(METHODS)}")
    if brush not in BRUSHES:
        raise _fail(f"unknown --brush {brush!r}; choose one of {', '.join(BRUSHES)}")
    if not 1 <= strokes <= MAX_STROKES:
        raise _fail(f"--strokes must be from 1 to {MAX_STROKES}, got {strokes}")
    if style is not None and method != "optimize":
        raise _fail(f"--style needs --method optimize (the {method} paints the photo only)")
    if size is not None and not 16 <= size <= 16384:
        raise _fail(f"--size must be 16 to 16384 px, got {size}")
    if not 16 <= plan_size <= 1024:
        raise _fail(f"--plan-size must be 16 to 1024 px, got {plan_size}")
    if iterations < 1:
        raise _fail(f"--iterations must be at least 1, got {iterations}")
    if model is not None and method != "agent":
        raise _fail("--model applies only to --method agent")
    inputs = [("photo", photo)] + ([("style", style)] if style is not None else [])
    try:
        out_path = img.check_output_path(output)
        check_not_input(out_path, inputs, False, "the output file")
        _check_side_file(svg, (".svg",), "--svg", inputs)
        from ..methods.paint.export import TIMELAPSE_FORMATS

        _check_side_file(timelapse, TIMELAPSE_FORMATS, "--timelapse", inputs)
        _check_side_file(strokes_json, (".json",), "--strokes-json", inputs)
        names = [p.resolve() for p in (out_path, svg, timelapse, strokes_json) if p is not None]
        if len(set(names)) != len(names):
            raise InputError("two outputs have the same file name")
        x = img.load_image(photo)
        s = img.load_image(style) if style is not None else None
        actor = None
        if method == "agent":
            from ..methods.paint.agent import load_agent

            actor = load_agent(model)
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    longest = size or max(x.shape[-2:])
    columns = [TextColumn(f"[bold]painting ({method})"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    t0 = time.perf_counter()
    with Progress(*columns, console=err, disable=quiet) as bar:
        task = bar.add_task("paint", total=strokes)
        try:
            p = paint_tensor(x, strokes=strokes, method=method, style=s, plan_size=plan_size, seed=seed,
                             iterations=iterations, model=actor, brush=brush,
                             callback=lambda done, total, canvas: bar.update(task, completed=done))
        except KeyboardInterrupt:
            bar.stop()
            err.print("interrupted; nothing was written", highlight=False)
            raise typer.Exit(130)
        except ValueError as e:
            bar.stop()
            raise _fail(str(e)) from None
    seconds = time.perf_counter() - t0
    meta = {"atelier_version": __version__, "method": f"paint/{method}", "strokes": int(p.strokes.shape[0]),
            "plan_size": plan_size, "seed": seed, "brush": brush, "input": photo.name, "style": style.name if style else None,
            "seconds": round(seconds, 2)}
    from ..methods.paint import export

    try:
        picture = p.render(longest)
        _save_result(picture, out_path, meta)
        if svg is not None:
            export.write_svg(p, svg, longest)
        if timelapse is not None:
            export.write_timelapse(p, timelapse, longest=min(longest, 512))
    except InputError as e:
        raise _fail(str(e)) from None
    if strokes_json is not None:
        p.info["meta"] = meta
        _write_json_or_fail(strokes_json, p.to_dict())
    err.print(f"wrote {out_path} ({p.strokes.shape[0]} strokes, {method}, {seconds:.1f} s)", highlight=False)
