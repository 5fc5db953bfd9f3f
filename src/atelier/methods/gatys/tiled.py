"""Gatys et al. at print sizes (issue 24): a pyramid level whose working set would not fit the
memory budget is optimized tile by tile, with the gradient of the *whole image's* objective.

How (and where this departs from crowsonkb/style-transfer-pytorch#10, which matches each tile's
own Gram matrices to the style): the content and total-variation losses are sums over positions,
so each tile adds the terms of the positions it owns (its inner square; the margins around it
give those positions their full receptive field). The style loss is a function of the whole
image's Gram matrices G, which no tile sees: a first pass over the tiles without gradients sums
``f f^T`` over every tile's owned positions into G (exact, the image's own Gram matrices), and
the second pass back-propagates, tile by tile, the surrogate ``sum_p f_p^T M f_p`` with the
constant ``M = 2 (G - G_style) / (N C^2 (mean(G_style^2) + eps))`` per layer, whose gradient
with respect to every feature is exactly that of the relative Gram MSE of
:func:`atelier.losses.style_loss`. The summed gradient is the untiled one up to the zero padding
at a tile's outer edge (the ``margin``, 64 px by default, keeps that small: tested against the
untiled gradient). So the optimizer, L-BFGS as in the paper, sees the same objective at every
size, and the result does not depend on how the image was cut.

The grid of tiles shifts at every iteration (by up to a quarter of a tile, a golden-ratio
sequence per axis), so whatever error the tile edges leave never settles in one place (seams).
Tile corners lie on a 16 px grid (relu5_1's stride), so every layer's positions are owned by
exactly one tile.

Memory: one tile's VGG19 forward and backward, plus the whole image's buffers (the image, its
gradient, the content image, the content features at the content layers, the optimizer's
state). L-BFGS keeps 5 curvature pairs at a tiled level (each pair two copies of the image);
where even that does not fit the budget with the smallest tile, Adam (two copies) is used, as
crowsonkb does at large sizes. The whole image stays on the CPU when the encoder is on a GPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Optional, Sequence

import torch

from ...core.errors import InputError
from ...core.limits import BYTES_PER_PIXEL, available_memory, check_memory, parse_bytes, scaled_dims
from ...encoders.vgg import layer_table
from ...imaging import tileable as _tileable
from ...losses import EPS, StyleTarget, relative_mse, tv_loss

__all__ = ["GatysTilePlan", "TILE_BYTES_PER_PIXEL", "TiledObjective", "estimate_seconds", "grid_bounds", "level_dims",
           "measure_seconds_per_pixel", "plan_level", "plan_levels", "tiled_grams"]

#: Peak bytes per pixel of a tile's VGG19 (to relu5_1) forward and backward in fp32 on the CPU
#: (activations kept for the backward, their gradients, the surrogate's temporaries): measured
#: 2570 on a 1536x1020 run in 2x2 tiles (peak RSS 2.59 GB, 2026-12-04), rounded up.
TILE_BYTES_PER_PIXEL = 2600
#: Bytes of the process besides the images: torch, the VGG19 weights, Python.
RUNTIME_BYTES = 600 * 2**20
#: Bytes per pixel of the whole image's buffers besides the optimizer's state (the float32 image,
#: its gradient, the content image, the content features at relu4_2, the level's resizes, TV).
IMAGE_BYTES_PER_PIXEL = 160
#: L-BFGS curvature pairs kept at a tiled level (each pair: two float32 copies of the image).
TILED_LBFGS_HISTORY = 5
#: Tile corners are multiples of this (relu5_1's stride), so every layer's grid lines up.
GRID = 16
#: Tile sides tried by ``tile="auto"``, largest first.
AUTO_TILES = (2048, 1536, 1024, 768, 512, 384, 256)
_PHI = (math.sqrt(5) - 1) / 2
_SQRT2 = math.sqrt(2) - 1


@dataclass(frozen=True)
class GatysTilePlan:
    """How one pyramid level is tiled: ``rows`` x ``cols`` tiles of about ``tile`` px (the inner
    square; shifted by up to a quarter of it every iteration) with ``margin`` px around each,
    ``optimizer`` (``"lbfgs"`` or ``"adam"``) and ``peak_bytes``, the estimated peak memory."""

    height: int
    width: int
    tile: int
    margin: int
    rows: int
    cols: int
    optimizer: str
    peak_bytes: int

    @property
    def count(self) -> int:
        return self.rows * self.cols

    def describe(self) -> str:
        return (f"{self.cols}x{self.rows} tiles of about {self.tile} px (+{self.margin} px margins, the grid shifted "
                f"every iteration) over {self.width}x{self.height}, {self.optimizer}, about "
                f"{self.peak_bytes / 2**30:.1f} GiB at the peak")

    def bounds(self, iteration: int) -> tuple[list[int], list[int]]:
        """Row and column boundaries of the tiles' inner squares at ``iteration`` (0-based)."""
        sy = ((iteration * _PHI) % 1.0 - 0.5) / 2
        sx = ((iteration * _SQRT2 + 0.5) % 1.0 - 0.5) / 2
        return grid_bounds(self.height, self.rows, sy), grid_bounds(self.width, self.cols, sx)


