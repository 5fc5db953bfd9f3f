"""Training commands: train (feed-forward networks), train-adain (AdaIN decoders), train-decoders
(WCT inversion decoders), train-contours (the sketch's contour net), train-paint (the painting actor)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


from .common import app, err, _fail, _floats, _input_files, _refuse_unused, _runtime
from .launch import (NNODES, NODE_RANK, NPROC, NPROC_CPU, RAY_ADDRESS, RAY_WORKERS, RDZV_ENDPOINT,
                     launch_options as _launch_options, ray_launch_options, run_ray_train, run_torchrun)


def _check_training_output(output: Path, resume: bool, steps: int = 1, inputs=()) -> dict:
    """The output files of a training run; refuses to overwrite an earlier run's checkpoint or an
    input file, and a new run of fewer than one step (it would export an untrained model)."""
    from ..core.errors import InputError
    from ..core.files import check_not_input
    from ..training.cards import output_paths

    if not resume and steps < 1:
        raise InputError(f"--steps must be at least 1 for a new run, got {steps}")
    paths = output_paths(output)
    for key in ("weights", "card", "checkpoint", "preview"):
        if key in paths:
            check_not_input(paths[key], inputs, False, "--output")
    if not paths["weights"].resolve().parent.is_dir():
        raise InputError("the output folder does not exist; create it first", paths["weights"])
    if not resume and paths["checkpoint"].exists():
        raise InputError("a checkpoint of an earlier run is here; add --resume to continue it, or choose "
                         "another output name", paths["checkpoint"])
    return paths


def _start_training(output: Path, resume: bool, build, steps: int = 1, inputs=(), device="auto",
                    precision="auto"):
    """The output paths and ``build(weights_path)``, the trainer; bad options exit 2 with the message."""
    from ..core.errors import InputError

    device = str(_runtime(device, precision))  # resolved once, passed down
    try:
        paths = _check_training_output(output, resume, steps, inputs)
        return paths, build(str(paths["weights"]))
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None


def _budget(text: Optional[str]) -> Optional[float]:
    """``--time-budget``: seconds, or a number with s, m or h (``90s``, ``8m``, ``1.5h``); None: none."""
    if not text:
        return None
    t = text.strip().lower()
    unit = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(t[-1:], None)
    try:
        value = float(t[:-1] if unit else t) * (unit or 1.0)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise _fail(f"--time-budget expects a positive duration like 600, 8m or 1.5h, got {text!r}")
    return value


def _relaunch(launch: Optional[list], on_ray: Optional[dict], output: Path) -> None:
    """After the checks in this process (bad options exit 2 with one line): the ranks under
    torchrun or Ray Train, exiting with their code; nothing when this process trains."""
    if launch is not None:
        raise typer.Exit(run_torchrun(launch))
    if on_ray is not None:
        raise typer.Exit(run_ray_train(on_ray, f"atelier-{output.stem}"))


def _run_training(trainer, paths: dict, steps: int, resume: bool, quiet: bool, describe,
                  time_budget: Optional[float] = None) -> None:
    """Shared by the training commands: progress bar, Ctrl-C, skipped files, time budget, summary."""
    from ..core.errors import InputError

    if not getattr(trainer, "is_main", True):  # a torchrun rank other than 0: rank 0 reports
        quiet = True

    datasets = [d for d in (trainer.dataset, getattr(trainer, "style_dataset", None))
                if d is not None and hasattr(d, "skipped")]
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
            card = trainer.train(callback=callback, resume=resume, time_budget=time_budget)
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
    if not getattr(trainer, "is_main", True):
        return
    fl = card.get("final_losses", {})
    stopped = "; stopped by the time budget, continue with --resume" if card.get("stopped_by") == "time budget" else ""
    err.print(f"wrote {paths['weights']} and {paths['card'].name} ({card['steps']} steps, "
              f"{card['wall_seconds']:.0f} s; " + ", ".join(f"{k} {v:.3g}" for k, v in fl.items() if k != "total")
              + stopped + ")")


@app.command()
def train(
    ctx: typer.Context,
    style: List[Path] = typer.Option(..., "--style", "-s", metavar="PATH", help="Style image; repeat for a multi-style network."),
    content_dir: List[Path] = typer.Option(..., "--content-dir", "-c",
                                           metavar="PATH", help="Folder of training photos (or a file); repeat for several."),
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
    temporal: bool = typer.Option(False, "--temporal", help="Also teach stability on video: a temporal loss on "
                                  "photo pairs with a known synthetic motion (no video data needed)."),
    temporal_weight: float = typer.Option(3.0, help="Weight of that temporal loss (with --temporal)."),
    augment_corruptions: bool = typer.Option(False, "--augment-corruptions",
                                             help="Feed the network JPEG-compressed, noisy or blurred crops while the "
                                                  "content target stays clean (results hold up on phone photos)."),
    augment_share: float = typer.Option(0.75, help="Share of the crops corrupted (with --augment-corruptions)."),
    adversarial: bool = typer.Option(False, "--adversarial", help="Add a PatchGAN discriminator (spectral norm) "
                                     "that judges patches of the painting vs. stylized photos, and an adversarial loss."),
    gan_loss: str = typer.Option("hinge", help="With --adversarial: hinge or bce (non-saturating)."),
    adv_weight: float = typer.Option(0.1, help="With --adversarial: weight of the adversarial loss."),
    adv_warmup: int = typer.Option(0, help="With --adversarial: steps of plain perceptual training first."),
    d_lr: float = typer.Option(2e-4, help="With --adversarial: discriminator learning rate."),
    d_steps: int = typer.Option(1, help="With --adversarial: discriminator steps per network step."),
    r1: float = typer.Option(0.0, help="With --adversarial: R1 penalty gamma on real patches (0: none)."),
    d_scales: int = typer.Option(1, help="With --adversarial: discriminator scales (multi-scale PatchGAN)."),
    d_width: int = typer.Option(32, help="With --adversarial: discriminator channels (first layer)."),
    patch_size: int = typer.Option(0, help="With --adversarial: side of the judged patches (0: half the crop)."),
    diff_augment: str = typer.Option("cutout", help="With --adversarial: DiffAugment ops on the patches "
                                     "(color,translation,cutout; 'none')."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT's checkpoint (.ckpt)."),
    time_budget: Optional[str] = typer.Option(None, help="Stop after this long (600, 8m, 1.5h), save and export."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    nproc: Optional[int] = NPROC,
    nnodes: int = NNODES,
    node_rank: int = NODE_RANK,
    rdzv_endpoint: Optional[str] = RDZV_ENDPOINT,
    ray_workers: Optional[int] = RAY_WORKERS,
    ray_address: Optional[str] = RAY_ADDRESS,
):
    """Train a feed-forward network on photos (Johnson et al. 2016; several --style: Dumoulin et al. 2017;
    --adversarial: plus a PatchGAN discriminator, Isola et al. 2017 / Li & Wand 2016)."""
    from ..methods.feedforward.train import FeedForwardTrainer, TrainConfig

    adv_options = ("gan_loss", "adv_weight", "adv_warmup", "d_lr", "d_steps", "r1", "d_scales", "d_width",
                   "patch_size", "diff_augment")
    if not adversarial:
        _refuse_unused(ctx, adv_options, reason="applies only with --adversarial; add it or leave the option out")
    launch = _launch_options(ctx, nproc, nnodes, node_rank, rdzv_endpoint, batch_size)
    on_ray = ray_launch_options(ctx, ray_workers, ray_address, nproc, batch_size, device)
    jitter = _jitter(scale_jitter)
    common = dict(styles=[str(p) for p in style], content=[str(p) for p in content_dir], image_size=image_size,
                  batch_size=batch_size, steps=steps, lr=lr, content_weight=content_weight, style_weight=style_weight,
                  tv_weight=tv_weight, style_scale=style_scale, width=width, scale_jitter=jitter, precision=precision,
                  device=device, seed=seed, checkpoint_every=checkpoint_every, preview_every=preview_every,
                  init_from=str(init_from) if init_from else None, temporal_weight=temporal_weight if temporal else 0.0,
                  augment_corruptions=augment_share if augment_corruptions else 0.0)
    if adversarial:
        from ..methods.feedforward.adversarial import AdversarialTrainConfig, AdversarialTrainer

        policy = "" if diff_augment.strip().lower() == "none" else diff_augment
        build = lambda out: AdversarialTrainer(AdversarialTrainConfig(  # noqa: E731
            out=out, **common, gan_loss=gan_loss, adv_weight=adv_weight, adv_warmup=adv_warmup, d_lr=d_lr,
            d_steps=d_steps, r1=r1, d_scales=d_scales, d_width=d_width, patch_size=patch_size, diff_augment=policy))
    else:
        build = lambda out: FeedForwardTrainer(TrainConfig(out=out, **common))  # noqa: E731
    paths, trainer = _start_training(output, resume, build, steps,
                                     _input_files(style=list(style), content=[p for p in content_dir if p.is_file()]),
                                     device, precision)
    _relaunch(launch, on_ray, output)

    def describe(L):
        text = f"content {L['content']:.3g} style {L['style']:.3g} tv {L['tv']:.3g}"
        text += f" temporal {L['temporal']:.3g}" if "temporal" in L else ""
        if "adv" in L:
            text += (f" adv {L['adv']:.3g} D {L['d']:.3g} acc real {L['d_real_acc']:.2f} fake {L['d_fake_acc']:.2f}"
                     if trainer.step > adv_warmup else " (adversarial warm-up)")
        return text

    _run_training(trainer, paths, steps, resume, quiet, describe, _budget(time_budget))


@app.command("train-adain")
def train_adain(
    ctx: typer.Context,
    content_dir: List[Path] = typer.Option(..., "--content-dir", "-c",
                                           metavar="PATH", help="Folder of content photos (or a file); repeat for several."),
    style_dir: List[Path] = typer.Option(..., "--style-dir", "-s",
                                         metavar="PATH", help="Folder of style images (or a file); repeat for several."),
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
    identity_fraction: float = typer.Option(0.25, help="Share of each batch whose style is the photo itself "
                                            "(teaches the decoder to reconstruct; 0: the paper)."),
    pixel_weight: float = typer.Option(1.0, help="Pixel loss weight on those reconstruction pairs."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    seed: int = typer.Option(0, help="Random seed (weights, crops)."),
    checkpoint_every: int = typer.Option(500, help="Write the checkpoint every N steps (and on Ctrl-C)."),
    preview_every: int = typer.Option(500, help="Write OUTPUT.preview.png every N steps (0: never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT's checkpoint (.ckpt)."),
    time_budget: Optional[str] = typer.Option(None, help="Stop after this long (600, 8m, 1.5h), save and export."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    nproc: Optional[int] = NPROC,
    nnodes: int = NNODES,
    node_rank: int = NODE_RANK,
    rdzv_endpoint: Optional[str] = RDZV_ENDPOINT,
    ray_workers: Optional[int] = RAY_WORKERS,
    ray_address: Optional[str] = RAY_ADDRESS,
):
    """Train an AdaIN decoder for arbitrary styles (Huang & Belongie 2017) on photos and style images."""
    from ..methods.arbitrary.train import AdaINTrainConfig, AdaINTrainer

    launch = _launch_options(ctx, nproc, nnodes, node_rank, rdzv_endpoint, batch_size)
    on_ray = ray_launch_options(ctx, ray_workers, ray_address, nproc, batch_size, device)
    jitter = _jitter(scale_jitter)
    paths, trainer = _start_training(output, resume, lambda out: AdaINTrainer(AdaINTrainConfig(
        content=[str(p) for p in content_dir], styles=[str(p) for p in style_dir], out=out, image_size=image_size,
        batch_size=batch_size, steps=steps, lr=lr, lr_decay=lr_decay, content_weight=content_weight,
        style_weight=style_weight, width=width, scale_jitter=jitter, precision=precision, device=device, seed=seed,
        checkpoint_every=checkpoint_every, preview_every=preview_every, identity_fraction=identity_fraction,
        pixel_weight=pixel_weight)), steps,
        _input_files(content=[p for p in content_dir if p.is_file()], style=[p for p in style_dir if p.is_file()]),
        device, precision)
    _relaunch(launch, on_ray, output)
    _run_training(trainer, paths, steps, resume, quiet,
                  lambda L: f"content {L['content']:.3g} style {L['style']:.3g} pixel {L['pixel']:.3g}",
                  _budget(time_budget))


@app.command("train-decoders")
def train_decoders(
    ctx: typer.Context,
    content_dir: List[Path] = typer.Option(..., "--content-dir", "-c",
                                           metavar="PATH", help="Folder of training images (photos and paintings); repeat for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for decoder-relu{k}_1.safetensors (+ cards); "
                                "use it with 'stylize --method wct --decoder FOLDER'."),
    layers: str = typer.Option("relu1_1,relu2_1,relu3_1,relu4_1", help="Layers to train decoders for, in order."),
    width: float = typer.Option(1.0, help="Decoder channel multiplier (1.0 mirrors VGG19)."),
    image_size: int = typer.Option(256, help="Side of the square crops in pixels."),
    batch_size: int = typer.Option(8, help="Images per step."),
    steps: int = typer.Option(20_000, help="Optimizer steps per decoder (raise it with --resume to train longer)."),
    lr: float = typer.Option(2e-4, help="Adam learning rate."),
    lr_decay: float = typer.Option(5e-5, help="Learning rate of step k: lr / (1 + lr_decay * k)."),
    pixel_weight: float = typer.Option(1.0, help="Pixel reconstruction loss weight."),
    feature_weight: float = typer.Option(1.0, help="Feature reconstruction loss weight."),
    scale_jitter: str = typer.Option("1,1.5", help="Random zoom range of the crops, lo,hi ('none' for none)."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    seed: int = typer.Option(0, help="Random seed (weights, crops)."),
    checkpoint_every: int = typer.Option(500, help="Write the checkpoint every N steps (and on Ctrl-C)."),
    preview_every: int = typer.Option(500, help="Write a preview (image | reconstruction) every N steps (0: never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue each decoder from its checkpoint (.ckpt)."),
    time_budget: Optional[str] = typer.Option(None, help="Time for each decoder (600, 8m, 1.5h), then save and export."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    nproc: Optional[int] = NPROC,
    nnodes: int = NNODES,
    node_rank: int = NODE_RANK,
    rdzv_endpoint: Optional[str] = RDZV_ENDPOINT,
    ray_workers: Optional[int] = RAY_WORKERS,
    ray_address: Optional[str] = RAY_ADDRESS,
):
    """Train the inversion decoders of universal style transfer (WCT, Li et al. 2017): each learns to
    turn one VGG19 layer's features back into the image (pixel + feature loss, no style)."""
    from ..methods.arbitrary.train_decoders import DecoderTrainConfig, InversionTrainer
    from ..networks.decoders import DECODER_LAYERS

    names = [n.strip() for n in layers.split(",") if n.strip()]
    bad = [n for n in names if n not in DECODER_LAYERS]
    if bad or not names:
        raise _fail(f"--layers must name some of {', '.join(DECODER_LAYERS)}, got {layers!r}")
    if not output.is_dir():
        raise _fail(f"{output}: the output folder does not exist; create it first")
    launch = _launch_options(ctx, nproc, nnodes, node_rank, rdzv_endpoint, batch_size)
    on_ray = ray_launch_options(ctx, ray_workers, ray_address, nproc, batch_size, device)
    jitter = _jitter(scale_jitter)
    budget = _budget(time_budget)
    _relaunch(launch, on_ray, output)
    for layer in names:
        if not quiet:
            err.print(f"[bold]{layer}[/] decoder")
        paths, trainer = _start_training(output / f"decoder-{layer}.safetensors", resume,
                                         lambda out, layer=layer: InversionTrainer(DecoderTrainConfig(
            content=[str(p) for p in content_dir], out=out, layer=layer, width=width, image_size=image_size,
            batch_size=batch_size, steps=steps, lr=lr, lr_decay=lr_decay, pixel_weight=pixel_weight,
            feature_weight=feature_weight, scale_jitter=jitter, precision=precision, device=device, seed=seed,
            checkpoint_every=checkpoint_every, preview_every=preview_every)), steps,
            _input_files(content=[p for p in content_dir if p.is_file()]), device, precision)
        _run_training(trainer, paths, steps, resume, quiet,
                      lambda L: f"pixel {L['pixel']:.3g} feature {L['feature']:.3g}", budget)


