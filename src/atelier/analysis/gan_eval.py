"""Evaluation of a trained DCGAN generator (``atelier gan evaluate``): sample quality (KID),
mode collapse (diversity) and memorization (nearest training images).

All measures use :func:`~atelier.analysis.distribution.image_features` (VGG19, NOT
Inception-v3: the KID numbers compare runs of this project, not published results):

* ``kid_train``, ``kid_held_out``: KID (Binkowski et al. 2018) of ``n`` samples against the
  training paintings and against the held-out ones; ``kid_real_baseline``: the held-out
  paintings against the training ones, the value two sets of real paintings reach.
* ``diversity_ratio``: mean pairwise feature distance among the samples divided by that among
  the training paintings; the mode-collapse gate is ``>= 0.8``.
* ``memorization_ratio``: median distance of each sample to its nearest training painting,
  divided by the same for each held-out painting; a generator that copies its training
  images has a ratio well below 1 (gate ``>= 0.8``). :func:`memorization_grid` shows each of
  16 samples beside its nearest training painting.

The real paintings are the centred square crops of the whole shorter side, resized to the
generator's size (as the generator sees them, less the random zoom and flips).
"""

from __future__ import annotations

import os
import pathlib
from typing import Callable, Union

import torch

from ..encoders.vgg import get_encoder
from ..methods.gan.sample import image_grid, load_generator, sample
from ..methods.gan.train import split_files
from ..training.data import ImageFolderDataset
from .distribution import image_features, kid, mean_pairwise_distance, nearest

__all__ = ["DIVERSITY_GATE", "MEMORIZATION_GATE", "evaluate_generator", "memorization_grid", "real_images"]

PathLike = Union[str, os.PathLike]
DIVERSITY_GATE = 0.8
MEMORIZATION_GATE = 0.8


def real_images(files: list[pathlib.Path], size: int) -> torch.Tensor:
    """Centred square crops of ``files`` at ``size`` px: float32 (N, 3, size, size) in [0, 1]
    (an unreadable file is replaced by the next readable one, with a warning, as in training)."""
    if not files:
        return torch.empty(0, 3, size, size)
    ds = ImageFolderDataset(files, size, None, 0)
    return torch.stack([ds.center_crop(i) for i in range(len(files))])


def evaluate_generator(generator: PathLike, images: PathLike | None = None, n: int = 256, seed: int = 0,
                       truncation: float | None = None, feature_size: int = 128,
                       progress: Callable[[str], None] | None = None) -> tuple[dict, torch.Tensor]:
    """Measure a trained generator against its training paintings (see the module doc).

    Args:
        generator: a run folder, weights file or shipped generator name.
        images: the paintings it was trained on (default: the folder in its model card); the
            held-out split is rebuilt with the card's ``holdout_every``.
        n: samples (>= 16; the issue's diversity check uses 256).
        seed, truncation: of the samples (see :func:`~atelier.methods.gan.sample.latents`).
        feature_size: side the images are resized to for VGG19.
        progress: called with a short message before each stage.

    Returns:
        ``(report, grid)``: the JSON-serializable numbers and the memorization grid (float32
        (1, 3, H, W)).

    Raises:
        InputError: an unreadable generator or image folder.
        ValueError: ``n`` < 16.
    """
    if n < 16:
        raise ValueError(f"evaluation needs at least 16 samples, got {n}")
    say = progress or (lambda msg: None)
    g = load_generator(generator)
    hp = g.card.get("hyperparameters", {})
    source = images if images is not None else hp.get("images")
    train_files, held_files = split_files(source, int(hp.get("holdout_every", 0)))
    say(f"reading {len(train_files)} training and {len(held_files)} held-out paintings")
    train = real_images(train_files, g.size)
    held = real_images(held_files, g.size)
    say(f"sampling {n} images")
    fake = sample(g, n, seed, truncation)
    enc = get_encoder()
    say("VGG19 features")
    f_fake, f_train = image_features(fake, enc, feature_size), image_features(train, enc, feature_size)
    f_held = image_features(held, enc, feature_size) if len(held) >= 2 else None
    say("KID, diversity, nearest neighbours")
    report: dict = {
        "features": "VGG19 (Caffe) relu3_1+relu4_1+relu5_1 spatial means, per-layer L2-normalized x sqrt(width), "
                    f"images at {feature_size} px; NOT Inception-v3, not comparable with published KID",
        "generator": g.card.get("weights_file"), "generator_sha256": g.card.get("sha256"),
        "generator_steps": g.card.get("steps"), "samples": n, "seed": seed, "truncation": truncation,
        "training_images": len(train), "held_out_images": len(held),
    }
    m, s = kid(f_fake, f_train)
    report["kid_train"] = {"mean": m, "std": s}
    if f_held is not None:
        m, s = kid(f_fake, f_held)
        report["kid_held_out"] = {"mean": m, "std": s}
        m, s = kid(f_held, f_train)
        report["kid_real_baseline"] = {"mean": m, "std": s, "what": "held-out paintings vs training paintings"}
    div_fake, div_real = mean_pairwise_distance(f_fake), mean_pairwise_distance(f_train)
    report["diversity"] = {"samples": div_fake, "training_paintings": div_real, "ratio": div_fake / div_real,
                           "gate": DIVERSITY_GATE, "passed": div_fake / div_real >= DIVERSITY_GATE}
    idx, dist = nearest(f_fake, f_train)
    entry = {"sample_median_nn_distance": float(dist.median())}
    if f_held is not None:
        _, hdist = nearest(f_held, f_train)
        ratio = float(dist.median() / hdist.median())
        entry.update({"held_out_median_nn_distance": float(hdist.median()), "ratio": ratio,
                      "gate": MEMORIZATION_GATE, "passed": ratio >= MEMORIZATION_GATE})
    report["memorization"] = entry
    report["passed"] = bool(report["diversity"]["passed"] and entry.get("passed", True))
    grid = memorization_grid(fake[:16], train[idx[:16]])
    return report, grid


def memorization_grid(samples: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """Each sample beside its nearest training image, four pairs per row (sample left, neighbour
    right, a wider gap between pairs): float32 (1, 3, H, W) in [0, 1]."""
    pairs = [image_grid(torch.stack([s, t]), nrow=2, pad=1, value=1.0)[0] for s, t in zip(samples, neighbours)]
    return image_grid(torch.stack(pairs), nrow=4, pad=6, value=1.0)