def grid_bounds(n: int, parts: int, shift: float) -> list[int]:
    """``parts + 1`` increasing boundaries from 0 to ``n``: the inner ones at ``k * n / parts``
    moved by ``shift`` (a fraction of a part, in [-0.25, 0.25]) and rounded to :data:`GRID`."""
    if parts <= 1:
        return [0, n]
    base = n / parts
    inner = [GRID * round((k * base + shift * base) / GRID) for k in range(1, parts)]
    out = [0]
    for b in inner:
        out.append(min(max(b, out[-1] + GRID), n - GRID * (parts - len(out))))
    return out + [n]


def _optimizer_bytes(optimizer: str, pixels: int) -> int:
    copies = 2 * TILED_LBFGS_HISTORY + 4 if optimizer == "lbfgs" else 2  # pairs + direction, old x/g
    return copies * 3 * 4 * pixels


def _side(n: int, parts: int, margin: int) -> int:
    """The largest tile side with margins along an axis of ``n`` px in ``parts``: an inner tile
    keeps ``n / parts``, an edge tile grows by up to a quarter as the grid shifts."""
    base = n / parts
    return n if parts == 1 else min(n, math.ceil(max(base + 2 * margin, 1.25 * base + margin)) + GRID)


def _plan(h: int, w: int, tile: int, margin: int, optimizer: str) -> GatysTilePlan:
    rows, cols = max(1, math.ceil(h / tile)), max(1, math.ceil(w / tile))
    peak = (_side(h, rows, margin) * _side(w, cols, margin) * TILE_BYTES_PER_PIXEL + h * w * IMAGE_BYTES_PER_PIXEL
            + _optimizer_bytes(optimizer, h * w) + RUNTIME_BYTES)
    return GatysTilePlan(h, w, tile, margin, rows, cols, optimizer, int(peak))


def plan_level(h: int, w: int, budget: Optional[int], tile="auto", margin: int = 64,
               optimizer: str = "lbfgs", untiled_bytes: int = 0) -> Optional[GatysTilePlan]:
    """The tiles of a level of ``h x w`` px, or None to optimize it whole.

    Args:
        budget: bytes the run may use (None: unknown, never tile on ``auto``).
        tile: ``"auto"`` (tile only when ``untiled_bytes`` exceeds ``budget``; the largest tile of
            :data:`AUTO_TILES` that fits), ``"off"``, or a tile side in px (levels whose longest
            side is at most that are not tiled).
        margin: px around each tile, a multiple of 16.
        optimizer: the run's optimizer; L-BFGS becomes Adam where its history cannot fit.
        untiled_bytes: the estimated peak of the untiled level.

    Raises:
        ValueError: a tile side below 64 px or not a multiple of 16, a bad margin, or tiles that do
            not fit ``budget`` (the message says what would).
    """
    if margin < 0 or margin % GRID:
        raise ValueError(f"the tile margin must be a non-negative multiple of {GRID} px, got {margin}")
    if tile == "off":
        return None
    if tile == "auto":
        if budget is None or untiled_bytes <= budget:
            return None
        for opt in ((optimizer, "adam") if optimizer == "lbfgs" else (optimizer,)):
            for t in AUTO_TILES:
                plan = _plan(h, w, t, margin, opt)
                if plan.peak_bytes <= budget:
                    return plan
        raise ValueError(f"gatys at {w}x{h} does not fit {budget / 2**30:.1f} GiB even in {AUTO_TILES[-1]} px tiles "
                         "with Adam; ask for a smaller size or allow more with --max-memory")
    try:
        t = int(tile)
    except (TypeError, ValueError):
        raise ValueError(f"--tile must be auto, off or a tile side in px, got {tile!r}") from None
    if t < 64 or t % GRID:
        raise ValueError(f"--tile must be a multiple of {GRID} px and at least 64, got {t}")
    if max(h, w) <= t:
        return None
    plan = _plan(h, w, t, margin, optimizer)
    if budget is not None and plan.peak_bytes > budget and optimizer == "lbfgs":
        plan = _plan(h, w, t, margin, "adam")
    if budget is not None and plan.peak_bytes > budget:
        raise ValueError(f"{plan.describe()}: more than the {budget / 2**30:.1f} GiB allowed; use a smaller --tile "
                         "or a larger --max-memory")
    return plan


