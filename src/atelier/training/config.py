"""What every training configuration shares: the fields the shared loop reads and their checks.

:class:`TrainerConfig` holds the fields that :class:`~atelier.training.loop.BaseTrainer` reads
(``out``, ``image_size``, ``batch_size``, ``steps``, ``lr``, ``seed``, ``checkpoint_every``,
``preview_every``, ``precision``, ``device``), :class:`EncoderTrainerConfig` adds those of the
loop's VGG encoder (``pooling``, ``weights``). The trainers' configurations subclass them beside
their trainers (:class:`~atelier.methods.feedforward.train.TrainConfig`,
:class:`~atelier.methods.arbitrary.train.AdaINTrainConfig`, ...), setting their own defaults and
adding their own fields; ``validate()`` runs the shared checks (:meth:`TrainerConfig.check_fields`)
and ``to_dict()`` gives the JSON form stored in checkpoints and model cards (the same keys as
:func:`dataclasses.asdict`; base fields first).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import ClassVar, Optional, Sequence, Union

from ..core.runtime import PRECISIONS

__all__ = ["TrainerConfig", "EncoderTrainerConfig", "check_training_fields", "path_strings"]

PathLike = Union[str, os.PathLike]


def path_strings(value) -> Union[str, list]:
    """A path as a string, or a list of paths as a list of strings (the JSON form of a folder,
    a file or a list of them)."""
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else [os.fspath(x) for x in value]


@dataclass(kw_only=True)
class TrainerConfig:
    """The fields every trainer of the shared loop has (keyword-only; each trainer's
    configuration sets its own defaults).

    Attributes:
        out: path of the trained weights; ``.safetensors`` is appended if missing. The
            checkpoint, model card and preview are written next to it
            (:func:`~atelier.training.cards.output_paths`).
        image_size: side of the square training crops in pixels (int, >= 16 unless a trainer
            says otherwise).
        batch_size: images per step (int, >= 1; the GAN: >= 2).
        steps: optimizer steps in all (int, >= 0).
        lr: Adam learning rate (finite, > 0).
        seed: seeds the initial weights and every random draw of the run (int, >= 0).
        checkpoint_every: write the checkpoint every N steps (int, >= 0; 0: only at the end and
            on Ctrl-C).
        preview_every: write a preview every N steps (int, >= 0; 0: never).
        precision: ``"auto"`` (bf16 on CUDA with bf16 / CPUs with AMX, else fp32), ``"fp32"``
            or ``"bf16"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` or a torch device string.

    Class attributes (the checks of :meth:`check_fields`):
        INTEGERS: ``(name, lowest)`` of the integer fields, in the order they are checked.
        NON_NEGATIVE, POSITIVE: the float fields that must be finite and >= 0, > 0.
        AS_FLOAT: whether those are read with ``float()`` first (so a string is refused with
            float's ValueError; the contour and painting trainers).
    """

    INTEGERS: ClassVar[tuple[tuple[str, int], ...]] = (
        ("image_size", 16), ("batch_size", 1), ("steps", 0), ("checkpoint_every", 0), ("preview_every", 0),
        ("seed", 0))
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ()
    POSITIVE: ClassVar[tuple[str, ...]] = ("lr",)
    AS_FLOAT: ClassVar[bool] = False

    out: PathLike = "model.safetensors"
    image_size: int = 256
    batch_size: int = 8
    steps: int = 1000
    lr: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 1000
    preview_every: int = 0
    precision: str = "auto"
    device: str = "auto"

    def check_fields(self) -> None:
        """The shared checks: the integer fields of :attr:`INTEGERS` (ints, not bools, >= their
        lowest value), the floats of :attr:`NON_NEGATIVE` and :attr:`POSITIVE`, ``precision`` (one
        of :data:`~atelier.core.runtime.PRECISIONS`), and ``scale_jitter`` (None or ``(lo, hi)`` with
        ``0 < lo <= hi < inf``) where the configuration has one.

        Raises:
            ValueError: the first field out of range, with a message naming it.
        """
        _check(self, self.INTEGERS, self.NON_NEGATIVE, self.POSITIVE, self.AS_FLOAT)

    def validate(self):
        """Check every field (here: :meth:`check_fields`; a trainer's configuration adds its own
        checks); returns self.

        Raises:
            ValueError: a field out of range, with a message naming it.
        """
        self.check_fields()
        return self

    def to_dict(self) -> dict:
        """JSON-serializable parameters: :func:`dataclasses.asdict` with ``out`` as a string and
        ``scale_jitter`` (where present and set) as a list; a trainer's configuration converts
        its own paths and tuples."""
        d = asdict(self)
        d["out"] = os.fspath(self.out)
        if d.get("scale_jitter") is not None:
            d["scale_jitter"] = list(d["scale_jitter"])
        return d


@dataclass(kw_only=True)
class EncoderTrainerConfig(TrainerConfig):
    """:class:`TrainerConfig` plus the fields of the loop's VGG loss network
    (:attr:`BaseTrainer.encoder <atelier.training.loop.BaseTrainer.encoder>`, loaded on first use).

    Attributes:
        pooling: ``"max"`` or ``"avg"`` pooling in the VGG encoder.
        weights: None for the Caffe VGG19, or a torchvision VGG16/VGG19 state-dict path.
    """

    pooling: str = "max"
    weights: Optional[str] = None

    def check_fields(self) -> None:
        """:meth:`TrainerConfig.check_fields`, then ``pooling``.

        Raises:
            ValueError: the first field out of range, with a message naming it.
        """
        super().check_fields()
        _check_pooling(self)


def check_training_fields(cfg, non_negative: Sequence[str], positive: Sequence[str]) -> None:
    """The shared checks (:meth:`TrainerConfig.check_fields`) on any configuration object with
    the fields ``image_size`` (>= 16), ``batch_size`` (>= 1), ``steps``, ``checkpoint_every``,
    ``preview_every``, ``seed`` (>= 0), ``precision``, ``pooling`` and ``scale_jitter``, and the
    float fields named in ``non_negative`` (finite, >= 0) and ``positive`` (finite, > 0).

    Raises:
        ValueError: the first field out of range, with a message naming it.
    """
    _check(cfg, TrainerConfig.INTEGERS, non_negative, positive)
    _check_pooling(cfg)


def _check(cfg, integers: Sequence[tuple[str, int]], non_negative: Sequence[str], positive: Sequence[str],
           as_float: bool = False) -> None:
    for name, low in integers:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name.replace('_', ' ')} must be an integer >= {low}, got {v!r}")
    for names, ok, what in ((non_negative, lambda v: v >= 0, ">= 0"), (positive, lambda v: v > 0, "> 0")):
        for name in names:
            v = float(getattr(cfg, name)) if as_float else getattr(cfg, name)
            if not ok(v) or math.isinf(v):
                raise ValueError(f"{name.replace('_', ' ')} must be a finite number {what}, got {v}")
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    jitter = getattr(cfg, "scale_jitter", None)
    if jitter is not None:
        lo, hi = jitter
        if not (0 < lo <= hi) or math.isinf(hi):
            raise ValueError(f"scale jitter must be (lo, hi) with 0 < lo <= hi, got {jitter!r}")


def _check_pooling(cfg) -> None:
    if cfg.pooling not in ("max", "avg"):
        raise ValueError(f"pooling must be 'max' or 'avg', got {cfg.pooling!r}")
