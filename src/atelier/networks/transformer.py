"""Feed-forward image transformation network for real-time style transfer.

* Johnson, Alahi & Fei-Fei (2016), "Perceptual Losses for Real-Time Style Transfer and
  Super-Resolution": a convolutional encoder (3 convolutions, two of stride 2), five
  residual blocks and a decoder back to full resolution, trained against VGG perceptual
  losses (see :mod:`atelier.training`).
* Ulyanov, Vedaldi & Lempitsky (2016), "Instance Normalization: The Missing Ingredient
  for Fast Stylization": instance normalization instead of batch normalization.
* Dumoulin, Shlens & Kudlur (2017), "A Learned Representation for Artistic Style":
  conditional instance normalization; one network holds many styles, each a set of
  per-channel scales and shifts, and styles are blended by mixing those parameters.
* Odena, Dumoulin & Olah (2016), "Deconvolution and Checkerboard Artifacts": upsampling
  by nearest-neighbour resize followed by a convolution instead of a transposed
  convolution. Reflection padding everywhere avoids dark borders.

Images follow the project convention: float32 (N, 3, H, W), RGB, values in [0, 1].
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..core.padding import pad_mode
from ..core.runtime import autocast

__all__ = ["ConditionalInstanceNorm2d", "TransformerNet", "style_weights_matrix", "MIN_SIDE"]

#: Smallest accepted image side in pixels (as for the rest of atelier).
MIN_SIDE = 16

StyleWeights = Union[None, int, Sequence[float], Sequence[Sequence[float]], torch.Tensor]


class ConditionalInstanceNorm2d(nn.Module):
    """Conditional instance normalization (Dumoulin et al. 2017).

    Each channel of each image is normalized to zero mean and unit variance over its
    H x W positions (instance normalization, Ulyanov et al. 2016, no affine part), then
    scaled and shifted by ``gamma = style_weights @ gamma_table`` and
    ``beta = style_weights @ beta_table``. A one-hot row of ``style_weights`` selects
    one style's parameters; other non-negative rows blend styles (Dumoulin et al. §4).
    With ``num_styles=1`` and weights ``[[1.0]]`` this is a plain instance norm with a
    learned affine transform.

    Args:
        num_features: number of channels C (>= 1).
        num_styles: number of styles S (>= 1).
        eps: added to the variance for numerical stability.

    Attributes:
        gamma: parameter float32 (S, C), initialized to 1.
        beta: parameter float32 (S, C), initialized to 0.

    Raises:
        ValueError: ``num_features`` or ``num_styles`` < 1.
    """

    def __init__(self, num_features: int, num_styles: int = 1, eps: float = 1e-5):
        super().__init__()
        if int(num_features) < 1 or int(num_styles) < 1:
            raise ValueError(f"num_features and num_styles must be >= 1, got {num_features}, {num_styles}")
        self.num_features, self.num_styles, self.eps = int(num_features), int(num_styles), float(eps)
        self.gamma = nn.Parameter(torch.ones(self.num_styles, self.num_features))
        self.beta = nn.Parameter(torch.zeros(self.num_styles, self.num_features))

    def extra_repr(self) -> str:
        """Sizes shown by ``print(module)``."""
        return f"{self.num_features}, num_styles={self.num_styles}, eps={self.eps}"

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        """Normalize ``x`` and apply the blended per-style affine transform.

        Args:
            x: float (N, C, H, W) with H * W > 1.
            style_weights: float (N, S) or (1, S) blend weights, used as given (not
                normalized or checked for sign; :class:`TransformerNet` does that).

        Returns:
            Tensor of the shape and dtype of ``x``. Statistics and the affine transform
            are computed in float32, also under bf16 autocast.

        Raises:
            ValueError: ``x`` does not have C channels or ``style_weights`` is not
                (N or 1, S).
        """
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"expected (N, {self.num_features}, H, W) input, got {tuple(x.shape)}")
        if style_weights.dim() != 2 or style_weights.shape[1] != self.num_styles or \
                style_weights.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"style_weights must have shape ({x.shape[0]} or 1, {self.num_styles}), "
                             f"got {tuple(style_weights.shape)}")
        dtype = x.dtype
        with autocast(x.device, "fp32"):
            y = F.instance_norm(x.float(), eps=self.eps)
            w = style_weights.to(device=x.device, dtype=torch.float32)
            gamma = (w @ self.gamma.float())[:, :, None, None]
            beta = (w @ self.beta.float())[:, :, None, None]
            return (y * gamma + beta).to(dtype)


def style_weights_matrix(style_weights: StyleWeights, batch: int, num_styles: int,
                         device: torch.device | str | None = None) -> torch.Tensor:
    """Turn the ways of naming styles into a float32 (batch, num_styles) blend matrix.

    Args:
        style_weights: one of
            * ``None``: style 0 for every image;
            * an ``int`` i: style i for every image (one-hot);
            * a sequence or 1-D tensor of ``num_styles`` weights: the same blend for every image;
            * a (batch, num_styles) or (1, num_styles) array/tensor: one blend per image.
            Weights must be finite and non-negative with a positive sum per row; each
            row is divided by its sum (so ``[1, 0]`` is exactly style 0 and ``[2, 2]``
            equals ``[0.5, 0.5]``).
        batch: number of images N.
        num_styles: number of styles S of the network.
        device: device of the result.

    Returns:
        float32 tensor (batch, num_styles); rows sum to 1.

    Raises:
        ValueError: an index out of range, the wrong number of weights, a negative,
            NaN or infinite weight, or a row that sums to zero.
    """
    if style_weights is None:
        style_weights = 0
    if isinstance(style_weights, bool):
        raise ValueError(f"style_weights must be an index or weights, not {style_weights!r}")
    if isinstance(style_weights, int) or (isinstance(style_weights, torch.Tensor) and style_weights.dim() == 0
                                          and not style_weights.is_floating_point()):
        idx = int(style_weights)
        if not 0 <= idx < num_styles:
            raise ValueError(f"style index {idx} is out of range for a network with {num_styles} style(s)")
        w = torch.zeros(batch, num_styles, device=device)
        w[:, idx] = 1.0
        return w
    try:
        w = torch.as_tensor(style_weights, dtype=torch.float32, device=device)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"style_weights must be an index, {num_styles} weight(s) or a (N, {num_styles}) "
                         f"array, got {type(style_weights).__name__} ({e})") from None
    if w.dim() == 1:
        w = w.unsqueeze(0)
    if w.dim() != 2 or w.shape[1] != num_styles or w.shape[0] not in (1, batch):
        raise ValueError(f"style_weights must have {num_styles} weight(s) (one per style), or shape "
                         f"({batch}, {num_styles}); got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()):
        raise ValueError("style_weights must be finite numbers")
    if bool((w < 0).any()):
        raise ValueError(f"style_weights must be non-negative, got {w.tolist()}")
    total = w.sum(dim=1, keepdim=True)
    if bool((total <= 0).any()):
        raise ValueError("each row of style_weights must have a positive sum (not all zero)")
    return (w / total).expand(batch, num_styles).contiguous()


class _Conv(nn.Module):
    """Reflection padding (k // 2) then a convolution."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.pad = kernel // 2
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride), reflection-padded (circularly
        inside :func:`atelier.core.padding.circular_padding`: tileable textures)."""
        return self.conv(F.pad(x, (self.pad,) * 4, mode=pad_mode("reflect")))


class _ResidualBlock(nn.Module):
    """conv3x3 - CIN - ReLU - conv3x3 - CIN, plus the input (Johnson et al., supplementary)."""

    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.conv1 = _Conv(channels, channels, 3)
        self.norm1 = ConditionalInstanceNorm2d(channels, num_styles)
        self.conv2 = _Conv(channels, channels, 3)
        self.norm2 = ConditionalInstanceNorm2d(channels, num_styles)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> same shape; ``w`` are the (N or 1, S) style weights."""
        y = F.relu(self.norm1(self.conv1(x), w))
        return x + self.norm2(self.conv2(y), w)


