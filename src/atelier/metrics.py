"""Metrics for a stylized image, comparable across tools.

All numbers use the project's normalized loss definitions (:mod:`atelier.losses`), so
an image made by any tool can be scored on equal terms with ``atelier evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from skimage.metrics import structural_similarity

from .core import io as img
from .core import color
from .losses import StyleTarget, gram_matrix, content_loss, normalize_weights, tv_loss
from .core.runtime import resolve_device, resolve_precision
from .encoders.vgg import get_encoder


def ssim_luminance(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM (Wang et al. 2004, scikit-image) of the BT.601 luminance of two images.

    Args:
        a, b: float32 (1, 3, H, W) in [0, 1]; ``b`` is resized to ``a``'s size if needed.

    Returns:
        SSIM in [-1, 1]; 1 means identical luminance.
    """
    if b.shape[-2:] != a.shape[-2:]:
        b = img.resize_to(b, *a.shape[-2:])
    ya = color.luminance(a.detach())[0, 0].double().cpu().numpy()
    yb = color.luminance(b.detach())[0, 0].double().cpu().numpy()
    return float(structural_similarity(ya, yb, data_range=1.0))


@dataclass
class ScoreConfig:
    """What :func:`evaluate` scores with; any object with these attributes will do (a
    :class:`~atelier.methods.gatys.GatysConfig` does). The defaults are Gatys et al.'s."""

    content_layers: Sequence[str] = ("relu4_2",)
    style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_layer_weights: Optional[Sequence[float]] = None
    style_blend: Optional[Sequence[float]] = None
    style_scale: float = 1.0
    pooling: str = "max"
    device: str = "auto"
    precision: str = "fp32"
    weights: Optional[str] = None


class Scorer:
    """An encoder on a device with a scoring config: ``config``, ``encoder``, ``device``,
    ``precision`` (a :class:`~atelier.methods.gatys.GatysStyleTransfer` has the same
    attributes and may be passed wherever a scorer is taken)."""

    def __init__(self, config=None):
        self.config = config or ScoreConfig()
        self.device = resolve_device(self.config.device)
        self.precision = resolve_precision(self.config.precision, self.device)
        self.encoder = get_encoder(self.config.weights, self.config.pooling, self.device)


def _style_grams(st, style: torch.Tensor, longest: int) -> dict:
    size = max(img.MIN_SIDE, round(st.config.style_scale * longest))
    s = img.resize_longest(style.to(st.device), size)
    with torch.no_grad():
        feats = st.encoder(s, st.config.style_layers, st.precision)
    return {n: gram_matrix(f) for n, f in feats.items()}


def style_distance(st, image: torch.Tensor, style: torch.Tensor) -> float:
    """Gram style distance: the normalized style loss of ``image`` against one ``style``
    image scaled as in ``st.config`` (style scale relative to ``image``'s longest side)."""
    h, w = image.shape[-2:]
    grams = [_style_grams(st, style, max(h, w))]
    with torch.no_grad():
        feats = st.encoder(image.to(st.device), st.config.style_layers, st.precision)
    layer_w = None if st.config.style_layer_weights is None else dict(zip(st.config.style_layers,
                                                                           st.config.style_layer_weights))
    return float(StyleTarget(grams, None, layer_w)(feats))


def evaluate(stylized, content, styles: Sequence, config=None, st=None) -> dict:
    """Score a stylized image against its content and style images.

    Args:
        stylized: the image to score (path, PIL image, array or (1, 3, H, W) tensor in [0, 1]).
        content: the content image; resized to the stylized image's size.
        styles: style images; each scaled to ``style_scale`` x the stylized image's longest side.
        config: layers, style blend, style scale and precision to score with (defaults
            otherwise). Scoring in fp32 is recommended for comparisons.

    Returns:
        dict with ``content_loss``, ``style_loss`` (blend-weighted; ``None`` without style
        images), ``tv_loss`` (unweighted,
        normalized units), ``ssim`` (luminance SSIM against the content, in [-1, 1]),
        ``style_distance`` (list, Gram distance to each style image), ``size`` ([H, W]).

    Raises:
        InputError: an image cannot be read.
    """
    st = st or Scorer(config)
    cfg = st.config
    # detach: a network's output may still track gradients (a model called outside no_grad)
    x = img.load_image(stylized).detach().to(st.device)
    h, w = x.shape[-2:]
    c = img.resize_to(img.load_image(content).detach().to(st.device), h, w)
    style_ts = [img.load_image(s).detach().to(st.device) for s in styles]
    with torch.no_grad():
        c_feats = st.encoder(c, cfg.content_layers, st.precision)
        x_feats = st.encoder(x, set(cfg.content_layers) | set(cfg.style_layers), st.precision)
        lc = sum(float(content_loss(x_feats[n], c_feats[n])) for n in cfg.content_layers) / len(cfg.content_layers)
        dists = [style_distance(st, x, s) for s in style_ts]
        ls = None  # no style images (a feed-forward model's are built in): no style loss
        if style_ts:
            ls = float(np.dot(normalize_weights(cfg.style_blend, len(style_ts), "style blend"), dists))
        lt = float(tv_loss(x))
    return {
        "content_loss": lc,
        "style_loss": ls,
        "tv_loss": lt,
        "ssim": ssim_luminance(x, c),
        "style_distance": dists,
        "size": [int(h), int(w)],
    }
