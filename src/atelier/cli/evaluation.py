"""Commands that measure results: robustness (a method under JPEG, noise and blur) and
evaluate-set (an ArtFID-style score of a set of results)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .common import _check_json_output, _fail, _runtime, _write_json_or_fail, app, err, out


def _wire_stylizer(method: str, style: Optional[Path], *, iterations: int, style_index: int, alpha: float,
                   device: str):
    """A :class:`~atelier.core.protocols.Stylizer` for ``method`` (the interfaces wire methods in)."""
    from ..api.video import build_stylizer
    from ..methods.registry import get_method

    styles = [style] if (style is not None and get_method(method).styles == "images") else []
    kind, fn = build_stylizer(method, styles, style_index=style_index, alpha=alpha, iterations=iterations,
                              device=device, precision="fp32")
    if kind == "optimizer":
        return lambda x: fn(x, None, [])
    return fn


@app.command()
def robustness(
    photo: Path = typer.Argument(..., metavar="PHOTO", help="The clean photo."),
    output: Path = typer.Option(..., "--output", "-o", metavar="GRID.png", help="Grid of inputs and results (PNG)."),
    method: str = typer.Option("starry_night", "--method", "-m",
                               help="A method of 'atelier methods', or a feed-forward model (shipped name or .safetensors)."),
    style: Optional[Path] = typer.Option(None, "--style", "-s",
                                         help="Style image (needed by gatys/adain/wct; for a feed-forward model "
                                              "it is used only for the style loss)."),
    size: int = typer.Option(256, help="Longest side (px) at which the photo is stylized."),
    corruptions: Optional[str] = typer.Option(None, help="Comma-separated, e.g. jpeg50,noise0.05,blur4 "
                                              "[default: jpeg90,50,20,10, noise0.02,0.05,0.1, blur2,4]."),
    prefilter: str = typer.Option("none", help="Clean each corrupted photo first: auto, nlm, deblock or none."),
    iterations: int = typer.Option(100, help="gatys: L-BFGS iterations."),
    style_index: int = typer.Option(0, help="Which style of a multi-style model."),
    alpha: float = typer.Option(1.0, help="adain/wct: style strength in [0, 1]."),
    seed: int = typer.Option(0, help="Seed of the noise corruptions."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the table as JSON here too."),
    device: str = typer.Option("cpu", help="auto, cpu, cuda or mps."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Stylize PHOTO clean and JPEG-compressed, noisy and blurred; report how far each result moves
    from the clean result (SSIM, perceptual distance) and its content/style losses; a grid PNG."""
    from ..analysis.cluster import save_png
    from ..analysis.robustness import grid_image, robustness as study, summarize
    from ..imaging import corrupt
    from ..io import images as img
    from ..core.errors import InputError
    from ..core.files import check_not_input
    from ..imaging.prefilter import PREFILTERS
    from ..analysis.metrics import Scorer, ScoreConfig

    device = str(_runtime(device))  # resolved once, passed down
    if prefilter not in PREFILTERS:
        raise _fail(f"--prefilter must be one of {', '.join(PREFILTERS)}, got {prefilter!r}")
    if output.suffix.lower() != ".png":
        raise _fail(f"{output}: the grid is a PNG; give a file name ending in .png")
    inputs = [("photo", photo)] + ([("style image", style)] if style is not None else [])
    try:
        img.check_output_path(output)
        check_not_input(output, inputs, False, "--output")
        if json_out is not None:
            _check_json_output(json_out, inputs, False, "--json")
        from ..methods.registry import get_method

        if get_method(method).styles == "images" and style is None:
            raise InputError(f"--method {method} needs a --style image")
        if not 32 <= size <= 4096:
            raise InputError(f"--size must be in 32..4096 px, got {size}")
        if iterations < 1:
            raise InputError(f"--iterations must be at least 1, got {iterations}")
        chosen = [corrupt.parse(t) for t in corruptions.split(",") if t.strip()] if corruptions else \
            list(corrupt.STANDARD)
        if not chosen:
            raise InputError("--corruptions names none")
        content = img.load_image(photo, size=size)
        style_t = img.load_image(style, size=max(size, 256)) if style is not None else None
        stylizer = _wire_stylizer(method, style, iterations=iterations, style_index=style_index, alpha=alpha,
                                  device=device)
        scorer = Scorer(ScoreConfig(device="cpu"))
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    with Progress(TextColumn("[bold]stylizing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
                  TimeElapsedColumn(), console=err, disable=quiet) as bar:
        task = bar.add_task("robustness", total=len(chosen) + 1, name="")
        try:
            rows, images = study(stylizer, content, style_t, corruptions=chosen, prefilter=prefilter, seed=seed,
                                 scorer=scorer, keep_images=True,
                                 callback=lambda d, t, n: bar.update(task, completed=d, name=n))
        except (InputError, ValueError, FloatingPointError) as e:
            raise _fail(str(e)) from None
    table = Table("corruption", "prefilter", "input PSNR", "SSIM to clean", "perceptual", "content loss",
                  "style loss", title=f"{method} on {photo.name} at {content.shape[-1]}x{content.shape[-2]}")
    for r in rows:
        table.add_row(r.corruption, r.prefilter, f"{r.input_psnr:.1f}", f"{r.ssim:.3f}", f"{r.perceptual:.4f}",
                      f"{r.content_loss:.3f}", "-" if r.style_loss is None else f"{r.style_loss:.3f}")
    out.print(table)
    try:
        save_png(grid_image(rows, images, title=f"{method} on {photo.name}; top: input, bottom: result; "
                                                f"prefilter {prefilter}"), output)
        if json_out is not None:
            _write_json_or_fail(json_out, {"photo": str(photo), "method": method, "size": list(content.shape[-2:]),
                                           "prefilter": prefilter, "rows": [r.to_dict() for r in rows],
                                           "summary": summarize(rows)})
    except InputError as e:
        raise _fail(f"{e}; the table is printed above") from None
    out.print(f"grid: {output}", highlight=False)


@app.command("evaluate-set")
def evaluate_set(
    stylized: List[Path] = typer.Argument(..., metavar="RESULTS...", help="Stylized images (files or one folder)."),
    content: List[Path] = typer.Option(..., "--content", "-c",
                                       help="Content images, one per result in the same order (or one folder, "
                                            "matched by sorted order)."),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style images (files or a folder), 2 or more."),
    size: int = typer.Option(256, help="Longest side (px) at which every image is encoded."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON here too."),
):
    """ArtFID-style score of a set of results on our VGG features: (1 + content distance) x (1 + FID)."""
    from ..analysis.index import list_images
    from ..io import images as img
    from ..core.errors import InputError
    from ..encoders.vgg import get_encoder
    from ..analysis.metrics import art_fid

    def expand(paths: List[Path]) -> list:
        if len(paths) == 1 and paths[0].is_dir():
            return list_images(paths[0])
        return list(paths)

    try:
        results, contents, styles = expand(stylized), expand(content), expand(style)
        if output is not None:
            _check_json_output(output, [("image", p) for p in results + contents + styles], False)
        if len(results) != len(contents):
            raise InputError(f"{len(results)} results but {len(contents)} content images; give one content image "
                             "per result, in the same order")
        enc = get_encoder(None, device="cpu")
        load = [[img.load_image(p, size=size) for p in group] for group in (results, contents, styles)]
        scores = art_fid(enc, load[0], load[1], load[2], size=size)
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    out.print(f"ArtFID-style {scores['art_fid']:.3f} = (1 + content distance {scores['content_distance']:.4f}) "
              f"x (1 + FID {scores['fid']:.3f})  [{scores['features']}]", highlight=False, soft_wrap=True)
    if output is not None:
        _write_json_or_fail(output, scores, "; the scores are printed above")
