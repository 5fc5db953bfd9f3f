"""Metrics for a stylized image, comparable across tools, and the warping error of a
stylized video (:func:`warping_error`).

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
from .core.errors import InputError
from .core.flow import warp
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


def warping_error(frame: torch.Tensor, previous: torch.Tensor, flow, mask=None) -> float:
    """Short-term warping error of a video (Lai et al., "Learning Blind Video Temporal
    Consistency", ECCV 2018, section 5; used by ReCoNet, Gao et al. 2018): how much a frame
    differs from the previous frame carried along the motion of the *input* video.

    ``E = sum_x M(x) * mean_c (frame(x) - warp(previous, flow)(x))^2 / sum_x M(x)``: the mean,
    over the pixels the mask keeps and over the three channels, of the squared difference
    between ``frame`` and ``previous`` warped into ``frame``'s geometry
    (:func:`atelier.core.flow.warp`). Units: mean squared error of [0, 1] values (0 = perfectly
    stable; 1e-3 is an RMS difference of about 0.03, i.e. 8 grey levels in 255). Lai et al.'s
    evaluation code computes the same per-channel mean.

    Typical use, with ``f`` the input frames and ``s`` the stylized ones::

        est = FlowEstimator()
        back, fwd = est(f[t], f[t - 1]), est(f[t - 1], f[t])
        warping_error(s[t], s[t - 1], back, consistency_mask(back, fwd))

    Args:
        frame: float tensor (1, 3, H, W) in [0, 1] (any N is accepted; the mean covers all).
        previous: the frame before, the same shape (and device).
        flow: the flow from the *input* frame t to the input frame t-1 (so that
            ``frame(x) ~ previous(x + flow(x))``): numpy (H, W, 2) or a tensor (N, 2, H, W) /
            (H, W, 2), in pixels, e.g. ``FlowEstimator()(input_t, input_prev)``.
        mask: optional (H, W) array or tensor in {0, 1} (or weights in [0, 1]), 1 where the
            flow is reliable: ``consistency_mask(flow_t_to_prev, flow_prev_to_t)``. Without
            it every pixel counts (frame borders where the motion brings in new content too).

    Returns:
        The warping error (float, >= 0); NaN when the mask keeps no pixel (e.g. at a scene cut).

    Raises:
        InputError: shapes that do not match.
    """
    if not isinstance(frame, torch.Tensor) or not isinstance(previous, torch.Tensor) or frame.ndim != 4:
        raise InputError("warping_error expects two image tensors (1, 3, H, W)")
    if frame.shape != previous.shape:
        raise InputError(f"frame {tuple(frame.shape)} and previous frame {tuple(previous.shape)} differ in shape")
    with torch.no_grad():
        x = frame.detach().float()
        moved = warp(previous.detach().float().to(x.device), flow)
        d2 = (x - moved).square().mean(dim=1)  # (N, H, W), mean over channels
        if mask is None:
            return float(d2.mean())
        m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
        m = m.detach().to(device=x.device, dtype=torch.float32)
        if m.ndim == 4 and m.shape[1] == 1:
            m = m[:, 0]
        if m.shape[-2:] != d2.shape[-2:]:
            raise InputError(f"the mask is {tuple(m.shape)} but the frames are {tuple(frame.shape)}")
        m = m.expand_as(d2)
        total = float(m.sum())
        if total == 0:
            return float("nan")
        return float((d2 * m).sum()) / total


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
        #: Gram targets of style images already seen, by (tensor memory, shape, size): scoring every
        #: frame of a video against one painting encodes the painting once.
        self.gram_cache: dict = {}


def _style_grams(st, style: torch.Tensor, longest: int) -> dict:
    cache = getattr(st, "gram_cache", None)
    key = (style.data_ptr(), tuple(style.shape), str(style.device), longest)
    if cache is not None and key in cache:
        return cache[key][1]
    grams = _compute_style_grams(st, style, longest)
    if cache is not None:
        cache[key] = (style, grams)  # holding the tensor keeps its memory (the key) from being reused
    return grams


def _compute_style_grams(st, style: torch.Tensor, longest: int) -> dict:
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
