"""Losses of neural style transfer on VGG features (Gatys et al. 2016, Johnson et al. 2016).

Normalization (so default weights work from 256 px to 2048 px and across layers):

* Gram matrices are divided by the number of positions H*W, so they are averages of
  channel products and do not grow with image size.
* Content and style losses are *relative* mean squared errors: the MSE divided by the
  mean square of the target (features for content, Gram matrix for style). A loss of
  1.0 means "as far from the target as zero features would be"; every layer is on the
  same scale, whatever its channel count or activation magnitude.
* The total-variation loss is the mean squared difference between neighbouring
  pixels of the [0, 1] RGB image.

All losses are computed and summed in float32, whatever precision the encoder ran in.

Each term also exists as a small module (after crowsonkb/style-transfer-pytorch and pystiche):
:class:`ContentLoss`, :class:`StyleTarget` (and :class:`GuidedStyleTarget` for regions) and
:class:`TVLoss`, combined with weights by :class:`PerceptualLoss`; they compute exactly what the
functions compute.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from .core.runtime import autocast

EPS = 1e-8


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of feature maps, normalized by the number of positions.

    Args:
        features: (N, C, H, W), any float dtype.

    Returns:
        float32 (N, C, C): ``G[n, i, j] = sum_p F[n, i, p] F[n, j, p] / (H * W)``.
    """
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean((x - target)**2) / (mean(target**2) + 1e-8)``, float32 scalar.

    Averaged over the batch when x has a batch dimension and target is broadcast.
    """
    x, target = x.float(), target.float()
    return (x - target).pow(2).mean() / (target.pow(2).mean() + EPS)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Content loss: relative MSE between feature maps (N, C, H, W) of equal shape. float32 scalar."""
    return relative_mse(features, target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Style loss: relative MSE between the Gram matrix of ``features`` (N, C, H, W) and
    ``target_gram`` (1 or N, C, C). float32 scalar. Sizes of features and style image may differ."""
    return relative_mse(gram_matrix(features), target_gram)


def tv_loss(image: torch.Tensor, wrap: bool = False) -> torch.Tensor:
    """Total-variation loss: mean squared difference of horizontally and vertically
    neighbouring pixels of ``image`` (N, 3, H, W) in [0, 1]. float32 scalar.

    ``wrap=True`` (tileable textures): the last column's neighbour is the first column, the
    last row's the first row, so the loss also smooths across the wrap-around edges."""
    x = image.float()
    if wrap:
        dx = (x.roll(-1, dims=-1) - x).pow(2).mean()
        dy = (x.roll(-1, dims=-2) - x).pow(2).mean()
        return dx + dy
    dx = (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean()
    return dx + dy


class ContentLoss(nn.Module):
    """The content term (Gatys et al. 2016, eq. 1, normalized as :func:`content_loss`): the mean
    over layers of the relative MSE between the stylized image's features and the content
    image's (after crowsonkb/style-transfer-pytorch's ``ContentLoss`` and pystiche's
    ``FeatureReconstructionLoss``).

    Args:
        targets: layer name -> the content image's features, float (N or 1, C, H, W).
        layers: the layers to compare (default: all of ``targets``, in order).
        loss: the per-layer loss ``loss(features, target) -> 0-dim float32`` (default
            :func:`content_loss`; the distributed trainer passes one with a global denominator).

    Raises:
        ValueError: no layer, or a layer missing from ``targets``.
    """

    input = "features"  #: what :class:`PerceptualLoss` calls it on

    def __init__(self, targets: Mapping[str, torch.Tensor], layers: Sequence[str] | None = None,
                 loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = content_loss):
        super().__init__()
        self.layers = list(targets) if layers is None else list(layers)
        missing = [n for n in self.layers if n not in targets]
        if not self.layers or missing:
            raise ValueError(f"the content loss needs a target for each of its layers (missing: {missing})")
        self.targets = {n: targets[n] for n in self.layers}
        self.loss = loss

    def per_layer(self, features: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """The loss at each layer, in :attr:`layers` order (0-dim float32 tensors)."""
        return [self.loss(features[n], self.targets[n]) for n in self.layers]

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Mean of :meth:`per_layer` over the layers: 0-dim float32, >= 0 (1.0: as far from the
        target as zero features), differentiable with respect to ``features``."""
        return sum(self.per_layer(features)) / len(self.layers)


class TVLoss(nn.Module):
    """The total-variation term (:func:`tv_loss`; crowsonkb's ``TVLoss``, pystiche's
    ``TotalVariationLoss``), on the image rather than its features.

    Args:
        wrap: the last column's neighbour is the first (tileable textures), see :func:`tv_loss`.
    """

    input = "image"  #: what :class:`PerceptualLoss` calls it on

    def __init__(self, wrap: bool = False):
        super().__init__()
        self.wrap = wrap

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``tv_loss(image, wrap)`` of a float (N, 3, H, W) image in [0, 1]: 0-dim float32, >= 0."""
        return tv_loss(image, wrap=self.wrap)


class PerceptualLoss(nn.Module):
    """A weighted sum of named loss terms, the objective of a style transfer (after pystiche's
    ``PerceptualLoss``): ``total = sum_k weight_k * term_k``, summed in the order given.

    A term is any callable returning a 0-dim float32 tensor: it is called on the encoder's
    features (a mapping layer name -> (N, C, H, W)), or on the image (float32 (N, 3, H, W) in
    [0, 1]) when its ``input`` attribute is ``"image"`` (:class:`TVLoss`). :class:`ContentLoss`,
    :class:`StyleTarget` and :class:`GuidedStyleTarget` take features.

    Args:
        terms: name -> ``(weight, term)``; at least one.

    Example::

        objective = PerceptualLoss({"content": (1.0, ContentLoss(content_feats)),
                                    "style": (10.0, StyleTarget([grams])), "tv": (1.0, TVLoss())})
        parts = objective(encoder(x, layers), x)  # {"content", "style", "tv", "total"}

    Raises:
        ValueError: no term, or one named ``"total"``.
    """

    def __init__(self, terms: Mapping[str, tuple[float, Callable]]):
        super().__init__()
        if not terms or "total" in terms:
            raise ValueError("a perceptual loss needs at least one term, and none named 'total'")
        self.terms = dict(terms)

    def forward(self, features: Mapping[str, torch.Tensor], image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every term (unweighted, 0-dim float32) by name, then ``total`` (weighted), all
        differentiable with respect to ``features`` and ``image``."""
        parts, total = {}, None
        for name, (weight, term) in self.terms.items():
            parts[name] = term(image if getattr(term, "input", "features") == "image" else features)
            total = weight * parts[name] if total is None else total + weight * parts[name]
        parts["total"] = total
        return parts


def normalize_weights(weights: Sequence[float] | None, n: int, what: str) -> list[float]:
    """Weights for ``n`` items that sum to 1 (equal when ``weights`` is None).

    Raises:
        ValueError: wrong count, a negative value, or all zero; the message names ``what``.
    """
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise ValueError(f"{what} has {len(weights)} value(s) for {n} item(s); give exactly one weight per item")
    if any(w < 0 or w != w for w in weights):
        raise ValueError(f"{what} values must be non-negative, got {weights}")
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"{what} values must not all be zero")
    return [w / total for w in weights]


class StyleTarget(nn.Module):
    """Gram-matrix targets of one or more style images, blended by weight.

    The style loss is the blend-weighted sum over style images of the layer-weighted
    sum of per-layer relative Gram MSEs (Gatys et al. 2016, eq. 5; blending as in
    their multi-style examples).

    Args:
        grams: one dict per style image, layer name -> float32 (1, C, C) Gram matrix.
        blend: one non-negative weight per style image (normalized to sum 1).
        layer_weights: layer name -> weight (normalized to sum 1); equal by default.
    """

    def __init__(self, grams: Sequence[Mapping[str, torch.Tensor]], blend: Sequence[float] | None = None,
                 layer_weights: Mapping[str, float] | None = None):
        super().__init__()
        if not grams:
            raise ValueError("at least one style image is needed")
        self.layers = list(grams[0])
        self.blend = normalize_weights(blend, len(grams), "style blend")
        lw = normalize_weights(None if layer_weights is None else [layer_weights[n] for n in self.layers],
                               len(self.layers), "style layer weights")
        self.layer_weights = dict(zip(self.layers, lw))
        self.grams = [dict(g) for g in grams]

    def per_style(self, features: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """Unweighted-by-blend style loss against each style image (list of float32 scalars)."""
        return [
            sum(self.layer_weights[n] * style_loss(features[n], g[n].to(features[n].device)) for n in self.layers)
            for g in self.grams
        ]

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Blended style loss (float32 scalar) for features of the stylized image."""
        return sum(b * loss for b, loss in zip(self.blend, self.per_style(features)) if b > 0)


def guided_gram_matrix(features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the features inside a region (Gatys et al. 2017, "Controlling Perceptual
    Factors in Neural Style Transfer", §4.1, guided Gram matrices).

    Args:
        features: (N, C, H, W), any float dtype.
        guide: the region's weight per position, (N or 1, 1, H, W) in [0, 1] on the features' grid
            (soft edges allowed).

    Returns:
        float32 (N, C, C): ``G[i, j] = sum_p g_p F[i, p] F[j, p] / sum_p g_p``, a weighted average of
        channel products, on the scale of :func:`gram_matrix` (which it equals for ``g = 1``). The
        paper multiplies the features by the guide (weights ``g**2``); weighting by ``g`` makes a
        soft edge's positions count in proportion to how much they belong to the region. A region
        empty at this layer gives zeros.
    """
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    g = guide.float().reshape(guide.shape[0], 1, h * w)
    total = g.sum(dim=-1, keepdim=True).clamp_min(EPS)
    return torch.bmm(f * g, f.transpose(1, 2)) / total


class GuidedStyleTarget(nn.Module):
    """One style image per region (Gatys et al. 2017, §4.1 spatial control): the style loss is the
    area-weighted sum over regions of the layer-weighted relative MSE between each region's guided Gram matrix
    (:func:`guided_gram_matrix`) and the Gram matrix of that region's style image.

    The guides are given once at the image's size and resized to every layer's grid (area
    averaging, as the paper downsamples its guidance channels); a region that covers less than
    1e-4 of a layer is left out there. Same interface as :class:`StyleTarget`.

    Args:
        grams: one dict per region (style image), layer name -> float32 (1, C, C) Gram matrix.
        guides: float (K, 1, H, W) in [0, 1], one weight map per region at the stylized image's
            size (K = ``len(grams)``).
        layer_weights: layer name -> weight (normalized to sum 1); equal by default.

    Raises:
        ValueError: the number of guides is not the number of Gram dicts.
    """

    def __init__(self, grams: Sequence[Mapping[str, torch.Tensor]], guides: torch.Tensor,
                 layer_weights: Mapping[str, float] | None = None):
        super().__init__()
        if not grams or guides.dim() != 4 or guides.shape[0] != len(grams) or guides.shape[1] != 1:
            raise ValueError(f"need one guide (K, 1, H, W) per style image, got {tuple(guides.shape)} "
                             f"for {len(grams)} style(s)")
        self.layers = list(grams[0])
        lw = normalize_weights(None if layer_weights is None else [layer_weights[n] for n in self.layers],
                               len(self.layers), "style layer weights")
        self.layer_weights = dict(zip(self.layers, lw))
        self.grams = [dict(g) for g in grams]
        self.guides = guides.float()
        self.areas = self.guides.mean(dim=(1, 2, 3)).tolist()
        self._resized: dict[tuple, tuple] = {}

    def guide_at(self, h: int, w: int, device) -> tuple[torch.Tensor, list[bool]]:
        """The guides (K, 1, h, w) averaged onto an h x w feature grid, and which regions are
        present there (cached: the host reads this once per grid, not per iteration)."""
        key = (h, w, str(device))
        if key not in self._resized:
            g = self.guides.to(device)
            if g.shape[-2:] != (h, w):
                g = torch.nn.functional.adaptive_avg_pool2d(g, (h, w))
            g = g.clamp(0, 1)
            self._resized[key] = (g, (g.mean(dim=(1, 2, 3)) >= 1e-4).tolist())
        return self._resized[key]

    def per_style(self, features: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """The style loss of each region against its own style image (list of float32 scalars)."""
        losses = []
        for k, g in enumerate(self.grams):
            total = features[self.layers[0]].new_zeros((), dtype=torch.float32)
            for n in self.layers:
                f = features[n]
                guides, present = self.guide_at(f.shape[-2], f.shape[-1], f.device)
                if present[k]:
                    total = total + self.layer_weights[n] * relative_mse(
                        guided_gram_matrix(f, guides[k:k + 1]), g[n].to(f.device))
            losses.append(total)
        return losses

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The regions' style losses weighted by the share of the image each covers (float32
        scalar): one region over the whole image gives :class:`StyleTarget`'s loss, and a "keep the
        photo" region (no guide) adds no style."""
        return sum(a * loss for a, loss in zip(self.areas, self.per_style(features)))


#: Added to the variance before the square root (AdaIN statistics).
STAT_EPS = 1e-5


def mean_std(feat: torch.Tensor, eps: float = STAT_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and standard deviation over the spatial positions.

    Args:
        feat: (N, C, H, W) features, any float dtype.
        eps: added to the (biased, population) variance before the square root.

    Returns:
        ``(mean, std)``, each float32 (N, C, 1, 1); ``std = sqrt(var + eps)``.

    Raises:
        ValueError: ``feat`` is not 4-D.
    """
    if not isinstance(feat, torch.Tensor) or feat.dim() != 4:
        shape = tuple(feat.shape) if isinstance(feat, torch.Tensor) else type(feat).__name__
        raise ValueError(f"features must have shape (N, C, H, W), got {shape}")
    with autocast(feat.device, "fp32"):
        x = feat.float()
        var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
        return mean, (var + eps).sqrt()
