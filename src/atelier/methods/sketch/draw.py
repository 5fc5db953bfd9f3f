"""Photo to sketch: contour strokes over pencil shading.

1. Contours: the boundary probability of the contour network (:func:`~.contours.boundary_map`).
2. Strokes: non-maximum suppression thins it to one-pixel ridges, hysteresis thresholds
   (Canny 1986) keep the ridges connected to a strong one, short fragments are dropped; each
   kept pixel is drawn with a darkness and a width that grow with its boundary strength.
3. Shading after Lu, Xu & Jia, "Combining Sketch and Tone for Pencil Drawing Production"
   (NPAR 2012): the luminance is histogram-matched to their parametric tone distribution of
   pencil drawings (a bright layer, a uniform mid-tone layer and a dark Gaussian layer), then
   rendered with a pencil texture ``H`` as ``H ** beta``. Lu et al. find ``beta`` by a
   conjugate-gradient solve of ``min |beta ln H - ln J|^2 + lambda |grad beta|^2``; here its
   smooth solution is approximated in closed form by ``beta = G * ln J / G * ln H`` (G a
   Gaussian), which keeps the texture where the tone is flat and costs two blurs. The texture is
   procedural (seeded): strokes of noise integrated along a direction (hatching), no file.
4. Result = strokes x shading (Lu et al. multiply the two layers), on paper.

Styles: ``pencil`` (grey graphite strokes, diagonal hatching), ``ink`` (black strokes, binary
hatching and cross-hatching in the dark tones), ``charcoal`` (broad soft strokes, grainy dark
tone on warm paper).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ...encoders.vgg import VGGEncoder
from ...networks.contours import ContourNet
from .boundary_eval import nms
from .contours import boundary_map

__all__ = ["STYLES", "SketchStyle", "strokes", "pencil_tone", "hatching_texture", "sketch_tensor"]


@dataclass(frozen=True)
class SketchStyle:
    """Parameters of a style: stroke darkness (0-1), widths (px at 512 px) at low and high
    strength, grain of the strokes (0-1), Lu et al.'s tone-layer weights (bright, mid, dark),
    hatching angle (degrees), whether hatching is binarized (ink) and the paper colour (RGB)."""

    line_dark: float
    width_lo: float
    width_hi: float
    grain: float
    tone_weights: tuple[float, float, float]
    angle: float
    binary: bool
    paper: tuple[float, float, float]


STYLES: dict[str, SketchStyle] = {
    "pencil": SketchStyle(0.85, 0.6, 1.6, 0.35, (52, 37, 11), 45.0, False, (1.0, 1.0, 1.0)),
    "ink": SketchStyle(1.0, 0.5, 1.4, 0.0, (60, 30, 10), 45.0, True, (1.0, 1.0, 1.0)),
    "charcoal": SketchStyle(0.95, 1.0, 2.6, 0.55, (42, 44, 14), 70.0, False, (0.97, 0.95, 0.90)),
}


def _luminance(image: torch.Tensor) -> np.ndarray:
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (image[:1] * w).sum(1)[0].clamp(0, 1).numpy().astype(np.float32)


def strokes(boundary: np.ndarray, detail: float = 0.5, style: SketchStyle = STYLES["pencil"],
            scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """Stroke darkness from a boundary map.

    Args:
        boundary: float (H, W) boundary probability in [0, 1].
        detail: 0 (only the strongest contours) to 1 (most contours).
        style: stroke darkness, widths and grain.
        scale: image size / 512 (stroke widths and the shortest kept fragment scale with it).
        seed: seed of the grain.

    Returns:
        float32 (H, W) darkness in [0, 1] (0: paper, 1: the style's darkest stroke).
    """
    import cv2
    from skimage.filters import apply_hysteresis_threshold

    high = 0.7 - 0.5 * detail
    low = 0.45 * high
    ridge = nms(boundary)
    keep = apply_hysteresis_threshold(ridge, low, high)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(keep.astype(np.uint8), connectivity=8)
    min_len = max(2, int(round((14 - 10 * detail) * scale)))
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_len)
    keep &= ~np.isin(labels, small[small > 0])
    strength = np.where(keep, np.clip((ridge - low) / max(1 - low, 1e-6), 0, 1) ** 0.7 * 0.5 + 0.5, 0.0)
    strength = strength.astype(np.float32)
    # width follows strength: stack dilations of the pixels above each strength level
    dark = np.zeros_like(strength)
    for t in np.linspace(0.0, 0.9, 4):
        width = (style.width_lo + (style.width_hi - style.width_lo) * t) * scale
        r = max(0, int(round(width - 0.5)))
        level = np.where(strength > t, strength, 0).astype(np.float32)
        if r > 0:
            level = cv2.dilate(level, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        dark = np.maximum(dark, level)
    dark = cv2.GaussianBlur(dark, (0, 0), 0.45 + 0.25 * scale * style.width_lo)
    if style.grain > 0:
        rng = np.random.default_rng(seed)
        noise = cv2.GaussianBlur(rng.random(dark.shape, np.float32), (0, 0), 0.7)
        noise = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-6)
        dark = dark * (1 - style.grain + style.grain * noise * 1.6)
    if style.binary:
        dark = np.clip((dark - 0.25) * 4, 0, 1)
    return np.clip(dark * style.line_dark, 0, 1).astype(np.float32)


def _tone_target(weights: tuple[float, float, float]) -> np.ndarray:
    """Lu et al. 2012's tone distribution p(v) on 256 levels (eq. 7-9: sigma_b = 9, u_a = 105,
    u_b = 225, mu_d = 90, sigma_d = 11; v in 0..255)."""
    v = np.arange(256, dtype=np.float64)
    p1 = np.where(v <= 255, np.exp(-(255 - v) / 9.0) / 9.0, 0)
    p2 = np.where((v >= 105) & (v <= 225), 1.0 / (225 - 105), 0)
    p3 = np.exp(-((v - 90) ** 2) / (2 * 11.0 ** 2)) / np.sqrt(2 * np.pi * 11.0 ** 2)
    w = np.asarray(weights, np.float64) / sum(weights)
    p = w[0] * p1 + w[1] * p2 + w[2] * p3
    return p / p.sum()


def pencil_tone(luminance: np.ndarray, weights: tuple[float, float, float] = (52, 37, 11)) -> np.ndarray:
    """Histogram-match luminance float (H, W) in [0, 1] to Lu et al.'s pencil tone distribution
    (smoothed by a 3x3 box first, as they do); returns float32 (H, W) in [0, 1]."""
    import cv2

    lum = cv2.blur(luminance.astype(np.float32), (3, 3))
    q = np.clip((lum * 255).round().astype(np.int64), 0, 255)
    src_cdf = np.cumsum(np.bincount(q.ravel(), minlength=256)) / q.size
    dst_cdf = np.cumsum(_tone_target(weights))
    mapping = np.searchsorted(dst_cdf, np.clip(src_cdf, 0, dst_cdf[-1]), side="left").clip(0, 255)
    return (mapping[q] / 255.0).astype(np.float32)


def hatching_texture(shape: tuple[int, int], angle: float = 45.0, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """A procedural pencil-hatching texture, float32 (H, W) in [0.05, 1] (1: paper): seeded
    noise integrated along ``angle`` degrees over ~``24 * scale`` px, contrast-stretched."""
    import cv2

    h, w = shape
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w), np.float32)
    length = max(5, int(24 * scale) | 1)
    kernel = np.zeros((length, length), np.float32)
    c = length // 2
    dx, dy = np.cos(np.radians(angle)), -np.sin(np.radians(angle))
    for t in np.linspace(-c, c, 4 * length):
        kernel[int(round(c + t * dy)), int(round(c + t * dx))] = 1
    kernel /= kernel.sum()
    streaks = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT)
    streaks = (streaks - streaks.mean()) / max(float(streaks.std()), 1e-6)
    return np.clip(0.72 + 0.18 * streaks, 0.05, 1.0).astype(np.float32)


def _render_tone(tone: np.ndarray, style: SketchStyle, scale: float, seed: int) -> np.ndarray:
    """Tone J float (H, W) in [0, 1] rendered with the style's texture: float32 (H, W) in [0, 1]."""
    import cv2

    if style.binary:  # ink: hatching lines where dark, cross-hatching where darker
        h, w = tone.shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        period = max(3.0, 6.0 * scale)
        out = np.ones_like(tone)
        for i, (ang, level) in enumerate(((style.angle, 0.62), (style.angle + 90, 0.38), (style.angle - 45, 0.2))):
            a = np.radians(ang)
            phase = (xx * np.cos(a) + yy * np.sin(a)) / period
            lines = np.abs(phase - np.round(phase)) < 0.16
            out = np.where(lines & (tone < level), 0.0, out)
        return cv2.GaussianBlur(out, (0, 0), 0.5).astype(np.float32)
    texture = hatching_texture(tone.shape, style.angle, scale, seed)
    if style.grain > 0.5:  # charcoal: a second, coarser grain
        grain = cv2.GaussianBlur(np.random.default_rng(seed + 1).random(tone.shape, np.float32), (0, 0), 1.2 * scale)
        texture = np.clip(texture * (0.75 + 0.5 * (grain - grain.mean()) / max(float(grain.std()), 1e-6) * 0.35 + 0.25),
                          0.05, 1.0)
    sigma = 3.0 * scale
    beta = cv2.GaussianBlur(np.log(np.clip(tone, 0.02, 1.0)), (0, 0), sigma) / \
        np.minimum(cv2.GaussianBlur(np.log(texture), (0, 0), sigma), -1e-3)
    return np.clip(texture ** np.maximum(beta, 0), 0, 1).astype(np.float32)


