"""The parameters of a Gatys run (:class:`GatysConfig`) and the sizes it will make: the
coarse-to-fine pyramid (:func:`pyramid_sizes`) and the checks done before any work
(:func:`check_sizes`: the pixel limit, and the memory plan of every level, tiled where needed,
:mod:`atelier.methods.gatys.tiled`). Run it with :class:`atelier.methods.gatys.optimize.GatysStyleTransfer`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import torch

from ...core.limits import check_pixels, scaled_dims
from ...core.runtime import check_precision
from ...encoders.vgg import validate_layers
from ...imaging import color
from ...io import images as img
from ...losses import normalize_weights
from .tiled import plan_levels

__all__ = ["GatysConfig", "check_sizes", "pyramid_sizes"]

PRESERVE_COLOR_MODES = color.PRESERVE_COLOR_MODES
OPTIMIZERS = ("lbfgs", "adam")
#: Longest side (pixels) above which a coarse-to-fine pyramid is used by default.
PYRAMID_THRESHOLD = 512
#: Smallest pyramid level (pixels, longest side).
MIN_SCALE_SIZE = 64
#: Bytes L-BFGS may use for its curvature history (100 pairs at 512 px, 15 at 2048 px).
LBFGS_MEMORY = 1 << 30


@dataclass
class GatysConfig:
    """Parameters of an optimization-based style transfer run.

    Attributes:
        size: longest side of the stylized image in pixels (None: the content image's own size).
        style_scale: style image longest side relative to the output's longest side (> 0).
        iterations: optimizer iterations per pyramid scale (one VGG forward+backward each).
        optimizer: ``"lbfgs"`` (default; Gatys et al.; one evaluation per iteration, steps
            bounded to 0.5 per pixel, history of up to 100 pairs within 1 GiB, see :mod:`atelier.methods.gatys.lbfgs`) or ``"adam"``.
        lr: Adam step size in [0, 1] pixel units (ignored for L-BFGS, whose step is 1).
        content_weight, style_weight, tv_weight: loss weights (normalized losses, see
            :mod:`atelier.losses`; the defaults suit 256 px to 2048 px alike).
        style_blend: one weight per style image (normalized to sum 1); None = equal.
        init: ``"content"``, ``"noise"``, ``"style"`` or a path / tensor of an init image.
        seed: RNG seed; same seed, same pixels on the CPU.
        preserve_color: ``"none"``, ``"luminance"`` (luminance-only transfer in YCbCr,
            Gatys et al. 2017 §5) or ``"histogram"`` (style colours matched to the content first).
        scales: pyramid levels (1 = single scale); None = 1 up to 512 px, then one more per
            doubling of the size (each level starts from the upsampled previous result).
        content_layers, style_layers: VGG layer names (see ``atelier layers``).
        style_layer_weights: one weight per style layer (normalized); None = equal.
        pooling: ``"max"`` or ``"avg"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` or a torch device string.
        precision: ``"auto"`` (bf16 where the hardware has fast bf16: CUDA with bf16 or a CPU
            with AMX; fp32 otherwise), ``"fp32"`` or ``"bf16"`` (autocast + channels_last;
            Gram matrices and loss sums stay fp32).
        weights: None for the Caffe VGG19, or a torchvision VGG16/VGG19 state-dict path.
        tileable: a seamless texture (issue 28): both sides rounded to a multiple of 16 px,
            circular padding in VGG19, wrap-around total variation, the content made periodic
            first (:mod:`atelier.imaging.tileable`); the output tiles without a seam.
        scale_iterations: one iteration count per pyramid scale, coarse to fine, instead of
            ``iterations`` at every scale (print sizes: many cheap iterations at the small scales,
            a few at the large ones); its length must be the number of scales.
    """

    size: Optional[int] = None
    style_scale: float = 1.0
    iterations: int = 300
    optimizer: str = "lbfgs"
    lr: float = 0.02
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    style_blend: Optional[Sequence[float]] = None
    init: object = "content"
    seed: Optional[int] = None
    preserve_color: str = "none"
    scales: Optional[int] = None
    content_layers: Sequence[str] = ("relu4_2",)
    style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_layer_weights: Optional[Sequence[float]] = None
    pooling: str = "max"
    device: str = "auto"
    precision: str = "auto"
    weights: Optional[str] = None
    tileable: bool = False
    scale_iterations: Optional[Sequence[int]] = None

    def iterations_per_scale(self, scales: int) -> list[int]:
        """Iterations at each of ``scales`` pyramid levels. Raises ValueError on a length mismatch."""
        if self.scale_iterations is None:
            return [self.iterations] * scales
        if len(self.scale_iterations) != scales:
            raise ValueError(f"scale iterations has {len(self.scale_iterations)} value(s) for {scales} scale(s); "
                             "give one per scale (see --scales)")
        return list(self.scale_iterations)

    def validate(self) -> "GatysConfig":
        """Check every field; returns self.

        Raises:
            ValueError: with a message naming the option and the accepted values.
        """
        if self.size is not None and (not isinstance(self.size, int) or self.size < img.MIN_SIDE):
            raise ValueError(f"size must be an integer of at least {img.MIN_SIDE} pixels, got {self.size}")
        if not (self.style_scale > 0):
            raise ValueError(f"style scale must be > 0, got {self.style_scale}")
        if not isinstance(self.iterations, int) or self.iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {self.iterations}")
        if self.scale_iterations is not None and (
                not self.scale_iterations
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in self.scale_iterations)):
            raise ValueError(f"scale iterations must be non-negative integers, one per scale, got "
                             f"{self.scale_iterations}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.preserve_color not in PRESERVE_COLOR_MODES:
            raise ValueError(f"preserve color must be one of {PRESERVE_COLOR_MODES}, got {self.preserve_color!r}")
        check_precision(self.precision)
        if self.pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {self.pooling!r}")
        for name in ("content_weight", "style_weight", "tv_weight", "lr"):
            v = getattr(self, name)
            if not (v >= 0) or math.isinf(v):
                raise ValueError(f"{name.replace('_', ' ')} must be a finite number >= 0, got {v}")
        if self.scales is not None and (not isinstance(self.scales, int) or self.scales < 1):
            raise ValueError(f"scales must be an integer >= 1, got {self.scales}")
        validate_layers(self.content_layers, self.style_layers)
        if self.style_layer_weights is not None:
            normalize_weights(self.style_layer_weights, len(self.style_layers), "style layer weights")
        return self

    def to_dict(self) -> dict:
        """JSON-serializable parameters (tensors given as init are recorded as ``"tensor"``)."""
        d = asdict(self)
        if not isinstance(d["init"], (str, type(None))):
            d["init"] = "tensor" if isinstance(self.init, torch.Tensor) else str(self.init)
        for k in ("content_layers", "style_layers", "style_blend", "style_layer_weights", "scale_iterations"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d


def pyramid_sizes(size: int, scales: Optional[int]) -> list[int]:
    """Longest side (pixels) of each pyramid level, coarse to fine, halving per level.

    ``scales=None`` chooses 1 level up to :data:`PYRAMID_THRESHOLD` px and one more per
    doubling above it. Levels below :data:`MIN_SCALE_SIZE` px are dropped.
    """
    if scales is None:
        scales = 1 if size <= PYRAMID_THRESHOLD else 1 + math.ceil(math.log2(size / PYRAMID_THRESHOLD))
    sizes = [round(size / 2 ** (scales - 1 - i)) for i in range(scales)]
    return [s for s in sizes if s >= MIN_SCALE_SIZE][: scales] or [size]


def check_sizes(config: GatysConfig, content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]],
                max_pixels: Optional[int] = None, device=None, tile="auto", max_memory=None) -> list[int]:
    """Check every image size a run will make, before any work: the output (``size``), each
    pyramid level, each style image at ``style_scale``, against the pixel limit; and the
    estimated memory of every level against the budget (``max_memory``, default 80 % of what is
    available), tiling the levels that need it (``tile``, see :func:`plan_levels`). Returns the
    pyramid sizes.

    Raises:
        InputError: a size above the pixel limit, or a level that does not fit even in tiles
            (one-line message).
    """
    h0, w0 = content_hw
    final = config.size or max(h0, w0)
    what = f"--size {final}" if config.size else "the content size"
    out_h, out_w = scaled_dims(h0, w0, final)
    check_pixels(out_h, out_w, what, max_pixels)
    for sh, sw in style_hws:
        longest = max(img.MIN_SIDE, round(config.style_scale * final))
        check_pixels(*scaled_dims(sh, sw, longest), f"--style-scale {config.style_scale:g} at {what}", max_pixels)
    sizes = pyramid_sizes(final, config.scales)
    plan_levels(config, content_hw, sizes, device, tile, max_memory)
    return sizes
