"""Universal style transfer (WCT) for users: the shipped inversion decoders, any style image.

Li et al. (2017), "Universal Style Transfer via Feature Transforms". The pipeline itself is
:class:`~atelier.methods.arbitrary.wct_model.WCTModel`; this module loads the decoders shipped with the package
(or trained with ``atelier train-decoders``) and adds what a user needs around it: style images
resized to a style size, colour preservation, style blends and masks, as for AdaIN.

Example::

    from atelier.methods.arbitrary.wct import load_wct, stylize_wct

    model = load_wct()                                          # relu4_1 ... relu1_1
    scream = model.encode_style(atelier.load_image("scream.jpg", size=512))   # reusable
    out = model(atelier.load_image("photo.jpg"), scream, alpha=0.8)          # (1, 3, H, W)
    stylize_wct("photo.jpg", ["starry.jpg", "scream.jpg"], blend=[0.7, 0.3]).save("out.png")
"""

from __future__ import annotations

import os
import pathlib
from typing import Optional, Sequence, Union

import torch
from PIL import Image

from ...io import images as img
from ...core.errors import InputError
from ...core.runtime import check_precision, resolve_device
from ...encoders.precision import resolve_precision
from ...encoders.vgg import get_encoder
from ...networks.decoders import DECODER_LAYERS
from ...training.cards import load_inversion_decoder
from ...training.zoo import shipped_dir
from . import common as _common
from .wct_model import DEFAULT_WCT_LAYERS, WCTModel, WCTStyle

__all__ = ["DEFAULT_LAYERS", "load_wct", "wct_tensor", "stylize_wct", "decoders_dir"]

#: Layers used by default, coarse to fine: relu4_1 down to relu1_1. Li et al. start at
#: relu5_1, which (pass ``layers=DEFAULT_WCT_LAYERS``) transfers larger structures but keeps less
#: of the photo.
DEFAULT_LAYERS = DEFAULT_WCT_LAYERS[1:]
#: Longest side (pixels) style images are resized to before encoding.
DEFAULT_STYLE_SIZE = 512

PathLike = Union[str, os.PathLike]
StyleLike = Union[img.ImageSource, WCTStyle]


def decoders_dir(path: Optional[PathLike] = None) -> pathlib.Path:
    """The folder of the shipped WCT decoders (``None``), or ``path`` (a folder holding
    ``decoder-relu{k}_1.safetensors`` files with their model cards).

    Raises:
        InputError: the folder does not exist.
    """
    if path is None:
        p = shipped_dir("wct")
    else:
        p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.is_dir():
        raise InputError("no folder of WCT decoders here (files decoder-relu1_1.safetensors ...)", p)
    return p


def load_wct(path: Optional[PathLike] = None, layers: Sequence[str] = DEFAULT_LAYERS, device: str = "auto",
             precision: str = "auto") -> WCTModel:
    """Load the WCT pipeline: the VGG19 encoder and one inversion decoder per layer, each
    verified against its model card's sha256.

    Args:
        path: folder of decoders (default: those shipped with the package).
        layers: the layers to use, any of relu1_1 ... relu5_1 (applied coarse to fine).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` for the encoder and decoders.

    Returns:
        A :class:`~atelier.methods.arbitrary.wct_model.WCTModel` in eval mode with attribute ``cards``
        (layer -> model card).

    Raises:
        InputError: a missing or corrupt decoder file.
        ValueError: an unknown layer, device or precision.
    """
    layers = list(layers)
    bad = [k for k in layers if k not in DECODER_LAYERS]
    if bad or not layers:
        raise ValueError(f"WCT layers must be some of {', '.join(DECODER_LAYERS)}, got {layers}")
    check_precision(precision)
    dev = resolve_device(str(device))
    folder = decoders_dir(path)
    decoders = {k: load_inversion_decoder(folder / f"decoder-{k}.safetensors", device=dev) for k in layers}
    encs = {(d.card["architecture"]["encoder"].get("weights"), d.card["architecture"]["encoder"].get("pooling", "max"))
            for d in decoders.values()}
    if len(encs) != 1:
        raise InputError(f"the decoders were trained with different encoders {sorted(map(str, encs))}", folder)
    weights, pooling = encs.pop()
    model = WCTModel(get_encoder(weights, pooling, dev), decoders, resolve_precision(precision, dev)).eval()
    model.cards = {k: d.card for k, d in decoders.items()}
    return model


