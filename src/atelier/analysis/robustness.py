"""How stable is a stylization when the photo is a compressed, noisy or blurred copy?

:func:`robustness` stylizes a photo clean and under each corruption of
:data:`atelier.imaging.corrupt.STANDARD` (JPEG quality 90/50/20/10, Gaussian noise sigma
0.02/0.05/0.1, downscale-upscale blur x2/x4), optionally through a pre-filter
(:func:`atelier.imaging.prefilter.prefilter`), and measures how far each result moves from the
clean photo's result:

* ``ssim``: luminance SSIM (Wang et al. 2004) of the result against the clean result (1: the same);
* ``perceptual``: :func:`atelier.analysis.metrics.perceptual_distance` (LPIPS-like, on our VGG features;
  0: the same);
* ``content_loss`` against the *clean* photo and ``style_loss`` against the style image (the
  normalized losses of :mod:`atelier.losses`, as ``atelier evaluate`` reports them);
* ``input_psnr``: how strong the corruption was (PSNR of the corrupted, filtered photo
  against the clean one, dB).

Any method serves: the stylizer is a :class:`atelier.core.protocols.Stylizer`, a callable from
(1, 3, H, W) to (1, 3, H, W) in [0, 1]; the interfaces wire in the concrete method
(``atelier robustness``, ``benchmarks/robustness.py``).

:func:`grid_image` draws the inputs and results side by side with their numbers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..imaging import corrupt
from ..io.decode import tensor_to_pil
from ..core.errors import InputError
from ..imaging.prefilter import PREFILTERS, prefilter as run_prefilter
from ..core.protocols import Stylizer
from .metrics import Scorer, evaluate, perceptual_distance, perceptual_features, ssim_luminance

__all__ = ["RobustnessRow", "robustness", "grid_image", "summarize"]


@dataclass
class RobustnessRow:
    """One corruption's measurements (see the module docstring); ``corruption`` is ``clean``
    for the reference row, ``prefilter`` the filter applied (``none`` when off)."""

    corruption: str
    prefilter: str
    input_psnr: float
    ssim: float
    perceptual: float
    content_loss: float
    style_loss: Optional[float]
    seconds: float

    def to_dict(self) -> dict:
        """JSON-ready: non-finite numbers (the clean row's infinite PSNR) become None."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def robustness(stylizer: Stylizer, content: torch.Tensor, style: Optional[torch.Tensor] = None, *,
               corruptions: Sequence[corrupt.Corruption] = corrupt.STANDARD, prefilter: str = "none",
               seed: int = 0, scorer: Optional[Scorer] = None, keep_images: bool = False,
               callback: Optional[Callable[[int, int, str], None]] = None) -> tuple[list[RobustnessRow], list]:
    """Stylize ``content`` clean and under every corruption, and measure each result.

    Args:
        stylizer: (1, 3, H, W) -> (1, 3, H, W), float32 in [0, 1] (a
            :class:`~atelier.core.protocols.Stylizer`).
        content: the clean photo, float32 (1, 3, H, W) in [0, 1], at the size to stylize.
        style: the style image (1, 3, h, w) for the style loss, or None (no style loss).
        corruptions: what to apply (:data:`atelier.imaging.corrupt.STANDARD` by default).
        prefilter: ``none``, ``auto``, ``nlm`` or ``deblock``, applied to each corrupted photo
            (never to the clean reference).
        seed: seed of the noise corruptions.
        scorer: the :class:`~atelier.analysis.metrics.Scorer` for the losses (default: Gatys's layers, fp32, CPU).
        keep_images: also return the (input, result) pair of each row (for :func:`grid_image`).
        callback: called as ``callback(done, total, name)`` after each stylization.

    Returns:
        (rows, one :class:`RobustnessRow` per corruption after the clean one; images, a list of
        (input, result) tensors per row when ``keep_images``, else empty).

    Raises:
        InputError: a bad content tensor or pre-filter name; FloatingPointError: a non-finite result.
    """
    if not isinstance(content, torch.Tensor) or content.ndim != 4 or content.shape[:2] != (1, 3):
        raise InputError(f"robustness expects one content image (1, 3, H, W), got {getattr(content, 'shape', None)}")
    if prefilter not in PREFILTERS:
        raise InputError(f"--prefilter must be one of {', '.join(PREFILTERS)}, got {prefilter!r}")
    scorer = scorer or Scorer()
    content = content.detach().float().cpu()
    styles = [style.detach().float().cpu()] if style is not None else []
    rows, images = [], []
    total = len(corruptions) + 1

    def run(x: torch.Tensor) -> tuple[torch.Tensor, float]:
        t0 = time.perf_counter()
        with torch.no_grad():
            y = stylizer(x)
        y = y.detach().float().cpu().clamp(0, 1)
        if not torch.isfinite(y).all():
            raise FloatingPointError("the stylizer returned non-finite pixels")
        if y.shape[-2:] != x.shape[-2:]:
            from ..io.images import resize_to

            y = resize_to(y, *x.shape[-2:])
        return y, time.perf_counter() - t0

    ref_features: dict = {}

    def measure(name: str, used: str, x: torch.Tensor, y: torch.Tensor, ref: torch.Tensor, seconds: float):
        scores = evaluate(y, content, styles, st=scorer)
        if not ref_features:
            ref_features.update(perceptual_features(scorer.encoder, ref))
        rows.append(RobustnessRow(name, used, corrupt.psnr(x, content), ssim_luminance(ref, y),
                                  perceptual_distance(scorer.encoder, ref, y, a_features=ref_features),
                                  scores["content_loss"], scores["style_loss"], seconds))
        if keep_images:
            images.append((x, y))
        if callback is not None:
            callback(len(rows), total, name)

    clean, secs = run(content)
    measure("clean", "none", content, clean, clean, secs)
    for i, c in enumerate(corruptions):
        x = corrupt.apply(content, c, seed + i)
        used = "none"
        if prefilter != "none":
            x, used = run_prefilter(x, prefilter)
        y, secs = run(x)
        measure(c.name, used, x, y, clean, secs)
    return rows, images


