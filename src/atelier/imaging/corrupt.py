"""Image corruptions of the kind a phone photo brings along: JPEG compression, sensor noise,
and the blur of a picture that was made smaller and blown up again.

Used by the robustness study (:mod:`atelier.analysis.robustness`) and by the corruption
augmentation of feed-forward training (:mod:`atelier.training.augment`). Every function
takes and returns an image tensor, float32 (N, 3, H, W), RGB in [0, 1], on the CPU or any
device (JPEG goes through the CPU), and is deterministic: JPEG and blur have no randomness,
noise draws from a seeded generator.

* :func:`jpeg`: Pillow's JPEG encoder (libjpeg, 4:2:0 chroma subsampling, the standard
  quantization tables scaled by ``quality``) and decoder, in memory.
* :func:`gaussian_noise`: additive white Gaussian noise of standard deviation ``sigma`` (in
  [0, 1] units: 0.02 is about 5 grey levels of 255), per pixel and channel, then clipped.
* :func:`downscale_blur`: bilinear (antialiased) downscale by ``factor``, then bicubic upscale
  back to the original size.

:data:`STANDARD` lists the corruptions of the robustness benchmark, by name.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..core.errors import InputError

__all__ = ["Corruption", "STANDARD", "apply", "downscale_blur", "gaussian_noise", "jpeg", "parse", "psnr"]


def _check(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"expected an image tensor (N, 3, H, W), got {getattr(x, 'shape', type(x))}")


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG-compress and decode each image (Pillow, ``quality`` 1..95, 4:2:0 subsampling).

    Args:
        x: float32 (N, 3, H, W) in [0, 1].
        quality: the JPEG quality setting; 90 is barely visible, 10 shows 8x8 blocks and colour bleeding.

    Returns:
        float32 (N, 3, H, W) in [0, 1] on ``x``'s device.
    """
    _check(x)
    if not 1 <= int(quality) <= 95:
        raise InputError(f"JPEG quality must be in 1..95, got {quality}")
    out = []
    for im in x.detach().float().clamp(0, 1).cpu():
        arr = (im.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality), subsampling=2)
        buf.seek(0)
        dec = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(dec).permute(2, 0, 1))
    return torch.stack(out).to(x.device)


def gaussian_noise(x: torch.Tensor, sigma: float, seed: int = 0,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``sigma`` ([0, 1] units) and clip to [0, 1].

    The noise is drawn on the CPU from ``generator`` (or a fresh one seeded with ``seed``), so
    the same seed gives the same pixels on every device.
    """
    _check(x)
    if not 0 <= sigma <= 1:
        raise InputError(f"noise sigma must be in [0, 1], got {sigma}")
    g = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    noise = torch.randn(x.shape, generator=g, dtype=torch.float32) * float(sigma)
    return (x.detach().float() + noise.to(x.device)).clamp(0, 1)


def downscale_blur(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Shrink by ``factor`` (> 1; bilinear with antialiasing) and enlarge back (bicubic), clipped to [0, 1]."""
    _check(x)
    if not factor > 1:
        raise InputError(f"downscale factor must be above 1, got {factor}")
    h, w = x.shape[-2:]
    small = F.interpolate(x.detach().float(), size=(max(1, round(h / factor)), max(1, round(w / factor))),
                          mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


@dataclass(frozen=True)
class Corruption:
    """One corruption: ``kind`` (``jpeg``, ``noise``, ``blur``) and its strength (quality,
    sigma or downscale factor). ``name`` is how tables and the CLI spell it: ``jpeg50``,
    ``noise0.05``, ``blur4``."""

    kind: str
    level: float

    @property
    def name(self) -> str:
        if self.kind == "jpeg":
            return f"jpeg{int(self.level)}"
        return f"{self.kind}{self.level:g}"

    def __call__(self, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
        return apply(x, self, seed)


#: The corruptions of ``atelier robustness`` and ``benchmarks/robustness.py``, mild to strong.
STANDARD = (Corruption("jpeg", 90), Corruption("jpeg", 50), Corruption("jpeg", 20), Corruption("jpeg", 10),
            Corruption("noise", 0.02), Corruption("noise", 0.05), Corruption("noise", 0.1),
            Corruption("blur", 2), Corruption("blur", 4))


def apply(x: torch.Tensor, corruption: Corruption, seed: int = 0) -> torch.Tensor:
    """Apply one :class:`Corruption` (noise seeded with ``seed``)."""
    if corruption.kind == "jpeg":
        return jpeg(x, int(corruption.level))
    if corruption.kind == "noise":
        return gaussian_noise(x, corruption.level, seed)
    if corruption.kind == "blur":
        return downscale_blur(x, corruption.level)
    raise InputError(f"unknown corruption {corruption.kind!r}; use jpeg, noise or blur")


def parse(text: str) -> Corruption:
    """``jpeg50`` / ``noise0.05`` / ``blur4`` -> :class:`Corruption` (InputError otherwise)."""
    t = text.strip().lower()
    for kind in ("jpeg", "noise", "blur"):
        if t.startswith(kind):
            try:
                c = Corruption(kind, float(t[len(kind):]))
            except ValueError:
                break
            apply(torch.zeros(1, 3, 8, 8), c)  # range checks
            return c
    raise InputError(f"corruption {text!r} not understood; write e.g. jpeg50, noise0.05 or blur4")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two image tensors in [0, 1] (inf when equal)."""
    mse = float((a.detach().float().cpu() - b.detach().float().cpu()).square().mean())
    return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))
