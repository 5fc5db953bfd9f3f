"""Print sizes with WCT (issue 24): every level's whitening and colouring with the *whole image's*
feature mean and covariance, streamed over overlapping tiles, so a 4K or 8K result fits a small
machine's memory and shows no seams.

Multi-level WCT (Li et al. 2017, §3) whitens the content features of each layer with their own
covariance, colours them with the style's, decodes, and feeds the decoded image to the next,
finer layer. Tile by tile with each tile's own covariance, a sky tile and a face tile would be
whitened differently: seams. Here, at every level, a first pass over the tiles sums each tile's
inner-square features and their outer products in float64 (C <= 512: a 512 x 512 matrix), giving
the whole image's mean and covariance; a second pass whitens and colours every tile's features
with those and decodes the tile; the tiles are blended into the full image
(:func:`atelier.imaging.tiles.blend_tiles`), which the next level reads. Tile corners lie on
multiples of 16 px (relu5_1's grid). Two encoder passes and one decoder pass per level: about
twice the work of the untiled run. Masks are not tiled (such a run is done untiled).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ...core.runtime import autocast
from ...imaging.tiles import TilePlan, blend_tiles
from . import common as _common
from .tiled import Tiled
from .wct_model import EPS, WCTModel, WCTStyle, _sym_power, colour

__all__ = ["wct_tiled", "wct_tiled_run"]

#: Tile corners and margins are multiples of this (the encoder's downsampling at relu5_1).
GRID = 16


def _pad(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % GRID, (-w) % GRID
    return F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x


def _tiles(plan: TilePlan):
    """(y0, x0, y1, x1, ty0, tx0, ty1, tx1) of every tile: the inner square and the tile with margins."""
    h, w = plan.height, plan.width
    for r in range(plan.rows):
        for c in range(plan.cols):
            y0, x0 = r * plan.tile, c * plan.tile
            y1, x1 = min(h, y0 + plan.tile), min(w, x0 + plan.tile)
            yield (y0, x0, y1, x1, max(0, y0 - plan.overlap), max(0, x0 - plan.overlap),
                   min(h, y1 + plan.overlap), min(w, x1 + plan.overlap))


def streamed_covariance(model: WCTModel, image: torch.Tensor, plan: TilePlan, layer: str, precision: str):
    """The whole image's ``layer`` features' mean (C, 1) and covariance (C, C), float64, as
    :func:`~atelier.methods.arbitrary.wct_model.feature_covariance` gives them untiled (up to the
    tiles' border effects): sums over every tile's inner square, one tile in memory at a time."""
    k = 2 ** (int(layer[4]) - 1)
    dev = model._device()
    s1 = s2 = None
    n = 0
    for y0, x0, y1, x1, ty0, tx0, ty1, tx1 in _tiles(plan):
        with torch.inference_mode():
            f = model.encoder(_pad(image[:, :, ty0:ty1, tx0:tx1]).to(dev), [layer], precision)[layer]
        inner = f[0, :, (y0 - ty0) // k: -(-(y1 - ty0) // k), (x0 - tx0) // k: -(-(x1 - tx0) // k)]
        inner = inner.double().flatten(1)
        a, b = inner.sum(dim=1, keepdim=True), inner @ inner.t()
        s1, s2 = (a, b) if s1 is None else (s1 + a, s2 + b)
        n += inner.shape[1]
    mean = s1 / n
    cov = (s2 - n * mean @ mean.t()) / max(n - 1, 1)
    return mean, cov + EPS * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)


def wct_tiled(model: WCTModel, content: torch.Tensor, styles: Sequence[WCTStyle], plan: TilePlan, *,
              alpha: float = 1.0, blend: Optional[Sequence[float]] = None, precision: Optional[str] = None,
              progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Multi-level WCT on a large image, tile by tile with the whole image's covariances.

    Args:
        model: from :func:`~atelier.methods.arbitrary.wct.load_wct`.
        content: float32 (1, 3, H, W), RGB in [0, 1], on the CPU (the whole image stays there).
        styles: encoded styles (:meth:`WCTModel.encode_style`), one or more.
        plan: the tiles (:func:`atelier.imaging.tiles.tile_plan`; tile and overlap multiples of 16).
        alpha, blend: as for :meth:`WCTModel.forward` (no mask).
        precision: ``"fp32"``/``"bf16"``; default the model's.
        progress: ``progress(tiles_done, tiles)`` over all levels' passes (3 per tile and level).

    Returns:
        float32 (1, 3, H, W) in [0, 1] on the CPU.

    Raises:
        ValueError: a tile or overlap not a multiple of 16, alpha outside [0, 1], no style.
    """
    if plan.tile % GRID or plan.overlap % GRID:
        raise ValueError(f"WCT tiles need a tile and overlap that are multiples of {GRID} px, got {plan.tile}, "
                         f"{plan.overlap}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not styles:
        raise ValueError("at least one style is needed")
    weights = [1.0 / len(styles)] * len(styles) if blend is None else [float(b) for b in blend]
    total = sum(weights)
    p = precision or model.precision
    dev = model._device()
    styles = [s.to(dev) for s in styles]
    x = content.float().cpu()
    steps, done = 2 * plan.count * len(model.layers), 0
    for layer in model.layers:
        mean, cov = streamed_covariance(model, x, plan, layer, p)
        whitening = _sym_power(cov, -0.5).to(dev)
        mean = mean.to(dev)
        done += plan.count
        if progress is not None:
            progress(done, steps)

        def run(tile: torch.Tensor) -> torch.Tensor:
            h, w = tile.shape[-2:]
            with torch.inference_mode():
                f = model.encoder(_pad(tile).to(dev), [layer], p)[layer].float()
                _, c, fh, fw = f.shape
                flat = f[0].flatten(1).double()
                white = whitening @ (flat - mean)
                out = sum((wt / total) * colour(white, s, layer) for wt, s in zip(weights, styles))
                t = (alpha * out + (1.0 - alpha) * flat).float().reshape(1, c, fh, fw)
                with autocast(dev, p):
                    y = model.decoders[layer](t).float()
            return y[:, :, :h, :w]

        def tick(i, n, base=done):
            if progress is not None:
                progress(base + i, steps)

        x = blend_tiles(x, plan, run, tick).clamp(0, 1)
        done += plan.count
    return x


def wct_tiled_run(model: WCTModel, content: torch.Tensor, styles: Sequence[torch.Tensor], plan: TilePlan, *,
                  alpha: float = 1.0, blend: Optional[Sequence[float]] = None, preserve_color: str = "none",
                  precision: Optional[str] = None, progress=None) -> torch.Tensor:
    """The registry's tiled runner (:class:`atelier.methods.registry.Method` ``tiled``): styles as
    float32 (1, 3, h, w) tensors used at their size, colour modes as for untiled WCT."""
    return _common.stylize_tensor(Tiled(model, wct_tiled, plan, progress), content, styles, WCTStyle, alpha=alpha,
                                  blend=blend, preserve_color=preserve_color, style_size=None, precision=precision)
