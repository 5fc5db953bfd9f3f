"""Pre-filters for noisy or blocky input photos, applied before stylization.

A style network copies what it sees: sensor noise becomes speckled brush strokes and JPEG
blocks become a grid. These filters (OpenCV) clean the photo measurably (+0.5 to +1.5 dB PSNR
against the clean photo on the benchmark's corruptions), but the stylized results come only a
little closer to the clean photo's result (for JPEG quality 10-20; not for noise or JPEG 50):
``docs/benchmarks.md``, "Robustness". Training with ``--augment-corruptions`` helps more.

* ``nlm``: OpenCV's non-local means for colour images (``fastNlMeansDenoisingColored``, Buades,
  Coll & Morel 2005), 7x7 patches searched in a 21x21 window, filter strength
  ``h = 0.4 x 255 x`` the estimated noise sigma (for luminance and colour alike; at least 2).
  Stronger settings (0.75x, 1.2x) raised the photo's PSNR more but moved a feed-forward
  model's result further from the clean photo's result (flat, repainted areas).
* ``deblock``: an edge-preserving bilateral filter (Tomasi & Manduchi 1998; OpenCV
  ``bilateralFilter``, 5-pixel neighbourhood, colour sigma 50 of 255, space sigma 3 px): it
  smooths the small steps at the 8x8 block borders and the ringing beside edges while
  keeping the strong edges. A simple, documented deblocking filter, not a JPEG-aware one.
* ``auto``: :func:`choose` picks one of them, or none, from two estimates of the photo:

  - blockiness (:func:`blockiness`): the mean absolute luminance step across the 8-pixel
    grid's borders divided by the mean step elsewhere; about 1.0 for a clean photo, 1.2-1.4
    for JPEG quality 50, 1.4-2.5 for quality 10-20. Above 1.2: ``deblock``.
  - noise sigma (:func:`noise_sigma`): Immerkaer's fast estimate (1996; the Laplacian-difference
    3x3 mask) over the flatter half of the picture (by Sobel gradient), so that texture is
    not taken for noise; in [0, 1] units. Clean photos of the pack give 0.003-0.012, added
    noise of sigma 0.02 gives 0.014-0.018 (the estimate runs at about 0.7x the true sigma).
    Above 0.013: ``nlm``.
  - otherwise ``none``. Blockiness is looked at first: JPEG compression removes noise.

The thresholds were set on 14 photos of ``../shared/data/content`` at 256 px with the
corruptions of :data:`atelier.imaging.corrupt.STANDARD`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import InputError

__all__ = ["PREFILTERS", "blockiness", "choose", "noise_sigma", "prefilter"]

PREFILTERS = ("auto", "nlm", "deblock", "none")
BLOCKY = 1.2
NOISY = 0.013

_LAPLACE_DIFF = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)


def _cv2():
    import cv2

    return cv2


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return _cv2().cvtColor(rgb, _cv2().COLOR_RGB2GRAY).astype(np.float64)


def noise_sigma(image: torch.Tensor) -> float:
    """Estimated standard deviation of white noise in an image, [0, 1] units (see the module doc).

    Args:
        image: float32 (1, 3, H, W) or (3, H, W) in [0, 1], at least 8x8.
    """
    cv2 = _cv2()
    x = image[0] if image.ndim == 4 else image
    y = _grey(_to_uint8(x))
    if min(y.shape) < 8:
        raise InputError(f"noise estimate needs an image of at least 8x8 pixels, got {y.shape[1]}x{y.shape[0]}")
    r = cv2.filter2D(y, -1, _LAPLACE_DIFF)[1:-1, 1:-1]
    g = np.hypot(cv2.Sobel(y, cv2.CV_64F, 1, 0), cv2.Sobel(y, cv2.CV_64F, 0, 1))[1:-1, 1:-1]
    flat = g <= np.percentile(g, 50)
    return float(np.sqrt(np.pi / 2) * np.abs(r[flat]).mean() / 6.0 / 255.0)


def blockiness(image: torch.Tensor) -> float:
    """Mean absolute luminance step across the 8x8 grid's borders over the mean step inside the
    blocks (horizontal and vertical together): ~1.0 clean, > 1.2 visibly JPEG-blocky."""
    x = image[0] if image.ndim == 4 else image
    y = _grey(_to_uint8(x))
    if min(y.shape) < 16:
        return 1.0
    dh, dv = np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0))
    border = dh[:, 7::8].mean() + dv[7::8, :].mean()
    inside = np.delete(dh, np.s_[7::8], axis=1).mean() + np.delete(dv, np.s_[7::8], axis=0).mean()
    return float(border / max(inside, 1e-9))


def choose(image: torch.Tensor) -> str:
    """The filter ``auto`` applies to ``image`` (1, 3, H, W): ``deblock``, ``nlm`` or ``none``."""
    if blockiness(image) > BLOCKY:
        return "deblock"
    if noise_sigma(image) > NOISY:
        return "nlm"
    return "none"


def prefilter(image: torch.Tensor, method: str = "auto") -> tuple[torch.Tensor, str]:
    """Clean a photo before stylization.

    Args:
        image: float32 (N, 3, H, W) in [0, 1] (each image is filtered on its own; ``auto``
            decides per image).
        method: ``auto``, ``nlm``, ``deblock`` or ``none`` (see the module docstring).

    Returns:
        (the filtered images, float32 (N, 3, H, W) in [0, 1] on ``image``'s device; the filter
        applied, e.g. ``"nlm"``, comma-separated per image when N > 1).

    Raises:
        InputError: an unknown method or a tensor that is not an image batch.
    """
    if method not in PREFILTERS:
        raise InputError(f"--prefilter must be one of {', '.join(PREFILTERS)}, got {method!r}")
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
        raise InputError(f"expected an image tensor (N, 3, H, W), got {getattr(image, 'shape', type(image))}")
    if method == "none":
        return image, "none"
    cv2 = _cv2()
    outs, used = [], []
    for im in image:
        m = choose(im[None]) if method == "auto" else method
        used.append(m)
        if m == "none":
            outs.append(im.detach().float().cpu())
            continue
        a = _to_uint8(im)
        if m == "nlm":
            h = max(2.0, 0.4 * 255.0 * noise_sigma(im[None]))
            f = cv2.fastNlMeansDenoisingColored(a, None, h, h, 7, 21)
        else:
            f = cv2.bilateralFilter(a, 5, 50, 3)
        outs.append(torch.from_numpy(f.astype(np.float32) / 255.0).permute(2, 0, 1))
    return torch.stack(outs).to(image.device), ",".join(used)
