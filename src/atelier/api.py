"""The Python API: one call for the common case, classes for control."""

from __future__ import annotations

import os
from typing import Callable, Sequence, Union

import torch
from PIL import Image

from .core import io as img
from .methods.gatys.optimize import GatysConfig, GatysStyleTransfer, Progress

ImageLike = Union[str, "os.PathLike[str]", Image.Image, torch.Tensor]


def _as_list(styles) -> list:
    if isinstance(styles, (str, os.PathLike, Image.Image, torch.Tensor)):
        return [styles]
    styles = list(styles)
    if not styles:
        raise ValueError("at least one style image is needed")
    return styles


def stylize(content: ImageLike, styles: Union[ImageLike, Sequence[ImageLike]], *,
            callback: Callable[[Progress], None] | None = None, max_pixels: int | None = None,
            **options) -> Image.Image:
    """Stylize a content image with one or more style images (Gatys et al. 2016).

    Args:
        content: path, PIL image, numpy array (H, W, 3) or tensor (1, 3, H, W) RGB in [0, 1].
        styles: one style image or a list of them (same kinds as ``content``).
        callback: called after every iteration with a :class:`~atelier.optimize.gatys.Progress`.
        max_pixels: decompression-bomb limit for image files (default 100 MP,
            or ``$ATELIER_MAX_PIXELS``).
        **options: any :class:`~atelier.optimize.gatys.GatysConfig` field, e.g. ``size=512``,
            ``iterations=300``, ``style_weight=1e4``, ``style_blend=[0.7, 0.3]``,
            ``preserve_color="luminance"``, ``seed=0``, ``precision="bf16"``.

    Returns:
        The stylized image as an RGB PIL image, longest side ``size`` (or the content's).

    Raises:
        InputError: an image file is missing or unreadable (the message names it).
        ValueError: an invalid option.
        StyleTransferInterrupted: Ctrl-C; its ``.image`` holds the current result.

    Example:
        >>> import atelier
        >>> out = atelier.stylize("photo.jpg", ["starry.jpg"], size=512, iterations=200)
        >>> out.save("out.png")
    """
    c = img.load_image(content, max_pixels=max_pixels)
    s = [img.load_image(x, max_pixels=max_pixels) for x in _as_list(styles)]
    st = GatysStyleTransfer(GatysConfig(**options), max_pixels=max_pixels)
    return img.tensor_to_pil(st.run(c, s, callback=callback))