def _jitter(text: str) -> Optional[Tuple[float, float]]:
    if text.strip().lower() == "none":
        return None
    lohi = _floats(text, "--scale-jitter")
    if len(lohi) != 2:
        raise _fail(f"--scale-jitter expects two numbers lo,hi, got {text!r}")
    return (lohi[0], lohi[1])


@app.command("train-contours")
def train_contours(
    ctx: typer.Context,
    bsds: Path = typer.Option(..., "--bsds", metavar="DIR", help="The BSDS500 folder (images/ and groundTruth/)."),
    output: Path = typer.Option(..., "--output", "-o", help="Trained contour net (.safetensors; card .json beside "
                                "it); use it with 'atelier sketch --contours FILE'."),
    cache: Optional[Path] = typer.Option(None, help="Folder of the per-pixel VGG19 feature cache (built once, "
                                         "resumable) [default: OUTPUT's name + '.cache' beside it]."),
    hidden: int = typer.Option(32, help="Channels of the hypercolumn head."),
    batch_size: int = typer.Option(8, help="Cached photos per step."),
    steps: int = typer.Option(3000, help="Optimizer steps in all (raise it with --resume to train longer)."),
    lr: float = typer.Option(3e-3, help="Adam learning rate."),
    label_threshold: float = typer.Option(0.5, help="Share of the annotators that makes a pixel a boundary."),
    seed: int = typer.Option(0, help="Random seed."),
    checkpoint_every: int = typer.Option(500, help="Write the checkpoint every N steps (and on Ctrl-C)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint (.ckpt)."),
    time_budget: Optional[str] = typer.Option(None, help="Training time (600, 8m, 1.5h), then save and export."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    nproc: Optional[int] = NPROC_CPU,
    nnodes: int = NNODES,
    node_rank: int = NODE_RANK,
    rdzv_endpoint: Optional[str] = RDZV_ENDPOINT,
    ray_workers: Optional[int] = RAY_WORKERS,
    ray_address: Optional[str] = RAY_ADDRESS,
):
    """Train the contour net of 'atelier sketch' on BSDS500's human boundary drawings (HED-style
    side outputs on the frozen VGG19, Xie & Tu 2015): encode the train split once into a feature
    cache, then train the heads with the class-balanced loss (--nproc: the cache is built first,
    then the ranks train on it)."""
    import os

    from ..core.errors import InputError
    from ..encoders.vgg import get_encoder
    from ..methods.sketch.data import build_feature_cache
    from ..methods.sketch.train import ContourTrainConfig, ContourTrainer

    launch = _launch_options(ctx, nproc, nnodes, node_rank, rdzv_endpoint, batch_size)
    on_ray = ray_launch_options(ctx, ray_workers, ray_address, nproc, batch_size, "cpu")
    budget = _budget(time_budget)
    if not (bsds / "images").is_dir():
        raise _fail(f"{bsds}: not a BSDS500 folder (no images/ inside)")
    folder = cache if cache is not None else output.with_name(output.stem + ".cache")
    rank = launch is None and os.environ.get("WORLD_SIZE") not in (None, "1")  # a torchrun rank: the cache is built
    try:
        paths = _check_training_output(output, resume, steps, [("--bsds", bsds)])
        if rank:
            from ..methods.sketch.data import FeatureCache

            feats = FeatureCache(folder)
        else:
            with Progress(TextColumn("[bold]encoding BSDS500"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err, disable=quiet) as bar:
                task = bar.add_task("cache", total=None)
                feats = build_feature_cache(bsds, folder, get_encoder(), "train", flips=True, seed=seed,
                                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    except KeyboardInterrupt:
        err.print(f"interrupted; the feature cache in {folder} keeps what was encoded and is continued next time")
        raise typer.Exit(130)
    except (InputError, ValueError, OSError) as e:
        raise _fail(str(e)) from None
    try:
        cfg = ContourTrainConfig(cache=str(folder), out=str(paths["weights"]), hidden=hidden, batch_size=batch_size,
                                 steps=steps, lr=lr, label_threshold=label_threshold, seed=seed,
                                 checkpoint_every=checkpoint_every)
        trainer = ContourTrainer(cfg, cache=feats)
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    _relaunch(launch, on_ray, output)  # checked and the cache built here; the ranks open it
    _run_training(trainer, paths, steps, resume, quiet,
                  lambda losses: " ".join(f"{k} {v:.4f}" for k, v in losses.items()), time_budget=budget)


@app.command("train-paint")
def train_paint(
    photos: List[Path] = typer.Option(..., "--photos", "-p", metavar="PATH",
                                      help="Folder of training photos (or a file); repeat for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Trained painting actor (.safetensors; card .json "
                                "beside it); use it with 'atelier paint --model FILE'."),
    image_size: int = typer.Option(64, help="Canvas side while training, in pixels."),
    batch_size: int = typer.Option(8, help="Canvases per step."),
    steps: int = typer.Option(5000, help="Episodes in all (raise it with --resume to train longer)."),
    episode_steps: int = typer.Option(8, help="Actor steps per episode (5 strokes each)."),
    warmup_max: int = typer.Option(16, help="Up to this many untrained steps first, so that the actor also "
                                   "learns on canvases that are already painted."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    error_input: bool = typer.Option(True, "--error-input/--no-error-input",
                                     help="The actor also sees target - canvas."),
    seed: int = typer.Option(0, help="Random seed (weights, crops)."),
    checkpoint_every: int = typer.Option(50, help="Write the checkpoint every N steps (and on Ctrl-C)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT's checkpoint (.ckpt)."),
    time_budget: Optional[str] = typer.Option(None, help="Stop after this long (600, 8m, 1.5h), save and export."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Train the painting actor of 'atelier paint' (model-based, through the differentiable stroke
    renderer, after Huang et al. 2019, Learning to Paint; see docs/paint.md) on photos."""
    from ..methods.paint.train import PaintTrainConfig, PaintTrainer

    paths, trainer = _start_training(output, resume, lambda out: PaintTrainer(PaintTrainConfig(
        photos=[str(p) for p in photos] if len(photos) > 1 else str(photos[0]), out=out, image_size=image_size,
        batch_size=batch_size, steps=steps, episode_steps=episode_steps, warmup_max=warmup_max, lr=lr,
        error_input=error_input, seed=seed, checkpoint_every=checkpoint_every)), steps,
        _input_files(photos=[p for p in photos if p.is_file()]), "cpu", "fp32")
    _run_training(trainer, paths, steps, resume, quiet,
                  lambda L: f"reward {L['reward']:.3f} l2 {L['l2']:.4f}", _budget(time_budget))
