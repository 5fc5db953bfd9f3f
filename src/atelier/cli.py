"""The ``atelier`` command line (typer + rich).

Exit codes: 0 success, 2 bad input or options (one-line message, no output file),
130 interrupted by Ctrl-C (the current image is saved to the output path).
"""

from __future__ import annotations

import json
import os
import sys
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
    from .utils import atomic_write

    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


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


def _run_one_pass(method: str, content: Path, styles: List[Path], output: Path, *, size, alpha, blend, mask,
                  style_size, decoder, preserve_color, device, precision, max_pixels, quiet) -> None:
    """``stylize --method adain`` and ``--method MODEL``: one network pass, then save with metadata."""
    import time

    from . import __version__
    from . import image as img
    from .errors import InputError

    meta = {"atelier_version": __version__, "content": str(content), "preserve_color": preserve_color}
    try:
        out_path = img.check_output_path(output)
        c = img.load_image(content, size=size, max_pixels=max_pixels)
        if method == "adain":
            from .arbitrary import adain_tensor, load_adain

            if not styles:
                raise ValueError("--method adain needs at least one --style image")
            if mask is not None and len(styles) != 2:
                raise ValueError(f"--mask needs exactly two --style images (the first where the mask is white, "
                                 f"the second where it is black), got {len(styles)}")
            m = None
            if mask is not None:
                m, note = img.load_mask(mask, c.shape[-2], c.shape[-1], max_pixels=max_pixels)
                if note:
                    err.print(f"[yellow]warning:[/] {mask}: {note}")
            weights = _floats(blend, "--style-blend")
            style_imgs = [img.load_image(p, size=style_size, max_pixels=max_pixels) for p in styles]
            model = load_adain(decoder, device=device, precision=precision)
            t0 = time.perf_counter()
            result = adain_tensor(model, c, style_imgs, alpha=alpha, blend=weights, mask=m,
                                  preserve_color=preserve_color, style_size=None)
            meta.update(method="adain", styles=[str(p) for p in styles], alpha=alpha, style_blend=weights,
                        mask=str(mask) if mask else None, style_size=style_size,
                        decoder=str(decoder) if decoder else "adain", decoder_sha256=model.card.get("sha256"))
        else:
            from .feedforward import load_model, stylize_tensor

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
    method: str = typer.Option("gatys", help="gatys (optimization), adain (any style, one pass) or a feed-forward "
                               "model name/file (see 'atelier models')."),
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
    alpha: float = typer.Option(1.0, help="adain: style strength in [0, 1] (0: content, 1: full style)."),
    mask: Optional[Path] = typer.Option(None, help="adain, two styles: first style where white, second where black."),
    style_size: int = typer.Option(512, help="adain: longest side of the style images in pixels."),
    decoder: Optional[Path] = typer.Option(None, help="adain: decoder from 'atelier train-adain' [default: shipped]."),
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

    --method adain stylizes with any style image in one pass (Huang & Belongie 2017); a
    feed-forward model name (see 'atelier models') needs no --style.
    """
    if method != "gatys":
        _run_one_pass(method, content, style or [], output, size=size, alpha=alpha, blend=style_blend, mask=mask,
                      style_size=style_size, decoder=decoder, preserve_color=preserve_color, device=device,
                      precision=precision, max_pixels=max_pixels, quiet=quiet)
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


# -- feed-forward networks ------------------------------------------------------------------

def _check_training_output(output: Path, resume: bool) -> dict:
    """The output files of a training run; refuses to overwrite an earlier run's checkpoint."""
    from .errors import InputError
    from .training.trainer import output_paths

    paths = output_paths(output)
    if not paths["weights"].resolve().parent.is_dir():
        raise InputError("the output folder does not exist; create it first", paths["weights"])
    if not resume and paths["checkpoint"].exists():
        raise InputError("a checkpoint of an earlier run is here; add --resume to continue it, or choose "
                         "another output name", paths["checkpoint"])
    return paths


def _start_training(output: Path, resume: bool, build):
    """The output paths and ``build(weights_path)``, the trainer; bad options exit 2 with the message."""
    from .errors import InputError

    try:
        paths = _check_training_output(output, resume)
        return paths, build(str(paths["weights"]))
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None


