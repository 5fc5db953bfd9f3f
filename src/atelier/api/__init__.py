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


_ONE_PASS_OPTIONS = ("size", "alpha", "blend", "mask", "preserve_color", "device", "precision", "style_size",
                     "decoder", "layers", "tile", "max_memory", "feather", "tileable")


def stylize(content: ImageLike, styles: Union[ImageLike, Sequence[ImageLike]] = (), *, method: str = "gatys",
            callback: Callable[[Progress], None] | None = None, max_pixels: int | None = None,
            **options) -> Image.Image:
    """Stylize a content image with one or more style images: Gatys et al. 2016 by default, or any
    method of the registry (:mod:`atelier.methods.registry`: ``"adain"``, ``"wct"``, a shipped
    feed-forward model name, a ``.safetensors`` file, or a registered method).

    Args:
        content: path, PIL image, numpy array (H, W, 3) or tensor (1, 3, H, W) RGB in [0, 1].
        styles: one style image or a list of them (same kinds as ``content``); none for a
            feed-forward model (its styles are built in).
        method: the method's name (see ``atelier methods``).
        callback: Gatys: called after every iteration with a :class:`~atelier.methods.gatys.optimize.Progress`.
        max_pixels: decompression-bomb limit for image files (default 100 MP,
            or ``$ATELIER_MAX_PIXELS``).
        **options: Gatys: any :class:`~atelier.methods.gatys.optimize.GatysConfig` field, e.g.
            ``size=512``, ``iterations=300``, ``style_weight=1e4``, ``style_blend=[0.7, 0.3]``,
            ``preserve_color="luminance"``, ``seed=0``, ``precision="bf16"``. One-pass methods:
            ``size``, ``alpha`` (style strength in [0, 1]), ``blend`` (one weight per style, or
            per built-in style of a multi-style model), ``preserve_color``, ``style_size`` (px,
            default 512), ``device``, ``precision``, ``decoder`` and ``layers`` (AdaIN/WCT);
            print sizes (every method but the sketch, issue 24): ``tile`` (``"auto"``, the default:
            tiles only when the image would not fit ``max_memory``; ``"off"``; or a tile side in px)
            and ``max_memory`` (``"8G"``, bytes; default 80 % of the memory available), see
            :mod:`atelier.api.print_size`.
            Every method (issue 28): ``mask`` (one image or a list: one per style, style k where
            mask k is white and the photo where no mask is; or one with two styles, the first where
            white; a feed-forward model: one, its style where white; :mod:`atelier.imaging.regions`),
            ``feather`` (px, softens the region edges), ``tileable`` (a seamless texture; Gatys: the
            GatysConfig field of that name). ``stroke_scale`` (S in [0.25, 16], issue 24: strokes S
            times larger; one-pass methods run at 1/S of the size and are upscaled, Gatys takes a
            style image S times larger, i.e. ``style_scale * S``).

    Returns:
        The stylized image as an RGB PIL image, longest side ``size`` (or the content's).

    Raises:
        InputError: an image file is missing or unreadable (the message names it), or an unknown method.
        ValueError: an invalid option.
        StyleTransferInterrupted: Ctrl-C during Gatys; its ``.image`` holds the current result.

    Example:
        >>> import atelier
        >>> photo, painting = atelier.demo_images()
        >>> atelier.stylize(photo, [painting], size=64, iterations=3, seed=0).size
        (64, 42)
        >>> atelier.stylize(photo, method="starry_night", size=64).size
        (64, 42)
        >>> atelier.stylize(photo, painting, method="adain", size=64, alpha=0.5).mode
        'RGB'
    """
    from ..methods.registry import get_method

    spec = get_method(method)
    mask_sources = options.pop("mask", None)
    mask_sources = [] if mask_sources is None else (list(mask_sources) if isinstance(mask_sources, (list, tuple))
                                                    else [mask_sources])
    feather = float(options.pop("feather", 0.0))
    stroke_scale = float(options.pop("stroke_scale", 1.0))
    if not 0.25 <= stroke_scale <= 16:
        raise ValueError(f"stroke_scale must be from 0.25 to 16, got {stroke_scale}")
    if spec.family == "optimization":
        options["style_scale"] = options.get("style_scale", GatysConfig().style_scale) * stroke_scale
        c = img.load_image(content, max_pixels=max_pixels)
        s = [img.load_image(x, max_pixels=max_pixels) for x in _as_list(styles)]
        tile, max_memory = options.pop("tile", "auto"), options.pop("max_memory", None)
        st = GatysStyleTransfer(GatysConfig(**options), max_pixels=max_pixels, tile=tile, max_memory=max_memory)
        masks = _region_masks(mask_sources, len(s), False, c, max_pixels, feather)
        return img.tensor_to_pil(st.run(c, s, callback=callback, masks=masks))
    unknown = sorted(set(options) - set(_ONE_PASS_OPTIONS))
    if unknown:
        raise ValueError(f"method {method} takes no option(s) {', '.join(unknown)}; it takes "
                         f"{', '.join(_ONE_PASS_OPTIONS)}")
    c = img.load_image(content, size=options.get("size"), max_pixels=max_pixels)
    style_list = [] if isinstance(styles, (tuple, list)) and not styles else _as_list(styles)
    if spec.styles == "builtin" and style_list:
        raise ValueError(f"a feed-forward model ({method}) has its styles built in; give no styles")
    if spec.styles == "images" and not style_list:
        raise ValueError(f"method {method} needs at least one style image")
    s = [img.load_image(x, size=options.get("style_size", 512), max_pixels=max_pixels) for x in style_list]
    mask = _region_masks(mask_sources, len(s), spec.styles == "builtin", c, max_pixels, feather)
    tileable = bool(options.get("tileable", False))
    full_size = tuple(c.shape[-2:])
    if stroke_scale != 1.0:  # issue 24: the network at 1/S of the size, the result upscaled
        if mask or tileable:
            raise ValueError("stroke_scale does not combine with mask or tileable yet; leave one out")
        c = img.resize_longest(c, max(16, round(max(full_size) / stroke_scale)))
    loader = {k: options[k] for k in ("decoder", "layers") if options.get(k) is not None}
    model = spec.build(device=options.get("device", "auto"), precision=options.get("precision", "auto"), **loader)
    dev = next(model.parameters()).device if hasattr(model, "parameters") else "cpu"
    plan = None
    if not mask and not tileable:
        from .print_size import print_plan

        plan = print_plan(spec, c.shape[-2], c.shape[-1], options.get("tile", "auto"), options.get("max_memory"), dev)
    elif options.get("tile", "auto") not in ("auto", "off"):
        raise ValueError("masks and tileable outputs are not tiled; leave out tile (or ask for a smaller size)")
    kw = dict(alpha=float(options.get("alpha", 1.0)), blend=options.get("blend"),
              preserve_color=options.get("preserve_color", "none"))
    if plan is not None:
        from ..encoders.precision import resolve_precision

        out = spec.stylize_tiled(model, c, s, plan, precision=resolve_precision(options.get("precision", "auto"), dev),
                                 **kw)
    else:
        out = spec.stylize(model, c, s, mask=mask, tileable=tileable, **kw)
    if stroke_scale != 1.0:  # back to the asked size (a tileable result keeps its 16 px multiple sides)
        out = img.resize_to(out, *full_size)
    return img.tensor_to_pil(out)


def _region_masks(sources: list, n_styles: int, builtin: bool, content, max_pixels, feather: float) -> list:
    """Region masks (issue 28) loaded at the content's size; the count checked first."""
    from ..imaging import regions

    regions.check_region_count(len(sources), n_styles, builtin=builtin, what="mask")
    return regions.load_masks(sources, content.shape[-2], content.shape[-1], max_pixels=max_pixels,
                              feather=feather)[0]


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
        >>> photo, _ = atelier.demo_images()
        >>> atelier.sketch(photo, style="ink", size=64).size
        (64, 42)
    """
    from ..methods.sketch.draw import sketch_tensor

    x = img.load_image(image, size=size, max_pixels=max_pixels)
    return img.tensor_to_pil(sketch_tensor(x, style, lines_only, detail, precision=precision, seed=seed))
