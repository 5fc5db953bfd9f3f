"""Distances between sets of images on VGG19 features: KID, diversity, nearest neighbours,
and the sliced Wasserstein distance between local feature distributions.

* :func:`image_features`: one vector per image, the spatial means of relu3_1, relu4_1 and
  relu5_1 of the project's VGG19 (images resized to ``size`` px first), each layer's block
  L2-normalized and scaled by the square root of its width, so every coordinate has an RMS
  near 1 and the three layers count equally (1280 numbers).
* :func:`kid`: Kernel Inception Distance (Binkowski, Sutherland, Arbel & Gretton 2018,
  "Demystifying MMD GANs"): the unbiased estimate of the squared MMD with the polynomial
  kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets. Here it is computed on
  the VGG19 features above, NOT on Inception-v3 pool features: the numbers are comparable
  with each other, not with published KIDs.
* :func:`mean_pairwise_distance`: mean L2 distance between all pairs (a mode-collapse check:
  a collapsed generator's samples are much closer to each other than real images are).
* :func:`nearest`: the nearest reference vector of each query (a memorization check).
* :func:`local_features` and :func:`sliced_wasserstein`: the feature vectors at every position
  of a layer (descriptors of the patch each position sees) and the sliced Wasserstein-2
  distance between two such sets (Rabin, Peyre, Delon & Bernot 2011; used for textures by
  Heitz et al. 2021): how far the local texture statistics of a result are from a painting's.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..encoders.vgg import VGGEncoder, get_encoder

__all__ = ["FEATURE_LAYERS", "image_features", "kid", "mean_pairwise_distance", "nearest", "local_features",
           "sliced_wasserstein"]

#: Layers whose spatial means make :func:`image_features`.
FEATURE_LAYERS = ("relu3_1", "relu4_1", "relu5_1")


@torch.no_grad()
def image_features(images: torch.Tensor, encoder: VGGEncoder | None = None, size: int = 128, batch: int = 32,
                   layers: Sequence[str] = FEATURE_LAYERS) -> torch.Tensor:
    """One feature vector per image (see the module doc).

    Args:
        images: float32 (N, 3, H, W) in [0, 1] (any device); resized to ``size`` x ``size``
            (bilinear, antialiased) before the encoder.
        encoder: the VGG encoder (default :func:`~atelier.encoders.vgg.get_encoder` on the CPU).
        size: side the images are resized to (>= 32).
        batch: images per encoder pass.

    Returns:
        float64 (N, D), CPU; D = 256 + 512 + 512 for the default layers.

    Raises:
        ValueError: ``images`` is not (N, 3, H, W) or ``size`` < 32.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
    if size < 32:
        raise ValueError(f"feature size must be >= 32 px, got {size}")
    enc = encoder if encoder is not None else get_encoder()
    dev = next(enc.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].to(dev).float()
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        feats = enc(x.clamp(0, 1), layers)
        blocks = []
        for name in layers:
            v = feats[name].double().mean(dim=(2, 3))
            blocks.append(v / (v.norm(dim=1, keepdim=True) + 1e-12) * v.shape[1] ** 0.5)
        out.append(torch.cat(blocks, 1).cpu())
    return torch.cat(out)


def _poly_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(x: torch.Tensor, y: torch.Tensor, subsets: int = 50, subset_size: int = 100, seed: int = 0
        ) -> tuple[float, float]:
    """Kernel distance between two feature sets (Binkowski et al. 2018; unbiased MMD^2, cubic
    polynomial kernel), averaged over ``subsets`` random subsets of ``min(subset_size, len(x),
    len(y))`` rows drawn without replacement from each set.

    Args:
        x, y: (M, D) and (N, D) features (e.g. :func:`image_features`), M, N >= 2.

    Returns:
        ``(mean, std)`` over the subsets. Near 0 (either sign) for two samples of one
        distribution; larger the more the distributions differ. A set against itself gives a
        small negative value, ``-2 (mean k(x, x) - mean k(x, x'))) / m``, since the
        cross term keeps the identical pairs that the within-set terms leave out.

    Raises:
        ValueError: fewer than 2 rows or different widths.
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sets must be (M, D) and (N, D), got {tuple(x.shape)} and {tuple(y.shape)}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 vectors in each set")
    g = torch.Generator().manual_seed(int(seed))
    x, y = x.double(), y.double()
    vals = torch.tensor([_poly_mmd2(x[torch.randperm(len(x), generator=g)[:m]], y[torch.randperm(len(y), generator=g)[:m]])
                         for _ in range(subsets)])
    return float(vals.mean()), float(vals.std()) if subsets > 1 else 0.0


def mean_pairwise_distance(f: torch.Tensor) -> float:
    """Mean L2 distance over all pairs i < j of the rows of ``f`` (N >= 2, D)."""
    if len(f) < 2:
        raise ValueError("a pairwise distance needs at least 2 vectors")
    d = torch.cdist(f.double(), f.double())
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


def nearest(query: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest row of ``reference`` (N, D) to each row of ``query`` (M, D) in L2:
    ``(index, distance)``, int64 (M,) and float64 (M,)."""
    d = torch.cdist(query.double(), reference.double())
    dist, idx = d.min(dim=1)
    return idx, dist


@torch.no_grad()
def local_features(image: torch.Tensor, layer: str = "relu3_1", encoder: VGGEncoder | None = None,
                   max_count: int = 4096, seed: int = 0) -> torch.Tensor:
    """The feature vectors at the positions of ``layer`` for ``image`` (float32 (N, 3, H, W) in
    [0, 1]), pooled over the batch; at most ``max_count`` of them, drawn at random (seeded).
    Returns float32 (P, C), CPU."""
    enc = encoder if encoder is not None else get_encoder()
    f = enc(image.to(next(enc.parameters()).device).float(), [layer])[layer]
    f = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).cpu()
    if len(f) > max_count:
        g = torch.Generator().manual_seed(int(seed))
        f = f[torch.randperm(len(f), generator=g)[:max_count]]
    return f


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-2 distance between the point sets ``a`` (M, D) and ``b`` (N, D):
    the root mean square, over ``projections`` random unit directions (seeded), of the
    Wasserstein-2 distance between the 1-D projections (compared at 256 common quantiles when
    M != N). 0 for identical sets; in the units of the features."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"point sets must be (M, D) and (N, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    g = torch.Generator().manual_seed(int(seed))
    dirs = torch.randn(a.shape[1], projections, generator=g, dtype=torch.float64)
    dirs /= dirs.norm(dim=0, keepdim=True)
    pa, pb = (a.double() @ dirs).sort(dim=0).values, (b.double() @ dirs).sort(dim=0).values
    if len(pa) != len(pb):
        q = torch.linspace(0, 1, 256, dtype=torch.float64)
        pa, pb = torch.quantile(pa, q, dim=0), torch.quantile(pb, q, dim=0)
    return float((pa - pb).pow(2).mean().sqrt())
