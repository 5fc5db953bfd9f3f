"""Commands that stylize and inspect images: stylize, demo, info, evaluate, layers."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import List, Optional, Tuple

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..core.runtime import precision_note
from ..methods.gatys.optimize import GatysConfig

from . import app, err, out, _fail, _floats, _names, _write_json, _check_json_path


def _run_stylize(content: Path, styles: List[Path], output: Path, options: dict, *, max_pixels: Optional[int],
                 save_every: Optional[Tuple[int, Path]], metrics: Optional[Path], quiet: bool = False) -> None:
    """Shared by ``stylize`` and ``demo``: validate everything, run with a progress bar, save."""

    from .. import __version__
    from ..core import io as img
    from ..metrics import evaluate
    from ..core.errors import InputError
    from ..methods.gatys.optimize import GatysStyleTransfer, StyleTransferInterrupted, pyramid_sizes

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
        from ..losses import normalize_weights

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
            "precision_choice": precision_note(st.config.precision, st.device),
            "final_losses": st.last_losses,
        })
        _write_json(metrics, scores)
    if not quiet:
        L = st.last_losses
        err.print(f"wrote {out_path} ({st.stats['size'][1]}x{st.stats['size'][0]}, "
                  f"{st.stats['seconds']:.1f} s, {st.stats['seconds_per_iteration']:.3f} s/iteration, "
                  f"{st.stats['device']} {st.stats['precision']}"
                  + (f" [{note}]" if (note := precision_note(st.config.precision, st.device)) else "")
                  + f"; content {L['content']:.3g}, style {L['style']:.3g})")


def _run_one_pass(method: str, content: Path, styles: List[Path], output: Path, *, size, alpha, blend, mask,
                  style_size, decoder, preserve_color, device, precision, max_pixels, quiet,
                  wct_layers: Optional[str] = None) -> None:
    """``stylize --method adain|wct`` and ``--method MODEL``: one network pass, then save with metadata."""
    import time

    from .. import __version__
    from ..core import io as img
    from ..core import color
    from ..core.errors import InputError

    meta = {"atelier_version": __version__, "content": str(content), "preserve_color": preserve_color}
    try:
        out_path = img.check_output_path(output)
        c = img.load_image(content, size=size, max_pixels=max_pixels)
        if wct_layers is not None and method != "wct":
            raise ValueError(f"--wct-layers is an option of --method wct, not of --method {method}")
        if method in ("adain", "wct"):
            if not styles:
                raise ValueError(f"--method {method} needs at least one --style image")
            if mask is not None and len(styles) != 2:
                raise ValueError(f"--mask needs exactly two --style images (the first where the mask is white, "
                                 f"the second where it is black), got {len(styles)}")
            m = None
            if mask is not None:
                m, note = color.load_mask(mask, c.shape[-2], c.shape[-1], max_pixels=max_pixels)
                if note:
                    err.print(f"[yellow]warning:[/] {mask}: {note}")
            weights = _floats(blend, "--style-blend")
            style_imgs = [img.load_image(p, size=style_size, max_pixels=max_pixels) for p in styles]
            if method == "adain":
                from ..methods.arbitrary.adain import adain_tensor as run, load_adain

                model = load_adain(decoder, device=device, precision=precision)
                shas = model.card.get("sha256")
            else:
                from ..methods.arbitrary.wct import DEFAULT_LAYERS, load_wct, wct_tensor as run

                layers = _names(wct_layers) if wct_layers else list(DEFAULT_LAYERS)
                model = load_wct(decoder, layers=layers, device=device, precision=precision)
                shas = {k: c_["sha256"] for k, c_ in model.cards.items()}
                meta["wct_layers"] = layers
            t0 = time.perf_counter()
            result = run(model, c, style_imgs, alpha=alpha, blend=weights, mask=m,
                         preserve_color=preserve_color, style_size=None)
            meta.update(method=method, styles=[str(p) for p in styles], alpha=alpha, style_blend=weights,
                        mask=str(mask) if mask else None, style_size=style_size,
                        decoder=str(decoder) if decoder else method, decoder_sha256=shas)
        else:
            from ..methods.feedforward.apply import load_model, stylize_tensor

            if styles:
                raise ValueError(f"a feed-forward model ({method}) has its styles built in; leave out --style "
                                 "(or use --method adain for any style image)")
            net = load_model(method, device=device)
            t0 = time.perf_counter()
            weights = _floats(blend, "--style-blend")
            result = stylize_tensor(net, c, weights, preserve_color=preserve_color, precision=precision)
            meta.update(method="feedforward", model=method, model_sha256=net.card.get("sha256"),
                        style_weights=weights)
        seconds = time.perf_counter() - t0
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    meta["seconds"] = seconds
    img.save_image(result, out_path, meta)
    if not quiet:
        err.print(f"wrote {out_path} ({result.shape[-1]}x{result.shape[-2]}, {seconds:.2f} s, {meta['method']})")


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
    style: Optional[List[Path]] = typer.Option(None, "--style", "-s", help="Style image; repeat for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png keeps the parameters)."),
    method: str = typer.Option("gatys", help="gatys (optimization), adain or wct (any style, one pass) or a "
                               "feed-forward model name/file (see 'atelier models')."),
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
    alpha: float = typer.Option(1.0, help="adain/wct: style strength in [0, 1] (0: content, 1: full style)."),
    mask: Optional[Path] = typer.Option(None, help="adain/wct, two styles: first style where white, second where black."),
    style_size: int = typer.Option(512, help="adain/wct: longest side of the style images in pixels."),
    decoder: Optional[Path] = typer.Option(None, help="adain: decoder file or 'adain-w1'; wct: folder of decoders "
                                           "from 'atelier train-decoders' [default: shipped]."),
    wct_layers: Optional[str] = typer.Option(None, help="wct: layers, coarse to fine [default: relu4_1,relu3_1,"
                                             "relu2_1,relu1_1; add relu5_1 for larger structures]."),
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
    """Stylize CONTENT with one or more --style images (default: Gatys et al. optimization).

    --method adain (Huang & Belongie 2017) and --method wct (Li et al. 2017) stylize with any
    style image in one pass; a feed-forward model name (see 'atelier models') needs no --style.
    """
    if method != "gatys":
        _run_one_pass(method, content, style or [], output, size=size, alpha=alpha, blend=style_blend, mask=mask,
                      style_size=style_size, decoder=decoder, preserve_color=preserve_color, device=device,
                      precision=precision, max_pixels=max_pixels, quiet=quiet, wct_layers=wct_layers)
        return
    if not style:
        raise _fail("give at least one --style image (or --method MODEL_NAME for a feed-forward model)")
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
    from ..core import io as img
    from ..core.errors import InputError

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
    from ..metrics import evaluate as _evaluate
    from ..core.errors import InputError
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
    from ..encoders.vgg import layer_table

    try:
        rows = layer_table(arch)
    except ValueError as e:
        raise _fail(str(e)) from None
    table = Table("layer", "channels", "downsampling", title=f"{arch} layers")
    for name, ch, stride in rows:
        table.add_row(name, str(ch), f"1/{stride}")
    out.print(table)


# -- feed-forward networks ------------------------------------------------------------------
