"""Seamless, tileable textures (issue 28 item 3): sizes, a periodic content image, the seam measure.

A tileable output is made on a torus: the networks pad circularly (:mod:`atelier.core.padding`),
the total variation wraps around (:func:`atelier.losses.tv_loss` ``wrap=True``), and both sides are
a multiple of :data:`MULTIPLE` px, the VGG19 encoder's downsampling at relu5_1, so every layer is
exactly equivariant to circular shifts: there is no border left for a seam to sit on.

A photo's left and right edges do not match, and a content loss would copy that seam into the
result; :func:`make_periodic` cross-fades the content with its copy shifted by half a period near
the edges first (the "offset and blend" of texture artists), so the content itself wraps around.
"""

from __future__ import annotations

import torch

#: Both sides of a tileable output are a multiple of this (VGG19's downsampling up to relu5_1).
MULTIPLE = 16


def tileable_dims(height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` rounded to the nearest multiple of :data:`MULTIPLE` (at least one)."""
    return (max(MULTIPLE, round(height / MULTIPLE) * MULTIPLE), max(MULTIPLE, round(width / MULTIPLE) * MULTIPLE))


def _ramp(n: int, band: float, device) -> torch.Tensor:
    """Weights (n,): 0 at both ends, rising linearly to 1 over ``band`` positions."""
    i = torch.arange(n, dtype=torch.float32, device=device)
    return (torch.minimum(i, (n - 1) - i) / max(band, 1.0)).clamp(0, 1)


def make_periodic(image: torch.Tensor, band: float = 0.25) -> torch.Tensor:
    """An image that wraps around: near each edge it fades into its copy rolled by half the
    width (then the height), whose values there continue across the wrap.

    Args:
        image: float (N, C, H, W).
        band: the share of each side (0-0.5] over which the fade runs (0.25: the outer quarter).

    Returns:
        float32 (N, C, H, W): equal to ``image`` in the middle; its last column continues into its
        first column (and the last row into the first row) as smoothly as the photo's own pixels do.

    Raises:
        ValueError: ``band`` outside (0, 0.5].
    """
    if not (0 < band <= 0.5):
        raise ValueError(f"band must be in (0, 0.5], got {band}")
    x = image.float()
    h, w = x.shape[-2:]
    wx = _ramp(w, band * w, x.device).view(1, 1, 1, w)
    x = wx * x + (1 - wx) * x.roll(w // 2, dims=-1)
    wy = _ramp(h, band * h, x.device).view(1, 1, h, 1)
    return wy * x + (1 - wy) * x.roll(h // 2, dims=-2)


def seam_ratio(image: torch.Tensor) -> dict:
    """How visible the wrap-around seam is: the mean absolute difference of neighbouring pixels
    across the wrap edge (last column to first, last row to first) divided by the same mean over
    every pair of neighbours inside the image, per direction.

    Args:
        image: float (1, C, H, W) in [0, 1] (or an image file or PIL image, loaded).

    Returns:
        ``{"horizontal": r_x, "vertical": r_y, "ratio": max(r_x, r_y), "rank_horizontal": q_x,
        "rank_vertical": q_y}``: the ratios are about 1 for an image that tiles without a seam
        (the wrap edge is like any other pair of neighbours) and several for a photo; ``q`` is the
        share of inside pairs that differ less than the wrap pair (about 0.5 without a seam, 1.0
        for a seam). One column's mean varies by 20-30 % from the next in a stylized image, so
        judge the ratio over several images.
    """
    if not isinstance(image, torch.Tensor):
        from ..io.images import load_image

        image = load_image(image)
    x = image.float()
    out = {}
    for name, dim in (("horizontal", -1), ("vertical", -2)):
        d = (x.roll(-1, dims=dim) - x).abs().mean(dim=tuple(i for i in range(-4, 0) if i != dim))
        inside, wrap = d[:-1], d[-1]  # the last pair is the wrap-around one
        out[name] = float(wrap / inside.mean().clamp_min(1e-8))
        out[f"rank_{name}"] = float((inside < wrap).float().mean())
    out["ratio"] = max(out["horizontal"], out["vertical"])
    return out


def tile_preview(image: torch.Tensor, n: int = 2) -> torch.Tensor:
    """The image repeated ``n`` x ``n`` times: (N, C, n*H, n*W), to look at the seams."""
    return image.repeat(1, 1, n, n)
