"""Decoders that invert VGG19 features back to an image: the AdaIN decoder (Huang & Belongie 2017)
and the WCT inversion decoders (Li et al. 2017).

Li, Fang, Yang, Wang, Lu & Yang, "Universal Style Transfer via Feature Transforms" (NeurIPS
2017), §3.1: for each of relu1_1 ... relu5_1 a decoder mirrors the VGG19 encoder up to that
layer and is trained only to reconstruct the image from its features (pixel loss plus feature
loss, no style loss), so it works for any style. Whitening-colouring (WCT) changes the
features; these decoders turn them back into pixels. The relu4_1 decoder has the layout of the
AdaIN decoder (:class:`~atelier.networks.decoders.AdaINDecoder`, same parameter names).

Train them with :class:`atelier.methods.arbitrary.train_decoders.InversionTrainer`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .transformer import _Conv

__all__ = ["InversionDecoder", "DECODER_LAYERS", "LAYER_CHANNELS"]

#: The layers a decoder can invert, from fine to coarse.
DECODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: Channels of the encoder's features at each of those layers (VGG19).
LAYER_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512}
#: Convolutions per VGG19 block.
_BLOCK_CONVS = (2, 2, 4, 4, 4)
_BLOCK_CHANNELS = (64, 128, 256, 512, 512)


class InversionDecoder(nn.Module):
    """VGG19 up to ``relu{B}_1``, mirrored: features (N, C_B, H / 2**(B-1), W / 2**(B-1)) to an image.

    Layout (``ch(b) = round(width * (64, 128, 256, 512, 512)[b - 1])``; every convolution 3x3
    with reflection padding, ReLU after all but the last, nearest-neighbour x2 upsampling
    between blocks)::

        conv{B}_1: C_B -> ch(B-1), x2
        for b = B-1 .. 1: (convs(b) - 1) x conv ch(b) -> ch(b), conv{b}_1: ch(b) -> ch(b-1) or 3, x2 (b > 1)

    For ``relu1_1`` the decoder is a single linear 3x3 convolution 64 -> 3. As in the AdaIN
    decoder the input is first multiplied by ``feature_scale`` (a persistent buffer set by
    calibration to about ``1 / rms`` of the features) and the output is linear: RGB in about
    [0, 1], clipped only by the caller at inference.

    Args:
        layer: ``"relu1_1"`` ... ``"relu5_1"``.
        width: channel multiplier (> 0); 1.0 mirrors VGG19 exactly.
        feature_scale: initial input scale (> 0).

    Raises:
        ValueError: an unknown layer, or ``width``/``feature_scale`` <= 0 or not finite.
    """

    def __init__(self, layer: str = "relu4_1", width: float = 1.0, feature_scale: float = 1.0):
        super().__init__()
        if layer not in DECODER_LAYERS:
            raise ValueError(f"layer must be one of {DECODER_LAYERS}, got {layer!r}")
        width, feature_scale = float(width), float(feature_scale)
        if not (width > 0) or math.isinf(width):
            raise ValueError(f"width must be a finite number > 0, got {width}")
        if not (feature_scale > 0) or math.isinf(feature_scale):
            raise ValueError(f"feature_scale must be a finite number > 0, got {feature_scale}")
        self.layer, self.width = layer, width
        self.in_channels = LAYER_CHANNELS[layer]
        self.block = int(layer[4])
        self.factor = 2 ** (self.block - 1)
        self.register_buffer("feature_scale", torch.tensor(feature_scale))
        ch = [max(1, round(width * c)) for c in _BLOCK_CHANNELS]
        # (name, c_in, c_out, upsample after) in forward order
        plan: list[tuple[str, int, int, bool]] = []
        b = self.block
        plan.append((f"conv{b}_1", self.in_channels, ch[b - 2] if b > 1 else 3, b > 1))
        for k in range(b - 1, 0, -1):
            for i in range(_BLOCK_CONVS[k - 1], 1, -1):
                plan.append((f"conv{k}_{i}", ch[k - 1], ch[k - 1], False))
            plan.append((f"conv{k}_1", ch[k - 1], ch[k - 2] if k > 1 else 3, k > 1))
        self._plan = [(name, up) for name, _, _, up in plan]
        for name, c_in, c_out, _ in plan:
            setattr(self, name, _Conv(c_in, c_out, 3))
        self.channels = tuple(ch[: b - 1][::-1])

    def extra_repr(self) -> str:
        """Sizes shown by ``print(module)``."""
        return f"layer={self.layer}, width={self.width}, feature_scale={float(self.feature_scale):g}"

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Decode features of :attr:`layer` to an image.

        Args:
            feat: float (N, C, h, w) features, C the layer's channels (64 ... 512).

        Returns:
            float32 (N, 3, h * factor, w * factor), ``factor = 2 ** (block - 1)``; RGB, about
            [0, 1], not clipped.

        Raises:
            ValueError: ``feat`` has the wrong number of channels or dimensions.
        """
        if not isinstance(feat, torch.Tensor) or feat.dim() != 4 or feat.shape[1] != self.in_channels:
            shape = tuple(feat.shape) if isinstance(feat, torch.Tensor) else type(feat).__name__
            raise ValueError(f"{self.layer} decoder input must have shape (N, {self.in_channels}, h, w), got {shape}")
        x = feat * self.feature_scale.to(feat.dtype)
        last = len(self._plan) - 1
        for i, (name, up) in enumerate(self._plan):
            x = getattr(self, name)(x)
            if i < last:
                x = F.relu(x)
            if up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return x.float()