def _run_training(trainer, paths: dict, steps: int, resume: bool, quiet: bool, describe) -> None:
    """Shared by ``train`` and ``train-adain``: progress bar, Ctrl-C, skipped files, summary."""
    from .errors import InputError

    datasets = [d for d in (trainer.dataset, getattr(trainer, "style_dataset", None)) if d is not None]
    for d in datasets:
        if d.skipped:
            err.print(f"[yellow]warning:[/] {d.skipped} unreadable image(s) skipped")
    columns = [TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err, disable=quiet) as bar:
        task = bar.add_task("train", total=steps, info="")

        def callback(step, losses, ips):
            bar.update(task, completed=step, info=f"{describe(losses)}  {ips:.1f} img/s")

        try:
            card = trainer.train(callback=callback, resume=resume)
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"interrupted at step {trainer.step}; checkpoint saved to {paths['checkpoint']}; "
                      "continue with the same command and --resume")
            raise typer.Exit(130)
        except (InputError, ValueError) as e:
            raise _fail(str(e)) from None
        except FloatingPointError as e:
            raise _fail(str(e), 1) from None
        finally:
            for d in datasets:
                if d.skipped:
                    err.print(f"[yellow]warning:[/] {d.skipped} unreadable image(s) were skipped: "
                              + ", ".join(str(p) for p, _ in d.skipped_files[:5]))
    fl = card.get("final_losses", {})
    err.print(f"wrote {paths['weights']} and {paths['card'].name} ({card['steps']} steps, "
              f"{card['wall_seconds']:.0f} s; content {fl.get('content', float('nan')):.3g}, "
              f"style {fl.get('style', float('nan')):.3g})")


