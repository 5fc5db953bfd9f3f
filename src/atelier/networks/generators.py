"""The DCGAN generator and discriminator (Radford, Metz & Chintala 2016, "Unsupervised
Representation Learning with Deep Convolutional Generative Adversarial Networks").

Generator: a latent vector ``z`` ~ N(0, I) of ``z_dim`` numbers is projected by a 4x4
transposed convolution to a 4 x 4 map of ``8 * base`` channels, then doubled in size by
4x4 stride-2 transposed convolutions (batch norm + ReLU) while the channels halve, up to
``size`` pixels; the last layer has 3 channels and tanh. Discriminator: the mirror image,
4x4 stride-2 convolutions with LeakyReLU(0.2), down to a 4 x 4 map and one logit. Radford et
al. use batch norm in the discriminator (``spectral=False``); spectral normalization (Miyato et
al. 2018) is the other choice. Weights are initialized from
N(0, 0.02) (batch-norm scales from N(1, 0.02)) as in the paper.

Images are float32 (N, 3, size, size), RGB in [0, 1] at the boundary (the generator maps its
tanh output to [0, 1]; the discriminator maps its input to [-1, 1]).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "DCGAN_SIZES"]

#: Image sides the DCGAN networks support.
DCGAN_SIZES = (32, 64, 128)


def _check(size: int, z_dim: int | None, base: int) -> int:
    if size not in DCGAN_SIZES:
        raise ValueError(f"DCGAN image size must be one of {DCGAN_SIZES}, got {size!r}")
    if base < 1 or (z_dim is not None and z_dim < 1):
        raise ValueError(f"base and z_dim must be >= 1, got {base}, {z_dim}")
    return int(math.log2(size)) - 2  # stride-2 stages between 4 x 4 and size


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016).

    Args:
        z_dim: latent size (paper: 100; default 128).
        base: channels of the last hidden layer; the first has ``base * 2**(stages - 1)``
            (paper at 64 px: 64, i.e. 512 channels at 4 x 4).
        size: output side, one of :data:`DCGAN_SIZES` (paper: 64).

    Call ``g(z)`` with ``z`` float32 (N, z_dim) (or (N, z_dim, 1, 1)); returns float32
    (N, 3, size, size) in [0, 1].
    """

    def __init__(self, z_dim: int = 128, base: int = 64, size: int = 64):
        super().__init__()
        stages = _check(size, z_dim, base)
        self.z_dim, self.base, self.size = int(z_dim), int(base), int(size)
        c = base * 2 ** (stages - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, 3, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.z_dim:
            raise ValueError(f"latent vectors must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return (self.net(z) + 1) * 0.5


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al. 2016), spectral-normalized by default.

    Args:
        base: channels of the first layer (doubling at each stride-2 layer).
        size: input side, one of :data:`DCGAN_SIZES`.
        spectral: spectral normalization on every convolution (no batch norm); False gives
            the paper's batch-norm discriminator.

    Call ``d(x)`` with ``x`` float32 (N, 3, size, size) in [0, 1]; returns float32 logits (N,).
    """

    def __init__(self, base: int = 64, size: int = 64, spectral: bool = True):
        super().__init__()
        stages = _check(size, None, base)
        self.base, self.size, self.spectral = int(base), int(size), spectral

        def conv(c_in, c_out, k, s, p):
            m = nn.Conv2d(c_in, c_out, k, s, p, bias=spectral or c_out == 1)
            return spectral_norm(m) if spectral else m

        layers: list[nn.Module] = [conv(3, base, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = base
        for _ in range(stages - 1):
            layers += [conv(c, c * 2, 4, 2, 1)]
            if not spectral:
                layers += [nn.BatchNorm2d(c * 2)]
            layers += [nn.LeakyReLU(0.2, True)]
            c *= 2
        layers += [conv(c, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"images must have shape (N, 3, {self.size}, {self.size}), got {tuple(x.shape)}")
        return self.net(x * 2 - 1).float().flatten()
