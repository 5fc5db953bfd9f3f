"""Universal style transfer with whitening and colouring transforms (WCT).

Li, Fang, Yang, Wang, Lu & Yang (2017), "Universal Style Transfer via Feature Transforms":
content features ``f_c`` (C x N, N = h * w pixels) at a VGG19 layer are *whitened*,

    f_w = E_c D_c^{-1/2} E_c^T (f_c - m_c)        (covariance of f_w = identity)

then *coloured* with the style's covariance,

    f_cs = E_s D_s^{1/2} E_s^T f_w + m_s          (covariance of f_cs = the style's)

where ``E D E^T`` are eigendecompositions of the feature covariances and ``m`` their means.
The result ``alpha * f_cs + (1 - alpha) * f_c`` is decoded by an inversion decoder
(:class:`~atelier.networks.decoders.InversionDecoder`) and the image passed to the next,
finer layer: relu5_1, relu4_1, relu3_1, relu2_1, relu1_1 (coarse to fine, §3.2). Style
interpolation colours the whitened features with each style and mixes them (§4.2); spatial
control applies the transform region by region.

Images follow the project convention: float32 (N, 3, H, W), RGB in [0, 1]. The transforms run
in float64 (eigendecompositions of up to 512 x 512 covariances) whatever the encoder's
precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ...core.runtime import autocast, single_thread
from ...encoders.vgg import VGGEncoder
from ...networks.decoders import DECODER_LAYERS, InversionDecoder

__all__ = ["WCTModel", "WCTStyle", "whiten", "colour", "wct", "feature_covariance", "DEFAULT_WCT_LAYERS"]

#: Layers of the multi-level pipeline, coarse to fine (Li et al. §3.2).
DEFAULT_WCT_LAYERS = ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1")
#: Eigenvalues below this (relative to the largest) are dropped (rank-deficient covariances).
EIG_RTOL = 1e-5
#: Added to the covariance's diagonal (the reference implementation's regularization).
EPS = 1e-5


def feature_covariance(feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of features.

    Args:
        feat: (C, N) features (N pixels; N >= 2).

    Returns:
        ``(mean, cov)``: float64 (C, 1) and (C, C), ``cov = (f - m)(f - m)^T / (N - 1) + EPS * I``.
    """
    f = feat.double()
    m = f.mean(dim=1, keepdim=True)
    f = f - m
    cov = f @ f.t() / max(f.shape[1] - 1, 1)
    return m, cov + EPS * torch.eye(f.shape[0], dtype=f.dtype, device=f.device)


def _sym_power(cov: torch.Tensor, power: float) -> torch.Tensor:
    """``E D^power E^T`` over the eigenvalues above ``EIG_RTOL * max``. The eigendecomposition runs
    on one CPU thread (:func:`atelier.core.runtime.single_thread`: 100x faster on a busy 2-core CPU)."""
    if cov.device.type == "cpu":
        with single_thread():
            d, e = torch.linalg.eigh(cov)
    else:
        d, e = torch.linalg.eigh(cov)
    keep = d > EIG_RTOL * d.max().clamp_min(1e-30)
    d, e = d[keep], e[:, keep]
    return (e * d.pow(power)) @ e.t()


def whiten(feat: torch.Tensor) -> torch.Tensor:
    """Whitening transform: (C, N) features -> float64 (C, N) with zero mean and identity
    covariance (up to the dropped null space of rank-deficient features)."""
    m, cov = feature_covariance(feat)
    return _sym_power(cov, -0.5) @ (feat.double() - m)


@dataclass
class WCTStyle:
    """A style image's statistics at each WCT layer, reusable for many content images.

    Attributes:
        mean: layer -> float64 (C, 1) feature mean.
        colouring: layer -> float64 (C, C) matrix ``E_s D_s^{1/2} E_s^T``.
    """

    mean: dict[str, torch.Tensor]
    colouring: dict[str, torch.Tensor]

    def to(self, device: torch.device | str) -> "WCTStyle":
        """A copy on ``device``."""
        return WCTStyle({k: v.to(device) for k, v in self.mean.items()},
                        {k: v.to(device) for k, v in self.colouring.items()})

    @classmethod
    def from_features(cls, feats: Mapping[str, torch.Tensor]) -> "WCTStyle":
        """From encoder features ``layer -> (1, C, h, w)`` of one style image."""
        mean, col = {}, {}
        for name, f in feats.items():
            m, cov = feature_covariance(f[0].flatten(1))
            mean[name], col[name] = m, _sym_power(cov, 0.5)
        return cls(mean, col)


def colour(whitened: torch.Tensor, style: WCTStyle, layer: str) -> torch.Tensor:
    """Colouring transform: whitened (C, N) features -> float64 (C, N) with the style's mean
    and covariance at ``layer``."""
    return style.colouring[layer] @ whitened.double() + style.mean[layer]


