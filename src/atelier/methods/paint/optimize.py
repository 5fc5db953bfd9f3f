"""The stroke optimizer (Zou et al., "Stylized Neural Painting", CVPR 2021) and a greedy baseline.

:func:`optimize_strokes`: coarse to fine (:func:`~.plan.stroke_schedule`), each patch receives its
strokes a group at a time; a group is placed where the canvas is farthest from the target (positions
drawn in proportion to the squared error, colour taken from the target there) and its parameters are
then optimized with Adam through the soft rasterizer (:func:`~.strokes.soft_render`), projected back
into [0, 1] after every step. The loss is the pixel MSE, plus optionally the VGG perceptual (content)
loss and the Gatys style loss of a style painting on the whole canvas (:mod:`atelier.losses`). Zou et
al. optimize through a neural renderer and use an optimal-transport term; here the renderer is the
analytic one and there is no transport term.

:func:`greedy_strokes`: random strokes, each kept only if it lowers the pixel MSE (per patch, the
best of ``candidates`` random strokes is kept when it helps), with the same coarse-to-fine schedule:
the baseline of issue 27.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ...losses import gram_matrix, relative_mse
from .plan import (Painting, background_of, from_patches, patch_rows_cols, plan_shape, resize_target,
                   stroke_schedule, to_patches)
from .strokes import N_PARAMS, from_patch, render, soft_render

__all__ = ["OptimizeConfig", "optimize_strokes", "greedy_strokes", "STYLE_LAYERS"]

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu3_1"

#: ``callback(strokes_done, strokes_total, canvas)`` with the exact canvas (1, 3, H, W) so far.
PaintCallback = Callable[[int, int, torch.Tensor], None]


@dataclass
class OptimizeConfig:
    """Parameters of :func:`optimize_strokes`.

    Attributes:
        strokes: strokes in all (>= 1). size: the plan's longest side in pixels (>= 16).
        iterations: Adam steps per group (>= 1). group: strokes per patch optimized together (>= 1).
        lr: Adam learning rate (stroke parameters live in [0, 1]). tau: soft edge in plan pixels.
        perceptual_weight: weight of the VGG relu3_1 content loss (relative MSE), >= 0.
        style_weight: weight of the Gatys style loss (needs a style image), >= 0.
        seed: seed of the initial positions (CPU runs are deterministic).
    """

    strokes: int = 200
    size: int = 128
    iterations: int = 40
    group: int = 8
    lr: float = 0.02
    tau: float = 1.0
    perceptual_weight: float = 0.0
    style_weight: float = 100.0
    seed: int = 0

    def validate(self) -> "OptimizeConfig":
        """Raises ValueError naming a field out of range; returns self."""
        for name, low in (("strokes", 1), ("size", 16), ("iterations", 1), ("group", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        for name in ("lr", "tau"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("perceptual_weight", "style_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        return self


def _init_group(err: torch.Tensor, tgt: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k strokes per patch placed where ``err`` (P, h, w) is large: (P, k, 12) local parameters."""
    p, h, w = err.shape
    flat = err.reshape(p, -1) + 1e-8
    idx = torch.multinomial(flat, k, replacement=True, generator=g)  # (P, k)
    cy = ((idx // w).float() + 0.5) / h
    cx = ((idx % w).float() + 0.5) / w
    s = torch.empty(p, k, N_PARAMS)
    for j in range(3):
        s[..., 2 * j] = cx + (torch.rand(p, k, generator=g) - 0.5) * 0.3
        s[..., 2 * j + 1] = cy + (torch.rand(p, k, generator=g) - 0.5) * 0.3
    s[..., 6:8] = 0.25 + 0.35 * torch.rand(p, k, 2, generator=g)
    colours = tgt.reshape(p, 3, -1).gather(2, idx[:, None, :].expand(p, 3, k))  # (P, 3, k)
    s[..., 8:11] = colours.permute(0, 2, 1)
    s[..., 11] = 0.9
    return s.clamp(0, 1)


def optimize_strokes(target: torch.Tensor, config: OptimizeConfig = OptimizeConfig(),
                     style: Optional[torch.Tensor] = None, encoder=None,
                     callback: Optional[PaintCallback] = None) -> Painting:
    """Paint ``target`` with ``config.strokes`` strokes by gradient descent on their parameters.

    Args:
        target: float32 (1, 3, H, W) RGB in [0, 1] (any size; resized to the plan).
        config: see :class:`OptimizeConfig`.
        style: optional float32 (1, 3, H', W') painting for the Gatys style loss.
        encoder: a :class:`~atelier.encoders.vgg.VGGEncoder` (loaded when a VGG loss is used and none is given).
        callback: progress, see :data:`PaintCallback`.

    Returns:
        A :class:`~.plan.Painting` (``method="optimize"``; ``info`` has ``seconds`` and ``l2``).

    Raises:
        ValueError: a bad config or target shape.
    """
    cfg = config.validate()
    if target.ndim != 4 or target.shape[:2] != (1, 3):
        raise ValueError(f"target must have shape (1, 3, H, W), got {tuple(target.shape)}")
    t0 = time.perf_counter()
    h, w = plan_shape(*target.shape[-2:], cfg.size)
    tgt = resize_target(target, h, w)
    bg = background_of(tgt)
    use_vgg = cfg.perceptual_weight > 0 or (style is not None and cfg.style_weight > 0)
    if use_vgg and encoder is None:
        from ...encoders.vgg import get_encoder

        encoder = get_encoder()
    grams, content_feat = None, None
    if use_vgg:
        with torch.no_grad():
            if style is not None and cfg.style_weight > 0:
                sh, sw = plan_shape(*style.shape[-2:], max(cfg.size, 128))
                sf = encoder(resize_target(style, sh, sw), STYLE_LAYERS)
                grams = {n: gram_matrix(f) for n, f in sf.items()}
            if cfg.perceptual_weight > 0:
                content_feat = encoder(tgt, [CONTENT_LAYER])[CONTENT_LAYER]
    layers = list(STYLE_LAYERS if grams is not None else []) + ([CONTENT_LAYER] if content_feat is not None else [])
    g = torch.Generator().manual_seed(cfg.seed)
    canvas = render(torch.zeros(0, N_PARAMS), h, w, bg)
    kept: list[torch.Tensor] = []
    done, total = 0, cfg.strokes
    for grid, per_patch in stroke_schedule(cfg.strokes):
        rows, cols = patch_rows_cols(grid)
        tp = to_patches(tgt, grid)
        for start in range(0, per_patch, cfg.group):
            k = min(cfg.group, per_patch - start)
            cp = to_patches(canvas, grid)
            local = _init_group((cp - tp).pow(2).sum(1), tp, k, g).requires_grad_(True)
            opt = torch.optim.Adam([local], lr=cfg.lr)
            for _ in range(cfg.iterations):
                out = soft_render(local, cp, cfg.tau)
                loss = F.mse_loss(out, tp)
                if layers:
                    feats = encoder(from_patches(out, grid), layers)
                    if grams is not None:
                        loss = loss + cfg.style_weight * 1e-3 * sum(
                            relative_mse(gram_matrix(feats[n]), grams[n]) for n in STYLE_LAYERS) / len(STYLE_LAYERS)
                    if content_feat is not None:
                        loss = loss + cfg.perceptual_weight * 1e-2 * relative_mse(feats[CONTENT_LAYER], content_feat)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    local.clamp_(0, 1)
            glob = from_patch(local.detach(), rows[:, None], cols[:, None], grid)  # (P, k, 12)
            # painting order: stroke j of every patch, then stroke j + 1 (patches do not overlap)
            glob = glob.permute(1, 0, 2).reshape(-1, N_PARAMS)
            canvas = render(glob, h, w, canvas=canvas)
            kept.append(glob)
            done += glob.shape[0]
            if callback is not None:
                callback(done, total, canvas)
    strokes = torch.cat(kept)
    l2 = float(F.mse_loss(canvas, tgt))
    return Painting(strokes, bg, h, w, "optimize", {"seconds": round(time.perf_counter() - t0, 3), "l2": l2,
                                                     "iterations": cfg.iterations, "style": style is not None})


def greedy_strokes(target: torch.Tensor, strokes: int = 200, size: int = 128, candidates: int = 16,
                   rounds_per_stroke: int = 4, seed: int = 0,
                   callback: Optional[PaintCallback] = None) -> Painting:
    """The greedy baseline: random strokes kept only when they lower the pixel MSE.

    Each round draws ``candidates`` random strokes per patch (uniform positions, radii and opacity,
    colour of the target at the curve's middle), scores them with the soft rasterizer (tau 0.5 px) and
    keeps the best when it lowers the patch's error (then painted exactly). A patch stops at its share
    of the schedule or after ``rounds_per_stroke`` rounds per stroke, so fewer strokes than asked may be
    kept (``info["kept"]``).

    Args:
        target: float32 (1, 3, H, W) in [0, 1]. strokes: the budget (>= 1). size: plan's longest side.

    Returns:
        A :class:`~.plan.Painting` with ``method="greedy"``.
    """
    t0 = time.perf_counter()
    h, w = plan_shape(*target.shape[-2:], size)
    tgt = resize_target(target, h, w)
    bg = background_of(tgt)
    g = torch.Generator().manual_seed(seed)
    canvas = render(torch.zeros(0, N_PARAMS), h, w, bg)
    kept, done, tried = [], 0, 0
    for grid, per_patch in stroke_schedule(strokes):
        rows, cols = patch_rows_cols(grid)
        tp = to_patches(tgt, grid)
        p, _, ph, pw = tp.shape
        count = torch.zeros(p, dtype=torch.long)
        for _ in range(rounds_per_stroke * per_patch):
            active = (count < per_patch).nonzero().flatten()
            if len(active) == 0:
                break
            cp = to_patches(canvas, grid)[active]
            ta = tp[active]
            a, m = len(active), candidates
            c = torch.rand(a, m, N_PARAMS, generator=g)
            centre = torch.rand(a, m, 2, generator=g)
            c[..., 0:6] = (centre.repeat(1, 1, 3) + (c[..., 0:6] - 0.5) * 0.5).clamp(0, 1)
            c[..., 11] = 0.5 + 0.5 * c[..., 11]
            mid = 0.25 * c[..., 0:2] + 0.5 * c[..., 2:4] + 0.25 * c[..., 4:6]
            ix = (mid[..., 0] * pw).long().clamp(0, pw - 1)
            iy = (mid[..., 1] * ph).long().clamp(0, ph - 1)
            c[..., 8:11] = ta.reshape(a, 3, -1).gather(2, (iy * pw + ix)[:, None, :].expand(a, 3, m)).permute(0, 2, 1)
            with torch.no_grad():
                out = soft_render(c.reshape(a * m, 1, N_PARAMS), cp.repeat_interleave(m, 0), tau=0.5)
                err = (out - ta.repeat_interleave(m, 0)).pow(2).mean(dim=(1, 2, 3)).reshape(a, m)
                now = (cp - ta).pow(2).mean(dim=(1, 2, 3))
            tried += a * m
            best = err.argmin(1)
            ok = err.gather(1, best[:, None])[:, 0] < now
            if not ok.any():
                continue
            sel = active[ok]
            chosen = c[ok.nonzero().flatten(), best[ok]]
            glob = from_patch(chosen, rows[sel], cols[sel], grid)
            canvas = render(glob, h, w, canvas=canvas)
            count[sel] += 1
            kept.append(glob)
            done += len(sel)
            if callback is not None:
                callback(done, strokes, canvas)
    s = torch.cat(kept) if kept else torch.zeros(0, N_PARAMS)
    return Painting(s, bg, h, w, "greedy", {"seconds": round(time.perf_counter() - t0, 3),
                                            "l2": float(F.mse_loss(canvas, tgt)), "kept": int(s.shape[0]),
                                            "candidates_tried": tried})
