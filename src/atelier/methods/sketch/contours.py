"""Boundary maps: the shipped contour network, and the two baselines of the benchmark.

* :func:`boundary_map`: HED-style heads (:class:`~atelier.networks.contours.ContourNet`,
  Xie & Tu 2015) on the frozen VGG19, trained on BSDS500 train (``models/sketch/contours``).
* :func:`vgg_gradient_map`: no learning, the spatial gradient magnitude of the VGG19 features
  (relu1_2, relu2_2, relu3_4), each normalized and averaged: the "raw VGG" baseline.
* :func:`canny_levels`: OpenCV's Canny (1986) at a sweep of thresholds.
"""

from __future__ import annotations

import os
import pathlib
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ...core.errors import InputError
from ...encoders.vgg import VGGEncoder, get_encoder
from ...networks.contours import ContourNet
from ...training.cards import read_verified

__all__ = ["CONTOUR_MODEL", "load_contour_net", "boundary_map", "vgg_gradient_map", "canny_levels",
           "CANNY_HIGH"]

PathLike = Union[str, os.PathLike]
CONTOUR_CARD_FORMAT = "atelier-contour-net"
#: The shipped weights (safetensors, with ``contours.json`` beside).
CONTOUR_MODEL = "sketch/contours.safetensors"
#: Canny high thresholds (on 0-255 gradients) of the sweep; low = 0.4 * high.
CANNY_HIGH = tuple(int(v) for v in np.round(np.geomspace(10, 400, 24)))


def _default_path() -> pathlib.Path:
    from ...training.zoo import shipped_dir

    return shipped_dir("sketch") / pathlib.Path(CONTOUR_MODEL).name


def load_contour_net(path: Optional[PathLike] = None) -> ContourNet:
    """The contour network, verified against its model card (sha256).

    Args:
        path: a ``.safetensors`` file of :class:`~.train.ContourTrainer`; default the shipped one.

    Returns:
        A float32 :class:`~atelier.networks.contours.ContourNet` in eval mode with ``card``.

    Raises:
        InputError: missing or modified file, not a contour network, or weights that do not fit.
    """
    p = pathlib.Path(os.fspath(path)) if path is not None else _default_path()
    card, state, weights, (hidden, layers) = read_verified(
        p, lambda c: (int(c["architecture"]["hidden"]), tuple(c["architecture"]["layers"])))
    if card.get("format") != CONTOUR_CARD_FORMAT:
        raise InputError(f"not a contour network (model card format {card.get('format')!r})", weights)
    try:
        net = ContourNet(hidden, layers)
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, ValueError) as e:
        raise InputError(f"the weights do not fit the network the model card describes ({e})", weights) from None
    net.card = card
    return net.eval()


def boundary_map(image: torch.Tensor, net: Optional[ContourNet] = None, encoder: Optional[VGGEncoder] = None,
                 precision: str = "fp32", side: Optional[int] = None, plan=None) -> torch.Tensor:
    """Boundary probability of every pixel.

    Args:
        image: float32 (N, 3, H, W), RGB in [0, 1], H and W >= 16.
        net: the contour network (default: the shipped one, loaded once per call).
        encoder: the frozen VGG19 (default: :func:`~atelier.encoders.vgg.get_encoder`).
        precision: ``"fp32"`` or ``"bf16"`` for the encoder (the heads run in fp32).
        side: None for the fused output, or 0..4 for one side output (HED's deep supervision).
        plan: a :class:`~atelier.imaging.tiles.TilePlan` for print sizes (issue 24): the map is
            computed tile by tile and the overlaps blended (the network is per pixel on features
            with a bounded receptive field, so no statistics need sharing); None: in one pass.

    Returns:
        float32 (N, 1, H, W) in [0, 1].

    Raises:
        ValueError: an image smaller than 16 px or not (N, 3, H, W).
    """
    if image.ndim != 4 or image.shape[1] != 3 or min(image.shape[-2:]) < 16:
        raise ValueError(f"expected an image (N, 3, H, W) with H, W >= 16, got {tuple(image.shape)}")
    net = net if net is not None else load_contour_net()
    encoder = encoder if encoder is not None else get_encoder()
    if plan is not None:
        from ...imaging.tiles import blend_tiles

        def run(tile: torch.Tensor) -> torch.Tensor:
            return boundary_map(tile, net, encoder, precision, side).expand(-1, 3, -1, -1)

        return blend_tiles(image.float().cpu(), plan, run)[:, :1].clamp(0, 1)
    with torch.no_grad():
        feats = encoder(image, net.layers, precision)
        sides, fused = net(feats, image.shape[-2:])
        return torch.sigmoid(fused if side is None else sides[side])


def vgg_gradient_map(image: torch.Tensor, encoder: Optional[VGGEncoder] = None,
                     layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_4")) -> torch.Tensor:
    """The untrained baseline: gradient magnitude of VGG19 features, float32 (N, 1, H, W) in [0, 1].

    Each layer: central differences in x and y, L2 norm over channels and both directions,
    upsampled bilinearly to (H, W) and divided by its 99th percentile; the layers are averaged and
    clipped to [0, 1].
    """
    encoder = encoder if encoder is not None else get_encoder()
    h, w = image.shape[-2:]
    with torch.no_grad():
        feats = encoder(image, layers)
        acc = torch.zeros(image.shape[0], 1, h, w)
        for name in layers:
            f = F.pad(feats[name], (1, 1, 1, 1), mode="replicate")
            gx = (f[..., 1:-1, 2:] - f[..., 1:-1, :-2]) / 2
            gy = (f[..., 2:, 1:-1] - f[..., :-2, 1:-1]) / 2
            mag = (gx.pow(2) + gy.pow(2)).sum(1, keepdim=True).sqrt()
            mag = F.interpolate(mag, size=(h, w), mode="bilinear", align_corners=False)
            q = torch.quantile(mag.flatten(1)[:, ::7], 0.99, dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
            acc += mag / q
        return (acc / len(layers)).clamp(0, 1)


def canny_levels(image: torch.Tensor, highs: Sequence[int] = CANNY_HIGH, sigma: float = 2.0) -> list[np.ndarray]:
    """OpenCV Canny edges of one photo at each high threshold (low = 0.4 * high).

    Args:
        image: float32 (1, 3, H, W) RGB in [0, 1] (converted to 8-bit grey).
        highs: the high hysteresis thresholds (on Sobel gradients of the 0-255 image).
        sigma: Gaussian smoothing (px) before Canny (0: none).

    Returns:
        bool (H, W) maps, one per threshold (one pixel wide by construction).
    """
    import cv2

    rgb = (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), sigma)
    return [cv2.Canny(grey, 0.4 * hi, hi, L2gradient=True) > 0 for hi in highs]
