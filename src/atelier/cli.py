"""The ``atelier`` command line (typer + rich).

Exit codes: 0 success, 2 bad input or options (one-line message, no output file),
130 interrupted by Ctrl-C (the current image is saved to the output path).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import List, Optional, Tuple

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .optimize.gatys import GatysConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Atelier: neural style transfer from the command line.")
err = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> "typer.Exit":
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _floats(text: Optional[str], option: str) -> Optional[List[float]]:
    if text is None:
        return None
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise _fail(f"{option} expects comma-separated numbers like 0.7,0.3, got {text!r}") from None


def _names(text: str) -> List[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_json_path(path: Path) -> Path:
    from .errors import InputError

    parent = path.resolve().parent
    if not parent.is_dir():
        raise InputError("directory for the metrics file does not exist; create it first", path)
    if path.is_dir():
        raise InputError("is a directory; give a file name ending in .json", path)
    if not os.access(parent, os.W_OK):
        raise InputError("directory for the metrics file is not writable", path)
    return path


def _run_stylize(content: Path, styles: List[Path], output: Path, options: dict, *, max_pixels: Optional[int],
                 save_every: Optional[Tuple[int, Path]], metrics: Optional[Path], quiet: bool = False) -> None:
    """Shared by ``stylize`` and ``demo``: validate everything, run with a progress bar, save."""

    from . import __version__
    from . import image as img
    from .analysis.metrics import evaluate
    from .errors import InputError
    from .optimize.gatys import GatysStyleTransfer, StyleTransferInterrupted, pyramid_sizes

    try:
        out_path = img.check_output_path(output)
        if metrics is not None:
            _check_json_path(metrics)
        if save_every is not None:
            every, save_dir = save_every
            if every < 1:
                raise ValueError(f"--save-every needs a positive iteration count, got {every}")
            save_dir.mkdir(parents=True, exist_ok=True)
        config = GatysConfig(**options).validate()
        c = img.load_image(content, max_pixels=max_pixels)
        s = [img.load_image(p, max_pixels=max_pixels) for p in styles]
        if isinstance(config.init, str) and config.init not in ("content", "noise", "style"):
            img.open_image(config.init, max_pixels=max_pixels)  # fail now, not after loading VGG
        from .losses import normalize_weights

        normalize_weights(config.style_blend, len(s), "--style-blend (one weight per --style image)")
        st = GatysStyleTransfer(config)
    except (InputError, ValueError, OSError) as e:
        raise _fail(str(e)) from None

    meta = {
        "atelier_version": __version__,
        "method": "gatys",
        "content": str(content),
        "styles": [str(p) for p in styles],
        "parameters": config.to_dict(),
    }
    scales = len(pyramid_sizes(config.size or max(c.shape[-2:]), config.scales))
    total = config.iterations * scales
    columns = [TextColumn("[bold]stylizing"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    interrupted = None
    with Progress(*columns, console=err, disable=quiet, transient=False) as bar:
        task = bar.add_task("stylize", total=total, losses="")

        def callback(p):
            L = p.losses
            bar.update(task, advance=1, losses=(f"scale {p.scale + 1}/{p.scales} {p.size[1]}x{p.size[0]}  "
                                                f"content {L['content']:.3g} style {L['style']:.3g} "
                                                f"tv {L['tv']:.3g}"))
            if save_every is not None and p.iteration % save_every[0] == 0:
                name = f"scale{p.scale + 1}_iter{p.iteration:05d}.png"
                img.save_image(p.image.clamp(0, 1), save_every[1] / name, {**meta, "iteration": p.iteration})

        try:
            result = st.run(c, s, callback=callback)
        except StyleTransferInterrupted as e:
            interrupted, result = e, e.image
        except FloatingPointError as e:
            raise _fail(str(e), 1) from None

    meta["losses"] = st.last_losses
    meta["seconds"] = st.stats.get("seconds")
    if interrupted is not None:
        meta["interrupted_at"] = {"scale": interrupted.scale + 1, "iteration": interrupted.iteration}
    img.save_image(result, out_path, meta)
    if interrupted is not None:
        err.print(f"interrupted at iteration {interrupted.iteration} of scale {interrupted.scale + 1}; "
                  f"saved the current image to {out_path}")
        raise typer.Exit(130)
    if metrics is not None:
        scores = evaluate(result, c, s, config=config, st=GatysStyleTransfer(config, encoder=st.encoder,
                                                                            precision="fp32"))
        scores.update({
            "iterations": st.stats["iterations"],
            "wall_seconds": st.stats["seconds"],
            "seconds_per_iteration": st.stats["seconds_per_iteration"],
            "image_size": st.stats["size"],
            "scales": st.stats["scales"],
            "device": st.stats["device"],
            "precision": st.stats["precision"],
            "final_losses": st.last_losses,
        })
        _write_json(metrics, scores)
    if not quiet:
        L = st.last_losses
        err.print(f"wrote {out_path} ({st.stats['size'][1]}x{st.stats['size'][0]}, "
                  f"{st.stats['seconds']:.1f} s, {st.stats['seconds_per_iteration']:.3f} s/iteration, "
                  f"{st.stats['device']} {st.stats['precision']}; content {L['content']:.3g}, style {L['style']:.3g})")


def _options(size, style_scale, iterations, optimizer, lr, content_weight, style_weight, tv_weight, style_blend,
             init, seed, preserve_color, scales, content_layers, style_layers, pooling, device, precision,
             weights) -> dict:
    return dict(size=size, style_scale=style_scale, iterations=iterations, optimizer=optimizer, lr=lr,
                content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                style_blend=_floats(style_blend, "--style-blend"), init=init, seed=seed,
                preserve_color=preserve_color, scales=scales, content_layers=_names(content_layers),
                style_layers=_names(style_layers), pooling=pooling, device=device, precision=precision,
                weights=str(weights) if weights else None)


_D = GatysConfig()


@app.command()
def stylize(
    content: Path = typer.Argument(..., help="Content image (photo)."),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png keeps the parameters)."),
    size: Optional[int] = typer.Option(None, help="Longest side of the output in pixels [default: content's]."),
    style_scale: float = typer.Option(_D.style_scale, help="Style image size relative to the output."),
    iterations: int = typer.Option(_D.iterations, "--iterations", "-n", help="Iterations per scale."),
    optimizer: str = typer.Option(_D.optimizer, help="lbfgs or adam."),
    lr: float = typer.Option(_D.lr, help="Adam step size (pixel units, [0, 1] images)."),
    content_weight: float = typer.Option(_D.content_weight, help="Content weight."),
    style_weight: float = typer.Option(_D.style_weight, help="Style weight."),
    tv_weight: float = typer.Option(_D.tv_weight, help="Total-variation weight."),
    style_blend: Optional[str] = typer.Option(None, help="One weight per style image, e.g. 0.7,0.3."),
    init: str = typer.Option("content", help="content, noise, style or an image path."),
    seed: Optional[int] = typer.Option(None, help="Random seed (same seed, same pixels on the CPU)."),
    preserve_color: str = typer.Option("none", help="none, luminance or histogram."),
    scales: Optional[int] = typer.Option(None, help="Coarse-to-fine levels [default: 1 up to 512 px, +1 per doubling]."),
    content_layers: str = typer.Option(",".join(_D.content_layers), help="Comma-separated VGG layers."),
    style_layers: str = typer.Option(",".join(_D.style_layers), help="Comma-separated VGG layers."),
    pooling: str = typer.Option(_D.pooling, help="max or avg."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    weights: Optional[Path] = typer.Option(None, help="torchvision VGG16/VGG19 state dict [default: Caffe VGG19]."),
    save_every: Optional[Tuple[int, Path]] = typer.Option(None, metavar="N DIR", help="Save every N iterations to DIR."),
    metrics: Optional[Path] = typer.Option(None, help="Write metrics JSON here."),
    max_pixels: Optional[int] = typer.Option(None, help="Refuse images larger than this many pixels [default: 100M]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Stylize CONTENT with one or more --style images (Gatys et al. optimization)."""
    opts = _options(size, style_scale, iterations, optimizer, lr, content_weight, style_weight, tv_weight,
                    style_blend, init, seed, preserve_color, scales, content_layers, style_layers, pooling,
                    device, precision, weights)
    _run_stylize(content, style, output, opts, max_pixels=max_pixels, save_every=save_every, metrics=metrics,
                 quiet=quiet)