class _Upsample(nn.Module):
    """Nearest-neighbour x2 upsampling, then a 3x3 convolution (no transposed convolution)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = _Conv(c_in, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, 2H, 2W)."""
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TransformerNet(nn.Module):
    """Image transformation network of Johnson et al. (2016) with (conditional) instance norm.

    Layers (``c = round(32 * width)``), every convolution reflection-padded::

        9x9 conv c, stride 1   - CIN - ReLU
        3x3 conv 2c, stride 2  - CIN - ReLU
        3x3 conv 4c, stride 2  - CIN - ReLU
        5 residual blocks of 4c channels (3x3 conv - CIN - ReLU - 3x3 conv - CIN, + input)
        nearest x2, 3x3 conv 2c - CIN - ReLU
        nearest x2, 3x3 conv c  - CIN - ReLU
        9x9 conv 3, then a sigmoid

    Every normalization is a :class:`ConditionalInstanceNorm2d` (Dumoulin et al. 2017)
    with ``num_styles`` rows; with ``num_styles=1`` the network is the single-style
    network of Johnson et al. with the instance norm of Ulyanov et al. (2016).

    The output goes through a sigmoid, so it is always in [0, 1] without a clamp, and
    gradients never vanish at a clamp boundary (Johnson et al. used a scaled tanh; a
    sigmoid is the same map rescaled to [0, 1]).

    Any image size with both sides >= 16 px is accepted: the input is reflection-padded
    on the bottom/right to a multiple of 4 (the total downsampling factor) and the output
    is cropped back, so the output has exactly the input's size.

    Args:
        num_styles: number of styles S the network holds (>= 1).
        width: channel multiplier (> 0); 1.0 gives 32/64/128 channels as in the paper,
            0.25 gives 8/16/32 (fast, for tests and previews).

    Example::

        net = TransformerNet(num_styles=3)
        out = net(images)                       # style 0
        out = net(images, 2)                    # style 2
        out = net(images, [0.5, 0.5, 0.0])      # half style 0, half style 1

    Raises:
        ValueError: ``num_styles`` < 1 or ``width`` <= 0 / not finite.
    """

    #: Total downsampling factor of the encoder; inputs are padded to a multiple of it.
    FACTOR = 4

    def __init__(self, num_styles: int = 1, width: float = 1.0):
        super().__init__()
        if isinstance(num_styles, bool) or not isinstance(num_styles, int) or num_styles < 1:
            raise ValueError(f"num_styles must be an integer >= 1, got {num_styles!r}")
        width = float(width)
        if not (width > 0) or math.isinf(width):
            raise ValueError(f"width must be a finite number > 0, got {width}")
        self.num_styles, self.width = num_styles, width
        c1, c2, c3 = (max(1, round(c * width)) for c in (32, 64, 128))
        self.channels = (c1, c2, c3)
        s = num_styles
        self.conv1, self.norm1 = _Conv(3, c1, 9, 1), ConditionalInstanceNorm2d(c1, s)
        self.conv2, self.norm2 = _Conv(c1, c2, 3, 2), ConditionalInstanceNorm2d(c2, s)
        self.conv3, self.norm3 = _Conv(c2, c3, 3, 2), ConditionalInstanceNorm2d(c3, s)
        self.res = nn.ModuleList(_ResidualBlock(c3, s) for _ in range(5))
        self.up1, self.norm4 = _Upsample(c3, c2), ConditionalInstanceNorm2d(c2, s)
        self.up2, self.norm5 = _Upsample(c2, c1), ConditionalInstanceNorm2d(c1, s)
        self.conv_out = _Conv(c1, 3, 9, 1)

    def extra_repr(self) -> str:
        """Sizes shown by ``print(module)``."""
        return f"num_styles={self.num_styles}, width={self.width}, channels={self.channels}"

    def forward(self, image: torch.Tensor, style_weights: StyleWeights = None) -> torch.Tensor:
        """Stylize a batch of images.

        Args:
            image: float32 (N, 3, H, W), RGB in [0, 1], H and W >= 16 (any other size
                is fine, e.g. 257 x 383).
            style_weights: ``None`` (style 0), a style index, ``num_styles`` blend
                weights for the whole batch, or a (N, num_styles) matrix; see
                :func:`style_weights_matrix` (rows are normalized to sum 1).

        Returns:
            float32 (N, 3, H, W), RGB in [0, 1], on the device of ``image`` (bf16 under
            autocast is cast back to float32).

        Raises:
            ValueError: ``image`` is not a floating (N, 3, H, W) tensor with sides >= 16,
                or ``style_weights`` is invalid (wrong length, out-of-range index,
                negative or non-finite weights, an all-zero row).
        """
        if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"image must be a tensor of shape (N, 3, H, W), got {shape}")
        if not image.is_floating_point():
            raise ValueError(f"image must be floating point in [0, 1], got {image.dtype}")
        n, _, h, w = image.shape
        if h < MIN_SIDE or w < MIN_SIDE:
            raise ValueError(f"image sides must be at least {MIN_SIDE} px, got {h}x{w}")
        sw = style_weights_matrix(style_weights, n, self.num_styles, image.device)
        ph, pw = (-h) % self.FACTOR, (-w) % self.FACTOR
        x = F.pad(image, (0, pw, 0, ph), mode="reflect") if ph or pw else image
        x = F.relu(self.norm1(self.conv1(x), sw))
        x = F.relu(self.norm2(self.conv2(x), sw))
        x = F.relu(self.norm3(self.conv3(x), sw))
        for block in self.res:
            x = block(x, sw)
        x = F.relu(self.norm4(self.up1(x), sw))
        x = F.relu(self.norm5(self.up2(x), sw))
        x = torch.sigmoid(self.conv_out(x).float())
        return x[:, :, :h, :w]