def wct(feat: torch.Tensor, styles: Sequence[WCTStyle], layer: str, alpha: float = 1.0,
        blend: Optional[Sequence[float]] = None, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Whiten-colour one image's features at ``layer``.

    Args:
        feat: float (1, C, h, w) content features.
        styles: one :class:`WCTStyle` per style, each with ``layer``.
        alpha: 0 keeps the content features, 1 the transformed ones (in [0, 1]).
        blend: one weight per style (normalized to sum 1; default equal): the coloured features
            of each style are mixed (Li et al. §4.2). Ignored with ``mask``.
        mask: float (1, 1, H, W) in [0, 1] with two styles: style 0 where >= 0.5, style 1 below,
            each region whitened and coloured on its own (resized to (h, w), nearest).

    Returns:
        float32 (1, C, h, w).

    Raises:
        ValueError: a mask with a number of styles other than two.
    """
    _, c, h, w = feat.shape
    f = feat[0].flatten(1)
    if mask is not None:
        if len(styles) != 2:
            raise ValueError(f"a mask needs exactly two styles, got {len(styles)}")
        region = F.interpolate(mask.float(), size=(h, w), mode="nearest")[0, 0].flatten() >= 0.5
        out = f.double().clone()
        for sel, style in ((region, styles[0]), (~region, styles[1])):
            idx = sel.nonzero().flatten().to(f.device)
            if idx.numel() >= 2:
                out[:, idx] = colour(whiten(f[:, idx]), style, layer)
    else:
        weights = [1.0 / len(styles)] * len(styles) if blend is None else [float(b) for b in blend]
        total = sum(weights)
        fw = whiten(f)
        out = sum((wt / total) * colour(fw, s, layer) for wt, s in zip(weights, styles))
    out = alpha * out + (1.0 - alpha) * f.double()
    return out.float().reshape(1, c, h, w)


class WCTModel(nn.Module):
    """The multi-level WCT pipeline: a fixed VGG19 encoder and one inversion decoder per layer.

    Args:
        encoder: the VGG encoder the decoders were trained with.
        decoders: layer name -> :class:`~atelier.networks.decoders.InversionDecoder`.
        precision: default precision of the encoder and decoders, ``"fp32"`` or ``"bf16"``.

    Raises:
        ValueError: a decoder for an unknown layer.
    """

    def __init__(self, encoder: VGGEncoder, decoders: Mapping[str, InversionDecoder], precision: str = "fp32"):
        super().__init__()
        bad = [k for k in decoders if k not in DECODER_LAYERS]
        if bad:
            raise ValueError(f"decoders for unknown layers {bad}; expected some of {DECODER_LAYERS}")
        self.encoder = encoder
        self.decoders = nn.ModuleDict(dict(decoders))
        self.precision = precision
        self.layers = tuple(k for k in DEFAULT_WCT_LAYERS if k in self.decoders)

    def _device(self) -> torch.device:
        return next(self.decoders.parameters()).device

    @torch.no_grad()
    def encode_style(self, image: torch.Tensor, precision: str | None = None) -> WCTStyle:
        """Statistics of a style image at every layer: a :class:`WCTStyle`.

        Args:
            image: float32 (1, 3, H, W), RGB in [0, 1], sides >= 16.
        """
        if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            raise ValueError(f"style image must have shape (1, 3, H, W), got {tuple(image.shape)}")
        feats = self.encoder(image.to(self._device()), self.layers, precision or self.precision)
        return WCTStyle.from_features({k: v.float() for k, v in feats.items()})

    @torch.no_grad()
    def forward(self, content: torch.Tensor, styles: Union[WCTStyle, Sequence[WCTStyle]], alpha: float = 1.0,
                blend: Optional[Sequence[float]] = None, mask: Optional[torch.Tensor] = None,
                precision: str | None = None) -> torch.Tensor:
        """Stylize: WCT at each layer, coarse to fine, each level decoded and re-encoded.

        Args:
            content: float32 (1, 3, H, W), RGB in [0, 1], sides >= 16 (any size: each decoder's
                output is resized back to (H, W) when pooling rounded the size down).
            styles: one :class:`WCTStyle` or a list (from :meth:`encode_style`).
            alpha, blend, mask: see :func:`wct` (the same at every level).
            precision: ``"fp32"``/``"bf16"`` for the encoder and the decoders.

        Returns:
            float32 (1, 3, H, W) in [0, 1].

        Raises:
            ValueError: bad shapes, ``alpha`` outside [0, 1], or a mask without two styles.
        """
        if content.dim() != 4 or content.shape[0] != 1 or content.shape[1] != 3:
            raise ValueError(f"content must have shape (1, 3, H, W), got {tuple(content.shape)}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        styles = [styles] if isinstance(styles, WCTStyle) else list(styles)
        if not styles:
            raise ValueError("at least one style is needed")
        p = precision or self.precision
        dev = self._device()
        x = content.to(dev).float()
        h, w = x.shape[-2:]
        for layer in self.layers:
            f = self.encoder(x, [layer], p)[layer].float()
            t = wct(f, [s.to(dev) for s in styles], layer, alpha, blend,
                    None if mask is None else mask.to(dev))
            with autocast(dev, p):
                y = self.decoders[layer](t).float()
            if y.shape[-2:] != (h, w):
                y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
            x = y.clamp(0, 1)
        return x
