"""The training recipes of the shipped models (issue 23 item 7): which trainer, data and
hyperparameters made each learned model that Atelier ships, as library code.

One recipe per job name (:data:`JOBS`): ``adain`` and ``adain_w05`` (AdaIN decoders, Huang &
Belongie 2017: 256 px crops, batch 8, Adam 1e-4 with the reference decay, style weight 10, a
quarter of each batch in the reconstruction case); ``wct_relu1_1`` ... ``wct_relu5_1`` (WCT's
inversion decoders, Li et al. 2017; relu5_1 at width 0.5); ``ff_<style>`` (per-style feed-forward
networks, Johnson et al. 2016, width 0.5) and ``ff_multi10`` (ten paintings in one network,
Dumoulin et al. 2017); ``ff_starry_night_t3``/``_t10`` (with the synthetic-motion temporal loss);
``gan64`` (a DCGAN at 64 px, Radford et al. 2016, with DiffAugment and an EMA generator);
``paint_actor`` (the painting agent of ``atelier paint``, model-based through the soft
rasterizer after Huang et al. 2019; on a GPU with batch 64, the shipped one trained batch 8 on a CPU).

The data is the compact training pack of ``scripts/make_training_pack.py``: a folder with
``photos/``, ``paintings/``, ``styles/`` and ``manifest.json``. ``atelier train-recipe JOB``
trains one recipe on this machine (resumable, time budget); ``scripts/gpu_train.py`` runs many
of them at once on a lent GPU. Both call :func:`recipe_config`.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Optional, Union

__all__ = ["JOBS", "SHARES", "SHIPPED", "shipped_models_dir", "FF_STYLES", "WCT_WIDTH", "FF_TEMPORAL",
           "RecipeSettings", "recipe_config", "init_weights", "add_pack_to_card", "plan"]

PathLike = Union[str, pathlib.Path]
FF_STYLES = ("starry_night", "great_wave", "the_scream", "udnie")
WCT_WIDTH = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 0.5}
#: Temporally stable feed-forward models (issue 13): job -> (style, weight of the synthetic-motion temporal loss).
FF_TEMPORAL = {"ff_starry_night_t3": ("starry_night", 3.0), "ff_starry_night_t10": ("starry_night", 10.0)}
JOBS = tuple(["adain", "adain_w05"] + [f"wct_{k}" for k in WCT_WIDTH] + [f"ff_{s}" for s in FF_STYLES]
             + ["ff_multi10"] + list(FF_TEMPORAL) + ["gan64", "paint_actor"])
#: Relative share of the GPU time of each job in a shared run (larger networks and harder objectives get more).
SHARES = {"adain": 3.0, "adain_w05": 3.0, "wct_relu1_1": 0.25, "wct_relu2_1": 0.5, "wct_relu3_1": 1.0,
          "wct_relu4_1": 1.5, "wct_relu5_1": 1.5, "ff_multi10": 2.0, **{f"ff_{s}": 1.0 for s in FF_STYLES},
          **{j: 1.5 for j in FF_TEMPORAL}, "gan64": 2.0, "paint_actor": 2.0}
#: The shipped weights each job made (relative to the package's models folder); ``init_shipped`` starts there.
SHIPPED = {"adain": "adain/decoder-w1.safetensors", "adain_w05": "adain/decoder.safetensors",
           **{f"wct_{k}": f"wct/decoder-{k}.safetensors" for k in WCT_WIDTH},
           **{f"ff_{s}": f"{s}.safetensors" for s in FF_STYLES}, "ff_multi10": "multi10.safetensors",
           **{j: f"{s}.safetensors" for j, (s, _) in FF_TEMPORAL.items()}, "paint_actor": "paint/paint_actor.safetensors"}


def shipped_models_dir() -> pathlib.Path:
    """The package's models folder, which :data:`SHIPPED`'s paths are relative to."""
    from ..training.zoo import shipped_dir

    return shipped_dir()


@dataclass
class RecipeSettings:
    """What varies between machines (the recipe itself does not): crop side ``size`` in px
    (256 as shipped), ``batch`` per step (8), ``precision``, ``device``, ``steps`` (the most
    steps; a time budget usually stops first), ``checkpoint_every`` and ``preview_every``
    (steps; 0 = never), ``smoke`` (a CPU check: the DCGAN at 32 px, batch 4)."""

    size: int = 256
    batch: int = 8
    precision: str = "auto"
    device: str = "auto"
    steps: int = 10**7
    checkpoint_every: int = 0
    preview_every: int = 2000
    smoke: bool = False


def recipe_config(job: str, pack: PathLike, out_dir: PathLike, settings: Optional[RecipeSettings] = None):
    """The training config and trainer class of the recipe ``job``, writing under ``out_dir/job``.

    Args:
        job: one of :data:`JOBS`.
        pack: the training pack folder (``photos/``, ``paintings/``, ``styles/``).
        out_dir: the run folder; the job's files go to ``out_dir/job/``.
        settings: the machine's settings (default :class:`RecipeSettings`).

    Returns:
        ``(config, trainer class)``: ``trainer_class(config).train(...)`` runs it.

    Raises:
        ValueError: an unknown job.
    """
    from ..methods.arbitrary.train import AdaINTrainConfig, AdaINTrainer
    from ..methods.arbitrary.train_decoders import DecoderTrainConfig, InversionTrainer
    from ..methods.feedforward.train import FeedForwardTrainer, TrainConfig

    s = settings or RecipeSettings()
    pack = pathlib.Path(pack)
    photos, paintings, styles = pack / "photos", pack / "paintings", pack / "styles"
    out = pathlib.Path(out_dir) / job
    common = dict(image_size=s.size, precision=s.precision, device=s.device, seed=0,
                  checkpoint_every=s.checkpoint_every, preview_every=s.preview_every, in_memory=True, steps=s.steps)
    if job in ("adain", "adain_w05"):
        cfg = AdaINTrainConfig(content=photos, styles=paintings, out=out / "decoder", width=0.5 if job == "adain_w05"
                               else 1.0, batch_size=s.batch, lr=1e-4, lr_decay=5e-5, style_weight=10.0,
                               identity_fraction=0.25, pixel_weight=1.0, scale_jitter=(1.0, 1.25), **common)
        return cfg, AdaINTrainer
    if job.startswith("wct_") and job[4:] in WCT_WIDTH:
        layer = job[4:]
        cfg = DecoderTrainConfig(content=[photos, paintings], out=out / f"decoder-{layer}", layer=layer,
                                 width=WCT_WIDTH[layer], batch_size=s.batch, lr=2e-4, lr_decay=5e-5,
                                 scale_jitter=(1.0, 1.25), **common)
        return cfg, InversionTrainer
    if job in JOBS and job.startswith("ff_"):
        name, temporal = FF_TEMPORAL.get(job, (job[3:], 0.0))
        files = sorted(styles.glob("*.jpg")) if name == "multi10" else [styles / f"{name}.jpg"]
        cfg = TrainConfig(styles=files, content=photos, out=out / (job[3:] if temporal else name), width=0.5,
                          batch_size=s.batch, lr=1e-3, scale_jitter=(1.0, 1.25), temporal_weight=temporal, **common)
        return cfg, FeedForwardTrainer
    if job == "gan64":
        from ..methods.gan.train import GANTrainConfig, GANTrainer

        cfg = GANTrainConfig(images=paintings, out=out / "generator", image_size=32 if s.smoke else 64,
                             batch_size=4 if s.smoke else 64, width=64, d_width=64, precision=s.precision,
                             device=s.device, seed=0, checkpoint_every=s.checkpoint_every,
                             preview_every=s.preview_every, in_memory=True, steps=s.steps)
        return cfg, GANTrainer
    if job == "paint_actor":
        from ..methods.paint.train import PaintTrainConfig, PaintTrainer

        cfg = PaintTrainConfig(photos=photos, out=out / "paint_actor", image_size=32 if s.smoke else 64,
                               batch_size=2 if s.smoke else 64, episode_steps=8, strokes_per_step=5, width=32,
                               lr=5e-4, warmup_max=16, seed=0, checkpoint_every=s.checkpoint_every,
                               preview_every=s.preview_every, precision="fp32", device=s.device, steps=s.steps)
        return cfg, PaintTrainer
    raise ValueError(f"unknown recipe {job!r}; one of {', '.join(JOBS)}")


def init_weights(trainer, path: PathLike) -> None:
    """Start a new run of ``trainer`` from trained weights (a ``.safetensors`` with its model
    card) with a fresh optimizer: feed-forward trainers through ``initialize_from`` (styles
    matched by sha256), decoders by loading the state dict and keeping the feature scale they
    were trained with.

    Raises:
        InputError: missing or modified weights (the card's sha256 does not match).
    """
    if hasattr(trainer, "initialize_from"):
        trainer.config.init_from = str(path)
        return
    from ..training.cards import read_verified

    _, state, _, _ = read_verified(pathlib.Path(path))
    trainer.model.load_state_dict({k: v.float() for k, v in state.items()})
    scale = state.get("feature_scale")
    if scale is not None and hasattr(trainer, "network"):  # AdaIN: keep the calibration the weights had
        trainer.network.calibrate = lambda *a, **k: float(scale)  # type: ignore[method-assign]


def add_pack_to_card(card_path: PathLike, pack_dir: PathLike) -> dict:
    """Name the training pack in a model card (``training_pack``: the source pack's file count and
    the sha256 of its sorted file list, from the compact pack's manifest). The card's sha256
    covers the weights only, so the card stays verifiable. Returns the card.

    Raises:
        OSError, ValueError: no readable ``manifest.json`` in ``pack_dir`` or no card."""
    manifest = json.loads((pathlib.Path(pack_dir) / "manifest.json").read_text())
    card_path = pathlib.Path(card_path)
    card = json.loads(card_path.read_text())
    card["training_pack"] = {**manifest["source"], "compact_copy": manifest["format"] + f", {manifest['side']} px",
                             "photos": manifest["photos"], "paintings": manifest["paintings"],
                             "terms": "research/training use; see shared/data/train/README.md and sources.csv; "
                                      "the images are not redistributed"}
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card


def plan(jobs: list[str], budget: float, parallel: int) -> list[list[tuple[str, float]]]:
    """Split ``budget`` seconds on ``parallel`` slots of one GPU among ``jobs`` by their :data:`SHARES`.

    Jobs go, largest share first, to the slot with the least share so far (longest processing
    time first); each slot's jobs then divide the whole budget in proportion to their shares, so
    every slot ends at the budget. Returns per slot ``(job, end)``: the job and the second (from
    the start) by which it should be done. (On 2026-11-27 the old rule, a share of what was left
    when a job started, gave the first jobs too much: the last two ran 13 and 15 s.)
    """
    slots: list[list[str]] = [[] for _ in range(max(1, min(parallel, len(jobs))))]
    for job in sorted(jobs, key=lambda j: -SHARES[j]):
        min(slots, key=lambda q: sum(SHARES[j] for j in q)).append(job)
    out = []
    for queue in slots:
        total, end, timed = sum(SHARES[j] for j in queue), 0.0, []
        for job in queue:
            end += budget * SHARES[job] / total
            timed.append((job, end))
        out.append(timed)
    return out