def level_dims(config, content_hw: tuple[int, int], sizes: Sequence[int]) -> list[tuple[int, int]]:
    """(H, W) of every pyramid level (the last one the output's)."""
    h0, w0 = content_hw
    out = scaled_dims(h0, w0, config.size or max(h0, w0))
    dims = [out if i == len(sizes) - 1 else scaled_dims(h0, w0, s) for i, s in enumerate(sizes)]
    return [_tileable.tileable_dims(*d) for d in dims] if config.tileable else dims


def plan_levels(config, content_hw: tuple[int, int], sizes: Sequence[int], device=None,
                tile="auto", max_memory=None) -> list:
    """One :class:`~atelier.methods.gatys.tiled.GatysTilePlan` (or None: untiled) per pyramid
    level (issue 24). ``tile``: ``"auto"`` (tile a level only when its untiled estimate exceeds
    the budget), ``"off"`` (never: refuse what does not fit), or a tile side in px;
    ``max_memory``: bytes or a size like ``"8G"`` (default 80 % of the memory available now).

    Raises:
        InputError: a level does not fit (untiled with ``"off"``, or even in the smallest tiles).
        ValueError: a bad ``tile`` or ``max_memory``.
    """
    dims = level_dims(config, content_hw, sizes)
    if tile == "off" or config.tileable:
        if tile not in ("auto", "off"):
            raise ValueError("--tileable textures are not tiled; leave out --tile (or ask for a smaller size)")
        out_h, out_w = dims[-1]
        check_memory(out_h * out_w, "gatys", f"stylizing at {out_w}x{out_h} ({len(sizes)} scale(s))", device=device)
        return [None] * len(dims)
    free = available_memory(device)
    budget = parse_bytes(max_memory) if max_memory else (int(0.8 * free) if free else None)
    plans = []
    for h, w in dims:
        try:
            plans.append(plan_level(h, w, budget, tile, optimizer=config.optimizer,
                                    untiled_bytes=h * w * BYTES_PER_PIXEL["gatys"]))
        except ValueError as e:
            if tile == "auto" or "allowed" in str(e):
                raise InputError(str(e)) from None
            raise
    return plans


@dataclass(frozen=True)
class _Tile:
    y0: int  # the inner square, owned by this tile
    y1: int
    x0: int
    x1: int
    ty0: int  # with the margins
    ty1: int
    tx0: int
    tx1: int

    def owned(self, stride: int, fh: int, fw: int, h: int, w: int) -> tuple[slice, slice, slice, slice]:
        """(rows, cols) of the owned positions in this tile's features of ``fh x fw`` at
        ``stride``, then the same positions in the whole image's features."""
        r0, c0 = (self.y0 - self.ty0) // stride, (self.x0 - self.tx0) // stride
        r1 = fh if self.y1 == h else (self.y1 - self.ty0) // stride
        c1 = fw if self.x1 == w else (self.x1 - self.tx0) // stride
        gy, gx = self.y0 // stride, self.x0 // stride
        return slice(r0, r1), slice(c0, c1), slice(gy, gy + r1 - r0), slice(gx, gx + c1 - c0)


def _tiles(rows: Sequence[int], cols: Sequence[int], margin: int, h: int, w: int) -> Iterator[_Tile]:
    for r in range(len(rows) - 1):
        for c in range(len(cols) - 1):
            y0, y1, x0, x1 = rows[r], rows[r + 1], cols[c], cols[c + 1]
            yield _Tile(y0, y1, x0, x1, max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin),
                        min(w, x1 + margin))


def _strides(layers: Sequence[str]) -> dict[str, int]:
    table = {name: stride for name, _, stride in layer_table("vgg19")}
    return {n: table[n] for n in layers}


def tiled_grams(encoder, image: torch.Tensor, layers: Sequence[str], precision: str, tile: int = 1024,
                margin: int = 64, device=None) -> dict[str, torch.Tensor]:
    """Gram matrices (:func:`atelier.losses.gram_matrix`) of a large image, summed over tiles.

    Args:
        image: float32 (1, 3, H, W) in [0, 1], on the CPU or ``device``.
        tile, margin: px, multiples of 16.

    Returns:
        layer -> float32 (1, C, C) on ``device``, equal to the untiled Gram matrices up to the zero
        padding at the tiles' outer edges.
    """
    device = device or image.device
    h, w = image.shape[-2:]
    rows, cols = grid_bounds(h, max(1, math.ceil(h / tile)), 0.0), grid_bounds(w, max(1, math.ceil(w / tile)), 0.0)
    return _gram_pass(encoder, image, layers, precision, rows, cols, margin, device)