class AdaINDecoder(nn.Module):
    """The decoder of Huang & Belongie (2017, §6.1): VGG19 up to relu4_1, mirrored.

    Layers (``a, b, c = round(256 * width), round(128 * width), round(64 * width)``),
    every convolution 3x3 with reflection padding, no normalization layer::

        conv 512 -> a, ReLU, nearest x2
        3 x (conv a -> a, ReLU), conv a -> b, ReLU, nearest x2
        conv b -> b, ReLU, conv b -> c, ReLU, nearest x2
        conv c -> c, ReLU, conv c -> 3 (linear)

    Nearest-neighbour upsampling and reflection padding avoid checkerboard and border
    artifacts (paper §6.1). As in the paper the last convolution is linear: the output is
    an RGB image in about [0, 1] that the training loss sees unclipped, and
    :meth:`AdaINModel.forward` clips to [0, 1]. (A sigmoid output was tried and rejected:
    with the Caffe VGG19's large features it saturated within 200 steps, a flat image
    with no gradient left.)

    The input is first multiplied by ``feature_scale`` (a persistent buffer, saved with
    the weights): the paper's encoder is a VGG19 rescaled so that activations are of the
    order of 1, while atelier's Caffe VGG19 takes 0-255 input and its relu4_1 features
    are in the hundreds, which would make the first layer's activations and Adam's steps far too
    large. :meth:`AdaINModel.calibrate` (called by the trainer before the first step)
    sets it to the power of two nearest to ``1 / rms(relu4_1)`` of training photos
    (exact in float16).

    Args:
        width: channel multiplier (> 0); 1.0 is the paper's decoder (3.5 M parameters),
            0.25 a small one for tests and previews.
        feature_scale: initial input scale (> 0).

    Raises:
        ValueError: ``width`` or ``feature_scale`` <= 0 or not finite.
    """

    #: Channels of the relu4_1 features the decoder takes.
    IN_CHANNELS = 512
    #: Upsampling factor from relu4_1 to the image.
    FACTOR = 8

    def __init__(self, width: float = 1.0, feature_scale: float = 1.0):
        super().__init__()
        width, feature_scale = float(width), float(feature_scale)
        if not (width > 0) or math.isinf(width):
            raise ValueError(f"width must be a finite number > 0, got {width}")
        if not (feature_scale > 0) or math.isinf(feature_scale):
            raise ValueError(f"feature_scale must be a finite number > 0, got {feature_scale}")
        self.width = width
        self.register_buffer("feature_scale", torch.tensor(feature_scale))
        a, b, c = (max(1, round(k * width)) for k in (256, 128, 64))
        self.channels = (a, b, c)
        # Named after the encoder layers they mirror.
        self.conv4_1 = _Conv(self.IN_CHANNELS, a, 3)
        self.conv3_4, self.conv3_3, self.conv3_2 = _Conv(a, a, 3), _Conv(a, a, 3), _Conv(a, a, 3)
        self.conv3_1 = _Conv(a, b, 3)
        self.conv2_2, self.conv2_1 = _Conv(b, b, 3), _Conv(b, c, 3)
        self.conv1_2, self.conv1_1 = _Conv(c, c, 3), _Conv(c, 3, 3)

    def extra_repr(self) -> str:
        """Sizes shown by ``print(module)``."""
        return f"width={self.width}, channels={self.channels}, feature_scale={float(self.feature_scale):g}"

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Decode relu4_1-like features to an image.

        Args:
            feat: float (N, 512, h, w) features (h, w >= 1).

        Returns:
            float32 (N, 3, 8h, 8w), RGB, about [0, 1] but not clipped (bf16 under autocast
            is cast back).

        Raises:
            ValueError: ``feat`` is not (N, 512, h, w).
        """
        if not isinstance(feat, torch.Tensor) or feat.dim() != 4 or feat.shape[1] != self.IN_CHANNELS:
            shape = tuple(feat.shape) if isinstance(feat, torch.Tensor) else type(feat).__name__
            raise ValueError(f"decoder input must have shape (N, {self.IN_CHANNELS}, h, w), got {shape}")

        def up(x):
            return F.interpolate(x, scale_factor=2, mode="nearest")

        x = up(F.relu(self.conv4_1(feat * self.feature_scale.to(feat.dtype))))
        for conv in (self.conv3_4, self.conv3_3, self.conv3_2):
            x = F.relu(conv(x))
        x = up(F.relu(self.conv3_1(x)))
        x = up(F.relu(self.conv2_1(F.relu(self.conv2_2(x)))))
        x = F.relu(self.conv1_2(x))
        return self.conv1_1(x).float()
