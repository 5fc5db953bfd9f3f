"""Arbitrary style transfer with adaptive instance normalization (AdaIN).

Huang & Belongie (2017), "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization" (ICCV 2017): a fixed VGG19 encoder ``f`` (up to relu4_1), an AdaIN layer
that gives the content features the channel-wise mean and standard deviation of the
style features, and a learned decoder ``g`` back to an image::

    t = AdaIN(f(c), f(s)) = sigma(f(s)) * (f(c) - mu(f(c))) / sigma(f(c)) + mu(f(s))
    T(c, s, alpha) = g((1 - alpha) * f(c) + alpha * t)

Any style works without retraining: a style is only its per-channel statistics, which
:meth:`AdaINModel.encode_style` computes once (:class:`StyleFeatures`) for any number of
content images or video frames. The paper's user controls (§7) are here as well:
content-style trade-off (``alpha``), style interpolation (``blend``) and spatial control
(``mask``). Train a decoder with :class:`atelier.methods.arbitrary.train.AdaINTrainer` and load it with
:func:`atelier.methods.arbitrary.adain.load_adain`.

Images follow the project convention: float32 (N, 3, H, W), RGB, values in [0, 1].
Statistics are always computed in float32, also when the encoder and the decoder run in
bfloat16 autocast.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

import os

from ...core.errors import InputError
from ...encoders.vgg import VGGEncoder, get_encoder
from ...training.cards import load_adain_decoder
from ...losses import STAT_EPS as EPS, mean_std
from ...networks.decoders import AdaINDecoder
from ...networks.transformer import MIN_SIDE
from ...core.runtime import autocast

PathLike = Union[str, os.PathLike]

__all__ = ["AdaINModel", "StyleFeatures", "adain", "load_adain_file",
           "CONTENT_LAYER", "STYLE_LAYERS"]

#: Encoder layer whose statistics are transferred (Huang & Belongie §6.1).
CONTENT_LAYER = "relu4_1"
#: Encoder layers of the style loss (Huang & Belongie §6.2).
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

StyleInput = Union["StyleFeatures", Sequence["StyleFeatures"]]


def _stat(t: torch.Tensor, n: int, c: int, name: str) -> torch.Tensor:
    """A statistic as float32 (N or 1, C, 1, 1); (C,) and (N, C) are accepted too."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
    if t.dim() == 1:
        t = t.view(1, -1, 1, 1)
    elif t.dim() == 2:
        t = t[:, :, None, None]
    if t.dim() != 4 or t.shape[1] != c or t.shape[2:] != (1, 1) or t.shape[0] not in (1, n):
        raise ValueError(f"{name} must have shape ({n} or 1, {c}, 1, 1), got {tuple(t.shape)}")
    return t.float()


def adain(content_feat: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor,
          eps: float = EPS) -> torch.Tensor:
    """Adaptive instance normalization (Huang & Belongie 2017, eq. 8).

    Each channel of each content image is normalized to zero mean and unit standard
    deviation over its positions, then scaled by ``style_std`` and shifted by ``style_mean``.

    Args:
        content_feat: (N, C, H, W) features, any float dtype.
        style_mean, style_std: float (N or 1, C, 1, 1), (N or 1, C) or (C,) statistics of
            the style features, e.g. from :func:`mean_std`.
        eps: added to the content variance, see :func:`mean_std`.

    Returns:
        float32 (N, C, H, W) whose per-channel mean is ``style_mean`` and whose standard
        deviation is ``style_std * sqrt(var / (var + eps))`` (``style_std`` unless a
        content channel is nearly constant).

    Raises:
        ValueError: ``content_feat`` is not 4-D or the statistics do not fit it.
    """
    c_mean, c_std = mean_std(content_feat, eps)
    n, c = content_feat.shape[:2]
    s_mean = _stat(style_mean, n, c, "style_mean").to(content_feat.device)
    s_std = _stat(style_std, n, c, "style_std").to(content_feat.device)
    with autocast(content_feat.device, "fp32"):
        return (content_feat.float() - c_mean) / c_std * s_std + s_mean


