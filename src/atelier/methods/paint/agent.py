"""Painting with the trained actor (Huang et al. 2019): fast, one network pass per 5 strokes.

:func:`agent_strokes` paints coarse to fine (:func:`~.plan.stroke_schedule`): at each stage every
patch of the grid (its target and its canvas so far, resized to the actor's training size) is given
to the actor, all patches of a stage in one batch; the strokes it returns, in patch coordinates,
are moved into the image and painted exactly at the plan's size. :class:`AgentPolicy` maps an
observation of :class:`~.env.PaintEnv` to an action, for use in the environment.
"""

from __future__ import annotations

import math
import os
import pathlib
import time
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from ...core.errors import InputError
from ...networks.painter import PaintActor, actor_input
from ...training.cards import read_verified
from .plan import Painting, background_of, patch_rows_cols, plan_shape, resize_target, stroke_schedule, to_patches
from .strokes import N_PARAMS, from_patch, render, soft_render

__all__ = ["PAINT_MODEL", "load_agent", "agent_strokes", "AgentPolicy"]

PathLike = Union[str, os.PathLike]
PAINT_CARD_FORMAT = "atelier-paint-actor"
#: The shipped actor (safetensors, model card ``paint_actor.json`` beside it).
PAINT_MODEL = "paint/paint_actor.safetensors"


def _default_path() -> pathlib.Path:
    from ...training.zoo import shipped_dir

    return shipped_dir("paint") / pathlib.Path(PAINT_MODEL).name


def load_agent(path: Optional[PathLike] = None) -> PaintActor:
    """The painting actor, verified against its model card (sha256).

    Args:
        path: a ``.safetensors`` file written by :class:`~.train.PaintTrainer`; default the shipped one.

    Returns:
        A float32 :class:`~atelier.networks.painter.PaintActor` in eval mode, with ``card`` (dict).

    Raises:
        InputError: missing or modified file, not a painting actor, or weights that do not fit.
    """
    p = pathlib.Path(os.fspath(path)) if path is not None else _default_path()
    card, state, weights, arch = read_verified(p, lambda c: (int(c["architecture"]["strokes"]),
                                                             int(c["architecture"]["width"]), 12,
                                                             bool(c["architecture"].get("error_input", False))))
    if card.get("format") != PAINT_CARD_FORMAT:
        raise InputError(f"not a painting actor (model card format {card.get('format')!r})", weights)
    net = PaintActor(*arch)
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as e:
        raise InputError(f"the weights do not fit the painting actor ({e})", weights) from None
    net.eval()
    net.card = card
    return net


def _train_size(actor: PaintActor) -> tuple[int, int]:
    hp = getattr(actor, "card", {}).get("hyperparameters", {})
    return int(hp.get("image_size", 64)), int(hp.get("episode_steps", 8)) + int(hp.get("warmup_max", 0))


@torch.no_grad()
def agent_strokes(target: torch.Tensor, strokes: int = 200, size: int = 128, actor: Optional[PaintActor] = None,
                  callback=None, verify: bool = False) -> Painting:
    """Paint ``target`` with ``strokes`` strokes chosen by the actor.

    Args:
        target: float32 (1, 3, H, W) RGB in [0, 1]. strokes: the budget (>= 1). size: the plan's longest side.
        actor: a :class:`PaintActor` (default: :func:`load_agent`).
        verify: check each step's strokes of each patch with the exact rasterizer (a one-step look-ahead
            with the known renderer) and drop them when they would not lower that patch's error; the
            painting then has fewer strokes than the budget (``info["dropped"]``).
        callback: ``callback(done, total, canvas)`` after each step.

    Returns:
        A :class:`~.plan.Painting` with ``method="agent"`` (``info``: ``seconds``, ``l2``).

    Raises:
        ValueError: a bad target shape or budget. InputError: the shipped actor is missing or modified.
    """
    if target.ndim != 4 or target.shape[:2] != (1, 3):
        raise ValueError(f"target must have shape (1, 3, H, W), got {tuple(target.shape)}")
    schedule = stroke_schedule(strokes)
    actor = actor if actor is not None else load_agent()
    t0 = time.perf_counter()
    s_in, episode = _train_size(actor)
    h, w = plan_shape(*target.shape[-2:], size)
    tgt = resize_target(target, h, w)
    bg = background_of(tgt)
    canvas = render(torch.zeros(0, N_PARAMS), h, w, bg)
    kept, done, dropped = [], 0, 0
    for grid, per_patch in schedule:
        rows, cols = patch_rows_cols(grid)
        tp = F.interpolate(to_patches(tgt, grid), size=(s_in, s_in), mode="bilinear", antialias=True,
                           align_corners=False)
        for t in range(math.ceil(per_patch / actor.strokes)):
            cp = F.interpolate(to_patches(canvas, grid), size=(s_in, s_in), mode="bilinear", antialias=True,
                               align_corners=False)
            local = actor(actor_input(cp, tp, min(t, episode - 1) / episode))
            local = local[:, : min(actor.strokes, per_patch - t * actor.strokes)]
            local = soft_render(local, cp, 1.0, colour_from=tp)[1]  # colours: the target's under each stroke
            if verify:
                ok = _helps(local.clamp(0, 1), to_patches(canvas, grid), to_patches(tgt, grid))
                dropped += int((~ok).sum()) * local.shape[1]
                if not ok.any():
                    continue
                local, prow, pcol = local[ok], rows[ok], cols[ok]
            else:
                prow, pcol = rows, cols
            glob = from_patch(local, prow[:, None], pcol[:, None], grid).permute(1, 0, 2).reshape(-1, N_PARAMS)
            canvas = render(glob.clamp(0, 1), h, w, canvas=canvas)
            kept.append(glob)
            done += glob.shape[0]
            if callback is not None:
                callback(done, strokes, canvas)
    s = torch.cat(kept).clamp(0, 1) if kept else torch.zeros(0, N_PARAMS)
    return Painting(s, bg, h, w, "agent", {"seconds": round(time.perf_counter() - t0, 3),
                                           "l2": float(F.mse_loss(canvas, tgt)), "dropped": dropped,
                                           "model_sha256": getattr(actor, "card", {}).get("sha256")})


def _helps(local: torch.Tensor, canvas_p: torch.Tensor, target_p: torch.Tensor) -> torch.Tensor:
    """Whether painting each patch's strokes (P, k, 12), in patch coordinates, lowers its MSE: (P,) bool."""
    ph, pw = canvas_p.shape[-2:]
    out = []
    for i in range(local.shape[0]):
        after = render(local[i], ph, pw, canvas=canvas_p[i:i + 1])
        out.append(bool((after - target_p[i]).pow(2).mean() < (canvas_p[i] - target_p[i]).pow(2).mean()))
    return torch.tensor(out)


class AgentPolicy:
    """The actor as a policy of :class:`~.env.PaintEnv`: ``policy(observation) -> action``
    (float32 (K * 12,) in [0, 1]); the environment's K must be the actor's."""

    def __init__(self, actor: Optional[PaintActor] = None, episode_steps: Optional[int] = None):
        self.actor = actor if actor is not None else load_agent()
        self.episode = episode_steps or _train_size(self.actor)[1]

    @torch.no_grad()
    def __call__(self, obs: dict) -> np.ndarray:
        c = torch.as_tensor(obs["canvas"])[None]
        t = torch.as_tensor(obs["target"])[None]
        progress = min(int(obs["step"]), self.episode - 1) / self.episode
        strokes = soft_render(self.actor(actor_input(c, t, progress)), c, 1.0, colour_from=t)[1]
        return strokes[0].reshape(-1).numpy().astype(np.float32)
