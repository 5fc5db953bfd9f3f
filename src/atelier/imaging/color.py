"""Colour: BT.601 full-range YCbCr (the JPEG/JFIF definition), luminance-only transfer,
colour-histogram matching (Gatys et al. 2016, "Preserving Color in Neural Artistic Style
Transfer") and luminance masks for spatial control.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..io.decode import ImageSource
from ..io.images import check_image_tensor, load_image, resize_to

__all__ = ["color_inputs", "color_output", "combine_luminance_chroma", "load_mask", "luminance",
           "match_color_histogram", "match_luminance", "rgb_to_ycbcr", "ycbcr_to_rgb"]

# --------------------------------------------------------------------------- colour

# BT.601 full-range (JPEG/JFIF) RGB -> YCbCr; offsets (0, 0.5, 0.5).
_RGB2YCC = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168735891647856, -0.331264108352144, 0.5],
        [0.5, -0.418687589158345, -0.081312410841655],
    ],
    dtype=torch.float64,
)
_YCC2RGB = torch.linalg.inv(_RGB2YCC)  # exact inverse, so the round trip is exact up to float error
_YCC_OFFSET = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)


def _check_rgb(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor of shape (N, 3, H, W), got {shape}")


def _mix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(device=x.device, dtype=x.dtype), x)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB to BT.601 full-range YCbCr (as in JPEG).

    Args:
        x: float tensor ``(N, 3, H, W)``, RGB in ``[0, 1]``.

    Returns:
        Tensor ``(N, 3, H, W)``, same dtype/device: channel 0 is Y in
        ``[0, 1]``, channels 1 and 2 are Cb and Cr in ``[0, 1]`` centred at 0.5
        (0.5 = no colour). Not clamped.

    Raises:
        ValueError: ``x`` is not ``(N, 3, H, W)``.
    """
    _check_rgb(x, "x")
    return _mix(_RGB2YCC, x) + _YCC_OFFSET.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """BT.601 full-range YCbCr to RGB; the exact inverse of :func:`rgb_to_ycbcr`.

    Args:
        x: float tensor ``(N, 3, H, W)``: Y in ``[0, 1]``, Cb/Cr centred at 0.5.

    Returns:
        RGB tensor ``(N, 3, H, W)``, same dtype/device. Not clamped: YCbCr
        triples outside the RGB gamut give values outside ``[0, 1]``.

    Raises:
        ValueError: ``x`` is not ``(N, 3, H, W)``.
    """
    _check_rgb(x, "x")
    return _mix(_YCC2RGB, x - _YCC_OFFSET.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1))