@dataclass
class StyleFeatures:
    """Encoder statistics of one style (or a batch of styles), computed once and reused.

    Make one with :meth:`AdaINModel.encode_style`; pass it to :class:`AdaINModel` for any
    number of content images or video frames of any size.

    Attributes:
        mean, std: layer name -> float32 (B, C, 1, 1) per-channel mean and standard
            deviation (:func:`mean_std`) for :data:`STYLE_LAYERS` (relu1_1 ... relu4_1);
            ``B`` is the number of style images encoded (usually 1).
        size: (H, W) of the style image that was encoded.
    """

    mean: dict[str, torch.Tensor]
    std: dict[str, torch.Tensor]
    size: tuple[int, int] = (0, 0)
    layers: tuple[str, ...] = STYLE_LAYERS

    def __repr__(self) -> str:
        return f"StyleFeatures(batch={self.batch}, size={self.size}, layers={self.layers})"

    def __post_init__(self):
        if CONTENT_LAYER not in self.mean or CONTENT_LAYER not in self.std:
            raise ValueError(f"style features need the {CONTENT_LAYER} statistics")

    @property
    def batch(self) -> int:
        """Number of style images B."""
        return int(self.mean[CONTENT_LAYER].shape[0])

    @property
    def target_mean(self) -> torch.Tensor:
        """float32 (B, 512, 1, 1) relu4_1 mean: what AdaIN gives the content features."""
        return self.mean[CONTENT_LAYER]

    @property
    def target_std(self) -> torch.Tensor:
        """float32 (B, 512, 1, 1) relu4_1 standard deviation."""
        return self.std[CONTENT_LAYER]

    def select(self, index: int) -> "StyleFeatures":
        """Style ``index`` of a batch (B = 1 in the result).

        Raises:
            IndexError: ``index`` out of range.
        """
        if not -self.batch <= index < self.batch:
            raise IndexError(f"style index {index} out of range for {self.batch} style(s)")
        i = index % self.batch
        return StyleFeatures({k: v[i:i + 1] for k, v in self.mean.items()},
                             {k: v[i:i + 1] for k, v in self.std.items()}, self.size, self.layers)

    def to(self, device: torch.device | str) -> "StyleFeatures":
        """A copy with every statistic on ``device``."""
        return StyleFeatures({k: v.to(device) for k, v in self.mean.items()},
                             {k: v.to(device) for k, v in self.std.items()}, self.size, self.layers)

    @classmethod
    def from_features(cls, feats: Mapping[str, torch.Tensor], size: tuple[int, int] = (0, 0)) -> "StyleFeatures":
        """Statistics of encoder features (layer name -> (B, C, H, W)) of style images."""
        stats = {n: mean_std(f) for n, f in feats.items()}
        layers = tuple(n for n in STYLE_LAYERS if n in stats) or tuple(stats)
        return cls({n: m for n, (m, _) in stats.items()}, {n: s for n, (_, s) in stats.items()},
                   (int(size[0]), int(size[1])), layers)


def _check_image(image: torch.Tensor, name: str) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{name} must be a tensor of shape (N, 3, H, W), got {shape}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be floating point in [0, 1], got {image.dtype}")
    if image.shape[2] < MIN_SIDE or image.shape[3] < MIN_SIDE:
        raise ValueError(f"{name} sides must be at least {MIN_SIDE} px, got {image.shape[2]}x{image.shape[3]}")


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (0.0 <= float(alpha) <= 1.0):
        raise ValueError(f"alpha (style strength) must be a number in [0, 1] (0: content only, 1: full style), "
                         f"got {alpha!r}")
    return float(alpha)


def _check_mask(mask, num_styles: int, n: int, h: int, w: int, where: str) -> None:
    if num_styles != 2:
        raise ValueError(f"a mask needs exactly two styles (style 0 where mask=1, style 1 where mask=0), "
                         f"got {num_styles}")
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4 or mask.shape[1] != 1 or \
            mask.shape[0] not in (1, n) or mask.shape[2:] != (h, w):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must have shape ({n} or 1, 1, {h}, {w}) {where}, got {shape}")


def _as_list(styles: StyleInput) -> list[StyleFeatures]:
    if isinstance(styles, StyleFeatures):
        return [styles]
    try:
        out = list(styles)
    except TypeError:
        out = None
    if not out or not all(isinstance(s, StyleFeatures) for s in out):
        raise ValueError("styles must be a StyleFeatures (from AdaINModel.encode_style) or a non-empty list of them")
    return out


