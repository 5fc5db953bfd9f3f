"""Contour heads on a frozen VGG encoder (after HED, Xie & Tu 2015).

Xie & Tu, "Holistically-Nested Edge Detection" (ICCV 2015): one side output per VGG stage
(a 1x1 convolution of the stage's last activation to one channel, upsampled to the image
size) and a fused output (a 1x1 convolution of the side outputs), each trained against the
human boundary maps with a class-balanced cross-entropy (deep supervision).

Here the encoder stays frozen (HED fine-tunes it), so the fused output gets, besides HED's
weighted sum of the side outputs, a small per-pixel network on a hypercolumn (Hariharan
et al. 2015): every stage is projected linearly to ``hidden`` channels at its own
resolution, the projections are upsampled bilinearly and summed, and two 1x1 layers with
ReLU map the sum to one logit. Everything before the first non-linearity is linear and
per pixel, and bilinear upsampling commutes with a 1x1 convolution (its weights sum to 1),
so :meth:`ContourNet.forward_points` computes the same logits from features interpolated at
single pixels: training can run on cached per-pixel features (only the heads learn).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CONTOUR_LAYERS", "ContourNet", "bilinear_points"]

#: The encoder layers read: the last activation of each VGG19 stage (as HED's side outputs).
CONTOUR_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")
_CHANNELS = {"relu1_2": 64, "relu2_2": 128, "relu3_4": 256, "relu4_4": 512, "relu5_4": 512}


def bilinear_points(feature: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Values of ``feature`` upsampled bilinearly to (height, width) at pixels (ys, xs), without
    upsampling the whole map; equal to ``F.interpolate(feature[None], (height, width),
    mode="bilinear", align_corners=False)[0][:, ys, xs].T``.

    Args:
        feature: float (C, h, w).
        ys, xs: int64 (P,) pixel rows and columns of the (height, width) image.

    Returns:
        float (P, C).
    """
    c, h, w = feature.shape

    def axis(dst: torch.Tensor, n_in: int, n_out: int):
        src = ((dst.double() + 0.5) * (n_in / n_out) - 0.5).clamp_min(0.0)
        i0 = src.floor().long().clamp_max(n_in - 1)
        i1 = torch.where(i0 < n_in - 1, i0 + 1, i0)
        frac = (src - i0.double()).float()
        return i0, i1, frac

    y0, y1, ly = axis(ys, h, height)
    x0, x1, lx = axis(xs, w, width)
    flat = feature.reshape(c, h * w)

    def at(yy, xx):
        return flat[:, yy * w + xx].T

    top = at(y0, x0) * (1 - lx)[:, None] + at(y0, x1) * lx[:, None]
    bottom = at(y1, x0) * (1 - lx)[:, None] + at(y1, x1) * lx[:, None]
    return top * (1 - ly)[:, None] + bottom * ly[:, None]


class ContourNet(nn.Module):
    """HED-style side outputs and a fused boundary output on frozen VGG19 features.

    Args:
        hidden: channels of the hypercolumn projection and of the per-pixel network (>= 1).
        layers: the encoder layers, shallow to deep (default :data:`CONTOUR_LAYERS`).

    ``forward(features, size)`` takes a dict layer -> float32 (N, C_l, H_l, W_l) (from
    :class:`~atelier.encoders.vgg.VGGEncoder`) and the image size (H, W), and returns
    ``(sides, fused)``: a list of len(layers) logits float32 (N, 1, H, W) and the fused logit
    (N, 1, H, W). ``torch.sigmoid(fused)`` is the boundary probability in [0, 1]. The buffer
    ``scales`` (float32 (len(layers),)) multiplies each layer's features first (1 / their RMS
    on the training photos, so that the heads see unit-scale inputs).
    """

    def __init__(self, hidden: int = 32, layers: Sequence[str] = CONTOUR_LAYERS):
        super().__init__()
        if int(hidden) < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        unknown = [n for n in layers if n not in _CHANNELS]
        if unknown or not layers:
            raise ValueError(f"layers must be a non-empty subset of {CONTOUR_LAYERS}, got {list(layers)}")
        self.layers, self.hidden = tuple(layers), int(hidden)
        self.side = nn.ModuleList(nn.Conv2d(_CHANNELS[n], 1, 1) for n in self.layers)
        self.proj = nn.ModuleList(nn.Conv2d(_CHANNELS[n], self.hidden, 1, bias=(i == 0))
                                  for i, n in enumerate(self.layers))
        self.mlp = nn.Sequential(nn.ReLU(), nn.Conv2d(self.hidden, self.hidden, 1), nn.ReLU(),
                                 nn.Conv2d(self.hidden, 1, 1))
        self.fuse = nn.Conv2d(len(self.layers), 1, 1)
        # 1 / RMS of each layer's activations on the training photos (set before training, saved)
        self.register_buffer("scales", torch.ones(len(self.layers)))
        with torch.no_grad():  # HED initializes the fusion as the mean of the side outputs
            self.fuse.weight.fill_(1.0 / len(self.layers))
            self.fuse.bias.zero_()
            for conv in self.side:
                conv.weight.mul_(0.1)
            for conv in self.proj:
                conv.weight.mul_(0.3)

    def forward(self, features: Mapping[str, torch.Tensor], size: tuple[int, int]
                ) -> tuple[list[torch.Tensor], torch.Tensor]:
        h, w = int(size[0]), int(size[1])
        sides, hyper = [], None
        for i, (name, side, proj) in enumerate(zip(self.layers, self.side, self.proj)):
            f = features[name].float() * self.scales[i]
            both = torch.cat([side(f), proj(f)], 1)
            if both.shape[-2:] != (h, w):
                both = F.interpolate(both, size=(h, w), mode="bilinear", align_corners=False)
            sides.append(both[:, :1])
            hyper = both[:, 1:] if hyper is None else hyper + both[:, 1:]
        fused = self.fuse(torch.cat(sides, 1)) + self.mlp(hyper)
        return sides, fused

    def forward_points(self, points: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits at single pixels from features interpolated there.

        Args:
            points: one float tensor (P, C_l) per layer (as from :func:`bilinear_points`).

        Returns:
            ``(sides, fused)``: float32 (P, len(layers)) and (P,), equal to :meth:`forward`'s
            logits at those pixels.
        """
        sides, hyper = [], None
        for i, (f, side, proj) in enumerate(zip(points, self.side, self.proj)):
            f = f.float() * self.scales[i]
            sides.append(F.linear(f, side.weight.flatten(1), side.bias))
            z = F.linear(f, proj.weight.flatten(1), proj.bias)
            hyper = z if hyper is None else hyper + z
        s = torch.cat(sides, 1)
        h = F.relu(hyper)
        h = F.relu(F.linear(h, self.mlp[1].weight.flatten(1), self.mlp[1].bias))
        h = F.linear(h, self.mlp[3].weight.flatten(1), self.mlp[3].bias)
        fused = F.linear(s, self.fuse.weight.flatten(1), self.fuse.bias) + h
        return s, fused[:, 0]
