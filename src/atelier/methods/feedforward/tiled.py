"""Print sizes with a feed-forward network: the image in overlapping tiles, with instance-norm
statistics shared by every tile, so a 4K or 8K result fits in the memory of a small machine and
shows no seams.

Why shared statistics: a :class:`~atelier.networks.TransformerNet` normalizes every feature map
by its own mean and variance (instance norm, Ulyanov et al. 2016). Run tile by tile, each tile
would be normalized by its own statistics and the tiles would differ in brightness and
contrast: visible seams (the artefact users of fast style transfer report for large images).
Here the statistics of every normalization layer are first recorded on the whole image at a
reduced size (``stats_size``, default 2048 px), and then each tile is normalized with those
(forward hooks replace the layer's output; the network is not changed). With ``stats_size`` at
least the image's size the statistics are exactly the whole image's, and tiled and untiled
results agree up to the border effects of the tile margins (``overlap``, larger than the
network's receptive field, feathered).

Memory: the peak is one tile's activations (about ``BYTES_PER_PIXEL["one-pass"]`` per pixel of a
padded tile) plus the float32 input and output images (24 bytes per pixel); see :func:`tile_plan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from ...core.limits import BYTES_PER_PIXEL
from ...core.runtime import autocast
from ...imaging import color
from ...networks.transformer import ConditionalInstanceNorm2d, TransformerNet, style_weights_matrix

__all__ = ["TilePlan", "choose_tile", "stylize_tiled", "tile_plan"]

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


def tile_plan(height: int, width: int, tile: int = 1024, overlap: int = 96) -> TilePlan:
    """The tiles of a ``height x width`` image and the estimated peak memory.

    Raises:
        ValueError: ``tile`` < 64 or not a multiple of 4, or ``overlap`` < 0 or not a multiple of 4.
    """
    if tile < 64 or tile % 4:
        raise ValueError(f"tile must be a multiple of 4 and at least 64 px, got {tile}")
    if overlap < 0 or overlap % 4 or 2 * overlap > tile:
        raise ValueError(f"overlap must be a non-negative multiple of 4 px, at most half the tile, got {overlap}")
    rows, cols = math.ceil(height / tile), math.ceil(width / tile)
    side = min(tile, max(height, width)) + 2 * overlap
    peak = side * side * BYTES_PER_PIXEL["one-pass"] + height * width * IMAGE_BYTES_PER_PIXEL
    return TilePlan(height, width, tile, overlap, rows, cols, int(peak))


def choose_tile(height: int, width: int, budget: int, overlap: int = 96) -> Optional[TilePlan]:
    """The plan with the largest tile (1024, 768, 512, 384, 256 px) whose peak fits ``budget``
    bytes, or None when even the smallest does not."""
    for tile in (2048, 1536, 1024, 768, 512, 384, 256):
        plan = tile_plan(height, width, tile, min(overlap, tile // 2))
        if plan.peak_bytes <= budget:
            return plan
    return None


def _norm_layers(model: TransformerNet) -> list[ConditionalInstanceNorm2d]:
    return [m for m in model.modules() if isinstance(m, ConditionalInstanceNorm2d)]


def _record_statistics(model: TransformerNet, image: torch.Tensor, sw: torch.Tensor, precision: str) -> list:
    """(mean, var) of every normalization layer's input, float32 (1, C, 1, 1), on ``image``."""
    stats, hooks = [], []

    def record(module, args, output):
        x = args[0].float()
        stats.append((x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True)))

    for layer in _norm_layers(model):
        hooks.append(layer.register_forward_hook(record))
    try:
        with torch.inference_mode(), autocast(image.device, precision):
            model(image, sw)
    finally:
        for h in hooks:
            h.remove()
    return stats


