"""Regions with their own style (issue 28 item 1; Gatys et al. 2017, "Controlling Perceptual
Factors in Neural Style Transfer", §4 spatial control).

A run with regions gets one mask per style image (white = that style, black = not; grey for soft
edges). What no mask covers keeps the photo. Two styles and one mask keep the older meaning (the
first style where the mask is white, the second where it is black; AdaIN/WCT then blend in
feature space, Huang & Belongie 2017 §7.3). A feed-forward model (its styles built in) takes one
mask: its style where white, the photo where black.

Weights: ``w_k = m_k`` (divided by ``sum_k m_k`` where the masks add up to more than 1) and
``keep = 1 - sum_k w_k``; the weights and ``keep`` add up to 1 at every pixel.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .color import ImageSource, load_mask


def check_region_count(n_masks: int, n_styles: int, builtin: bool = False, what: str = "--mask") -> None:
    """Check that ``n_masks`` masks fit ``n_styles`` style images (``builtin``: a feed-forward
    model's own style, ``n_styles`` ignored).

    Raises:
        ValueError: a one-line message saying what fits.
    """
    if n_masks == 0:
        return
    if builtin:
        if n_masks != 1:
            raise ValueError(f"a feed-forward model takes one {what} (its style where white, the photo where "
                             f"black), got {n_masks}")
        return
    if n_masks == n_styles or (n_masks == 1 and n_styles == 2):
        return
    raise ValueError(f"give one {what} per style image ({n_styles} style(s), {n_masks} mask(s)): style k where "
                     f"mask k is white, the photo where no mask is; or one {what} with two styles (the first "
                     f"where white, the second where black)")


def load_masks(sources: Sequence[ImageSource], height: int, width: int, max_pixels: int | None = None,
               feather: float = 0.0, original: tuple[int, int] | None = None) -> tuple[list[torch.Tensor], list[str]]:
    """Load masks (:func:`atelier.imaging.color.load_mask`: resized to the content's size, with a note
    when they were), then :func:`feather_mask` them. ``feather`` is in pixels of the content at
    ``height`` x ``width``.

    ``original``: the content file's own (height, width) before a ``--size`` resize; a mask of that
    size fits exactly and gets no note.

    Returns:
        ``(masks, notes)``: float32 (1, 1, height, width) in [0, 1] each, and one sentence per mask
        that was resized (prefixed with the file name where there is one).

    Raises:
        InputError: a mask file is missing, not an image, corrupt or too large (the message names it).
        ValueError: ``feather`` < 0.
    """
    masks, notes = [], []
    for src in sources:
        m, note = load_mask(src, height, width, max_pixels=max_pixels)
        if note and original is not None and _own_size(src) == tuple(original):
            note = None
        if note:
            notes.append(f"{src}: {note}" if isinstance(src, (str, bytes)) or hasattr(src, "__fspath__") else note)
        masks.append(feather_mask(m, feather))
    return masks, notes


def _own_size(source) -> tuple[int, int] | None:
    """(height, width) of a mask file or image, None when it has none."""
    if isinstance(source, torch.Tensor):
        return tuple(source.shape[-2:])
    try:
        from ..io.images import open_image

        w, h = open_image(source).size
        return h, w
    except Exception:  # the load above has read it already; a source without a size gets the note
        return None


def feather_mask(mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Soften a mask's edges: a Gaussian blur with standard deviation ``radius / 2`` px (so the edge
    ramps over about ``2 * radius`` px). float32 (1, 1, H, W) in [0, 1] in and out; ``radius=0``
    returns it unchanged.

    Raises:
        ValueError: ``radius`` < 0 or not finite.
    """
    radius = float(radius)
    if not (radius >= 0) or radius == float("inf"):
        raise ValueError(f"--feather must be a number of pixels >= 0, got {radius}")
    if radius == 0:
        return mask
    import cv2

    a = mask[0, 0].detach().cpu().numpy().astype(np.float32)
    b = cv2.GaussianBlur(a, (0, 0), sigmaX=radius / 2, borderType=cv2.BORDER_REFLECT)
    return torch.from_numpy(b).clamp(0, 1)[None, None].to(mask.device)


def region_weights(masks: Sequence[torch.Tensor], n_styles: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight of each style and of the photo at every pixel (rules in the module docstring).

    Args:
        masks: float (1, 1, H, W) in [0, 1] each: one per style, or one with two styles.
        n_styles: the number of style images (1 for a feed-forward model's own style).

    Returns:
        ``(weights, keep)``: float32 (n_styles, 1, H, W) and (1, 1, H, W), in [0, 1], adding up to 1.

    Raises:
        ValueError: a mask count that does not fit (:func:`check_region_count`), or masks of
            different sizes.
    """
    check_region_count(len(masks), n_styles)
    if not masks:
        raise ValueError("no mask given")
    shapes = {tuple(m.shape[-2:]) for m in masks}
    if len(shapes) != 1:
        raise ValueError(f"the masks have different sizes {sorted(shapes)}; load them at the content's size")
    m = torch.cat([x.float().reshape(1, 1, *x.shape[-2:]) for x in masks]).clamp(0, 1)
    if len(masks) == 1 and n_styles == 2:
        return torch.cat([m, 1 - m]), torch.zeros_like(m)
    total = m.sum(dim=0, keepdim=True)
    w = torch.where(total > 1, m / total.clamp_min(1e-8), m)
    return w, (1 - w.sum(dim=0, keepdim=True)).clamp(0, 1)


def composite(stylized: Sequence[torch.Tensor], photo: torch.Tensor, weights: torch.Tensor,
              keep: torch.Tensor) -> torch.Tensor:
    """``sum_k weights[k] * stylized[k] + keep * photo``: the per-style results placed in their
    regions over the photo. Tensors (1, 3, H, W) in [0, 1] of one size (the weights are resized
    bilinearly when the results' size differs). Returns float32 (1, 3, H, W) in [0, 1] on the CPU."""
    h, w = stylized[0].shape[-2:]
    ws = torch.cat([weights, keep]).float().cpu()
    if ws.shape[-2:] != (h, w):
        ws = torch.nn.functional.interpolate(ws, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
    p = photo.float().cpu()
    if p.shape[-2:] != (h, w):
        p = torch.nn.functional.interpolate(p, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    out = ws[-1:] * p
    for k, s in enumerate(stylized):
        out = out + ws[k:k + 1] * s.float().cpu()
    return out.clamp(0, 1)
