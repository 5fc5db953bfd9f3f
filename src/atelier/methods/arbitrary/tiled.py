"""Print sizes with AdaIN (issue 24): the content image in overlapping tiles, every tile normalized
with the *whole image's* relu4_1 statistics, so a 4K or 8K result fits a small machine's memory
and shows no seams.

AdaIN (Huang & Belongie 2017, eq. 8) normalizes the content features by their own per-channel mean
and standard deviation before giving them the style's. Run tile by tile, each tile would be
normalized by its own statistics (a sky tile and a face tile differently) and the tiles would
differ in brightness and texture strength: seams. Here the content statistics of the whole image
are computed first, from an encoder pass over the tiles (each tile's inner square summed; the
relu4_1 statistics change with the image's scale, so a reduced copy would not do), then every
tile's features are normalized with those. The encoder (VGG19 to relu4_1)
and the decoder are convolutional, so away from the margins a tile's result is the untiled
one's; the margins (``overlap``, default 128 px, more than the receptive field that matters) are
feathered into the neighbours (:func:`atelier.imaging.tiles.blend_tiles`). Tile corners lie on
multiples of 8 px, the relu4_1 grid.

Masks (spatial control with two styles) are not tiled: their per-region statistics would need
the same treatment per region; such a run is done untiled.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ...core.runtime import autocast
from ...imaging.tiles import TilePlan, blend_tiles
from ...losses import STAT_EPS, mean_std
from . import common as _common
from .model import AdaINModel, StyleFeatures, _blend_weights, _check_alpha

__all__ = ["adain_tiled", "adain_tiled_run"]


def _pad8(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % AdaINModel.FACTOR, (-w) % AdaINModel.FACTOR
    return F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x


def _content_statistics(model: AdaINModel, image: torch.Tensor, stats_size: Optional[int], precision: str):
    """(mean, std) of the relu4_1 features of ``image`` downscaled to ``stats_size``, (1, 512, 1, 1)."""
    h, w = image.shape[-2:]
    small = image
    if max(h, w) > stats_size:
        s = stats_size / max(h, w)
        small = F.interpolate(image, size=(max(16, round(h * s)), max(16, round(w * s))), mode="area")
    sh, sw = small.shape[-2:]
    with torch.inference_mode():
        f = model.encode_content(_pad8(small).to(model._device()), precision)
    # the statistics of the image itself, not of the reflected padding
    return mean_std(f[:, :, : -(-sh // 8), : -(-sw // 8)].float())


def _streamed_statistics(model: AdaINModel, image: torch.Tensor, plan: TilePlan, precision: str):
    """The whole image's relu4_1 (mean, std), exact up to the tiles' border effects, from one encoder
    pass over the tiles: each tile's features over its inner square (its margins give the context)
    are summed in float64, so no more than one tile is ever in memory."""
    h, w = image.shape[-2:]
    dev = model._device()
    total = total_sq = None
    count = 0
    for r in range(plan.rows):
        for c in range(plan.cols):
            y0, x0 = r * plan.tile, c * plan.tile
            y1, x1 = min(h, y0 + plan.tile), min(w, x0 + plan.tile)
            ty0, tx0 = max(0, y0 - plan.overlap), max(0, x0 - plan.overlap)
            ty1, tx1 = min(h, y1 + plan.overlap), min(w, x1 + plan.overlap)
            with torch.inference_mode():
                f = model.encode_content(_pad8(image[:, :, ty0:ty1, tx0:tx1]).to(dev), precision)
            inner = f[:, :, (y0 - ty0) // 8: -(-(y1 - ty0) // 8), (x0 - tx0) // 8: -(-(x1 - tx0) // 8)].double()
            s1, s2 = inner.sum(dim=(2, 3), keepdim=True), inner.pow(2).sum(dim=(2, 3), keepdim=True)
            total = s1 if total is None else total + s1
            total_sq = s2 if total_sq is None else total_sq + s2
            count += inner.shape[-2] * inner.shape[-1]
    mean = total / count
    var = (total_sq / count - mean.pow(2)).clamp_min(0)
    return mean.float(), (var + STAT_EPS).sqrt().float()


def adain_tiled(model: AdaINModel, content: torch.Tensor, styles: Sequence[StyleFeatures], plan: TilePlan, *,
                alpha: float = 1.0, blend: Optional[Sequence[float]] = None, precision: Optional[str] = None,
                stats_size: Optional[int] = None,
                progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """AdaIN on a large image, tile by tile with the whole image's content statistics.

    Args:
        model: from :func:`~atelier.methods.arbitrary.adain.load_adain`.
        content: float32 (1, 3, H, W), RGB in [0, 1], on the CPU (the whole image stays there).
        styles: encoded styles (:meth:`AdaINModel.encode_style`), one or more.
        plan: the tiles (:func:`atelier.imaging.tiles.tile_plan`; tile and overlap multiples of 8).
        alpha, blend: as for :meth:`AdaINModel.forward` (no mask).
        precision: ``"fp32"``/``"bf16"``; default the model's.
        stats_size: None (default): the content statistics of the whole image at full size, exact,
            summed over the tiles in a first encoder pass (about a third more work); or the longest
            side (px) of a reduced copy to compute them on (one small pass, but relu4_1 statistics
            change with scale: at half size the result was 24 dB from the untiled one, against 47).
        progress: ``progress(tiles_done, tiles)`` after each tile.

    Returns:
        float32 (1, 3, H, W) in [0, 1] on the CPU.

    Raises:
        ValueError: a tile or overlap not a multiple of 8, bad alpha or blend, no style.
    """
    if plan.tile % 8 or plan.overlap % 8:
        raise ValueError(f"AdaIN tiles need a tile and overlap that are multiples of 8 px, got {plan.tile}, "
                         f"{plan.overlap}")
    alpha = _check_alpha(alpha)
    if not styles:
        raise ValueError("at least one style is needed")
    weights = _blend_weights(blend, len(styles))
    p = model._precision(precision)
    dev = model._device()
    if stats_size is None:
        c_mean, c_std = _streamed_statistics(model, content, plan, p)
    else:
        c_mean, c_std = _content_statistics(model, content, stats_size, p)
    targets = [(wk, s.target_mean.to(dev).float(), s.target_std.to(dev).float()) for wk, s in zip(weights, styles)]

    def run(tile: torch.Tensor) -> torch.Tensor:
        h, w = tile.shape[-2:]
        with torch.inference_mode():
            fc = model.encode_content(_pad8(tile).to(dev), p)
            with autocast(dev, "fp32"):
                normalized = (fc.float() - c_mean) / c_std
                t = sum(wk * (normalized * s_std + s_mean) for wk, s_mean, s_std in targets if wk)
                if alpha < 1.0:
                    t = alpha * t + (1.0 - alpha) * fc.float()
            return model.decode(t, p)[:, :, :h, :w]

    return blend_tiles(content, plan, run, progress).clamp(0, 1)


class Tiled:
    """An AdaIN or WCT model whose forward runs ``tiled(model, content, styles, plan, ...)``
    (:func:`adain_tiled`, :func:`~atelier.methods.arbitrary.tiled_wct.wct_tiled`), for
    :func:`common.stylize_tensor`."""

    def __init__(self, model, tiled: Callable, plan: TilePlan, progress):
        self.model, self.tiled, self.plan, self.progress = model, tiled, plan, progress

    def encode_style(self, image, precision=None):
        return self.model.encode_style(image, precision)

    def __call__(self, content, feats, *, alpha, blend, mask, precision):
        if mask is not None:
            raise ValueError("a mask is not tiled; run without tiles (--tile off) at this size")
        return self.tiled(self.model, content.cpu(), feats, self.plan, alpha=alpha, blend=blend,
                          precision=precision, progress=self.progress)


def adain_tiled_run(model: AdaINModel, content: torch.Tensor, styles: Sequence[torch.Tensor], plan: TilePlan, *,
                    alpha: float = 1.0, blend: Optional[Sequence[float]] = None, preserve_color: str = "none",
                    precision: Optional[str] = None, progress=None) -> torch.Tensor:
    """The registry's tiled runner (:class:`atelier.methods.registry.Method` ``tiled``): styles as
    float32 (1, 3, h, w) tensors used at their size, colour modes as for untiled AdaIN."""
    return _common.stylize_tensor(Tiled(model, adain_tiled, plan, progress), content, styles, StyleFeatures, alpha=alpha,
                                  blend=blend, preserve_color=preserve_color, style_size=None, precision=precision)