def _blend_weights(blend: Optional[Sequence[float]], n: int) -> list[float]:
    if blend is None:
        return [1.0 / n] * n
    if isinstance(blend, torch.Tensor):
        blend = blend.flatten().tolist()
    try:
        w = [float(b) for b in blend]
    except (TypeError, ValueError):
        raise ValueError(f"blend must be a sequence of numbers, one per style, got {blend!r}") from None
    if len(w) != n:
        raise ValueError(f"blend has {len(w)} weight(s) for {n} style(s); give exactly one weight per style")
    if any(not math.isfinite(x) or x < 0 for x in w):
        raise ValueError(f"blend weights must be finite and non-negative, got {w}")
    total = sum(w)
    if total <= 0:
        raise ValueError("blend weights must not all be zero")
    return [x / total for x in w]


class AdaINModel(nn.Module):
    """Arbitrary style transfer network of Huang & Belongie (2017): VGG encoder, AdaIN, decoder.

    Example::

        model = load_adain("models/adain.safetensors")
        starry = model.encode_style(load_image("starry.jpg", size=512))   # once
        for frame in frames:                                               # any number
            out = model(frame, starry, alpha=0.8)
        mixed = model(photo, [starry, scream], blend=[0.7, 0.3])           # §7.2
        split = model(photo, [starry, scream], mask=foreground)            # §7.3

    Args:
        encoder: a frozen :class:`~atelier.encoders.vgg.VGGEncoder` (the one the decoder was
            trained with: its relu4_1 must have 512 channels). Registered as a submodule,
            so ``model.to(device)`` moves it too (an encoder from
            :func:`~atelier.encoders.vgg.get_encoder` is shared: create the model on its device).
        decoder: an :class:`AdaINDecoder`; a new one of width 1 when None.
        precision: default precision of :meth:`forward`: ``"fp32"`` or ``"bf16"`` (autocast
            for the encoder and the decoder; statistics and AdaIN always in float32).

    Raises:
        ValueError: an unknown ``precision``.
    """

    #: Images are reflection-padded to a multiple of this (the encoder's downsampling).
    FACTOR = AdaINDecoder.FACTOR

    def __init__(self, encoder: VGGEncoder, decoder: AdaINDecoder | None = None, precision: str = "fp32"):
        super().__init__()
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        self.encoder = encoder.requires_grad_(False)
        self.decoder = decoder if decoder is not None else AdaINDecoder()
        self.precision = precision

    def _precision(self, precision: str | None) -> str:
        p = self.precision if precision is None else precision
        if p not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {p!r}")
        return p

    def _device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor, precision: str | None = None) -> float:
        """Set the decoder's ``feature_scale`` for this encoder from real images.

        Args:
            images: float32 (N, 3, H, W) photos, RGB in [0, 1], sides >= 16.
            precision: ``"fp32"``/``"bf16"``; default the model's.

        Returns:
            The new scale: ``2 ** -round(log2(rms))`` of the images' relu4_1 features,
            clamped to [2**-14, 2**14] (so it is exact in float16).

        Raises:
            ValueError: a bad ``images`` tensor.
        """
        _check_image(images, "calibration images")
        f = self.encode_content(images.to(self._device()), precision)
        rms = float(f.pow(2).mean().sqrt())
        k = 0 if not (rms > 0) or math.isinf(rms) else min(14, max(-14, round(math.log2(rms))))
        scale = 2.0 ** -k
        self.decoder.feature_scale.fill_(scale)
        return scale

    # -- building blocks ----------------------------------------------------------------
    def encode_content(self, image: torch.Tensor, precision: str | None = None) -> torch.Tensor:
        """relu4_1 features of ``image`` (float32 (N, 3, H, W), RGB in [0, 1]): float32
        (N, 512, H // 8, W // 8). Differentiable (used for the training loss)."""
        return self.encoder(image, [CONTENT_LAYER], self._precision(precision))[CONTENT_LAYER]

    @torch.no_grad()
    def encode_style(self, image: torch.Tensor, precision: str | None = None) -> StyleFeatures:
        """Statistics of a style image (or a batch of them), to reuse for many content images.

        Args:
            image: float32 (B, 3, H, W), RGB in [0, 1], sides >= 16 (any size: only the
                statistics are kept; the paper uses 512 px at test time).
            precision: ``"fp32"``/``"bf16"``; default the model's.

        Returns:
            :class:`StyleFeatures` with relu1_1 ... relu4_1 means and standard deviations.

        Raises:
            ValueError: ``image`` is not a floating (B, 3, H, W) tensor with sides >= 16.
        """
        _check_image(image, "style image")
        feats = self.encoder(image.to(self._device()), STYLE_LAYERS, self._precision(precision))
        return StyleFeatures.from_features(feats, tuple(image.shape[-2:]))

    def decode(self, feat: torch.Tensor, precision: str | None = None) -> torch.Tensor:
        """The decoder on (N, 512, h, w) features: float32 (N, 3, 8h, 8w), RGB, not clipped
        (the training loss needs the raw output; :meth:`forward` clips to [0, 1])."""
        p = self._precision(precision)
        with autocast(feat.device, p):
            return self.decoder(feat).float()

    def target(self, content_feat: torch.Tensor, styles: StyleInput, blend: Optional[Sequence[float]] = None,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """The AdaIN target ``t`` for content features and one or more styles.

        * one style: ``adain(content_feat, style mean, style std)``;
        * several styles, ``mask`` None: ``sum_k blend_k * adain(content_feat, style_k)``
          (style interpolation, paper §7.2; ``blend`` None means equal weights);
        * two styles and ``mask`` (N or 1, 1, h, w) on the feature grid: spatial control
          (paper §7.3): AdaIN is applied per region, i.e. style 0 gets the region of weight
          ``m`` and style 1 of weight ``1 - m``, each region normalized with the content
          statistics inside it (weighted by ``m`` or ``1 - m``, so soft masks work), and
          ``t = m * t_0 + (1 - m) * t_1``. Where ``m`` is 1 (0) the target has the
          statistics of style 0 (1).

        Args:
            content_feat: float (N, C, h, w) relu4_1 features.
            styles: a :class:`StyleFeatures` or a list of them (each with 1 or N images).
            blend: one non-negative weight per style (normalized to sum 1).
            mask: float (N or 1, 1, h, w) in [0, 1] at the feature resolution, exactly two styles.

        Returns:
            float32 (N, C, h, w).

        Raises:
            ValueError: as :meth:`forward`.
        """
        styles = _as_list(styles)
        n, c, h, w = content_feat.shape
        for s in styles:
            if s.batch not in (1, n):
                raise ValueError(f"style features hold {s.batch} style images for {n} content image(s); "
                                 "use 1 or one per content image")
        dev = content_feat.device
        if mask is None:
            weights = _blend_weights(blend, len(styles))
            t = None
            for wk, s in zip(weights, styles):
                if wk == 0:
                    continue
                tk = adain(content_feat, s.target_mean.to(dev), s.target_std.to(dev))
                t = tk if (t is None and wk == 1.0) else (wk * tk if t is None else t + wk * tk)
            return t
        if blend is not None:
            raise ValueError("give either blend (style interpolation) or mask (spatial control), not both")
        _check_mask(mask, len(styles), n, h, w, "at the feature resolution")
        with autocast(dev, "fp32"):
            f = content_feat.float()
            m = mask.to(device=dev, dtype=torch.float32)
            t = torch.zeros_like(f)
            for region, s in ((m, styles[0]), (1.0 - m, styles[1])):
                area = region.sum(dim=(2, 3), keepdim=True).clamp_min(1e-8)
                mu = (f * region).sum(dim=(2, 3), keepdim=True) / area
                var = ((f - mu).pow(2) * region).sum(dim=(2, 3), keepdim=True) / area
                s_mean = _stat(s.target_mean, n, c, "style mean").to(dev)
                s_std = _stat(s.target_std, n, c, "style std").to(dev)
                t = t + region * ((f - mu) / (var + EPS).sqrt() * s_std + s_mean)
            return t

    # -- stylization --------------------------------------------------------------------
    def forward(self, content: torch.Tensor, styles: StyleInput, alpha: float = 1.0,
                blend: Optional[Sequence[float]] = None, mask: torch.Tensor | None = None,
                precision: str | None = None) -> torch.Tensor:
        """Stylize content images with one or more styles.

        Args:
            content: float32 (N, 3, H, W), RGB in [0, 1], H and W >= 16 (any size: the image
                is reflection-padded to a multiple of 8 and the output cropped back).
            styles: a :class:`StyleFeatures` (from :meth:`encode_style`) or a list of them.
            alpha: style strength in [0, 1]: the decoder gets ``(1 - alpha) * f(c) + alpha * t``
                (paper §7.1); 0 decodes the content features, 1 (default) full style.
            blend: weights over several styles (paper §7.2), one per style, non-negative,
                normalized to sum 1; None: equal weights.
            mask: spatial control (paper §7.3): float (N or 1, 1, H, W) in [0, 1] with exactly
                two styles: style 0 where mask=1, style 1 where mask=0. It is padded like the
                image and averaged over 8x8 blocks onto the relu4_1 grid.
            precision: ``"fp32"`` or ``"bf16"``; default the model's ``precision``.

        Returns:
            float32 (N, 3, H, W), RGB in [0, 1], on the decoder's device.

        Raises:
            ValueError: a bad ``content`` tensor, ``alpha`` outside [0, 1], ``blend`` with a
                length other than the number of styles or bad values, ``blend`` and ``mask``
                together, a ``mask`` with other than two styles, of the wrong shape or with
                values outside [0, 1], style features of another batch size.
        """
        _check_image(content, "content image")
        alpha = _check_alpha(alpha)
        styles = _as_list(styles)
        if blend is not None:
            _blend_weights(blend, len(styles))  # checked before the encoder runs
        n, _, h, w = content.shape
        dev = self._device()
        ph, pw = (-h) % self.FACTOR, (-w) % self.FACTOR
        x = content.to(dev)
        x = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        m = None
        if mask is not None:
            _check_mask(mask, len(styles), n, h, w, "like the content image")
            m = mask.to(device=dev, dtype=torch.float32)
            if not bool(torch.isfinite(m).all()) or float(m.min()) < 0 or float(m.max()) > 1:
                raise ValueError("mask values must be in [0, 1] (1: style 0, 0: style 1)")
            m = F.pad(m, (0, pw, 0, ph), mode="reflect") if ph or pw else m
            m = F.avg_pool2d(m, self.FACTOR)
        p = self._precision(precision)
        fc = self.encode_content(x, p)
        t = self.target(fc, styles, blend=blend, mask=m)
        if alpha < 1.0:
            t = alpha * t + (1.0 - alpha) * fc
        return self.decode(t, p)[:, :, :h, :w].clamp(0.0, 1.0)


def load_adain_file(path: PathLike, device: str | torch.device = "cpu", encoder: VGGEncoder | None = None,
               precision: str = "fp32") -> AdaINModel:
    """Load a trained AdaIN decoder, verified against its model card, with its encoder.

    Args:
        path: the ``.safetensors`` file (or its ``.json`` model card, or the common stem);
            the card ``<stem>.json`` must lie beside the weights.
        device: where to put the model.
        encoder: the VGG encoder to use; by default the one the card names
            (:func:`~atelier.encoders.vgg.get_encoder` with its ``weights`` and ``pooling``).
        precision: the model's default precision, ``"fp32"`` or ``"bf16"``.

    Returns:
        A float32 :class:`~atelier.methods.arbitrary.model.AdaINModel` in eval mode, parameters frozen
        (``requires_grad`` False: outputs track no gradients), with attribute ``card``.

    Raises:
        InputError: naming the file: weights or card missing or unreadable, the weights'
            sha256 differs from the card's (corrupt or modified: always an error), not an
            AdaIN decoder, the weights do not fit the card's architecture, or the card's
            encoder weights are not found.
    """
    decoder, card, enc = load_adain_decoder(path)
    weights = path
    if encoder is None:
        try:
            encoder = get_encoder(enc.get("weights"), enc.get("pooling", "max"), device)
        except InputError as e:
            raise InputError(f"the decoder was trained with the VGG weights {enc.get('weights')!r}, which cannot "
                             f"be loaded ({e}); pass encoder=", weights) from None
    model = AdaINModel(encoder, decoder.requires_grad_(False), precision).to(device).eval()
    model.card = card
    return model
