"""Training of the painting actor (:class:`~atelier.networks.painter.PaintActor`).

Model-based, as Learning to Paint (Huang et al. 2019): the renderer is differentiable, so the actor
is trained by back-propagating the reward through it. Huang et al. train a critic V(s) with DDPG
and update the actor to maximize ``r(s, a) + gamma V(s')``, with ``r`` computed through their
neural renderer. Here the renderer is the analytic soft rasterizer and there is NO critic: the actor
maximizes the one-step reward (gamma = 0), the decrease of the pixel MSE divided by the empty
canvas's MSE, summed over the steps of an episode whose canvases are held fixed (detached) between
steps. It is a greedy, model-based policy-gradient-free actor; a critic for longer horizons is
left for later.

The actor chooses each stroke's geometry and opacity; its colour is the target's mean colour under
the stroke's soft footprint (:func:`~.strokes.soft_render` with ``colour_from``), a hand-made part of
the policy that Learning to Paint leaves to the actor (a first run where the actor also chose the
colours learned to paint nearly invisible strokes in its first 100 steps).

A training step is one episode on ``batch_size`` crops of the training photos: ``episode_steps``
steps of ``strokes_per_step`` strokes from the mean-colour canvas. Losses: ``l2`` (MSE at the end of
the episode), ``reward`` (the episode's return: the fraction of the error removed) and ``total``
(= -reward). The loop, checkpoints, exact resume, Ctrl-C, time budget, float16 safetensors and
model card are :class:`~atelier.training.loop.BaseTrainer`'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union

import torch

from ...networks.painter import PaintActor, actor_input
from ...training.data import ImageFolderDataset
from ...training.config import TrainerConfig
from ...training.loop import BaseTrainer
from .strokes import SEGMENTS, soft_render

__all__ = ["PaintTrainConfig", "PaintTrainer", "PAINT_CARD_FORMAT"]

PAINT_CHECKPOINT_FORMAT = "atelier-paint-checkpoint"
PAINT_CARD_FORMAT = "atelier-paint-actor"
PathLike = Union[str, os.PathLike]


@dataclass(kw_only=True)
class PaintTrainConfig(TrainerConfig):
    """Parameters of a painting-actor training run: the shared fields of
    :class:`~atelier.training.config.TrainerConfig` (defaults here as below) and its own.

    Attributes:
        photos: folder (or file list) of training photos.
        out: weights path (``.safetensors``); checkpoint and model card beside it.
        image_size: canvas side while training (>= 16). batch_size, steps: per step / in all.
        episode_steps: actor steps per episode (>= 1). strokes_per_step: strokes per action (>= 1).
        width: the actor's first convolution's channels (a multiple of 8).
        lr: Adam learning rate. tau: soft edge of the rasterizer in pixels. segments: straight pieces
            per stroke while training (8: half the cost of the 16 used for painting, the curves
            differ by well under a pixel at 64 px).
        warmup_max: before the trained steps of an episode, the actor first paints w steps without
            gradients, w drawn per training step from 0..warmup_max, so that it also learns on canvases
            that are already well painted (as at the later steps and finer stages of a painting).
        error_input: the actor also sees ``target - canvas`` (:class:`PaintActor`'s ``error_input``).
        seed, checkpoint_every, preview_every, device, precision: as for the other trainers.
        pooling, weights: unused (no VGG loss); present for the shared loop.
    """

    INTEGERS = (("image_size", 16), ("batch_size", 1), ("steps", 0), ("episode_steps", 1), ("strokes_per_step", 1),
                ("width", 8), ("segments", 1), ("warmup_max", 0), ("seed", 0), ("checkpoint_every", 0),
                ("preview_every", 0))
    POSITIVE = ("lr", "tau")
    AS_FLOAT = True

    photos: Union[PathLike, list] = ""
    out: PathLike = "paint_actor.safetensors"
    image_size: int = 64
    episode_steps: int = 8
    strokes_per_step: int = 5
    width: int = 32
    tau: float = 1.0
    segments: int = 8
    warmup_max: int = 0
    error_input: bool = False
    checkpoint_every: int = 50
    precision: str = "fp32"
    device: str = "cpu"
    pooling: str = "max"
    weights: Optional[str] = None

    def validate(self) -> "PaintTrainConfig":
        """Raises ValueError naming a field out of range; returns self."""
        if not self.photos:
            raise ValueError("training photos are needed (a folder of photos)")
        if self.precision not in ("fp32", "auto"):
            raise ValueError("the painting actor trains in fp32")
        self.check_fields()
        if self.width % 8:
            raise ValueError(f"width must be a multiple of 8, got {self.width}")
        return self

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["photos"] = [os.fspath(p) for p in self.photos] if isinstance(self.photos, list) else os.fspath(self.photos)
        return d


class PaintTrainer(BaseTrainer):
    """Trains a :class:`PaintActor` by back-propagation of the reward through the soft rasterizer.

    Example::

        card = PaintTrainer(PaintTrainConfig(photos="../shared/data/train/photos", out="paint")).train()

    Errors as for :meth:`BaseTrainer.train` (InputError for a folder without readable photos).
    """

    CHECKPOINT_FORMAT = PAINT_CHECKPOINT_FORMAT
    CARD_FORMAT = PAINT_CARD_FORMAT
    KIND = "painting actor"
    RESUME_FIXED = ("image_size", "batch_size", "seed", "episode_steps", "strokes_per_step", "width", "error_input")
    RESUME_FREE = ("steps", "checkpoint_every", "preview_every", "device", "out", "photos")
    LOSS_KEYS = ("l2", "reward", "total")

    def __init__(self, config: PaintTrainConfig):
        self._init_base(config)
        self.dataset = ImageFolderDataset(config.photos, config.image_size, (1.0, 2.0), config.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = PaintActor(config.strokes_per_step, config.width, error_input=config.error_input)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)

    @property
    def horizon(self) -> int:
        """Steps the progress input counts to: ``episode_steps + warmup_max``."""
        return self.config.episode_steps + self.config.warmup_max

    def episode(self, target: torch.Tensor, grad: bool = True, warmup: int = 0) -> dict[str, torch.Tensor]:
        """Run one episode on targets (B, 3, S, S) after ``warmup`` steps without gradients; returns
        ``l2``, ``reward`` (the share of the empty canvas's error that the trained steps removed, the
        environment's reward), ``total`` and ``canvas``."""
        cfg = self.config
        canvas = target.mean(dim=(2, 3), keepdim=True).expand_as(target).contiguous()
        d0 = (canvas - target).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-6)  # the empty canvas's, as in the env
        with torch.no_grad():
            for t in range(warmup):
                strokes = self.model(actor_input(canvas, target, t / self.horizon))
                canvas = soft_render(strokes, canvas, cfg.tau, cfg.segments, colour_from=target)[0]
        prev = (canvas - target).pow(2).mean(dim=(1, 2, 3))
        ret = torch.zeros((), dtype=target.dtype)
        for t in range(warmup, warmup + cfg.episode_steps):
            with torch.set_grad_enabled(grad):
                strokes = self.model(actor_input(canvas, target, min(t, self.horizon - 1) / self.horizon))
                new, _ = soft_render(strokes, canvas, cfg.tau, cfg.segments, colour_from=target)
                d = (new - target).pow(2).mean(dim=(1, 2, 3))
                ret = ret + ((prev - d) / d0).mean()
            prev, canvas = d.detach(), new.detach()
        return {"l2": prev.mean(), "reward": ret, "total": -ret, "canvas": canvas}

    def _step_losses(self) -> dict[str, torch.Tensor]:
        target = self._batch_of(self.dataset, self.step)
        warmup = int(torch.randint(0, self.config.warmup_max + 1, (), generator=self.generator))
        parts = self.episode(target, warmup=warmup)
        parts.pop("canvas")
        return parts

    def preview(self) -> torch.Tensor:
        target = self._batch_of(self.dataset, 0)[:4]
        self.model.eval()
        with torch.no_grad():
            canvas = self.episode(target, grad=False)["canvas"]
        return torch.cat([torch.cat(list(target), 2), torch.cat(list(canvas), 2)], 1)[None].clamp(0, 1)

    def _identity(self) -> dict:
        return {"photos": len(self.dataset)}

    def _architecture(self) -> dict:
        return {"name": "PaintActor", "strokes": self.model.strokes, "width": self.model.width,
                "params": self.model.params, "error_input": self.model.error_input,
                "input": "canvas, target, progress, x, y (9 channels)"
                         + (" and target - canvas (3, computed inside)" if self.model.error_input else ""),
                "renderer": f"analytic soft rasterizer (tapered-capsule SDF, {self.config.segments} pieces while training, "
                            f"{SEGMENTS} when painting, tau "
                            f"{self.config.tau} px)",
                "paper": "Huang et al. 2019 (Learning to Paint), model-based actor without a critic (gamma = 0)"}

    def _card_inputs(self) -> dict:
        return {"training_images": {**self._images_entry(self.dataset, [
            "../shared/data/train/photos (ImageNet samples, BSDS500 train+val, horse2zebra; see its README "
            "and sources.csv)"]), "crop": f"{self.config.image_size} px random squares, scale jitter 1-2"}}

    def _card_extra(self) -> dict:
        return {"reward": "(d_prev - d_new) / d_0, d = pixel MSE; d_0 = empty (mean-colour) canvas",
                "critic": "none: one-step reward back-propagated through the differentiable renderer"}