def wct_tensor(model: WCTModel, content: torch.Tensor, styles: Sequence[StyleLike], *, alpha: float = 1.0,
               blend: Optional[Sequence[float]] = None, mask: Optional[torch.Tensor] = None,
               preserve_color: str = "none", style_size: Optional[int] = DEFAULT_STYLE_SIZE,
               precision: Optional[str] = None, max_pixels: Optional[int] = None) -> torch.Tensor:
    """Stylize one content tensor with WCT, with colour preservation.

    Args:
        model: from :func:`load_wct`.
        content: float32 (1, 3, H, W), RGB in [0, 1], H, W >= 16.
        styles: style images (paths, PIL images, arrays, tensors; resized to ``style_size``) or
            cached :class:`~atelier.methods.arbitrary.wct_model.WCTStyle`.
        alpha, blend, mask: see :meth:`WCTModel.forward <atelier.methods.arbitrary.wct_model.WCTModel.forward>`.
        preserve_color: ``"none"``, ``"histogram"`` or ``"luminance"``, as for AdaIN (these need
            style images, not cached statistics).
        style_size: longest side of the style images (``None``: as they are).
        precision: ``"fp32"``/``"bf16"``; default the model's.
        max_pixels: pixel limit for image files.

    Returns:
        float32 (1, 3, H, W) in [0, 1] on the CPU.

    Raises:
        InputError: an unreadable style image.
        ValueError: bad options.
    """
    return _common.stylize_tensor(model, content, styles, WCTStyle, alpha=alpha, blend=blend, mask=mask,
                                  preserve_color=preserve_color, style_size=style_size, precision=precision,
                                  max_pixels=max_pixels)


def stylize_wct(content: img.ImageSource, styles: Union[StyleLike, Sequence[StyleLike]], *,
                model: Optional[WCTModel] = None, size: Optional[int] = None,
                mask: Optional[img.ImageSource] = None, max_pixels: Optional[int] = None,
                **options) -> Image.Image:
    """Stylize a content image with any style image(s) by WCT, as a PIL image.

    Args:
        content: path, PIL image, array or tensor.
        styles: one style or a list.
        model: from :func:`load_wct`; the shipped decoders when ``None``.
        size: longest side of the result (default: the content's).
        mask: with two styles, style 0 where white, style 1 where black.
        **options: ``alpha``, ``blend``, ``preserve_color``, ``style_size``, ``precision``.

    Returns:
        RGB PIL image.

    Raises:
        InputError: an unreadable image or mask, or missing decoders.
        ValueError: bad options.
    """
    model = load_wct() if model is None else model
    return _common.stylize_image(content, styles, WCTStyle, lambda *a, **k: wct_tensor(model, *a, **k),
                                 size=size, mask=mask, max_pixels=max_pixels, **options)


def load_for_registry(device: str = "auto", precision: str = "auto", decoder: Optional[PathLike] = None,
                      layers: Optional[Sequence[str]] = None) -> WCTModel:
    """:func:`load_wct` with the registry's arguments (:mod:`atelier.methods.registry`)."""
    return load_wct(decoder, layers=tuple(layers) if layers else DEFAULT_LAYERS, device=device, precision=precision)


def wct_run(model: WCTModel, content: torch.Tensor, styles: Sequence[torch.Tensor], *, alpha: float = 1.0,
            blend: Optional[Sequence[float]] = None, mask: Optional[torch.Tensor] = None,
            preserve_color: str = "none", precision: Optional[str] = None) -> torch.Tensor:
    """:func:`wct_tensor` on style tensors used at their size (the registry's runner)."""
    return wct_tensor(model, content, styles, alpha=alpha, blend=blend, mask=mask, preserve_color=preserve_color,
                      style_size=None, precision=precision)