def _run_with_statistics(model: TransformerNet, x: torch.Tensor, sw: torch.Tensor, stats: list,
                         precision: str) -> torch.Tensor:
    """``model(x)`` with each normalization layer using the given statistics, not its input's."""
    layers, hooks = _norm_layers(model), []

    def fixed(i):
        mean, var = stats[i]

        def hook(module, args, output):
            inp = args[0]
            with autocast(inp.device, "fp32"):
                y = (inp.float() - mean) / torch.sqrt(var + module.eps)
                w = sw.to(device=inp.device, dtype=torch.float32)
                gamma = (w @ module.gamma.float())[:, :, None, None]
                beta = (w @ module.beta.float())[:, :, None, None]
                return (y * gamma + beta).to(output.dtype)
        return hook

    for i, layer in enumerate(layers):
        hooks.append(layer.register_forward_hook(fixed(i)))
    try:
        with torch.inference_mode(), autocast(x.device, precision):
            return model(x, sw).float()
    finally:
        for h in hooks:
            h.remove()


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


def stylize_tiled(model: TransformerNet, image: torch.Tensor, style_weights=None, *, tile: int = 1024,
                  overlap: int = 96, stats_size: Optional[int] = 2048, precision: str = "fp32",
                  preserve_color: str = "none", progress=None) -> torch.Tensor:
    """Stylize one large image tile by tile with shared instance-norm statistics.

    Args:
        model: a loaded :class:`~atelier.networks.TransformerNet` (its device is used).
        image: float32 (1, 3, H, W) RGB in [0, 1], on the CPU (the whole image stays there).
        style_weights: as for :meth:`TransformerNet.forward`.
        tile: inner side of a tile in px (a multiple of 4, >= 64).
        overlap: margin in px added on each side of a tile and feathered into its neighbours (a
            multiple of 4; 96 px gave 45 dB PSNR against the untiled result on a 448 px photo, 64 px 41 dB).
        stats_size: longest side (px) at which the statistics are recorded; ``None`` or >= the
            image's longest side: on the whole image (exact, but its activations must fit).
        precision: ``"fp32"`` or ``"bf16"`` (resolved, not ``"auto"``).
        preserve_color: ``"none"``, ``"luminance"`` or ``"histogram"``, as for
            :func:`~atelier.methods.feedforward.apply.stylize_tensor`.
        progress: called as ``progress(tiles_done, tiles)`` after each tile.

    Returns:
        float32 (1, 3, H, W) in [0, 1] on the CPU.

    Raises:
        ValueError: a bad image tensor, tile or overlap, or bad style weights.
    """
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"image must be a (1, 3, H, W) tensor, got {tuple(image.shape)}")
    h, w = image.shape[-2:]
    plan = tile_plan(h, w, tile, overlap)
    device = next(model.parameters()).device
    sw = style_weights_matrix(style_weights, 1, model.num_styles, device)
    small = image
    if stats_size is not None and max(h, w) > stats_size:
        s = stats_size / max(h, w)
        small = F.interpolate(image, size=(max(16, round(h * s)), max(16, round(w * s))), mode="area")
    stats = _record_statistics(model, small.to(device), sw, precision)
    out = torch.zeros(1, 3, h, w)
    weight = torch.zeros(1, 1, h, w)
    done = 0
    for r in range(plan.rows):
        for c in range(plan.cols):
            y0, x0 = r * tile, c * tile
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            # margins, kept at multiples of 4 so the network's stride-2 grids line up across tiles
            ty0, tx0 = max(0, y0 - overlap), max(0, x0 - overlap)
            ty1, tx1 = min(h, y1 + overlap), min(w, x1 + overlap)
            y = _run_with_statistics(model, image[:, :, ty0:ty1, tx0:tx1].to(device), sw, stats, precision).cpu()
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
    out = (out / weight.clamp_min(1e-8)).clamp(0, 1)
    if preserve_color == "histogram":
        return color.match_color_histogram(out, image).clamp(0, 1)
    return color.color_output(out, image, preserve_color).clamp(0, 1)
