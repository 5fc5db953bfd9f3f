"""Corruption augmentation for training style networks that hold up on phone photos.

With ``--augment-corruptions`` (``TrainConfig.augment_corruptions``), each training crop is
fed to the network JPEG-compressed, noisy or blurred (the same kinds as the robustness
benchmark, :mod:`atelier.imaging.corrupt`, at random strengths), while the content target stays
the *clean* crop: the network learns to give the clean photo's result from a damaged copy.

Per crop, with probability ``share``: one of (equally likely)

* JPEG at a quality drawn uniformly from 10..90;
* Gaussian noise with sigma drawn uniformly from 0.01..0.1 ([0, 1] units);
* downscale-upscale blur with a factor drawn uniformly from 1.5..4;

otherwise the crop is left as it is. Every draw comes from a generator seeded by
(run seed, step) (:func:`atelier.training.data.item_seed`), so an interrupted run that
resumes sees the same corruptions. Data-parallel (``--nproc``, :mod:`atelier.training.distributed`),
each rank makes the draws of the whole global batch (the noise of the rows it does not hold
included) and corrupts only its rows, so N processes feed the network what one process does.
"""

from __future__ import annotations

import torch

from ..imaging import corrupt
from .data import item_seed
from .distributed import share_rows

__all__ = ["corrupt_batch", "JPEG_QUALITY", "NOISE_SIGMA", "BLUR_FACTOR"]

JPEG_QUALITY = (10, 90)
NOISE_SIGMA = (0.01, 0.1)
BLUR_FACTOR = (1.5, 4.0)


def corrupt_batch(x: torch.Tensor, seed: int, step: int, share: float, rows: range | None = None,
                  global_batch: int | None = None) -> tuple[torch.Tensor, list[str]]:
    """The network's input for a batch of clean crops.

    Args:
        x: float32 (N, 3, S, S) in [0, 1], any device (JPEG goes through the CPU).
        seed: the run's seed; step: the 0-based training step (together they fix every draw).
        share: probability in [0, 1] that a crop is corrupted.
        rows, global_batch: ``x`` holds rows ``rows`` (a range) of a batch of ``global_batch``
            crops (data-parallel: one rank's share). The draws are made for the whole global
            batch (a row's noise is drawn even where the row is not held) and ``x`` gets those
            of its rows, so a share's output is those rows of the global batch's output.
            Default: ``x`` is the whole batch.

    Returns:
        (float32 (N, 3, S, S) in [0, 1] on ``x``'s device, a new tensor (``x`` is untouched);
        what was done to each of its crops, e.g. ``["jpeg37", "none", "noise0.064", "blur2.3"]``).

    Raises:
        ValueError: ``share`` outside [0, 1]; ``rows`` without ``global_batch`` (or the
            reverse), or not N rows within it.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"augment share must be in [0, 1], got {share}")
    n = x.shape[0]
    rows, total = share_rows(n, rows, global_batch, "crops")
    g = torch.Generator().manual_seed(item_seed(seed, step, -7))  # -7: this stream, apart from the crops'
    out, done = [], []
    for i in range(total):
        mine = i in rows
        xi = x[i - rows.start:i - rows.start + 1] if mine else None
        u, kind, level = torch.rand(3, generator=g).tolist()
        if u >= share:
            if mine:
                out.append(xi.clone())
                done.append("none")
            continue
        k = min(int(kind * 3), 2)
        if k == 1:  # the only draw that depends on the crop: its noise, drawn for every row
            s = NOISE_SIGMA[0] + level * (NOISE_SIGMA[1] - NOISE_SIGMA[0])
            if not mine:
                torch.randn((1, *x.shape[1:]), generator=g)  # what corrupt.gaussian_noise draws for that row
                continue
            out.append(corrupt.gaussian_noise(xi, s, generator=g))
            done.append(f"noise{s:.3f}")
        elif not mine:
            continue
        elif k == 0:
            q = int(round(JPEG_QUALITY[0] + level * (JPEG_QUALITY[1] - JPEG_QUALITY[0])))
            out.append(corrupt.jpeg(xi, q))
            done.append(f"jpeg{q}")
        else:
            f = BLUR_FACTOR[0] + level * (BLUR_FACTOR[1] - BLUR_FACTOR[0])
            out.append(corrupt.downscale_blur(xi, f))
            done.append(f"blur{f:.1f}")
    return torch.cat(out), done
