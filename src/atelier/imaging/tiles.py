"""Cutting a large image into overlapping tiles and blending the results back (print sizes,
issue 24): the plan (tile side, margins, count, the estimated peak memory) and the loop, shared by
every one-pass method that tiles (:mod:`atelier.methods.feedforward.tiled`,
:mod:`atelier.methods.arbitrary.tiled`). What each method does inside a tile, and how it keeps
its normalization statistics the same in every tile, is the method's own.

Each tile is the inner square plus ``overlap`` px of margin on every side that has a neighbour;
neighbours share ``2 * overlap`` px, blended with linear ramps (feathered), so no seam shows where
the per-tile results differ slightly (border effects of the network's padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..core.limits import BYTES_PER_PIXEL

__all__ = ["IMAGE_BYTES_PER_PIXEL", "TilePlan", "blend_tiles", "choose_tile", "tile_plan"]

#: Bytes per pixel of the whole image kept while tiling: the float32 input and output and the
#: float32 blending weights (3 + 3 + 1 floats, rounded up).
IMAGE_BYTES_PER_PIXEL = 32


@dataclass(frozen=True)
class TilePlan:
    """How an image is cut: ``tile`` (px, the inner side of a tile), ``overlap`` (px of margin on
    each side), ``rows`` x ``cols`` tiles, and ``peak_bytes`` (the estimated peak memory)."""

    height: int
    width: int
    tile: int
    overlap: int
    rows: int
    cols: int
    peak_bytes: int

    @property
    def count(self) -> int:
        """Number of tiles."""
        return self.rows * self.cols

    def describe(self) -> str:
        """One line for the user, e.g. ``"4x3 tiles of 1024 px (+64 px margins), about 2.1 GiB"``."""
        return (f"{self.cols}x{self.rows} tiles of {self.tile} px (+{self.overlap} px margins) over "
                f"{self.width}x{self.height}, about {self.peak_bytes / 2**30:.1f} GiB at the peak")


def tile_plan(height: int, width: int, tile: int = 1024, overlap: int = 96, kind: str = "one-pass") -> TilePlan:
    """The tiles of a ``height x width`` image and the estimated peak memory (one tile of a run of
    ``kind``, a key of :data:`atelier.core.limits.BYTES_PER_PIXEL`, plus the whole image's buffers).

    Raises:
        ValueError: ``tile`` < 64 or not a multiple of 4, or ``overlap`` < 0 or not a multiple of 4.
    """
    if tile < 64 or tile % 4:
        raise ValueError(f"tile must be a multiple of 4 and at least 64 px, got {tile}")
    if overlap < 0 or overlap % 4 or 2 * overlap > tile:
        raise ValueError(f"overlap must be a non-negative multiple of 4 px, at most half the tile, got {overlap}")
    rows, cols = math.ceil(height / tile), math.ceil(width / tile)
    side = min(tile, max(height, width)) + 2 * overlap
    peak = side * side * BYTES_PER_PIXEL[kind] + height * width * IMAGE_BYTES_PER_PIXEL
    return TilePlan(height, width, tile, overlap, rows, cols, int(peak))


def choose_tile(height: int, width: int, budget: int, overlap: int = 96, kind: str = "one-pass") -> Optional[TilePlan]:
    """The plan with the largest tile (1024, 768, 512, 384, 256 px) whose peak fits ``budget``
    bytes, or None when even the smallest does not."""
    for tile in (2048, 1536, 1024, 768, 512, 384, 256):
        plan = tile_plan(height, width, tile, min(overlap, tile // 2), kind)
        if plan.peak_bytes <= budget:
            return plan
    return None


def _ramp(n: int, margin: int, lo_edge: bool, hi_edge: bool) -> torch.Tensor:
    """Blending weights along one side of a tile: 1 inside, a linear ramp over the margins that
    overlap a neighbour (none at the image's border)."""
    w = torch.ones(n)
    if margin > 0:
        ramp = (torch.arange(margin, dtype=torch.float32) + 0.5) / margin
        if not lo_edge:
            w[:margin] = ramp
        if not hi_edge:
            w[n - margin:] = ramp.flip(0)
    return w


def blend_tiles(image: torch.Tensor, plan: TilePlan, run: Callable[[torch.Tensor], torch.Tensor],
                progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Run ``run`` on every tile of ``plan`` (with its margins) and blend the results.

    Args:
        image: float32 (1, 3, H, W) on the CPU (the whole image stays there).
        plan: from :func:`tile_plan` for this image's H and W.
        run: a tile (1, 3, h, w) on the CPU -> its result (1, 3, h, w) (any device: moved back).
            Tile corners lie at multiples of ``gcd(tile, overlap)`` px (keep both multiples of the
            network's stride so its grids line up across tiles).
        progress: called as ``progress(tiles_done, tiles)`` after each tile.

    Returns:
        float32 (1, 3, H, W) on the CPU, not clipped.
    """
    h, w = image.shape[-2:]
    tile, overlap = plan.tile, plan.overlap
    out = torch.zeros(1, 3, h, w)
    weight = torch.zeros(1, 1, h, w)
    done = 0
    for r in range(plan.rows):
        for c in range(plan.cols):
            y0, x0 = r * tile, c * tile
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            ty0, tx0 = max(0, y0 - overlap), max(0, x0 - overlap)
            ty1, tx1 = min(h, y1 + overlap), min(w, x1 + overlap)
            y = run(image[:, :, ty0:ty1, tx0:tx1]).float().cpu()
            # neighbours share 2 * overlap px (each one's margin over the other's edge): linear
            # ramps there, normalized by the summed weights below
            wy = _ramp(ty1 - ty0, min(2 * overlap, ty1 - ty0), ty0 == 0, ty1 == h)
            wx = _ramp(tx1 - tx0, min(2 * overlap, tx1 - tx0), tx0 == 0, tx1 == w)
            wt = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, ty0:ty1, tx0:tx1] += y * wt
            weight[:, :, ty0:ty1, tx0:tx1] += wt
            done += 1
            if progress is not None:
                progress(done, plan.count)
    return out / weight.clamp_min(1e-8)
