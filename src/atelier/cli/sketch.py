"""``atelier sketch``: photos to pencil, ink or charcoal sketches (files and folders)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .common import _fail, _runtime, app, err
from .scale import _ray_flags, _run_on_ray


@app.command()
def sketch(
    inputs: List[Path] = typer.Argument(..., metavar="PHOTOS", help="Photo files and/or folders (searched "
                                        "recursively)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (same file names as the inputs), or an "
                                "image file name when one photo is given."),
    style: str = typer.Option("pencil", help="pencil, ink or charcoal."),
    lines_only: bool = typer.Option(False, "--lines-only", help="Contour strokes only, no shading."),
    detail: float = typer.Option(0.5, help="0 (only the strongest contours) to 1 (more contours)."),
    size: Optional[int] = typer.Option(None, help="Longest side of the sketches in pixels [default: input's]."),
    seed: int = typer.Option(0, help="Seed of the pencil textures."),
    contours: Optional[Path] = typer.Option(None, help="A contour net from 'atelier train-contours' "
                                            "[default: the shipped one]."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16 (the VGG encoder)."),
    max_pixels: Optional[int] = typer.Option(None, help="Refuse images (and --size) larger than this many pixels "
                                             "[default: 100M]."),
    tile: str = typer.Option("auto", help="Print sizes: auto (tiles only when a photo would not fit --max-memory), "
                             "off, or a tile side in px (the contour network runs per tile, overlaps blended)."),
    max_memory: Optional[str] = typer.Option(None, help="Memory the run may use, e.g. 8G or 512M [default: 80% of "
                                             "the memory available now]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow writing over the input files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray Data (a local Ray cluster, or --ray-address); "
                             "re-runs skip sketches that exist and verify."),
    ray_address: Optional[str] = typer.Option(None, help="With --ray: 'auto' or ray://HOST:10001 [default: a new "
                                              "local cluster]."),
    workers: Optional[int] = typer.Option(None, help="With --ray: Ray workers [default: one per CPU]."),
):
    """Draw photos as sketches: contours a person would draw (a network trained on the human
    line drawings of BSDS500) over pencil shading from the photo's tones (Lu et al. 2012).

    Unreadable photos are reported and skipped (exit 2 at the end); the others are written.
    """
    from .. import __version__
    from ..io import images as img
    from ..core.errors import InputError
    from ..core.files import check_not_input
    from ..encoders.precision import resolve_precision
    from ..encoders.vgg import get_encoder
    from ..methods.feedforward.apply import _inputs
    from ..methods.sketch.contours import load_contour_net
    from ..methods.sketch.draw import STYLES, sketch_file

    use_ray = _ray_flags(ray, ray_address, workers)
    if style not in STYLES:
        raise _fail(f"unknown --style {style!r}; choose one of {', '.join(STYLES)}")
    if not 0.0 <= detail <= 1.0:
        raise _fail(f"--detail must be between 0 and 1, got {detail}")
    if size is not None and size < img.MIN_SIDE:
        raise _fail(f"--size must be at least {img.MIN_SIDE} px, got {size}")
    dev = _runtime("cpu", precision)
    from ..api.print_size import SKETCH, parse_bytes, print_plan

    try:
        if max_memory is not None:
            parse_bytes(max_memory)
        if tile not in ("auto", "off") and (not tile.isdigit() or int(tile) < 64 or int(tile) % 16):
            raise ValueError(f"--tile must be auto, off or a tile side in px (a multiple of 16, at least 64), "
                             f"got {tile!r}")
        skipped: list = []
        files = _inputs(inputs, skipped)
        single = len(files) == 1 and not inputs[0].is_dir() and output.suffix.lower() in img.OUTPUT_EXTENSIONS
        if single:
            targets = [(files[0][0], img.check_output_path(output))]
        else:
            if output.suffix.lower() in img.OUTPUT_EXTENSIONS and not output.is_dir():
                raise InputError(f"{len(files)} photos need an output folder, not an image file name", output)
            check_not_input(output, [("input folder", p) for p in inputs if p.is_dir()], overwrite, "the output folder")
            targets = [(src, output / rel.with_suffix(".png")) for src, rel in files]
        for src, dst in targets:
            check_not_input(dst, [("input", src)], overwrite, "the output file")
        if use_ray and single:
            raise InputError("--ray writes into an output folder; give -o a folder name", output)
        net = load_contour_net(contours)
        encoder = None if use_ray else get_encoder()  # a Ray worker loads its own
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    prec = resolve_precision(precision, dev)
    for _, reason in skipped:
        err.print(f"[yellow]skipped:[/] {escape(reason)}", highlight=False, soft_wrap=True)
    meta = {"atelier_version": __version__, "method": "sketch", "style": style, "lines_only": lines_only,
            "detail": detail, "seed": seed, "contour_model_sha256": net.card.get("sha256")}
    def plan_tiles(h: int, w: int):
        plan = print_plan(SKETCH, h, w, tile, max_memory, dev)
        if plan is not None and not quiet:
            err.print(f"print size: {plan.describe()}", highlight=False)
        return plan

    if use_ray:
        if tile != "auto" or max_memory is not None:
            raise _fail("--tile and --max-memory do not apply with --ray yet (each worker sketches whole photos)")
        from ..api.batch import SketchJob

        job = SketchJob(metadata=meta, contours=str(contours) if contours else None, style=style, lines_only=lines_only, detail=detail, size=size, seed=seed,
                        precision=prec, max_pixels=max_pixels)
        _run_on_ray(job, inputs, output, overwrite=overwrite, address=ray_address, workers=workers, batch_size=1,
                    device="cpu", quiet=quiet, rename=lambda rel: rel.with_suffix(".png"))
        return
    written, failed, seconds = [], [], 0.0
    columns = [TextColumn("[bold]sketching"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, disable=quiet) as bar:
        task = bar.add_task("sketch", total=len(targets))
        try:
            for src, dst in targets:
                try:
                    seconds += sketch_file(src, dst, style=style, lines_only=lines_only, detail=detail, size=size,
                                           seed=seed, precision=prec, max_pixels=max_pixels, metadata=meta,
                                           net=net, encoder=encoder, plan_tiles=plan_tiles)
                    written.append(dst)
                except (InputError, OSError) as e:
                    failed.append(str(e))
                    bar.console.print(f"[bold red]skipped:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
                bar.update(task, advance=1)
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"interrupted; {len(written)} sketch(es) were written before that, the others were not",
                      highlight=False)
            raise typer.Exit(130)
    if written:
        where = written[0] if single else output
        err.print(f"wrote {len(written)} sketch(es) to {where} ({seconds / len(written):.2f} s per photo, {style})",
                  highlight=False)
    if failed:
        raise _fail(f"{len(failed)} input(s) could not be read and were skipped: " + "; ".join(failed[:5]))
