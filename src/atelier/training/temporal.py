"""Temporal consistency without a video dataset: synthetic motion for training-time stability.

A feed-forward network is stable on video when a small motion of its input moves its output the
same way, and no more. We teach that on still photos: warp a crop ``x`` by a random small affine
motion ``A`` (shift, rotation, zoom) and add a little noise, then ask the output of the warped crop
to equal the warped output of the crop, ``net(A(x) + n) ~ A(net(x))``, on the pixels that stay
inside the frame. This is the short-term temporal loss of Ruder et al. (2016, "Artistic Style
Transfer for Videos") with the optical flow known exactly, as in Huang et al. (2017, "Real-Time
Neural Style Transfer for Videos") and ReCoNet (Gao et al. 2018), who train the output-level term
on frame pairs; the noise follows Gupta et al. (2017, "Characterizing and Improving Stability in
Neural Style Transfer").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Pixel losses are mean squared errors divided by 0.25 squared (as the AdaIN pixel loss): about
#: one minus R-squared for images in [0, 1], so a weight of 1 is comparable to the other terms.
PIXEL_SCALE = 0.25 ** 2


@dataclass(frozen=True)
class Motion:
    """The range of the random motions (uniform in each), at most per frame of a typical video.

    Attributes:
        shift: largest translation, as a fraction of the image side (0.03 = 3 %).
        rotate: largest rotation in degrees.
        zoom: largest relative zoom (0.03 = 3 % in or out).
        noise: standard deviation of the Gaussian noise added to the moved image ([0, 1] units).
    """

    shift: float = 0.03
    rotate: float = 2.0
    zoom: float = 0.03
    noise: float = 0.01


def random_affine(n: int, motion: Motion, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` random affine motions as ``F.affine_grid`` matrices: float32 (n, 2, 3) on ``device``
    (normalized coordinates, output pixel -> input pixel). Drawn on the CPU with ``generator``."""
    u = torch.rand(n, 3, generator=generator) * 2 - 1
    t = (torch.rand(n, 2, generator=generator) * 2 - 1) * 2 * motion.shift  # [-1, 1] spans 2 sides
    angle = u[:, 0] * math.radians(motion.rotate)
    scale = 1 + u[:, 1] * motion.zoom
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
    return theta.to(device)


def warp_affine(x: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move images by affine motions (bilinear).

    Args:
        x: float (B, C, H, W).
        theta: float32 (B, 2, 3) from :func:`random_affine`.

    Returns:
        (moved, valid): ``moved`` like ``x`` (zeros where the source is outside the frame) and
        ``valid`` float32 (B, 1, H, W), 1 where every tap of the sample was inside the frame.
    """
    grid = F.affine_grid(theta.float(), list(x.shape), align_corners=False)
    moved = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    ones = torch.ones_like(x[:, :1], dtype=torch.float32)
    valid = (F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.999).float()
    return moved.to(x.dtype), valid


def temporal_loss(net_output_moved: torch.Tensor, moved_output: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Masked mean squared difference between the output of the moved input and the moved output,
    over ``PIXEL_SCALE``: float32 scalar (0 = perfectly stable).

    Args:
        net_output_moved: float (B, 3, H, W) in [0, 1], ``net(A(x) + noise)``.
        moved_output: float (B, 3, H, W) in [0, 1], ``A(net(x))``.
        valid: float32 (B, 1, H, W) in {0, 1} from :func:`warp_affine`.
    """
    diff = (net_output_moved.float() - moved_output.float()).pow(2) * valid
    return diff.sum() / (valid.sum() * diff.shape[1]).clamp_min(1.0) / PIXEL_SCALE