def _gram_pass(encoder, image, layers, precision, rows, cols, margin, device,
               extra: Optional[Callable] = None) -> dict[str, torch.Tensor]:
    h, w = image.shape[-2:]
    strides = _strides(layers)
    sums: dict[str, torch.Tensor] = {}
    for t in _tiles(rows, cols, margin, h, w):
        with torch.no_grad():
            feats = encoder(image[:, :, t.ty0:t.ty1, t.tx0:t.tx1].to(device), layers, precision)
            for n in layers:
                f = feats[n]
                r, c, _, _ = t.owned(strides[n], f.shape[-2], f.shape[-1], h, w)
                o = f[:, :, r, c].float().reshape(f.shape[1], -1)
                g = o @ o.T
                sums[n] = g if n not in sums else sums[n] + g
            if extra is not None:
                extra(t, feats)
    grams = {n: (sums[n] / ((h // strides[n]) * (w // strides[n])))[None] for n in layers}
    return grams


class TiledObjective:
    """The Gatys objective of a whole image (content, Gram style and TV losses as in
    :meth:`GatysStyleTransfer.losses`) and its gradient, computed tile by tile.

    Args:
        encoder: the VGG encoder (on ``device``).
        content: float32 (1, 3, H, W) in [0, 1], the content image at this level (the whole
            image's buffers stay on its device; tiles go to ``device``).
        style_target: a :class:`~atelier.losses.StyleTarget` (the blended Gram targets).
        plan: this level's :class:`GatysTilePlan`.
        weights: ``(content_weight, style_weight, tv_weight)``.
        on_tile: called as ``on_tile(done, total)`` after each tile of both passes.
    """

    def __init__(self, encoder, content: torch.Tensor, content_layers: Sequence[str], style_layers: Sequence[str],
                 style_target: StyleTarget, plan: GatysTilePlan, weights: tuple[float, float, float],
                 precision: str = "fp32", device=None, on_tile: Optional[Callable[[int, int], None]] = None):
        self.encoder, self.plan, self.precision = encoder, plan, precision
        self.device = device or content.device
        self.content_layers, self.style_layers = list(content_layers), list(style_layers)
        self.layers = sorted(set(self.content_layers) | set(self.style_layers),
                             key=[n for n, _, _ in layer_table("vgg19")].index)
        self.strides = _strides(self.layers)
        self.weights = weights
        self.style_target = style_target
        self.on_tile = on_tile
        self.seconds: list[float] = []
        h, w = content.shape[-2:]
        self.h, self.w = h, w
        # content features of the whole content image, assembled from the tiles' owned positions
        self.targets: dict[str, torch.Tensor] = {}
        rows, cols = plan.bounds(0)

        def keep(t: _Tile, feats: Mapping[str, torch.Tensor]) -> None:
            for n in self.content_layers:
                f = feats[n]
                if n not in self.targets:
                    self.targets[n] = torch.zeros(1, f.shape[1], h // self.strides[n], w // self.strides[n],
                                                  device=content.device)
                r, c, gr, gc = t.owned(self.strides[n], f.shape[-2], f.shape[-1], h, w)
                self.targets[n][:, :, gr, gc] = f[:, :, r, c].float().to(self.targets[n].device)

        _gram_pass(encoder, content, self.content_layers, precision, rows, cols, plan.margin, self.device, keep)
        self.target_norms = {n: float(t.pow(2).mean()) + EPS for n, t in self.targets.items()}

    def _tick(self, done: int, total: int) -> None:
        if self.on_tile is not None:
            self.on_tile(done, total)

    def __call__(self, x: torch.Tensor, iteration: int) -> tuple[dict, torch.Tensor]:
        """Losses (0-dim float32 tensors: ``content``, ``style``, ``tv``, ``total``) of the image
        ``x`` (float32 (1, 3, H, W), on the CPU or the device) and the gradient of ``total`` (float32, shaped as ``x``),
        with the tile grid of ``iteration``."""
        wc, ws, wt = self.weights
        h, w = self.h, self.w
        rows, cols = self.plan.bounds(iteration)
        total_tiles = 2 * (len(rows) - 1) * (len(cols) - 1)
        done = 0
        t0 = time.perf_counter()

        def tick(t, feats):
            nonlocal done
            done += 1
            self._tick(done, total_tiles)

        grams = _gram_pass(self.encoder, x, self.style_layers, self.precision, rows, cols, self.plan.margin,
                              self.device, tick)
        st = self.style_target
        with torch.no_grad():
            style = sum(b * sum(st.layer_weights[n] * relative_mse(grams[n], g[n].to(grams[n].device)) for n in st.layers)
                        for b, g in zip(st.blend, st.grams) if b > 0)
            # d style / d f_p = 2 M f_p for every owned position p (module docstring)
            m = {}
            for n in self.style_layers:
                c = grams[n].shape[-1]
                npos = (h // self.strides[n]) * (w // self.strides[n])
                acc = torch.zeros_like(grams[n][0])
                for b, g in zip(st.blend, st.grams):
                    if b > 0:
                        gs = g[n].to(acc.device)[0]
                        acc += b * (grams[n][0] - gs) / (gs.pow(2).mean() + EPS)
                m[n] = (ws * st.layer_weights[n] * 2.0 / (npos * c * c)) * acc
        grad = torch.zeros_like(x)
        content = torch.zeros((), dtype=torch.float32, device=x.device)
        for t in _tiles(rows, cols, self.plan.margin, h, w):
            xt = x[:, :, t.ty0:t.ty1, t.tx0:t.tx1].to(self.device).requires_grad_(True)
            feats = self.encoder(xt, self.layers, self.precision)
            lc = xt.new_zeros(())
            for n in self.content_layers:
                f = feats[n]
                r, c, gr, gc = t.owned(self.strides[n], f.shape[-2], f.shape[-1], h, w)
                tgt = self.targets[n][:, :, gr, gc].to(f.device)
                numel = self.targets[n].numel()
                lc = lc + (f[:, :, r, c].float() - tgt).pow(2).sum() / (numel * self.target_norms[n])
            lc = lc / len(self.content_layers)
            surrogate = xt.new_zeros(())
            for n in self.style_layers:
                f = feats[n]
                r, c, _, _ = t.owned(self.strides[n], f.shape[-2], f.shape[-1], h, w)
                o = f[:, :, r, c].float().reshape(f.shape[1], -1)
                surrogate = surrogate + (o * (m[n].to(o.device) @ o)).sum()
            (wc * lc + surrogate).backward()
            grad[:, :, t.ty0:t.ty1, t.tx0:t.tx1] += xt.grad.float().to(x.device)
            content = content + lc.detach().float().to(x.device)
            del feats, xt
            done += 1
            self._tick(done, total_tiles)
        xv = x.detach().requires_grad_(True)
        tv = tv_loss(xv)
        (wt * tv).backward()
        grad += xv.grad
        tv = tv.detach()
        style = style.to(x.device)
        total = wc * content + ws * style + wt * tv
        self.seconds.append(time.perf_counter() - t0)
        return {"content": content, "style": style, "tv": tv, "total": total}, grad


def measure_seconds_per_pixel(encoder, layers: Sequence[str], precision: str, device, side: int = 256) -> float:
    """Seconds per pixel of one VGG forward and backward through ``layers`` on ``device``: a
    ``side`` px square timed once after one warm-up (the short measurement of the time estimate)."""
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(device)
    seconds = []
    for _ in range(2):
        t0 = time.perf_counter()
        xv = x.clone().requires_grad_(True)
        feats = encoder(xv, layers, precision)
        sum(f.float().pow(2).mean() for f in feats.values()).backward()
        float(xv.grad[0, 0, 0, 0])  # wait for the device
        seconds.append(time.perf_counter() - t0)
    return seconds[-1] / (side * side)


def estimate_seconds(plans: Sequence[Optional[GatysTilePlan]], dims: Sequence[tuple[int, int]],
                     iterations: Sequence[int], seconds_per_pixel: float) -> float:
    """Estimated seconds of a run: per level, ``iterations[level]`` forward and backward passes over its
    pixels (a tiled level: every tile with its margins, plus the Gram pass without gradients,
    counted as a third of a pass)."""
    total = 0.0
    for plan, (h, w), n in zip(plans, dims, iterations):
        if plan is None or plan.count == 1:
            total += n * h * w * seconds_per_pixel
            continue
        rows, cols = plan.bounds(0)
        pixels = sum((t.ty1 - t.ty0) * (t.tx1 - t.tx0) for t in _tiles(rows, cols, plan.margin, h, w))
        total += n * pixels * seconds_per_pixel * 4 / 3
    return total