def summarize(rows: Sequence[RobustnessRow]) -> dict:
    """Means over the corrupted rows (clean left out): ``ssim``, ``perceptual``, ``content_loss``,
    ``style_loss`` (None without a style), and per kind (``jpeg``, ``noise``, ``blur``)."""
    bad = [r for r in rows if r.corruption != "clean"]

    def mean(rs, key):
        vals = [getattr(r, key) for r in rs if getattr(r, key) is not None]
        return float(np.mean(vals)) if vals else None

    out = {k: mean(bad, k) for k in ("ssim", "perceptual", "content_loss", "style_loss")}
    for kind in ("jpeg", "noise", "blur"):
        rs = [r for r in bad if r.corruption.startswith(kind)]
        if rs:
            out[kind] = {k: mean(rs, k) for k in ("ssim", "perceptual")}
    return out


def grid_image(rows: Sequence[RobustnessRow], images: Sequence, title: str = "", thumb: int = 192) -> Image.Image:
    """A PNG-ready grid: one column per row of the study, the (corrupted, filtered) input on top,
    its result below, captioned with the corruption, the filter used, SSIM and perceptual distance."""
    from .cluster import _font

    n = len(rows)
    cols = min(n, 5)
    blocks = int(np.ceil(n / cols))
    pad, cap = 6, 30
    top = 22 if title else 0
    h, w = images[0][1].shape[-2:] if images else (thumb, thumb)
    th = max(16, round(thumb * min(1.0, h / w)))  # thumbnail height: no empty band for landscape photos
    cell_h = 2 * th + cap + 2 * pad
    sheet = Image.new("RGB", (pad + cols * (thumb + pad), top + blocks * cell_h + pad), "white")
    draw, font = ImageDraw.Draw(sheet), _font()
    if title:
        draw.text((pad, 5), title, fill="black", font=font)
    for i, (row, (x, y)) in enumerate(zip(rows, images)):
        b, c = divmod(i, cols)
        x0, y0 = pad + c * (thumb + pad), top + pad + b * cell_h
        for j, t in enumerate((x, y)):
            im = tensor_to_pil(t.clamp(0, 1))
            im.thumbnail((thumb, th), Image.Resampling.LANCZOS)
            sheet.paste(im, (x0 + (thumb - im.width) // 2, y0 + j * (th + 2) + (th - im.height) // 2))
        name = row.corruption + ("" if row.prefilter == "none" else f" +{row.prefilter}")
        draw.text((x0, y0 + 2 * th + 4), name, fill="black", font=font)
        draw.text((x0, y0 + 2 * th + 17), f"SSIM {row.ssim:.3f}  perc {row.perceptual:.3f}", fill="black",
                  font=font)
    return sheet
