"""GAN art generation: ``atelier gan train | sample | evaluate`` (DCGAN, Radford et al. 2016, with
DiffAugment, Zhao et al. 2020)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import _check_json_output, _fail, _write_json_or_fail, app, err, out
from .launch import NNODES, NODE_RANK, NPROC, RAY_ADDRESS, RAY_WORKERS, RDZV_ENDPOINT, ray_launch_options
from .train import _budget, _launch_options, _relaunch, _run_training, _start_training

gan_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                      help="GAN art generation: train a DCGAN on paintings, sample it, measure it.")
app.add_typer(gan_app, name="gan")


@gan_app.command("train")
def gan_train(
    ctx: typer.Context,
    images: Path = typer.Argument(..., metavar="IMAGES_DIR", help="Folder of training paintings (searched recursively)."),
    output: Path = typer.Option(..., "--output", "-o", metavar="RUN_DIR",
                                help="Run folder (created): generator.safetensors/.json/.ckpt, samples/step-N.png."),
    image_size: int = typer.Option(64, help="Image side: 32, 64 (Radford et al.) or 128."),
    batch_size: int = typer.Option(32, help="Real (and generated) images per step."),
    steps: int = typer.Option(20_000, help="Generator steps in all (raise it with --resume to train longer)."),
    lr: float = typer.Option(2e-4, help="Generator Adam learning rate (betas 0.5, 0.999)."),
    d_lr: float = typer.Option(2e-4, help="Discriminator Adam learning rate."),
    z_dim: int = typer.Option(128, help="Latent size."),
    width: int = typer.Option(64, help="Generator channel base (64: the paper's 512 channels at 4 x 4)."),
    d_width: int = typer.Option(64, help="Discriminator channel base."),
    upsample: str = typer.Option("deconv", help="Generator upsampling: deconv (transposed convolutions, Radford et "
                                 "al.) or resize (nearest resize + 3x3 conv, Odena et al. 2016: no checkerboard)."),
    d_mbstd: bool = typer.Option(False, "--d-mbstd", help="Minibatch standard-deviation channel in the discriminator "
                                 "(Karras et al. 2018; against mode collapse)."),
    d_norm: str = typer.Option("batch", help="Discriminator normalization: batch (Radford et al.) or spectral "
                               "(Miyato et al. 2018)."),
    gan_loss: str = typer.Option("bce", help="bce (non-saturating, the paper's) or hinge."),
    d_steps: int = typer.Option(1, help="Discriminator steps per generator step."),
    r1: float = typer.Option(0.0, help="R1 penalty gamma (0: none)."),
    diff_augment: str = typer.Option("color,translation,cutout", help="DiffAugment ops ('none' for none)."),
    ema_decay: float = typer.Option(0.999, help="EMA decay of the generator weights (the exported generator)."),
    holdout_every: int = typer.Option(10, help="Hold out every k-th painting for 'gan evaluate' (0: none)."),
    seed: int = typer.Option(0, help="Random seed (weights, crops, latents, augmentation)."),
    checkpoint_every: int = typer.Option(500, help="Write the checkpoint every N steps (and on Ctrl-C)."),
    sample_every: int = typer.Option(500, help="Write an 8 x 8 sample grid to RUN_DIR/samples every N steps (0: never)."),
    precision: str = typer.Option("fp32", help="fp32, bf16 or auto."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN_DIR's checkpoint."),
    time_budget: Optional[str] = typer.Option(None, help="Stop after this long (600, 8m, 1.5h), save and export."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    nproc: Optional[int] = NPROC,
    nnodes: int = NNODES,
    node_rank: int = NODE_RANK,
    rdzv_endpoint: Optional[str] = RDZV_ENDPOINT,
    ray_workers: Optional[int] = RAY_WORKERS,
    ray_address: Optional[str] = RAY_ADDRESS,
):
    """Train a DCGAN on a folder of paintings (DiffAugment, generator EMA; --nproc: data-parallel,
    the batch norms synchronized over the global batch)."""
    from ..methods.gan.train import GANTrainConfig, GANTrainer

    launch = _launch_options(ctx, nproc, nnodes, node_rank, rdzv_endpoint, batch_size)
    on_ray = ray_launch_options(ctx, ray_workers, ray_address, nproc, batch_size, device)
    if (launch is not None or on_ray is not None) and d_mbstd:
        raise _fail("--d-mbstd does not run on several processes (the minibatch standard deviation of a share is "
                    "not the global batch's); leave out --nproc/--ray-workers or --d-mbstd")

    if not output.resolve().parent.is_dir():
        raise _fail(f"{output}: the folder that should hold the run folder does not exist; create it first")
    if output.exists() and not output.is_dir():
        raise _fail(f"{output}: exists and is not a folder; give a run folder")
    if not images.is_dir():
        raise _fail(f"{images}: not a folder of images")
    budget = _budget(time_budget)
    created = not output.exists()
    output.mkdir(exist_ok=True)
    policy = "" if diff_augment.strip().lower() == "none" else diff_augment
    try:
        paths, trainer = _start_training(output / "generator.safetensors", resume, lambda out_: GANTrainer(
            GANTrainConfig(images=str(images), out=out_, image_size=image_size, batch_size=batch_size, steps=steps,
                           lr=lr, d_lr=d_lr, z_dim=z_dim, width=width, d_width=d_width, d_norm=d_norm,
                           upsample=upsample, d_mbstd=d_mbstd,
                           gan_loss=gan_loss, d_steps=d_steps, r1=r1, diff_augment=policy, ema_decay=ema_decay,
                           holdout_every=holdout_every, seed=seed, checkpoint_every=checkpoint_every,
                           preview_every=sample_every, precision=precision, device=device)), steps, (), device, precision)
    except typer.Exit:
        if created:  # no partial output: the run folder goes again when the options are refused
            output.rmdir()
        raise
    _relaunch(launch, on_ray, output)  # checked here (exit 2 with one line); the ranks under torchrun or Ray
    _run_training(trainer, paths, steps, resume, quiet,
                  lambda L: f"G {L['g']:.3g} D {L['d']:.3g} acc real {L['d_real_acc']:.2f} fake {L['d_fake_acc']:.2f}"
                  + (f" r1 {L['r1']:.3g}" if "r1" in L else ""), budget)


def _save_gif(frames, path: Path, fps: float) -> None:
    from PIL import Image

    from ..core.files import atomic_write

    ims = [Image.fromarray(f.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()) for f in frames]
    with atomic_write(path) as fh:
        ims[0].save(fh, format="GIF", save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)


@gan_app.command("sample")
def gan_sample(
    run: str = typer.Argument(..., metavar="RUN_DIR", help="Run folder, generator .safetensors, or a shipped name."),
    output: Path = typer.Option(..., "--output", "-o", help="Grid image (.png), or .gif with --interpolate."),
    n: int = typer.Option(64, "-n", help="Number of samples in the grid."),
    seed: int = typer.Option(0, help="Seed of the latent vectors (same seed, same images)."),
    truncation: Optional[float] = typer.Option(None, help="Redraw latent coordinates beyond this (e.g. 1.0): "
                                               "more typical, less varied images."),
    interpolate: bool = typer.Option(False, "--interpolate", help="A latent walk between --keys seeded points "
                                     "instead of independent samples: a grid (one row per segment) or a GIF."),
    keys: int = typer.Option(4, help="With --interpolate: latent points to walk through."),
    steps: int = typer.Option(8, help="With --interpolate: images per segment."),
    scale: int = typer.Option(2, help="Enlarge each image by this factor (nearest neighbour) for viewing."),
    fps: float = typer.Option(12.0, help="GIF frames per second."),
):
    """Sample a trained generator into a grid (seeded), or walk its latent space (--interpolate)."""
    import torch.nn.functional as F

    from ..io import images as img
    from ..core.errors import InputError
    from ..methods.gan.sample import image_grid, interpolate as walk, load_generator, sample

    if n < 1 or keys < 2 or steps < 1 or scale < 1 or not fps > 0:
        raise _fail("-n, --steps and --scale must be >= 1, --keys >= 2 and --fps > 0")
    gif = output.suffix.lower() == ".gif"
    if gif and not interpolate:
        raise _fail(f"{output}: a GIF is written only with --interpolate; use .png for a grid")
    try:
        if not gif:
            img.check_output_path(output)
        elif not output.resolve().parent.is_dir():
            raise InputError("the output folder does not exist; create it first", output)
        g = load_generator(run)
        x = walk(g, keys, steps, seed, truncation, loop=gif) if interpolate else sample(g, n, seed, truncation)
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    if scale > 1:
        x = F.interpolate(x, scale_factor=scale, mode="nearest")
    meta = {"generator": g.card.get("weights_file"), "sha256": g.card.get("sha256"), "seed": seed,
            "truncation": truncation, **({"interpolate": {"keys": keys, "steps": steps}} if interpolate else {"n": n})}
    if gif:
        _save_gif(x, output, fps)
    else:
        grid = image_grid(x, nrow=steps if interpolate else None)
        try:
            img.save_image(grid, output, metadata=meta)
        except InputError as e:
            raise _fail(str(e)) from None
    err.print(f"wrote {output} ({len(x)} image(s) of {g.size} px from {g.card.get('weights_file')}, "
              f"{g.card.get('steps')} steps)")


@gan_app.command("evaluate")
def gan_evaluate(
    run: str = typer.Argument(..., metavar="RUN_DIR", help="Run folder, generator .safetensors, or a shipped name."),
    images: Optional[Path] = typer.Option(None, help="Training paintings [default: the folder in the model card]."),
    n: int = typer.Option(256, "-n", help="Samples to measure (>= 16)."),
    seed: int = typer.Option(0, help="Seed of the samples."),
    truncation: Optional[float] = typer.Option(None, help="Truncation of the samples' latents."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the numbers to this JSON file."),
    grid: Optional[Path] = typer.Option(None, help="Memorization grid PNG (16 samples, each beside its nearest "
                                        "training painting) [default: RUN_DIR/memorization.png for a run folder]."),
):
    """KID on VGG19 features (not Inception) against the training and held-out paintings, diversity
    (mode collapse, gate >= 0.8x the real paintings') and nearest training images (memorization)."""
    from rich.table import Table

    from ..analysis.gan_eval import evaluate_generator
    from ..io import images as img
    from ..core.errors import InputError

    if json_path is not None:
        _check_json_output(json_path, [], False, "--json")
    if grid is None and Path(run).is_dir():
        grid = Path(run) / "memorization.png"
    try:
        if grid is not None:
            img.check_output_path(grid)
        report, picture = evaluate_generator(run, images, n, seed, truncation,
                                             progress=lambda m: err.print(f"[dim]{m}[/]", highlight=False))
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    table = Table("measure", "value", "reference", title=f"{report['generator']} ({report['generator_steps']} steps)")
    base = report.get("kid_real_baseline", {}).get("mean")
    table.add_row("KID vs training paintings (VGG19)", f"{report['kid_train']['mean']:.4f} ± {report['kid_train']['std']:.4f}",
                  f"real held-out vs training: {base:.4f}" if base is not None else "")
    if "kid_held_out" in report:
        table.add_row("KID vs held-out paintings (VGG19)",
                      f"{report['kid_held_out']['mean']:.4f} ± {report['kid_held_out']['std']:.4f}", "")
    d = report["diversity"]
    table.add_row("diversity (samples / real)", f"{d['ratio']:.3f}", f">= {d['gate']} {'passed' if d['passed'] else 'FAILED'}")
    mem = report["memorization"]
    if "ratio" in mem:
        table.add_row("nearest-training distance (samples / held-out)", f"{mem['ratio']:.3f}",
                      f">= {mem['gate']} {'passed' if mem['passed'] else 'FAILED (copies?)'}")
    out.print(table)
    if json_path is not None:
        _write_json_or_fail(json_path, report)
    if grid is not None:
        img.save_image(picture, grid, metadata={"generator": report["generator"], "seed": seed})
        err.print(f"memorization grid: {grid}")
