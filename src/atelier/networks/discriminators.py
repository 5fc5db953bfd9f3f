"""Discriminators for adversarial training: the PatchGAN of Isola et al. (2017,
"Image-to-Image Translation with Conditional Adversarial Networks") with spectral
normalization (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial
Networks") in place of batch normalization, and its multi-scale form (Wang et al. 2018,
pix2pixHD; the Markovian discriminator of Li & Wand 2016 is the same idea for texture).

A PatchGAN classifies every overlapping patch of its input as real or fake: its output is a
map of logits, one per patch, not a single number. With ``n_layers = 3`` each logit sees a
70 x 70 pixel patch (the pix2pix default).

Inputs are image tensors as everywhere in atelier: float32 (N, 3, H, W), RGB in [0, 1];
they are mapped to [-1, 1] inside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["PatchDiscriminator", "MultiScaleDiscriminator", "patch_output_size", "receptive_field"]


def _conv(c_in: int, c_out: int, stride: int, spectral: bool) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 4, stride, 1)
    return spectral_norm(conv) if spectral else conv


def patch_output_size(size: int, n_layers: int = 3) -> int:
    """Side of a :class:`PatchDiscriminator`'s logit map for an input side ``size`` (pixels):
    ``n_layers`` stride-2 4x4 convolutions (each ``floor(s / 2)``), then two stride-1 4x4
    convolutions (each ``s - 1``). 256 -> 30, 128 -> 14, 64 -> 6 for ``n_layers = 3``.

    Raises:
        ValueError: the input is too small for any output.
    """
    s = int(size)
    for _ in range(n_layers):
        s = s // 2
    s -= 2
    if s < 1:
        raise ValueError(f"a PatchGAN with {n_layers} stride-2 layers needs inputs of at least "
                         f"{2 ** n_layers * 3} px, got {size}")
    return s


def receptive_field(n_layers: int = 3) -> int:
    """Side in pixels of the input patch each logit of a :class:`PatchDiscriminator` sees
    (70 for ``n_layers = 3``, 34 for 2, 142 for 4)."""
    rf = 1
    for stride in [1, 1] + [2] * n_layers:  # walk back from the output: last layers first
        rf = (rf - 1) * stride + 4
    return rf


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (Isola et al. 2017) with spectral normalization (Miyato et al. 2018).

    Layers: a 4x4 stride-2 convolution to ``base`` channels and LeakyReLU(0.2), ``n_layers - 1``
    more stride-2 convolutions doubling the channels (at most ``8 * base``), one stride-1
    convolution, and a stride-1 convolution to ``out_channels`` logits. Spectral normalization
    on every convolution (``spectral=True``) replaces the batch normalization of pix2pix.

    Args:
        base: channels of the first layer (pix2pix: 64).
        n_layers: stride-2 layers (3: 70 x 70 patches).
        out_channels: logit maps; more than one for a class-conditional discriminator (e.g.
            one per style of a multi-style network), of which the caller picks one per image.
        spectral: spectral-normalize every convolution.

    Call ``d(x)`` with ``x`` float32 (N, 3, H, W) in [0, 1]; returns float32 logits
    (N, out_channels, h, w) with ``h = patch_output_size(H, n_layers)``.
    """

    def __init__(self, base: int = 64, n_layers: int = 3, out_channels: int = 1, spectral: bool = True):
        super().__init__()
        if base < 1 or n_layers < 1 or out_channels < 1:
            raise ValueError(f"base, n_layers and out_channels must be >= 1, got {base}, {n_layers}, {out_channels}")
        self.base, self.n_layers, self.out_channels, self.spectral = int(base), int(n_layers), int(out_channels), spectral
        layers: list[nn.Module] = [_conv(3, base, 2, spectral), nn.LeakyReLU(0.2, inplace=True)]
        c = base
        for k in range(1, n_layers):
            c_next = base * min(2 ** k, 8)
            layers += [_conv(c, c_next, 2, spectral), nn.LeakyReLU(0.2, inplace=True)]
            c = c_next
        c_next = base * min(2 ** n_layers, 8)
        layers += [_conv(c, c_next, 1, spectral), nn.LeakyReLU(0.2, inplace=True), _conv(c_next, out_channels, 1, spectral)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1).float()


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` :class:`PatchDiscriminator` s, the k-th judging the input downsampled
    ``k`` times by 2 (3x3 average pooling, as in pix2pixHD, Wang et al. 2018): coarse scales
    see larger structures for the same network.

    Args:
        num_scales: number of scales (>= 1).
        base, n_layers, out_channels, spectral: as for :class:`PatchDiscriminator`.

    Call ``d(x)`` with ``x`` float32 (N, 3, H, W) in [0, 1]; returns a list of ``num_scales``
    logit maps, the k-th (N, out_channels, h_k, w_k) for the input at ``H / 2**k``.
    """

    def __init__(self, num_scales: int = 2, base: int = 64, n_layers: int = 3, out_channels: int = 1,
                 spectral: bool = True):
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        self.num_scales = int(num_scales)
        self.scales = nn.ModuleList(PatchDiscriminator(base, n_layers, out_channels, spectral)
                                    for _ in range(num_scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for k, d in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs
