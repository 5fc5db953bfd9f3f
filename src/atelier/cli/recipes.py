"""``atelier train-recipe``: train one of the shipped models' recipes (:mod:`atelier.api.recipes`)
on this machine, from scratch, from trained weights or from its checkpoint (issue 23 item 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import app, err, _fail, _runtime
from .train import _budget, _run_training


@app.command("train-recipe")
def train_recipe(
    job: Optional[str] = typer.Argument(None, help="The recipe (see --list): adain, wct_relu4_1, ff_starry_night, "
                                        "gan64, ..."),
    pack: Optional[Path] = typer.Option(None, "--pack", "-p", help="The training pack folder (photos/, paintings/, "
                                        "styles/, manifest.json; scripts/make_training_pack.py)."),
    out_dir: Optional[Path] = typer.Option(None, "--output", "-o", help="Run folder; the job's files go to "
                                           "OUTPUT/JOB/."),
    init: Optional[Path] = typer.Option(None, help="Start a new run from these weights (.safetensors with its card), "
                                        "with a fresh optimizer."),
    init_shipped: bool = typer.Option(False, "--init-shipped", help="Start a new run from the weights Atelier ships "
                                      "for this recipe."),
    size: int = typer.Option(256, help="Crop side in pixels (the shipped models: 256)."),
    batch: int = typer.Option(8, help="Images per step (the shipped models: 8; gan64 always 64)."),
    steps: int = typer.Option(10**7, help="The most steps in all (a --time-budget usually stops first)."),
    checkpoint_every: int = typer.Option(25, help="Write the checkpoint every N steps (and on Ctrl-C)."),
    preview_every: int = typer.Option(100, help="Write a preview every N steps (0: never)."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the job's checkpoint in OUTPUT/JOB/."),
    time_budget: Optional[str] = typer.Option(None, help="Stop after this long (600, 8m, 1.5h), save and export."),
    list_recipes: bool = typer.Option(False, "--list", help="List the recipes and the shipped file each made."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Train a shipped model's recipe (the trainer, data and hyperparameters that made it) on a
    training pack: the same configuration as the GPU job (scripts/gpu_train.py), resumable."""
    from ..api.recipes import (JOBS, SHIPPED, RecipeSettings, add_pack_to_card, init_weights, recipe_config,
                               shipped_models_dir)
    from ..core.errors import InputError

    if list_recipes:
        for j in JOBS:
            typer.echo(f"{j:22s} {SHIPPED.get(j, '(a GAN run folder: atelier gan sample)')}")
        return
    if job is None or pack is None or out_dir is None:
        raise _fail("give a recipe, --pack and --output (or --list to see the recipes)")
    if job not in JOBS:
        raise _fail(f"unknown recipe {job!r}; one of {', '.join(JOBS)}")
    if not (pack / "manifest.json").is_file():
        raise _fail(f"{pack}: no training pack here (no manifest.json; make one with scripts/make_training_pack.py)")
    if init is not None and init_shipped:
        raise _fail("give --init or --init-shipped, not both")
    if (init is not None or init_shipped) and resume:
        raise _fail("--init and --init-shipped start a new run; --resume continues one: give one")
    if init_shipped and job not in SHIPPED:
        raise _fail(f"{job} has no shipped weights to start from; leave out --init-shipped")
    dev = str(_runtime(device, precision))
    settings = RecipeSettings(size=size, batch=batch, precision=precision, device=dev, steps=steps,
                              checkpoint_every=checkpoint_every, preview_every=preview_every)
    job_dir = out_dir / job
    created = not job_dir.exists()
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
        cfg, cls = recipe_config(job, pack, out_dir, settings)
        trainer = cls(cfg)
        paths = trainer.paths
        if resume and not paths["checkpoint"].is_file():
            raise InputError("no checkpoint to resume here; leave out --resume to start a new run", paths["checkpoint"])
        if not resume and paths["checkpoint"].is_file():
            raise InputError("a checkpoint of an earlier run is here; add --resume to continue it, or choose another "
                             "--output", paths["checkpoint"])
        if init is not None or init_shipped:
            init_weights(trainer, init if init is not None else shipped_models_dir() / SHIPPED[job])
    except (InputError, ValueError, OSError) as e:
        if created and job_dir.is_dir() and not any(job_dir.iterdir()):
            job_dir.rmdir()  # no partial output
        raise _fail(str(e)) from None
    keys = list(getattr(trainer, "LOSS_KEYS", ()))
    _run_training(trainer, paths, steps, resume, quiet,
                  lambda L: " ".join(f"{k} {L[k]:.3g}" for k in keys if k in L and k != "total"), _budget(time_budget))
    card = add_pack_to_card(paths["card"], pack)
    err.print(f"training pack named in {paths['card'].name}: {card['training_pack'].get('photos')} photos, "
              f"{card['training_pack'].get('paintings')} paintings")