def sketch_tensor(image: torch.Tensor, style: str = "pencil", lines_only: bool = False, detail: float = 0.5,
                  net: Optional[ContourNet] = None, encoder: Optional[VGGEncoder] = None,
                  precision: str = "fp32", seed: int = 0, boundary: Optional[torch.Tensor] = None,
                  plan=None) -> torch.Tensor:
    """Draw a photo as a sketch.

    Args:
        image: float32 (1, 3, H, W), RGB in [0, 1], H and W >= 16.
        style: ``"pencil"``, ``"ink"`` or ``"charcoal"``.
        lines_only: strokes only, no shading.
        detail: 0 (only the strongest contours, short fragments dropped) to 1 (more contours).
        net, encoder, precision: for :func:`~.contours.boundary_map` (defaults: the shipped
            network, the Caffe VGG19, fp32).
        seed: seed of the textures (the result is a function of the inputs and the seed).
        boundary: a precomputed boundary map float32 (1, 1, H, W) (skips the network).
        plan: print sizes: the :class:`~atelier.imaging.tiles.TilePlan` of the boundary network
            (:func:`~.contours.boundary_map`); the strokes and shading are drawn on the whole image.

    Returns:
        float32 (1, 3, H, W) in [0, 1].

    Raises:
        ValueError: unknown style, ``detail`` outside [0, 1], or an image that is not (1, 3, H, W)
            with H, W >= 16.
    """
    if style not in STYLES:
        raise ValueError(f"unknown sketch style {style!r}; choose one of {', '.join(STYLES)}")
    if not 0.0 <= float(detail) <= 1.0:
        raise ValueError(f"detail must be between 0 and 1, got {detail}")
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3 or min(image.shape[-2:]) < 16:
        raise ValueError(f"expected one image (1, 3, H, W) with H, W >= 16, got {tuple(image.shape)}")
    st = STYLES[style]
    h, w = image.shape[-2:]
    scale = max(h, w) / 512.0
    if boundary is None:
        boundary = boundary_map(image, net, encoder, precision, plan=plan)
    dark = strokes(boundary[0, 0].float().numpy(), float(detail), st, scale, seed)
    result = 1.0 - dark
    if not lines_only:
        tone = pencil_tone(_luminance(image), st.tone_weights)
        result = result * _render_tone(tone, st, scale, seed)
    paper = torch.tensor(st.paper, dtype=torch.float32).view(1, 3, 1, 1)
    out = torch.from_numpy(np.ascontiguousarray(result)).view(1, 1, h, w) * paper
    return out.clamp(0, 1)


