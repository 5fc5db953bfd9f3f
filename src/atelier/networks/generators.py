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

Upsampling (``upsample``): ``"deconv"`` is the paper's 4x4 stride-2 transposed convolution;
``"resize"`` is a nearest-neighbour 2x resize followed by a 3x3 convolution ("resize-convolution",
Odena, Dumoulin & Olah 2016, "Deconvolution and Checkerboard Artifacts", Distill), which cannot
produce the checkerboard that uneven kernel overlap gives a stride-2 transposed convolution.
The discriminator may end with a minibatch standard-deviation feature (``mbstd``, Karras, Aila,
Laine & Lehtinen 2018, "Progressive Growing of GANs"): the mean over channels and pixels of the
per-feature standard deviation across the batch, appended as one constant channel before the
last convolution, so that the discriminator can see a batch of too-similar samples.

Images are float32 (N, 3, size, size), RGB in [0, 1] at the boundary (the generator maps its
tanh output to [0, 1]; the discriminator maps its input to [-1, 1]).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "DCGAN_SIZES", "UPSAMPLE_MODES", "MinibatchStd"]

#: Image sides the DCGAN networks support.
DCGAN_SIZES = (32, 64, 128)
#: Generator upsampling: the paper's transposed convolution, or resize-convolution.
UPSAMPLE_MODES = ("deconv", "resize")


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
        upsample: ``"deconv"`` (4x4 stride-2 transposed convolutions, the paper's) or ``"resize"``
            (nearest 2x resize + 3x3 convolution, Odena et al. 2016: no checkerboard).

    Raises:
        ValueError: an unsupported size, upsample mode, or base/z_dim < 1.

    Call ``g(z)`` with ``z`` float32 (N, z_dim) (or (N, z_dim, 1, 1)); returns float32
    (N, 3, size, size) in [0, 1].
    """

    def __init__(self, z_dim: int = 128, base: int = 64, size: int = 64, upsample: str = "deconv"):
        super().__init__()
        stages = _check(size, z_dim, base)
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        self.z_dim, self.base, self.size, self.upsample = int(z_dim), int(base), int(size), upsample
        c = base * 2 ** (stages - 1)

        def up(c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
            if upsample == "deconv":
                return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)]
            return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)]

        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(stages - 1):
            layers += [*up(c, c // 2, False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [*up(c, 3, True), nn.Tanh()]
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
        mbstd: append the minibatch standard-deviation channel (Karras et al. 2018) before the
            last convolution (batches of >= 2 images in training).

    Call ``d(x)`` with ``x`` float32 (N, 3, size, size) in [0, 1]; returns float32 logits (N,).
    """

    def __init__(self, base: int = 64, size: int = 64, spectral: bool = True, mbstd: bool = False):
        super().__init__()
        stages = _check(size, None, base)
        self.base, self.size, self.spectral, self.mbstd = int(base), int(size), spectral, bool(mbstd)

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
        if mbstd:
            layers += [MinibatchStd()]
        layers += [conv(c + int(mbstd), 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"images must have shape (N, 3, {self.size}, {self.size}), got {tuple(x.shape)}")
        return self.net(x * 2 - 1).float().flatten()


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018): for x float32 (N, C, H, W) returns
    (N, C + 1, H, W), the extra channel holding, for every image, the mean over C, H, W of the
    standard deviation of each feature across the batch (0 for a batch of one image)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] < 2:
            s = x.new_zeros(())
        else:
            s = (x.float().var(dim=0, unbiased=False) + 1e-8).sqrt().mean().to(x.dtype)
        return torch.cat([x, s.expand(x.shape[0], 1, *x.shape[2:])], dim=1)
