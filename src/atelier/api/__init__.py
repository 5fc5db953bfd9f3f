"""The Python API: one call for the common case, classes for control."""

from __future__ import annotations

import os
from typing import Callable, Sequence, Union

import torch
from PIL import Image

from ..io import images as img
from ..methods.gatys.optimize import GatysConfig, GatysStyleTransfer, Progress
from .paint import paint  # noqa: F401  (issue 27)

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


def sketch(image: ImageLike, *, style: str = "pencil", lines_only: bool = False, detail: float = 0.5,
           size: int | None = None, seed: int = 0, precision: str = "fp32",
           max_pixels: int | None = None) -> Image.Image:
    """Draw a photo as a pencil, ink or charcoal sketch (issue 17).

    Contours from a network trained on the human line drawings of BSDS500 (HED-style heads on
    the frozen VGG19, Xie & Tu 2015), thinned into strokes whose width and darkness follow the
    boundary strength, over pencil shading from the photo's luminance (Lu et al. 2012).

    Args:
        image: path, PIL image, numpy array (H, W, 3) or tensor (1, 3, H, W) RGB in [0, 1].
        style: ``"pencil"``, ``"ink"`` or ``"charcoal"``.
        lines_only: strokes only, no shading.
        detail: 0 (only the strongest contours) to 1 (more contours).
        size: longest side of the result in pixels (default: the image's).
        seed: seed of the textures.
        precision: ``"fp32"`` or ``"bf16"`` for the VGG encoder.
        max_pixels: decompression-bomb limit for image files.

    Returns:
        The sketch as an RGB PIL image.

    Raises:
        InputError: an unreadable image file (the message names it).
        ValueError: an unknown style, ``detail`` outside [0, 1], or an image under 16 px.

    Example:
        >>> import atelier
        >>> atelier.sketch("photo.jpg", style="pencil", size=512).save("sketch.png")
    """
    from ..methods.sketch.draw import sketch_tensor

    x = img.load_image(image, size=size, max_pixels=max_pixels)
    return img.tensor_to_pil(sketch_tensor(x, style, lines_only, detail, precision=precision, seed=seed))