def sketch_file(src, dst, *, style: str = "pencil", lines_only: bool = False, detail: float = 0.5,
                size: Optional[int] = None, seed: int = 0, precision: str = "fp32", max_pixels: Optional[int] = None,
                metadata: Optional[dict] = None, net: Optional[ContourNet] = None,
                encoder: Optional[VGGEncoder] = None, plan_tiles=None) -> float:
    """Sketch one photo file into ``dst`` (written atomically; its folder is created) with
    ``metadata`` plus ``input`` (the photo's file name) embedded: what ``atelier sketch`` does
    per photo, on one machine or on a Ray worker.

    Args:
        src, dst: the photo and the output image path (.png, .jpg, ...).
        size: longest side of the sketch in pixels (default: the photo's own).
        Others: as for :func:`sketch_tensor`; ``max_pixels`` as for image loading.
        plan_tiles: ``plan_tiles(h, w)`` -> a :class:`~atelier.imaging.tiles.TilePlan` or None,
            asked once the photo's size is known (print sizes); the tiles go in the metadata.

    Returns:
        Seconds spent drawing (loading and saving excluded).

    Raises:
        InputError: naming the file: unreadable, too small after resizing, or not writable.
        OSError: the output folder cannot be created.
    """
    import pathlib
    import time

    from ...core.errors import InputError
    from ...io import images as img

    src, dst = pathlib.Path(src), pathlib.Path(dst)
    x = img.load_image(src, size=size, max_pixels=max_pixels)
    if min(x.shape[-2:]) < img.MIN_SIDE:
        raise InputError(f"too small ({x.shape[-1]}x{x.shape[-2]} px; both sides must be >= "
                         f"{img.MIN_SIDE} px); use a larger --size", src)
    plan = plan_tiles(*x.shape[-2:]) if plan_tiles is not None else None
    if plan is not None:
        metadata = {**(metadata or {}), "tiles": {"tile": plan.tile, "overlap": plan.overlap, "count": plan.count}}
    t0 = time.perf_counter()
    y = sketch_tensor(x, style, lines_only, detail, net=net, encoder=encoder, precision=precision, seed=seed,
                      plan=plan)
    seconds = time.perf_counter() - t0
    dst.parent.mkdir(parents=True, exist_ok=True)
    img.save_image(y, dst, metadata={**(metadata or {}), "input": src.name})
    return seconds