@app.command()
def train(
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for a multi-style network."),
    content_dir: List[Path] = typer.Option(..., "--content-dir", "-c",
                                           help="Folder of training photos (or a file); repeat for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Trained model (.safetensors; card .json beside it)."),
    image_size: int = typer.Option(256, help="Side of the square training crops in pixels."),
    batch_size: int = typer.Option(4, help="Photos per step."),
    steps: int = typer.Option(40_000, help="Optimizer steps in all (raise it with --resume to train longer)."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    content_weight: float = typer.Option(1.0, help="Content weight."),
    style_weight: float = typer.Option(10.0, help="Style weight."),
    tv_weight: float = typer.Option(1.0, help="Total-variation weight."),
    style_scale: float = typer.Option(1.0, help="Style image size relative to --image-size."),
    width: float = typer.Option(1.0, help="Channel multiplier (1.0 = Johnson et al.; 0.5 fast)."),
    scale_jitter: str = typer.Option("0.8,1.2", help="Random zoom range of the crops, lo,hi ('none' for none)."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    seed: int = typer.Option(0, help="Random seed (weights, crops, style indices)."),
    checkpoint_every: int = typer.Option(500, help="Write the checkpoint every N steps (and on Ctrl-C)."),
    preview_every: int = typer.Option(500, help="Write OUTPUT.preview.png every N steps (0: never)."),
    init_from: Optional[str] = typer.Option(None, help="Start from this trained model: a file or a shipped name."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT's checkpoint (.ckpt)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Train a feed-forward network on photos (Johnson et al. 2016; several --style: Dumoulin et al. 2017)."""
    from .training.trainer import FeedForwardTrainer, TrainConfig

    jitter = _jitter(scale_jitter)
    paths, trainer = _start_training(output, resume, lambda out: FeedForwardTrainer(TrainConfig(
        styles=[str(p) for p in style], content=[str(p) for p in content_dir], out=out, image_size=image_size,
        batch_size=batch_size, steps=steps, lr=lr, content_weight=content_weight, style_weight=style_weight,
        tv_weight=tv_weight, style_scale=style_scale, width=width, scale_jitter=jitter, precision=precision,
        device=device, seed=seed, checkpoint_every=checkpoint_every, preview_every=preview_every,
        init_from=str(init_from) if init_from else None)))
    _run_training(trainer, paths, steps, resume, quiet,
                  lambda L: f"content {L['content']:.3g} style {L['style']:.3g} tv {L['tv']:.3g}")


@app.command("train-adain")
def train_adain(
    content_dir: List[Path] = typer.Option(..., "--content-dir", "-c",
                                           help="Folder of content photos (or a file); repeat for several."),
    style_dir: List[Path] = typer.Option(..., "--style-dir", "-s",
                                         help="Folder of style images (or a file); repeat for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Trained decoder (.safetensors; card .json beside it)."),
    image_size: int = typer.Option(256, help="Side of the square crops in pixels (paper: 256)."),
    batch_size: int = typer.Option(8, help="Content/style pairs per step (paper: 8)."),
    steps: int = typer.Option(160_000, help="Optimizer steps in all (raise it with --resume to train longer)."),
    lr: float = typer.Option(1e-4, help="Adam learning rate."),
    lr_decay: float = typer.Option(5e-5, help="Learning rate of step k: lr / (1 + lr_decay * k)."),
    content_weight: float = typer.Option(1.0, help="Content weight."),
    style_weight: float = typer.Option(10.0, help="Style weight (mean/std losses at relu1_1..relu4_1)."),
    width: float = typer.Option(1.0, help="Decoder channel multiplier (1.0 = the paper's decoder)."),
    scale_jitter: str = typer.Option("1,2", help="Random zoom range of the crops, lo,hi ('none' for none)."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    seed: int = typer.Option(0, help="Random seed (weights, crops)."),
    checkpoint_every: int = typer.Option(500, help="Write the checkpoint every N steps (and on Ctrl-C)."),
    preview_every: int = typer.Option(500, help="Write OUTPUT.preview.png every N steps (0: never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT's checkpoint (.ckpt)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Train an AdaIN decoder for arbitrary styles (Huang & Belongie 2017) on photos and style images."""
    from .training.adain import AdaINTrainConfig, AdaINTrainer

    jitter = _jitter(scale_jitter)
    paths, trainer = _start_training(output, resume, lambda out: AdaINTrainer(AdaINTrainConfig(
        content=[str(p) for p in content_dir], styles=[str(p) for p in style_dir], out=out, image_size=image_size,
        batch_size=batch_size, steps=steps, lr=lr, lr_decay=lr_decay, content_weight=content_weight,
        style_weight=style_weight, width=width, scale_jitter=jitter, precision=precision, device=device, seed=seed,
        checkpoint_every=checkpoint_every, preview_every=preview_every)))
    _run_training(trainer, paths, steps, resume, quiet,
                  lambda L: f"content {L['content']:.3g} style {L['style']:.3g}")


def _jitter(text: str) -> Optional[Tuple[float, float]]:
    if text.strip().lower() == "none":
        return None
    lohi = _floats(text, "--scale-jitter")
    if len(lohi) != 2:
        raise _fail(f"--scale-jitter expects two numbers lo,hi, got {text!r}")
    return (lohi[0], lohi[1])


def _style_weights(model, style_mix: Optional[str], style_index: Optional[int]):
    if style_mix is not None and style_index is not None:
        raise _fail("give --style-mix or --style-index, not both")
    if style_index is not None:
        return style_index
    weights = _floats(style_mix, "--style-mix")
    if weights is not None and len(weights) != model.num_styles:
        names = ", ".join(f"{i}: {n}" for i, n in enumerate(model.style_names))
        raise _fail(f"--style-mix needs {model.num_styles} weight(s), one per style of the model ({names}); "
                    f"got {len(weights)}")
    return weights


@app.command()
def apply(
    model: str = typer.Argument(..., help="Shipped model name (see 'atelier models') or a .safetensors file."),
    inputs: List[Path] = typer.Argument(..., help="Image files and/or folders."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (same file names as the inputs)."),
    size: Optional[int] = typer.Option(None, help="Longest side of the outputs in pixels [default: input's]."),
    style_mix: Optional[str] = typer.Option(None, help="Multi-style models: one weight per style, e.g. 0.5,0.5,0,..."),
    style_index: Optional[int] = typer.Option(None, help="Multi-style models: the style to use [default: 0]."),
    preserve_color: str = typer.Option("none", help="none, luminance or histogram."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    batch_size: int = typer.Option(4, help="Images per forward pass (images of equal size are batched)."),
    max_pixels: Optional[int] = typer.Option(None, help="Refuse images larger than this many pixels."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Stylize images with a trained feed-forward model (one pass per image)."""
    from . import __version__
    from .errors import InputError
    from .feedforward import _inputs, apply_model, load_model

    try:
        net = load_model(model, device=device)
        weights = _style_weights(net, style_mix, style_index)
        n_files = len(_inputs(inputs))
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    meta = {"atelier_version": __version__, "method": "feedforward", "model": model,
            "model_sha256": net.card.get("sha256"), "style_weights": weights, "preserve_color": preserve_color}
    columns = [TextColumn("[bold]applying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, disable=quiet) as bar:
        task = bar.add_task("apply", total=n_files)

        def callback(path, error):
            bar.update(task, advance=1)
            if error is not None:
                bar.console.print(f"[bold red]skipped:[/] {error}", highlight=False, soft_wrap=True)

        try:
            res = apply_model(net, inputs, output, size=size, style_weights=weights, preserve_color=preserve_color,
                              precision=precision, batch_size=batch_size, max_pixels=max_pixels, metadata=meta,
                              callback=callback)
        except (InputError, ValueError) as e:
            raise _fail(str(e)) from None
    rate = res.pixels / 1e6 / res.seconds if res.seconds else float("nan")
    err.print(f"wrote {len(res.written)} image(s) to {output} ({res.seconds:.1f} s in the network, "
              f"{rate:.2f} MP/s)")
    if res.failed:
        raise _fail(f"{len(res.failed)} input(s) could not be read and were skipped: "
                    + "; ".join(msg for _, msg in res.failed[:5]))


@app.command()
def models(
    name: Optional[str] = typer.Argument(None, help="Show this model's whole model card."),
):
    """List the models shipped with atelier (or print one model card)."""
    from .errors import InputError
    from .feedforward import list_models, model_card

    if name is not None:
        try:
            if name == "adain":
                from .arbitrary import decoder_path

                out.print_json(decoder_path().with_suffix(".json").read_text())
                return
            out.print_json(json.dumps(model_card(name)))
        except InputError as e:
            raise _fail(str(e)) from None
        return
    table = Table("name", "styles", "width", "steps", "final content / style loss", "trained on",
                  title="shipped feed-forward models")
    for n in list_models():
        card = model_card(n)
        fl = card.get("final_losses", {})
        table.add_row(n, ", ".join(s["file"].rsplit(".", 1)[0] for s in card.get("styles", [])),
                      str(card["architecture"]["width"]), str(card.get("steps")),
                      f"{fl.get('content', float('nan')):.3f} / {fl.get('style', float('nan')):.3f}",
                      card.get("device", "?"))
    out.print(table)
    try:
        from .arbitrary import decoder_path

        card = json.loads(decoder_path().with_suffix(".json").read_text())
    except (InputError, OSError, ValueError):
        return
    fl = card.get("final_losses", {})
    out.print(f"AdaIN decoder [bold]adain[/] (any style image: atelier stylize --method adain): width "
              f"{card['architecture']['width']}, {card.get('steps')} steps on {card.get('device', '?')}, "
              f"{card['style_images']['count']} training styles; held out: "
              f"{', '.join(card['style_images'].get('held_out', [])) or 'none'}")


@app.command()
def export(
    model: str = typer.Argument(..., help="Shipped model name or a .safetensors file."),
    onnx: Path = typer.Option(..., "--onnx", help="Output .onnx file (dynamic batch, height and width)."),
    opset: int = typer.Option(17, help="ONNX opset version."),
):
    """Export a feed-forward model to ONNX (run it with onnxruntime or any ONNX runtime)."""
    from .errors import InputError
    from .export import export_onnx
    from .feedforward import load_model

    try:
        net = load_model(model, device="cpu")
        path = export_onnx(net, onnx, opset=opset)
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    inputs = "image (N,3,H,W)" + (f", style_weights (N,{net.num_styles})" if net.num_styles > 1 else "")
    err.print(f"wrote {path} (inputs: {inputs}; output: stylized (N,3,H,W), RGB in [0, 1])")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
