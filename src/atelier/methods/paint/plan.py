"""What the painters share: the stroke list of a painting (:class:`Painting`), the coarse-to-fine
schedule and the cutting of an image into an n x n grid of patches.

Coarse to fine (Huang et al. 2019, section 3.4; Zou et al. 2021, section 3.4): a quarter of the
strokes is painted over the whole canvas, a quarter in the 4 patches of a 2 x 2 grid and half in
the 16 patches of a 4 x 4 grid. A stroke painted in a patch is given in the patch's own
coordinates and moved into the image with :func:`~.strokes.from_patch`, so its radius shrinks
with the patch: big strokes first, then smaller ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F

from .strokes import BRUSHES, N_PARAMS, PARAMS, check_strokes, edge_pixels, render

__all__ = ["Painting", "stroke_schedule", "plan_shape", "to_patches", "from_patches", "patch_rows_cols",
           "background_of", "PAINTING_FORMAT"]

PAINTING_FORMAT = "atelier-strokes"


def stroke_schedule(n_strokes: int, grids=(1, 2, 4), fractions=(0.25, 0.25, 0.5)) -> list[tuple[int, int]]:
    """Strokes per patch at each stage: a list of ``(grid, strokes_per_patch)`` whose strokes sum to
    ``n_strokes`` (>= 1). Stages that would get no stroke are dropped; what rounding leaves goes to the
    first stage. Raises ValueError for ``n_strokes < 1``."""
    if isinstance(n_strokes, bool) or not isinstance(n_strokes, int) or n_strokes < 1:
        raise ValueError(f"the number of strokes must be an integer >= 1, got {n_strokes!r}")
    stages = []
    for g, f in zip(grids, fractions):
        per = int(n_strokes * f) // (g * g)
        if per > 0:
            stages.append([g, per])
    if not stages or stages[0][0] != 1:
        stages.insert(0, [1, 0])
    stages[0][1] += n_strokes - sum(g * g * k for g, k in stages)
    return [(g, k) for g, k in stages if k > 0]


def plan_shape(height: int, width: int, size: int, multiple: int = 4) -> tuple[int, int]:
    """Plan size for an image: longest side ``size``, both sides multiples of ``multiple`` (>= multiple)."""
    scale = size / max(height, width)
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    return h, w


def to_patches(x: torch.Tensor, n: int) -> torch.Tensor:
    """(1, C, H, W) -> (n*n, C, H/n, W/n), patches in row-major order (H, W divisible by n)."""
    _, c, h, w = x.shape
    return x.reshape(c, n, h // n, n, w // n).permute(1, 3, 0, 2, 4).reshape(n * n, c, h // n, w // n)


def from_patches(p: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`to_patches`: (n*n, C, h, w) -> (1, C, n*h, n*w)."""
    _, c, h, w = p.shape
    return p.reshape(n, n, c, h, w).permute(2, 0, 3, 1, 4).reshape(1, c, n * h, n * w)


def patch_rows_cols(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column of each patch of :func:`to_patches`: two float32 (n*n,) tensors."""
    idx = torch.arange(n * n)
    return (idx // n).float(), (idx % n).float()


def background_of(target: torch.Tensor) -> tuple[float, float, float]:
    """The empty canvas's colour: the target's mean RGB (1, 3, H, W) -> three floats in [0, 1]."""
    return tuple(float(v) for v in target.float().mean(dim=(0, 2, 3)).clamp(0, 1))


@dataclass
class Painting:
    """A painting as a stroke list: re-rendered at any size with :meth:`render`.

    Attributes:
        strokes: float32 (N, 12) in [0, 1], in painting order (see :data:`~.strokes.PARAMS`).
        background: RGB in [0, 1] of the empty canvas.
        height, width: the plan's size in pixels (sets the aspect ratio; any output size works).
        method: ``"agent"``, ``"optimize"`` or ``"greedy"``; info: what made it (seconds, losses, ...).
        brush: a key of :data:`~.strokes.BRUSHES`: its soft edge is applied when rendering (its
            opacity and width are already in ``strokes``, :func:`~.strokes.apply_brush`).
    """

    strokes: torch.Tensor
    background: tuple
    height: int
    width: int
    method: str = ""
    info: dict = field(default_factory=dict)
    brush: str = "oil"

    def render(self, longest: Optional[int] = None, callback=None) -> torch.Tensor:
        """Exact rendering, longest side ``longest`` px (default: the plan's): float32 (1, 3, H, W) in [0, 1]."""
        h, w = self.size_for(longest)
        return render(self.strokes, h, w, self.background, callback=callback, edge=edge_pixels(self.brush, h, w))

    def size_for(self, longest: Optional[int]) -> tuple[int, int]:
        """Output (height, width) for a longest side (keeps the plan's aspect ratio)."""
        if longest is None:
            return self.height, self.width
        s = longest / max(self.height, self.width)
        return max(1, int(round(self.height * s))), max(1, int(round(self.width * s)))

    def to_dict(self) -> dict:
        """JSON-serializable form (``format``, ``params``, ``background``, ``height``, ``width``, ``method``,
        ``info``, ``strokes`` as lists of 12 floats)."""
        return {"format": PAINTING_FORMAT, "version": 1, "params": list(PARAMS),
                "background": [round(float(v), 6) for v in self.background], "height": self.height,
                "width": self.width, "method": self.method, "info": self.info, "brush": self.brush,
                "strokes": [[round(float(v), 6) for v in row] for row in self.strokes.tolist()]}

    @classmethod
    def from_dict(cls, d: dict) -> "Painting":
        """Read :meth:`to_dict`'s form; raises ValueError when it is not a stroke list."""
        if not isinstance(d, dict) or d.get("format") != PAINTING_FORMAT:
            raise ValueError("not an atelier stroke list (format 'atelier-strokes')")
        s = check_strokes(d["strokes"] if d["strokes"] else torch.zeros(0, N_PARAMS))
        brush = d.get("brush", "oil")
        if brush not in BRUSHES:
            raise ValueError(f"unknown brush {brush!r} in the stroke list")
        return cls(s, tuple(float(v) for v in d["background"]), int(d["height"]), int(d["width"]),
                   d.get("method", ""), d.get("info", {}), brush)

    @classmethod
    def from_json(cls, text: str) -> "Painting":
        return cls.from_dict(json.loads(text))


def resize_target(target: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Area-resize (1, 3, H, W) to (1, 3, height, width) (bilinear with antialiasing)."""
    if tuple(target.shape[-2:]) == (height, width):
        return target.float()
    return F.interpolate(target.float(), size=(height, width), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)
