"""Arbitrary style transfer for users: the shipped AdaIN decoder, any style image, one pass.

Huang & Belongie (2017), "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization". The network itself is :class:`atelier.methods.arbitrary.model.AdaINModel`; this module loads
the decoder shipped with the package (or one trained with ``atelier train-adain``) and adds
what a user needs around it: image files in and out, style images resized to a style size,
colour preservation, masks from files.

Example::

    import atelier
    from atelier.io import images as img

    model = atelier.load_adain()                              # the shipped decoder
    starry = model.encode_style(img.load_image("starry.jpg", size=512))   # cached style
    for path in frames:                                        # any number of images
        out = model(img.load_image(path), starry, alpha=0.8)  # (1, 3, H, W) in [0, 1]

    atelier.stylize_adain("photo.jpg", ["starry.jpg", "scream.jpg"], blend=[0.7, 0.3]).save("out.png")
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import torch
from PIL import Image

from ...io import images as img
from ...training.zoo import DEFAULT_DECODER, decoder_path
from . import common as _common
from .model import AdaINModel, StyleFeatures, load_adain_file
from ...core.runtime import check_precision, resolve_device
from ...encoders.precision import resolve_precision

__all__ = ["DEFAULT_DECODER", "DEFAULT_STYLE_SIZE", "decoder_path", "load_adain", "stylize_adain",
           "adain_tensor"]

#: Longest side (pixels) style images are resized to before encoding (the paper uses 512).
DEFAULT_STYLE_SIZE = 512

PathLike = Union[str, os.PathLike]
StyleLike = Union[img.ImageSource, StyleFeatures]


def load_adain(name_or_path: Optional[PathLike] = None, device: str = "auto", precision: str = "auto") -> AdaINModel:
    """Load an AdaIN model: the VGG19 encoder and a trained decoder, verified by sha256.

    Args:
        name_or_path: ``None`` or ``"adain"`` for the decoder shipped with the package, or
            the ``.safetensors`` file of one trained with ``atelier train-adain`` (its
            ``.json`` model card beside it).
        device: ``"auto"`` (cuda, mps, cpu), ``"cpu"``, ``"cuda"``, ``"mps"``.
        precision: default precision of the model's calls: ``"auto"`` (bf16 on CUDA with
            bf16 and on CPUs with AMX, else fp32), ``"fp32"`` or ``"bf16"``.

    Returns:
        An :class:`~atelier.methods.arbitrary.model.AdaINModel` in eval mode with attribute ``card`` (the
        model card). Call it as ``model(content, styles, alpha=, blend=, mask=)``; make
        reusable styles with ``model.encode_style(image)``.

    Raises:
        InputError: a missing or corrupt decoder file (sha256 differs from the card).
        ValueError: an unavailable device or an unknown precision.
    """
    dev = resolve_device(str(device))
    check_precision(precision)
    return load_adain_file(decoder_path(name_or_path), device=dev, precision=resolve_precision(precision, dev))


def adain_tensor(model: AdaINModel, content: torch.Tensor, styles: Sequence[StyleLike], *, alpha: float = 1.0,
                 blend: Optional[Sequence[float]] = None, mask: Optional[torch.Tensor] = None,
                 preserve_color: str = "none", style_size: Optional[int] = DEFAULT_STYLE_SIZE,
                 precision: Optional[str] = None, max_pixels: Optional[int] = None) -> torch.Tensor:
    """Stylize one content tensor with AdaIN, with colour preservation.

    Args:
        model: from :func:`load_adain`.
        content: float32 (1, 3, H, W), RGB in [0, 1], H, W >= 16.
        styles: style images (paths, PIL images, arrays, tensors) or cached
            :class:`~atelier.methods.arbitrary.model.StyleFeatures`; images are resized to ``style_size``.
        alpha, blend, mask: as for :meth:`AdaINModel.forward
            <atelier.methods.arbitrary.model.AdaINModel.forward>` (mask: float (1, 1, H, W) in [0, 1], style 0
            where 1, style 1 where 0).
        preserve_color: ``"none"``; ``"histogram"``: each style image's colours are matched to
            the content's before encoding (colour transfer, Gatys et al. 2017); ``"luminance"``:
            content and styles as luminance, the result's luminance recombined with the
            content's chroma. Both need style images, not cached features (the style is
            changed for each content image).
        style_size: longest side of the style images in pixels (``None``: as they are).
        precision: ``"fp32"``/``"bf16"``; default the model's.
        max_pixels: pixel limit for image files.

    Returns:
        float32 (1, 3, H, W) in [0, 1] on the CPU.

    Raises:
        InputError: an unreadable style image.
        ValueError: bad options (see :meth:`AdaINModel.forward`), or cached features with a
            colour mode.
    """
    return _common.stylize_tensor(model, content, styles, StyleFeatures, alpha=alpha, blend=blend, mask=mask,
                                  preserve_color=preserve_color, style_size=style_size, precision=precision,
                                  max_pixels=max_pixels)


def stylize_adain(content: img.ImageSource, styles: Union[StyleLike, Sequence[StyleLike]], *,
                  model: Optional[AdaINModel] = None, size: Optional[int] = None,
                  mask: Optional[img.ImageSource] = None, max_pixels: Optional[int] = None,
                  **options) -> Image.Image:
    """Stylize a content image with any style image(s) in one pass (AdaIN), as a PIL image.

    Args:
        content: path, PIL image, array or tensor (see :func:`atelier.io.images.open_image`).
        styles: one style (image or cached :class:`~atelier.methods.arbitrary.model.StyleFeatures`) or a list.
        model: from :func:`load_adain`; the shipped decoder when ``None``.
        size: longest side of the result in pixels (default: the content's).
        mask: with two styles, an image (file, PIL, array or tensor): style 0 where white,
            style 1 where black; resized to the content if needed (a warning says so).
        max_pixels: pixel limit for image files.
        **options: ``alpha``, ``blend``, ``preserve_color``, ``style_size``, ``precision`` as
            for :func:`adain_tensor`.

    Returns:
        RGB PIL image.

    Raises:
        InputError: an unreadable image or mask file, or a missing decoder.
        ValueError: bad options.
    """
    model = load_adain() if model is None else model
    return _common.stylize_image(content, styles, StyleFeatures, lambda *a, **k: adain_tensor(model, *a, **k),
                                 size=size, mask=mask, max_pixels=max_pixels, **options)


def load_for_registry(device: str = "auto", precision: str = "auto", decoder: Optional[PathLike] = None) -> AdaINModel:
    """:func:`load_adain` with the registry's arguments (:mod:`atelier.methods.registry`)."""
    return load_adain(decoder, device=device, precision=precision)


def adain_run(model: AdaINModel, content: torch.Tensor, styles: Sequence[torch.Tensor], *, alpha: float = 1.0,
              blend: Optional[Sequence[float]] = None, mask: Optional[torch.Tensor] = None,
              preserve_color: str = "none", precision: Optional[str] = None) -> torch.Tensor:
    """:func:`adain_tensor` on style tensors used at their size (the registry's runner)."""
    return adain_tensor(model, content, styles, alpha=alpha, blend=blend, mask=mask, preserve_color=preserve_color,
                        style_size=None, precision=precision)
