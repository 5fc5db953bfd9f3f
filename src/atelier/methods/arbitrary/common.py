"""What the arbitrary-style methods (AdaIN, WCT) share around their models: style images loaded
at a style size or cached statistics reused, colour preservation, and the PIL-in, PIL-out entry."""

from __future__ import annotations

import os
import warnings
from typing import Callable, Optional, Sequence

import torch
from PIL import Image

from ...imaging import color
from ...io import images as img


def stylize_tensor(model, content: torch.Tensor, styles: Sequence, cached_type: type, *, alpha: float = 1.0,
                   blend: Optional[Sequence[float]] = None, mask: Optional[torch.Tensor] = None,
                   preserve_color: str = "none", style_size: Optional[int] = 512, precision: Optional[str] = None,
                   max_pixels: Optional[int] = None) -> torch.Tensor:
    """Run ``model(content, styles, alpha=, blend=, mask=, precision=)`` with colour preservation.

    Args:
        model: an AdaIN or WCT model with ``encode_style(image, precision)``.
        content: float32 (1, 3, H, W) in [0, 1].
        styles: style images (paths, PIL images, arrays, tensors; loaded at ``style_size``) or
            cached statistics of ``cached_type``.
        preserve_color: ``"none"``, ``"histogram"`` (each style's colours matched to the content's
            before encoding) or ``"luminance"`` (luminance-only transfer, the content's Cb/Cr back).

    Returns:
        float32 (1, 3, H, W) in [0, 1] on the CPU.

    Raises:
        InputError: an unreadable style image.
        ValueError: an unknown colour mode, no style, or cached statistics with a colour mode.
    """
    if preserve_color not in color.PRESERVE_COLOR_MODES:
        raise ValueError(f"preserve color must be one of {color.PRESERVE_COLOR_MODES}, got {preserve_color!r}")
    styles = list(styles)
    if not styles:
        raise ValueError("at least one style image is needed")
    original = content
    if preserve_color != "none":
        if any(isinstance(s, cached_type) for s in styles):
            raise ValueError(f"preserve_color={preserve_color!r} changes the style images for each content "
                             f"image; pass the style images, not cached {cached_type.__name__}")
        loaded = [img.load_image(s, size=style_size, max_pixels=max_pixels) for s in styles]
        content, styles = color.color_inputs(content, loaded, preserve_color)
    feats = [s if isinstance(s, cached_type)
             else model.encode_style(img.load_image(s, size=style_size, max_pixels=max_pixels), precision)
             for s in styles]
    with torch.inference_mode():
        out = model(content, feats, alpha=alpha, blend=blend, mask=mask, precision=precision)
    return color.color_output(out.cpu(), original, preserve_color).clamp(0, 1)


def stylize_image(content: img.ImageSource, styles, cached_type: type, run: Callable[..., torch.Tensor], *,
                  size: Optional[int] = None, mask: Optional[img.ImageSource] = None,
                  max_pixels: Optional[int] = None, **options) -> Image.Image:
    """Load the content (and mask), call ``run(content, styles, mask=, max_pixels=, **options)``
    and return a PIL image. A single style (image or ``cached_type``) may be given alone; a mask
    of another size is resized with a warning.

    Raises:
        InputError: an unreadable image or mask file.
    """
    if isinstance(styles, (str, os.PathLike, Image.Image, torch.Tensor, cached_type)):
        styles = [styles]
    c = img.load_image(content, size=size, max_pixels=max_pixels)
    m = None
    if mask is not None:
        m, note = color.load_mask(mask, c.shape[-2], c.shape[-1], max_pixels=max_pixels)
        if note:
            warnings.warn(note, stacklevel=3)
    return img.tensor_to_pil(run(c, list(styles), mask=m, max_pixels=max_pixels, **options))