def demo_images() -> Tuple[Path, Path]:
    """Paths of the bundled demo content photo and style painting."""
    base = resources.files("atelier") / "assets"
    return Path(str(base / "chelsea.jpg")), Path(str(base / "starry_night.jpg"))


@app.command()
def demo(
    output: Path = typer.Option(Path("atelier-demo.png"), "--output", "-o", help="Where to write the result."),
    size: int = typer.Option(320, help="Longest side in pixels."),
    iterations: int = typer.Option(150, "--iterations", "-n", help="L-BFGS iterations."),
    seed: int = typer.Option(0, help="Random seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Stylize the bundled photo (a cat, CC0) with the bundled painting (The Starry Night)."""
    content, style = demo_images()
    opts = dict(size=size, iterations=iterations, seed=seed)
    _run_stylize(content, [style], output, opts, max_pixels=None, save_every=None, metrics=None, quiet=quiet)


@app.command()
def info(image: Path = typer.Argument(..., help="An image written by atelier.")):
    """Print the parameters stored in an image that atelier wrote."""
    from . import image as img
    from .errors import InputError

    try:
        meta = img.read_metadata(image)
    except InputError as e:
        raise _fail(str(e)) from None
    if meta is None:
        raise _fail(f"{image}: carries no atelier parameters (not written by atelier, or not a PNG)")
    out.print_json(json.dumps(meta))


@app.command()
def evaluate(
    image: Path = typer.Argument(..., help="Stylized image (from any tool)."),
    content: Path = typer.Option(..., "--content", "-c", help="Content image."),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for several."),
    style_blend: Optional[str] = typer.Option(None, help="One weight per style image."),
    style_scale: float = typer.Option(1.0, help="Style image size relative to the image."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the metrics JSON here too."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
):
    """Score IMAGE: content/style/TV loss, luminance SSIM to the content, Gram distance to each style."""
    from .analysis.metrics import evaluate as _evaluate
    from .errors import InputError
    try:
        if output is not None:
            _check_json_path(output)
        cfg = GatysConfig(style_blend=_floats(style_blend, "--style-blend"), style_scale=style_scale,
                          device=device, precision="fp32").validate()
        scores = _evaluate(image, content, style, config=cfg)
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    text = json.dumps(scores, indent=2)
    out.print(text, highlight=False)
    if output is not None:
        _write_json(output, scores)


@app.command()
def layers(arch: str = typer.Option("vgg19", help="vgg19 or vgg16.")):
    """List the VGG layer names usable in --content-layers / --style-layers."""
    from .features.vgg import layer_table

    try:
        rows = layer_table(arch)
    except ValueError as e:
        raise _fail(str(e)) from None
    table = Table("layer", "channels", "downsampling", title=f"{arch} layers")
    for name, ch, stride in rows:
        table.add_row(name, str(ch), f"1/{stride}")
    out.print(table)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
