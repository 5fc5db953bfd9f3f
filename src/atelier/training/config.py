"""What every training configuration shares: the checks on its common fields.

The configurations themselves are dataclasses beside their trainers
(:class:`~atelier.methods.feedforward.train.TrainConfig`,
:class:`~atelier.methods.arbitrary.train.AdaINTrainConfig`, ...).
"""

from __future__ import annotations

import math
from typing import Sequence

from ..core.runtime import PRECISIONS

__all__ = ["check_training_fields"]


def check_training_fields(cfg, non_negative: Sequence[str], positive: Sequence[str]) -> None:
    """The checks every training configuration shares (:class:`TrainConfig`,
    :class:`~atelier.methods.arbitrary.train.AdaINTrainConfig`): integer fields ``image_size`` (>= 16),
    ``batch_size`` (>= 1), ``steps``, ``checkpoint_every``, ``preview_every``, ``seed`` (>= 0);
    the float fields named in ``non_negative`` (finite, >= 0) and ``positive`` (finite, > 0);
    ``precision``, ``pooling`` and ``scale_jitter``.

    Raises:
        ValueError: the first field out of range, with a message naming it.
    """
    for name, low in (("image_size", 16), ("batch_size", 1), ("steps", 0), ("checkpoint_every", 0),
                      ("preview_every", 0), ("seed", 0)):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name.replace('_', ' ')} must be an integer >= {low}, got {v!r}")
    for names, ok, what in ((non_negative, lambda v: v >= 0, ">= 0"), (positive, lambda v: v > 0, "> 0")):
        for name in names:
            v = getattr(cfg, name)
            if not ok(v) or math.isinf(v):
                raise ValueError(f"{name.replace('_', ' ')} must be a finite number {what}, got {v}")
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    if cfg.pooling not in ("max", "avg"):
        raise ValueError(f"pooling must be 'max' or 'avg', got {cfg.pooling!r}")
    if cfg.scale_jitter is not None:
        lo, hi = cfg.scale_jitter
        if not (0 < lo <= hi) or math.isinf(hi):
            raise ValueError(f"scale jitter must be (lo, hi) with 0 < lo <= hi, got {cfg.scale_jitter!r}")