def luminance(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B``.

    Args:
        x: float tensor ``(N, 3, H, W)``, RGB in ``[0, 1]``. A ``(N, 1, H, W)``
            tensor is taken to be luminance already and returned unchanged.

    Returns:
        Tensor ``(N, 1, H, W)`` in ``[0, 1]``, same dtype/device.

    Raises:
        ValueError: ``x`` is not ``(N, 3, H, W)`` or ``(N, 1, H, W)``.
    """
    if isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[1] == 1:
        return x
    _check_rgb(x, "x")
    return _mix(_RGB2YCC[:1], x)


def match_luminance(source_y: torch.Tensor, target_y: torch.Tensor) -> torch.Tensor:
    """Affinely map ``source_y`` to the mean and standard deviation of ``target_y``.

    ``out = (source_y - mean_s) * std_t / std_s + mean_t`` per batch element,
    statistics over all pixels (population std) -- the luminance matching of
    Gatys et al. (2016), "Preserving Color in Neural Artistic Style Transfer",
    applied to the style image before luminance-only transfer. A constant
    source maps to the constant ``mean_t``.

    Args:
        source_y: float tensor ``(N, 1, H, W)`` (luminance in ``[0, 1]``; any
            channel count works, statistics are taken over all channels).
        target_y: float tensor ``(N, 1, H', W')`` or ``(1, 1, H', W')``; its
            size may differ from the source's.

    Returns:
        Tensor with the shape of ``source_y``. NOT clamped: values may leave
        ``[0, 1]``; clamp if you need an image.

    Raises:
        ValueError: the inputs are not 4-D or the batch sizes are incompatible.
    """
    check_image_tensor(source_y, "source_y")
    check_image_tensor(target_y, "target_y")
    if target_y.shape[0] not in (1, source_y.shape[0]):
        raise ValueError(f"batch sizes differ: source {source_y.shape[0]}, target {target_y.shape[0]}")
    target_y = target_y.to(device=source_y.device, dtype=source_y.dtype)
    dims = (1, 2, 3)
    mu_s = source_y.mean(dim=dims, keepdim=True)
    sd_s = source_y.std(dim=dims, keepdim=True, unbiased=False)
    mu_t = target_y.mean(dim=dims, keepdim=True)
    sd_t = target_y.std(dim=dims, keepdim=True, unbiased=False)
    # A (numerically) constant source has no contrast to scale: map it to mean_t.
    scale = torch.where(sd_s > 1e-6, sd_t / sd_s.clamp_min(1e-6), torch.zeros_like(sd_s))
    return (source_y - mu_s) * scale + mu_t


def combine_luminance_chroma(y: torch.Tensor, chroma_from: torch.Tensor) -> torch.Tensor:
    """An RGB image with the luminance of ``y`` and the colour (Cb, Cr) of ``chroma_from``.

    Used for colour preservation: keep the stylized luminance and the
    content's chroma (Gatys et al. 2016).

    Args:
        y: float tensor ``(N, 1, H, W)`` luminance in ``[0, 1]``, or an RGB
            image ``(N, 3, H, W)`` whose :func:`luminance` is used.
        chroma_from: RGB image ``(N, 3, h, w)`` or ``(1, 3, h, w)`` in
            ``[0, 1]``; resized to ``H x W`` with :func:`resize_to` if needed.

    Returns:
        RGB tensor ``(N, 3, H, W)`` clamped to ``[0, 1]``, dtype/device of ``y``.

    Raises:
        ValueError: wrong shapes or incompatible batch sizes.
    """
    check_image_tensor(y, "y")
    if y.shape[1] == 3:
        y = luminance(y)
    if y.shape[1] != 1:
        raise ValueError(f"y must have 1 or 3 channels, got {tuple(y.shape)}")
    _check_rgb(chroma_from, "chroma_from")
    c = chroma_from.to(device=y.device, dtype=y.dtype)
    if tuple(c.shape[-2:]) != tuple(y.shape[-2:]):
        c = resize_to(c, y.shape[-2], y.shape[-1])
    if c.shape[0] not in (1, y.shape[0]):
        raise ValueError(f"batch sizes differ: y {y.shape[0]}, chroma_from {c.shape[0]}")
    ycc = rgb_to_ycbcr(c).expand(y.shape[0], -1, -1, -1)
    return ycbcr_to_rgb(torch.cat([y, ycc[:, 1:]], dim=1)).clamp_(0.0, 1.0)


def match_color_histogram(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``source`` with each RGB channel's histogram matched to ``reference``.

    Uses ``skimage.exposure.match_histograms(..., channel_axis=-1)`` (exact
    per-channel CDF matching) on each batch element. Used to give the style
    image the content's colours (Gatys et al. 2016, "colour histogram matching").

    Args:
        source: float tensor ``(N, 3, H, W)`` in ``[0, 1]``.
        reference: float tensor ``(N, 3, H', W')`` or ``(1, 3, H', W')`` in
            ``[0, 1]``; its size may differ.

    Returns:
        Tensor with the shape, dtype and device of ``source``, in ``[0, 1]``.

    Raises:
        ValueError: wrong shapes or incompatible batch sizes.
    """
    from skimage.exposure import match_histograms

    _check_rgb(source, "source")
    _check_rgb(reference, "reference")
    if reference.shape[0] not in (1, source.shape[0]):
        raise ValueError(f"batch sizes differ: source {source.shape[0]}, reference {reference.shape[0]}")
    src = source.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    ref = reference.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    out = np.stack(
        [match_histograms(src[i], ref[i if ref.shape[0] > 1 else 0], channel_axis=-1) for i in range(src.shape[0])]
    )
    t = torch.from_numpy(out).permute(0, 3, 1, 2).to(device=source.device, dtype=source.dtype)
    return t.clamp_(0.0, 1.0).contiguous()


# --------------------------------------------------------------------------- colour modes and masks

#: Colour-preservation modes shared by every method (Gatys, feed-forward, AdaIN).
PRESERVE_COLOR_MODES = ("none", "luminance", "histogram")


def _check_color_mode(mode: str) -> None:
    if mode not in PRESERVE_COLOR_MODES:
        raise ValueError(f"preserve color must be one of {PRESERVE_COLOR_MODES}, got {mode!r}")


def color_inputs(content: torch.Tensor, styles: list[torch.Tensor], mode: str) -> tuple[torch.Tensor, list]:
    """Prepare content and style images for a colour-preservation mode (before stylization).

    Gatys, Ecker, Bethge, Hertzmann & Shechtman (2017), "Controlling Perceptual Factors in
    Neural Style Transfer", §5:

    * ``"none"``: unchanged;
    * ``"histogram"``: each style image's colours are matched to the content's
      (:func:`match_color_histogram`), so the style brings its texture, not its palette;
    * ``"luminance"``: luminance-only transfer: the content becomes its luminance and each
      style its luminance matched to the content's mean and spread, both as 3 grey channels;
      finish with :func:`color_output`.

    Args:
        content: float32 (1, 3, H, W) in [0, 1].
        styles: float32 (1, 3, h, w) images in [0, 1].
        mode: one of :data:`PRESERVE_COLOR_MODES`.

    Returns:
        ``(content, styles)``, float32 in [0, 1].

    Raises:
        ValueError: an unknown mode.
    """
    _check_color_mode(mode)
    if mode == "histogram":
        styles = [match_color_histogram(s, content) for s in styles]
    elif mode == "luminance":
        cy = luminance(content)
        styles = [match_luminance(luminance(s), cy).clamp(0, 1).expand(-1, 3, -1, -1) for s in styles]
        content = cy.expand(-1, 3, -1, -1)
    return content, list(styles)


def color_output(result: torch.Tensor, content: torch.Tensor, mode: str) -> torch.Tensor:
    """Finish a colour-preservation mode after stylization: for ``"luminance"`` the result's
    luminance with the original ``content``'s chroma (YCbCr, same size); otherwise ``result``
    unchanged. Shapes (N, 3, H, W), float32 in [0, 1].

    Raises:
        ValueError: an unknown mode.
    """
    _check_color_mode(mode)
    if mode == "luminance":
        return combine_luminance_chroma(luminance(result), content)
    return result


def load_mask(source: ImageSource, height: int, width: int,
              max_pixels: int | None = None) -> tuple[torch.Tensor, str | None]:
    """Load a mask image for spatial control: white = 1, black = 0, grey in between.

    Args:
        source: a mask file (any image :func:`open_image` reads; colours are turned into
            luminance, transparency is composited over white), a PIL image, an array or a tensor.
        height, width: the size the mask must have (the content image's, in pixels).
        max_pixels: pixel limit, see :func:`open_image`.

    Returns:
        ``(mask, note)``: float32 (1, 1, height, width) in [0, 1], and ``None`` or a sentence
        saying the mask was resized from its own size (tell the user: the edges may have moved).

    Raises:
        InputError: naming the file: missing, not an image, corrupt, too large.
    """
    t = load_image(source, max_pixels=max_pixels)
    m = luminance(t)
    note = None
    if m.shape[-2:] != (height, width):
        note = (f"the mask is {m.shape[-1]}x{m.shape[-2]} px and the content image {width}x{height} px; "
                f"the mask was resized to fit (make them the same size to place the edge exactly)")
        m = F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return m.clamp(0, 1), note
