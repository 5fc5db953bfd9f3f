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

from ..io import images as img
from ..imaging import color
from ..core.errors import InputError
from ..imaging.flow import warp
from ..losses import ContentLoss, StyleTarget, TVLoss, gram_matrix, normalize_weights
from ..core.runtime import resolve_device
from ..encoders.precision import resolve_precision
from ..encoders.vgg import get_encoder


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
    (:func:`atelier.imaging.flow.warp`). Units: mean squared error of [0, 1] values (0 = perfectly
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
        per_layer = ContentLoss(c_feats, cfg.content_layers).per_layer(x_feats)  # summed as floats, as before
        lc = sum(float(v) for v in per_layer) / len(per_layer)
        dists = [style_distance(st, x, s) for s in style_ts]
        ls = None  # no style images (a feed-forward model's are built in): no style loss
        if style_ts:
            ls = float(np.dot(normalize_weights(cfg.style_blend, len(style_ts), "style blend"), dists))
        lt = float(TVLoss()(x))
    return {
        "content_loss": lc,
        "style_loss": ls,
        "tv_loss": lt,
        "ssim": ssim_luminance(x, c),
        "style_distance": dists,
        "size": [int(h), int(w)],
    }


# -- distances between results, and scores of sets (issue 15) ------------------------------------

#: Layers of :func:`perceptual_distance` and of the FID features (relu5_1 only).
PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def perceptual_features(encoder, a: torch.Tensor, layers: Sequence[str] = PERCEPTUAL_LAYERS,
                        precision: str = "fp32") -> dict:
    """The unit-normalized features :func:`perceptual_distance` compares, for reuse (``a_features=``)
    when one image is compared with many: layer -> float32 (1, C, H', W')."""
    dev = next(iter(encoder.parameters())).device if hasattr(encoder, "parameters") else a.device
    with torch.no_grad():
        f = encoder(a.detach().float().to(dev), layers, precision)
    return {n: f[n].float() / (f[n].float().norm(dim=1, keepdim=True) + 1e-10) for n in layers}


def perceptual_distance(encoder, a: torch.Tensor, b: torch.Tensor, layers: Sequence[str] = PERCEPTUAL_LAYERS,
                        precision: str = "fp32", a_features: Optional[dict] = None) -> float:
    """Perceptual distance of two images on our VGG features: for each layer, every position's
    feature vector is scaled to unit length over the channels, the squared difference is
    summed over the channels and averaged over the positions; the layers are averaged.

    This is LPIPS's "VGG without learned weights" variant (Zhang et al., "The Unreasonable
    Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018, section 3; their
    baseline with all channel weights 1), on the project's encoder rather than their VGG16.

    Args:
        encoder: a :class:`~atelier.encoders.vgg.VGGEncoder`.
        a, b: float32 (1, 3, H, W) in [0, 1]; ``b`` is resized to ``a``'s size if needed.
        layers: VGG layers averaged.
        a_features: :func:`perceptual_features` of ``a``, if already computed.

    Returns:
        A float in [0, 4] (0: the same features; unrelated photos give about 0.8-1.2).
    """
    if b.shape[-2:] != a.shape[-2:]:
        b = img.resize_to(b, *a.shape[-2:])
    ua = a_features if a_features is not None else perceptual_features(encoder, a, layers, precision)
    ub = perceptual_features(encoder, b, layers, precision)
    return sum(float((ua[n] - ub[n]).square().sum(1).mean()) for n in layers) / len(layers)


def colour_histogram(image: torch.Tensor, bins: int = 8) -> np.ndarray:
    """Joint RGB histogram of an image (1, 3, H, W) in [0, 1]: float64 (bins^3,), summing to 1."""
    x = image.detach().float().clamp(0, 1).cpu()[0]
    q = (x * bins).long().clamp_(max=bins - 1)
    idx = (q[0] * bins + q[1]) * bins + q[2]
    h = torch.bincount(idx.flatten(), minlength=bins ** 3).double().numpy()
    return h / max(h.sum(), 1.0)


def histogram_distance(a: torch.Tensor, b: torch.Tensor, bins: int = 8) -> float:
    """Hellinger distance of the joint RGB histograms (``bins`` per channel) of two images:
    ``sqrt(1 - sum_i sqrt(p_i q_i))``, in [0, 1] (0: the same colour distribution, 1: no colour
    in common). Sizes may differ: histograms are normalized."""
    bc = float(np.sqrt(colour_histogram(a, bins) * colour_histogram(b, bins)).sum())
    return float(np.sqrt(max(0.0, 1.0 - bc)))


def fid_features(encoder, images: Sequence[torch.Tensor], size: int = 256, precision: str = "fp32") -> np.ndarray:
    """Features for a Frechet distance: the channel means of relu5_1 (512 numbers, as FID takes
    Inception's last average pool) of each image resized to longest side ``size``, scaled to unit
    length (raw Caffe-VGG activations are in the tens, which would put FIDs in the millions; on unit
    vectors a Frechet distance is at most about 4).

    Returns:
        float64 (N, 512), unit rows.
    """
    rows = []
    for t in images:
        x = img.resize_longest(t.detach().float(), size) if max(t.shape[-2:]) != size else t.detach().float()
        dev = next(iter(encoder.parameters())).device if hasattr(encoder, "parameters") else x.device
        with torch.no_grad():
            f = encoder(x.to(dev), ["relu5_1"], precision)["relu5_1"].float()
        rows.append(f.mean((2, 3))[0].double().cpu().numpy())
    x = np.stack(rows)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, FID):
    ``|mu_x - mu_y|^2 + Tr(S_x + S_y - 2 (S_x S_y)^(1/2))`` (scipy's matrix square root; a tiny
    imaginary part from rounding is dropped). Sets of 2 or more rows; with fewer rows than
    features the covariances are singular and the number is biased upward: compare sets of
    the same size only, and expect little from small sets (on :func:`fid_features` of 10 photos
    against 10 other photos: 0.53; the same 10 photos against the 10 paintings of the data
    pack: 0.65).

    Returns:
        A float >= 0 (0 for a set against itself, up to rounding).
    """
    from scipy import linalg

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise InputError(f"a Frechet distance needs at least 2 images per set, got {len(x)} and {len(y)}")
    mx, my = x.mean(0), y.mean(0)
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    import warnings

    with warnings.catch_warnings():  # singular covariances (fewer images than features) are expected
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(sx @ sy)
        if not np.isfinite(covmean).all():
            eps = 1e-6 * np.eye(len(sx))
            covmean = linalg.sqrtm((sx + eps) @ (sy + eps))
    covmean = np.real(covmean)
    return float(max(0.0, np.sum((mx - my) ** 2) + np.trace(sx) + np.trace(sy) - 2.0 * np.trace(covmean)))


def art_fid(encoder, stylized: Sequence[torch.Tensor], contents: Sequence[torch.Tensor],
            styles: Sequence[torch.Tensor], size: int = 256) -> dict:
    """An ArtFID-style score of a set of results, on our VGG features (Wright & Ommer, "ArtFID:
    Quantitative Evaluation of Neural Style Transfer", GCPR 2022): ``(1 + content distance) x
    (1 + FID)``, lower is better. The paper uses LPIPS for the content distance and an Inception
    network trained on art for the FID; here the content distance is :func:`perceptual_distance`
    (each stylized image against its content image, averaged) and the FID is
    :func:`frechet_distance` of :func:`fid_features` (VGG relu5_1 means) between the stylized
    set and the style set. Numbers are comparable with each other, not with the paper's.

    Args:
        encoder: a :class:`~atelier.encoders.vgg.VGGEncoder`.
        stylized: the results, float32 (1, 3, H, W) in [0, 1] each.
        contents: the content image of each result, in the same order.
        styles: the style images (any number >= 2).
        size: longest side at which every image is encoded.

    Returns:
        ``{"art_fid", "fid", "content_distance", "stylized", "styles", "features"}``.

    Raises:
        InputError: fewer than 2 images in a set, or contents not matching the results one to one.
    """
    if len(contents) != len(stylized):
        raise InputError(f"ArtFID pairs each result with its content image: {len(stylized)} results, "
                         f"{len(contents)} content images")
    fid = frechet_distance(fid_features(encoder, stylized, size), fid_features(encoder, styles, size))
    dists = []
    for s, c in zip(stylized, contents):
        s = img.resize_longest(s.detach().float(), size) if max(s.shape[-2:]) != size else s
        dists.append(perceptual_distance(encoder, s, c))
    cd = float(np.mean(dists))
    return {"art_fid": (1.0 + cd) * (1.0 + fid), "fid": fid, "content_distance": cd, "stylized": len(stylized),
            "styles": len(styles), "features": "VGG19 relu5_1 means (FID), VGG perceptual distance (content); "
                                               "ArtFID-style, not the paper's Inception/LPIPS numbers"}
