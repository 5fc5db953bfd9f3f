"""Brush strokes: a quadratic Bezier stroke, its exact rasterizer at any size and a soft
(differentiable) rasterizer in torch.

A stroke is 12 numbers in [0, 1] (:data:`PARAMS`)::

    x0 y0  x1 y1  x2 y2   w0 w2   r g b   a

the start, control and end points of a quadratic Bezier curve (x across the image, y down,
both as fractions of the image's width and height), the brush radius at the start and at the
end (``w * R_MAX`` of the image's shorter side, linear along the curve), the RGB colour and the
opacity. This is the stroke of Huang et al., "Learning to Paint with Model-based Deep
Reinforcement Learning" (ICCV 2019), with one opacity instead of two.

Geometry. The curve is cut into :data:`SEGMENTS` straight pieces; each piece with its two end
radii is the convex hull of two discs (a tapered capsule), and the stroke is the union of its
pieces. The signed distance of a pixel centre to a tapered capsule has a closed form
(Quilez's "uneven capsule"); the stroke's signed distance is the minimum over its pieces.

* :func:`render` (exact): coverage ``clamp(0.5 - d, 0, 1)`` with ``d`` in output pixels, i.e.
  a one-pixel anti-aliased edge at every output size; so a plan made at 128 px renders with
  sharp edges at 4K. Each stroke is evaluated only in its bounding box.
* :func:`soft_render` (differentiable): coverage ``sigmoid(-d / tau)``. Analytic rather than
  a neural renderer (as Learning to Paint trains): nothing to train, exact geometry at any
  size, cheap on a CPU, and its gradients are the true ones of the soft shape.
* :func:`segment_polygons`: the same tapered capsules as polygons (for SVG files).

Compositing is "over" in painting order: ``canvas = canvas * (1 - a m) + colour * a m`` with
``m`` the coverage.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch

__all__ = ["PARAMS", "N_PARAMS", "SEGMENTS", "R_MAX", "curve_points", "capsule_sdf", "stroke_sdf", "soft_render",
           "render", "render_frames", "from_patch", "segment_polygons", "check_strokes", "BRUSHES", "apply_brush"]

PARAMS = ("x0", "y0", "x1", "y1", "x2", "y2", "w0", "w2", "r", "g", "b", "a")
N_PARAMS = len(PARAMS)
#: Straight pieces per stroke (the same in every renderer and in SVG files).
SEGMENTS = 16
#: The largest brush radius, as a fraction of the image's shorter side.
R_MAX = 0.12
#: Brushes: how a planned stroke list is painted (issue 27's ``--brush``). ``edge``: the width of a
#: stroke's soft edge as a fraction of the image's shorter side (0: the one-pixel anti-aliased edge,
#: at every size); ``opacity``: multiplies each stroke's opacity; ``max_opacity``: caps it;
#: ``constant_width``: one radius along the stroke (the mean of its two). Oil: opaque, tapered,
#: crisp (the strokes as planned). Watercolour: translucent washes with soft, bleeding edges that
#: stay as soft at 4K. Marker: a felt tip, one width, slightly translucent, crisp.
BRUSHES = {
    "oil": {"edge": 0.0, "opacity": 1.0, "max_opacity": 1.0, "constant_width": False},
    "watercolour": {"edge": 0.015, "opacity": 0.55, "max_opacity": 1.0, "constant_width": False},
    "marker": {"edge": 0.0, "opacity": 1.0, "max_opacity": 0.85, "constant_width": True},
}


def apply_brush(strokes, brush: str) -> torch.Tensor:
    """The stroke list as ``brush`` paints it (see :data:`BRUSHES`): (N, 12) -> (N, 12) in [0, 1].

    Raises:
        ValueError: an unknown brush, or bad strokes.
    """
    if brush not in BRUSHES:
        raise ValueError(f"unknown brush {brush!r}; choose one of {', '.join(BRUSHES)}")
    b, s = BRUSHES[brush], check_strokes(strokes).clone()
    if b["constant_width"]:
        s[:, 6:8] = s[:, 6:8].mean(dim=1, keepdim=True)
    s[:, 11] = (s[:, 11] * b["opacity"]).clamp(max=b["max_opacity"])
    return s


def edge_pixels(brush: str, height: int, width: int) -> float:
    """The soft edge of ``brush`` in output pixels at ``height x width`` (at least 1: anti-aliasing)."""
    return max(1.0, BRUSHES[brush]["edge"] * min(height, width))


def check_strokes(strokes) -> torch.Tensor:
    """Strokes as float32 (N, 12) on the CPU; raises ValueError for another shape, NaN or values outside [0, 1]."""
    s = torch.as_tensor(np.asarray(strokes, dtype=np.float32) if not torch.is_tensor(strokes) else strokes)
    s = s.detach().float().cpu()
    if s.ndim == 1 and s.numel() == 0:
        s = s.reshape(0, N_PARAMS)
    if s.ndim != 2 or s.shape[1] != N_PARAMS:
        raise ValueError(f"strokes must have shape (N, {N_PARAMS}), got {tuple(s.shape)}")
    if not torch.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise ValueError("stroke parameters must be finite numbers in [0, 1]")
    return s


def curve_points(strokes: torch.Tensor, height: int, width: int, segments: int = SEGMENTS):
    """Points and radii along the strokes, in pixels of an image ``height`` x ``width``.

    Args:
        strokes: (..., 12) in [0, 1].

    Returns:
        ``(points, radii)``: (..., segments + 1, 2) as (x, y) pixel coordinates (pixel centres
        at i + 0.5) and (..., segments + 1) radii in pixels.
    """
    t = torch.linspace(0, 1, segments + 1, dtype=strokes.dtype, device=strokes.device)
    scale = torch.tensor([width, height], dtype=strokes.dtype, device=strokes.device)
    p0, p1, p2 = (strokes[..., None, 2 * i:2 * i + 2] * scale for i in range(3))
    tt = t[:, None]
    pts = (1 - tt) ** 2 * p0 + 2 * (1 - tt) * tt * p1 + tt ** 2 * p2
    rmax = R_MAX * min(height, width)
    radii = (strokes[..., 6:7] * (1 - t) + strokes[..., 7:8] * t) * rmax
    return pts, radii


def capsule_sdf(q: torch.Tensor, a: torch.Tensor, b: torch.Tensor, ra: torch.Tensor, rb: torch.Tensor) -> torch.Tensor:
    """Signed distance from points ``q`` to the convex hull of the discs (a, ra) and (b, rb).

    Args:
        q: (..., P, 2) points; a, b: (..., S, 2) piece ends; ra, rb: (..., S) radii (>= 0),
            all in the same units (pixels). The leading dimensions broadcast.

    Returns:
        (..., S, P): negative inside, positive outside, in those units (exact when
        ``|ra - rb| < |b - a|``, otherwise the larger disc is used almost exactly).
    """
    ba = b - a
    h = ba.norm(dim=-1).clamp_min(1e-6)
    e = ba / h[..., None]
    rel = q[..., None, :, :] - a[..., :, None, :]  # (..., S, P, 2)
    ex, ey = e[..., 0:1], e[..., 1:2]
    py = rel[..., 0] * ex + rel[..., 1] * ey
    px = (rel[..., 1] * ex - rel[..., 0] * ey).abs()
    bc = ((ra - rb) / h).clamp(-0.9999, 0.9999)[..., None]
    ac = (1 - bc * bc).sqrt()
    ra_, rb_, h_ = ra[..., None], rb[..., None], h[..., None]
    k = -bc * px + ac * py
    d0 = (px * px + py * py + 1e-9).sqrt() - ra_
    d1 = (px * px + (py - h_) ** 2 + 1e-9).sqrt() - rb_
    dm = ac * px + bc * py - ra_
    return torch.where(k < 0, d0, torch.where(k > ac * h_, d1, dm))


def stroke_sdf(strokes: torch.Tensor, q: torch.Tensor, height: int, width: int,
               segments: int = SEGMENTS) -> torch.Tensor:
    """Signed distance in pixels from points ``q`` (..., P, 2) to strokes (..., 12): (..., P)."""
    pts, rad = curve_points(strokes, height, width, segments)
    d = capsule_sdf(q, pts[..., :-1, :], pts[..., 1:, :], rad[..., :-1], rad[..., 1:])
    return d.min(dim=-2).values


def _grid(height: int, width: int, y0: int = 0, x0: int = 0, dtype=torch.float32, device=None) -> torch.Tensor:
    ys = torch.arange(y0, y0 + height, dtype=dtype, device=device) + 0.5
    xs = torch.arange(x0, x0 + width, dtype=dtype, device=device) + 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)


def soft_render(strokes: torch.Tensor, canvas: torch.Tensor, tau: float = 1.0, segments: int = SEGMENTS,
                colour_from: Optional[torch.Tensor] = None):
    """Paint strokes on canvases, differentiably (coverage ``sigmoid(-d / tau)``).

    Args:
        strokes: float32 (B, K, 12) in [0, 1] (values outside are clamped), painted in order k = 0..K-1.
        canvas: float32 (B, 3, H, W) in [0, 1].
        tau: edge softness in pixels of this canvas (> 0; 1.0 for learning, smaller is sharper).
        colour_from: optional float32 (B, 3, H, W) image: each stroke's colour is then replaced by this
            image's mean colour under the stroke's soft footprint (used by the painting agent, whose
            actor chooses geometry and opacity only).

    Returns:
        float32 (B, 3, H, W) in [0, 1], differentiable with respect to ``strokes`` and ``canvas``;
        with ``colour_from``, the pair ``(canvas, strokes)`` with the strokes' colours filled in.
    """
    b, _, h, w = canvas.shape
    s = strokes.clamp(0, 1)
    q = _grid(h, w, dtype=canvas.dtype, device=canvas.device)
    out, colours = canvas, []
    for k in range(s.shape[1]):
        d = stroke_sdf(s[:, k], q, h, w, segments)  # (B, P)
        cov = torch.sigmoid(-d / tau).reshape(b, 1, h, w)
        if colour_from is None:
            col = s[:, k, 8:11].reshape(b, 3, 1, 1)
        else:
            col = (cov * colour_from).sum((2, 3), keepdim=True) / (cov.sum((2, 3), keepdim=True) + 1e-6)
            colours.append(col.reshape(b, 3))
        m = cov * s[:, k, 11].reshape(b, 1, 1, 1)
        out = out * (1 - m) + col * m
    if colour_from is None:
        return out
    filled = torch.cat([s[..., :8], torch.stack(colours, 1), s[..., 11:]], -1)
    return out, filled


def _bbox(stroke: torch.Tensor, height: int, width: int, edge: float = 1.0):
    pts = stroke[:6].reshape(3, 2) * torch.tensor([width, height])
    r = float(stroke[6:8].max()) * R_MAX * min(height, width) + 0.5 * edge + 1.0
    x0 = max(int(math.floor(float(pts[:, 0].min()) - r)), 0)
    x1 = min(int(math.ceil(float(pts[:, 0].max()) + r)), width)
    y0 = max(int(math.floor(float(pts[:, 1].min()) - r)), 0)
    y1 = min(int(math.ceil(float(pts[:, 1].max()) + r)), height)
    return x0, x1, y0, y1


def _coverage(stroke: torch.Tensor, height: int, width: int, box, max_elems: int = 1 << 22,
              edge: float = 1.0) -> torch.Tensor:
    x0, x1, y0, y1 = box
    rows = max(1, max_elems // (SEGMENTS * max(x1 - x0, 1)))
    parts = []
    for ya in range(y0, y1, rows):
        yb = min(ya + rows, y1)
        q = _grid(yb - ya, x1 - x0, ya, x0)
        d = stroke_sdf(stroke, q, height, width)
        parts.append((0.5 - d / edge).clamp(0, 1).reshape(yb - ya, x1 - x0))
    return torch.cat(parts, 0)


@torch.no_grad()
def render(strokes, height: int, width: int, background=(1.0, 1.0, 1.0), canvas: Optional[torch.Tensor] = None,
           callback: Optional[Callable[[int, torch.Tensor], None]] = None, edge: float = 1.0) -> torch.Tensor:
    """Exact rasterization of a stroke list at any size (one-pixel anti-aliased edges; ``edge`` px
    wide soft edges for a brush that has them, :func:`edge_pixels`).

    Args:
        strokes: (N, 12) in [0, 1] (tensor or array), painted in order.
        height, width: output size in pixels (>= 1).
        background: RGB in [0, 1] of the empty canvas (ignored when ``canvas`` is given).
        canvas: optional float32 (1, 3, height, width) to paint on (not modified).
        callback: called as ``callback(i, canvas)`` after stroke i (0-based) with the canvas so far
            (the same tensor every time; copy it to keep it).

    Returns:
        float32 (1, 3, height, width) in [0, 1].

    Raises:
        ValueError: strokes of another shape or outside [0, 1]; a size under 1 pixel.
    """
    s = check_strokes(strokes)
    if height < 1 or width < 1:
        raise ValueError(f"the output size must be at least 1x1 pixels, got {width}x{height}")
    if canvas is None:
        out = torch.tensor(background, dtype=torch.float32).reshape(1, 3, 1, 1).expand(1, 3, height, width).clone()
    else:
        out = canvas.detach().float().clone()
    for i in range(s.shape[0]):
        box = _bbox(s[i], height, width, edge)
        x0, x1, y0, y1 = box
        if x1 > x0 and y1 > y0:
            m = _coverage(s[i], height, width, box, edge=edge) * float(s[i, 11])
            region = out[0, :, y0:y1, x0:x1]
            region.mul_(1 - m).add_(s[i, 8:11].reshape(3, 1, 1) * m)
        if callback is not None:
            callback(i, out)
    return out


def render_frames(strokes, height: int, width: int, every: int, background=(1.0, 1.0, 1.0),
                  edge: float = 1.0) -> list:
    """Canvases after every ``every`` strokes (and after the last), in painting order: a list of
    float32 (1, 3, H, W) tensors, the first being the empty canvas."""
    s = check_strokes(strokes)
    frames = [torch.tensor(background, dtype=torch.float32).reshape(1, 3, 1, 1).expand(1, 3, height, width).clone()]

    def keep(i, canvas):
        if (i + 1) % every == 0 or i == s.shape[0] - 1:
            frames.append(canvas.clone())

    render(s, height, width, background, callback=keep, edge=edge)
    return frames


def from_patch(local: torch.Tensor, row, col, n: int) -> torch.Tensor:
    """Strokes given in the coordinates of patch (row, col) of an n x n grid, in whole-image coordinates.

    Args:
        local: (..., 12) in [0, 1]; row, col: ints or tensors broadcastable to local[..., 0].
        n: the grid (1: the whole image).

    Returns:
        (..., 12) in [0, 1]: points moved into the patch, radii divided by n, colour and opacity kept.
    """
    out = local.clone()
    out[..., 0:6:2] = (local[..., 0:6:2] + torch.as_tensor(col, dtype=local.dtype)[..., None]) / n
    out[..., 1:6:2] = (local[..., 1:6:2] + torch.as_tensor(row, dtype=local.dtype)[..., None]) / n
    out[..., 6:8] = local[..., 6:8] / n
    return out


def segment_polygons(stroke, height: float, width: float, arc_points: int = 12) -> list:
    """The pieces of one stroke as polygons (the exact hull of each piece's two discs, arcs
    sampled at ``arc_points`` points): a list of (M, 2) float64 arrays of (x, y) in pixels."""
    s = torch.as_tensor(np.asarray(stroke, dtype=np.float64)).reshape(1, N_PARAMS)
    pts, rad = curve_points(s[0], 1, 1)  # in fractions of a 1 x 1 image, then scaled
    pts = pts.numpy() * np.array([width, height])
    rad = rad.numpy() * min(height, width)
    polys = []
    for i in range(SEGMENTS):
        a, b, ra, rb = pts[i], pts[i + 1], rad[i], rad[i + 1]
        h = max(float(np.hypot(*(b - a))), 1e-9)
        e = (b - a) / h
        nrm = np.array([-e[1], e[0]])
        bc = float(np.clip((ra - rb) / h, -0.9999, 0.9999))
        theta = math.atan2(math.sqrt(1 - bc * bc), bc)
        front = np.linspace(-theta, theta, arc_points)
        back = np.linspace(theta, 2 * math.pi - theta, arc_points)
        ring = [b + rb * (np.cos(f) * e + np.sin(f) * nrm) for f in front]
        ring += [a + ra * (np.cos(f) * e + np.sin(f) * nrm) for f in back]
        polys.append(np.array(ring))
    return polys
