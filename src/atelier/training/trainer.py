"""Training of feed-forward style networks (Johnson et al. 2016; Dumoulin et al. 2017).

A :class:`~atelier.networks.TransformerNet` is trained with Adam so that its output for a
training photo has the photo's VGG19 content features and the Gram matrices of a style
image (the perceptual losses of Johnson et al., "Perceptual Losses for Real-Time Style
Transfer and Super-Resolution", 2016), plus a total-variation term. With several style
images one network learns them all (Dumoulin, Shlens & Kudlur, "A Learned Representation
for Artistic Style", 2017): each photo in a batch gets a random style index, the network
gets the one-hot style weights and the style loss uses that style's Gram matrices.

Losses are those of :mod:`atelier.losses` (normalized: the same weights suit any size)
on the project's VGG encoder (:func:`atelier.features.vgg.get_encoder`).

Files (for ``out = "models/starry.safetensors"``):

* ``models/starry.ckpt``: training checkpoint (model, Adam state, step, RNG states, loss
  history), written atomically every ``checkpoint_every`` steps, at the end, and when the
  run is interrupted with Ctrl-C; readable with ``torch.load(weights_only=True)``.
* ``models/starry.safetensors``: the trained weights in float16.
* ``models/starry.json``: the model card (styles and their sha256, training images,
  hyperparameters, steps, final losses, time, device, sha256 of the weights).
* ``models/starry.preview.png``: the latest preview, when ``preview_every`` > 0 and no
  preview callback is given.

The loop, checkpoints, resume, Ctrl-C handling and export live in :class:`BaseTrainer`,
which :class:`~atelier.training.adain.AdaINTrainer` shares; :func:`read_verified` is the
sha256-checked loading of any exported model.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import pathlib
import platform
import random
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from .. import image as img
from ..errors import InputError
from ..utils import atomic_write, sha256_file
from ..features.vgg import VGGEncoder, get_encoder, validate_layers
from ..losses import StyleTarget, content_loss, gram_matrix, tv_loss
from ..networks.transformer import TransformerNet
from ..optimize.gatys import resolve_device, resolve_precision
from .data import ImageFolderDataset, item_seed, make_dataset

__all__ = ["TrainConfig", "BaseTrainer", "FeedForwardTrainer", "load_trained", "read_verified", "output_paths",
           "CHECKPOINT_FORMAT", "CARD_FORMAT"]

CHECKPOINT_FORMAT = "atelier-feedforward-checkpoint"
CARD_FORMAT = "atelier-feedforward-model"
_VERSION = 1
PRECISIONS = ("auto", "fp32", "bf16")
#: Steps averaged for the model card's ``final_losses``.
FINAL_LOSS_WINDOW = 100
# Changing these on resume would change the network or the data order: refused.
_RESUME_FIXED = ("width", "image_size", "batch_size", "seed", "scale_jitter")
# Changing these on resume is normal and not reported.
_RESUME_FREE = ("steps", "checkpoint_every", "preview_every", "device", "out", "styles", "content", "init_from",
                "in_memory")

PathLike = Union[str, os.PathLike]


def check_training_fields(cfg, non_negative: Sequence[str], positive: Sequence[str]) -> None:
    """The checks every training configuration shares (:class:`TrainConfig`,
    :class:`~atelier.training.adain.AdaINTrainConfig`): integer fields ``image_size`` (>= 16),
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


@dataclass
class TrainConfig:
    """Parameters of a feed-forward style network training run.

    Attributes:
        styles: style image paths (one network learns them all; index i = ``styles[i]``).
        content: training photos: a folder (searched recursively), a file, or a list of them.
        out: path of the trained weights; ``.safetensors`` is appended if missing. The
            checkpoint, model card and preview are written next to it (see the module doc).
        image_size: side of the square training crops in pixels (>= 16; Johnson et al.: 256).
        batch_size: photos per step (>= 1; Johnson et al.: 4).
        steps: optimizer steps in all (Johnson et al.: 40 000, two epochs of MS-COCO).
        lr: Adam learning rate (Johnson et al.: 1e-3).
        content_weight, style_weight, tv_weight: weights of the normalized losses of
            :mod:`atelier.losses` (same defaults as :class:`~atelier.optimize.gatys.GatysConfig`).
        style_scale: longest side of the style images relative to ``image_size`` (> 0;
            smaller gives finer brush strokes).
        width: channel multiplier of :class:`~atelier.networks.TransformerNet` (> 0).
        scale_jitter: ``(lo, hi)`` random rescaling of the crops (see
            :class:`~atelier.training.data.ImageFolderDataset`); None for none.
        precision: ``"auto"`` (bf16 on CUDA with bf16 / CPUs with AMX, else fp32), ``"fp32"``
            or ``"bf16"`` (autocast for the network and the VGG encoder; losses in fp32).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` or a torch device string.
        seed: seeds the network's initial weights, the crops and the style indices.
        checkpoint_every: write the checkpoint every N steps (0: only at the end and on Ctrl-C).
        preview_every: stylize a fixed training photo with every style every N steps (0: never).
        content_layers, style_layers: VGG layer names (defaults of Gatys et al. 2016).
        pooling: ``"max"`` or ``"avg"`` pooling in the VGG encoder.
        weights: None for the Caffe VGG19, or a torchvision VGG16/VGG19 state-dict path.
        init_from: a shipped model's name or a trained model (``.safetensors`` with its model
            card) of the same width to start from instead of random weights (fine-tuning): all
            convolutions are copied; each style's instance-norm parameters are copied from the
            source's style with the same file sha256, or set to the mean over the source's
            styles. Used only when a run starts, not on resume.
        in_memory: decode the training photos once and crop them on ``device``
            (:class:`~atelier.training.data.InMemoryImageDataset`; for GPUs) instead of reading
            the files at every step.
    """

    styles: Sequence[PathLike] = ()
    content: Union[PathLike, Sequence[PathLike]] = ()
    out: PathLike = "style-net.safetensors"
    image_size: int = 256
    batch_size: int = 4
    steps: int = 40_000
    lr: float = 1e-3
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    style_scale: float = 1.0
    width: float = 1.0
    scale_jitter: Optional[tuple[float, float]] = (0.8, 1.2)
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 1000
    preview_every: int = 0
    content_layers: Sequence[str] = ("relu4_2",)
    style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    pooling: str = "max"
    weights: Optional[str] = None
    init_from: Optional[str] = None
    in_memory: bool = False

    def validate(self) -> "TrainConfig":
        """Check every field; returns self.

        Raises:
            ValueError: a field out of range, with a message naming it.
        """
        if isinstance(self.styles, (str, os.PathLike)):
            self.styles = [self.styles]
        if not self.styles:
            raise ValueError("at least one style image is needed")
        if isinstance(self.content, (str, os.PathLike)) and not os.fspath(self.content):
            raise ValueError("training photos (content) are needed: a folder or a list of image files")
        if not isinstance(self.content, (str, os.PathLike)) and not list(self.content):
            raise ValueError("training photos (content) are needed: a folder or a list of image files")
        check_training_fields(self, non_negative=("content_weight", "style_weight", "tv_weight"),
                              positive=("lr", "style_scale", "width"))
        validate_layers(self.content_layers, self.style_layers)
        return self

    def to_dict(self) -> dict:
        """JSON-serializable parameters (paths as strings, tuples as lists)."""
        d = asdict(self)
        d["styles"] = [os.fspath(s) for s in self.styles]
        d["content"] = (os.fspath(self.content) if isinstance(self.content, (str, os.PathLike))
                        else [os.fspath(c) for c in self.content])
        d["out"] = os.fspath(self.out)
        for k in ("content_layers", "style_layers", "scale_jitter"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d


def output_paths(out: PathLike) -> dict[str, pathlib.Path]:
    """Paths of the files of a run: ``weights`` (.safetensors), ``checkpoint`` (.ckpt),
    ``card`` (.json) and ``preview`` (.preview.png), all sharing the stem of ``out``."""
    s = os.fspath(pathlib.Path(os.fspath(out)).expanduser())
    if s.lower().endswith(".safetensors"):
        s = s[: -len(".safetensors")]
    return {"weights": pathlib.Path(s + ".safetensors"), "checkpoint": pathlib.Path(s + ".ckpt"),
            "card": pathlib.Path(s + ".json"), "preview": pathlib.Path(s + ".preview.png")}




class _SigintGuard:
    """Defer Ctrl-C to the end of the current training step (so checkpoints are consistent).

    Active only in the main thread with Python's default SIGINT handler. A second Ctrl-C
    during the same step raises KeyboardInterrupt at once.
    """

    def __init__(self):
        self.hit = False
        self._old = None

    def _handle(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None
        return False


LossCallback = Callable[[int, dict, float], None]
PreviewCallback = Callable[[int, torch.Tensor], None]


class BaseTrainer:
    """Machinery shared by atelier's trainers (:class:`FeedForwardTrainer`,
    :class:`~atelier.training.adain.AdaINTrainer`).

    A subclass sets the class attributes below, calls :meth:`_init_base` first in its
    constructor, then creates ``self.dataset`` (the training photos), ``self.model`` (the
    network being trained; its state dict is checkpointed and exported) and
    ``self.optimizer``, and implements the hooks :meth:`_step_losses`, :meth:`preview`,
    :meth:`_identity`, :meth:`_architecture` and :meth:`_card_inputs` (and, where needed,
    :meth:`_before_training`, :meth:`_learning_rate`, :meth:`_checkpoint_extra`,
    :meth:`_restore_extra`, :meth:`_card_extra`, :meth:`_weights_metadata`,
    :meth:`_preview_metadata`).

    What it provides:

    * deterministic data: :meth:`_batch_of` draws the crops of a step from (seed, step);
    * the training loop :meth:`train` with loss and preview callbacks, checkpoints every
      ``checkpoint_every`` steps, Ctrl-C deferred to the end of the step (then a checkpoint
      and KeyboardInterrupt), NaN/inf detection;
    * checkpoints (:meth:`save_checkpoint`, :meth:`load_checkpoint`) with the exact RNG
      states, refusing settings in ``RESUME_FIXED`` that differ;
    * :meth:`export`: float16 safetensors weights and a JSON model card with their sha256,
      both written atomically; :func:`read_verified` loads them back.

    The config must have ``out``, ``image_size``, ``batch_size``, ``steps``, ``lr``,
    ``seed``, ``checkpoint_every``, ``preview_every``, ``precision``, ``device``,
    ``weights``, ``pooling`` and the methods ``validate()`` and ``to_dict()``.
    """

    #: ``format`` field of checkpoints and model cards.
    CHECKPOINT_FORMAT = CHECKPOINT_FORMAT
    CARD_FORMAT = CARD_FORMAT
    #: Words for messages: "not an atelier {KIND} training checkpoint".
    KIND = "feed-forward"
    #: Config fields that may not change on resume (network or data order), and those that
    #: change silently; any other change is allowed with a warning.
    RESUME_FIXED: tuple[str, ...] = _RESUME_FIXED
    RESUME_FREE: tuple[str, ...] = _RESUME_FREE
    #: Keys of the loss dicts (history, callback, ``final_losses``).
    LOSS_KEYS: tuple[str, ...] = ("content", "style", "tv", "total")

    config: object
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    dataset: ImageFolderDataset

    def _init_base(self, config, encoder: VGGEncoder | None = None) -> None:
        """Validate ``config`` and set the attributes every trainer has."""
        self.config = config.validate()
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.paths = output_paths(config.out)
        self.generator = torch.Generator().manual_seed(config.seed)  # a trainer's own random draws
        self.step = 0
        self.history: list[dict] = []
        self.wall_seconds = 0.0
        self._encoder = encoder
        self._perms: dict[tuple[int, int], list[int]] = {}
        self._boundary_rng: dict | None = None
        self._phase = "boundary"  # "boundary" | "forward" (state unchanged) | "update" (mid optimizer step)
        self._preview_image: torch.Tensor | None = None
        self.stopped_by: str | None = None

    def _to_device(self, model: torch.nn.Module) -> None:
        """Move the network to ``device`` (channels_last memory format on CUDA, where cuDNN's
        bf16 convolutions are fastest in it)."""
        model.to(self.device)
        if self.device.type == "cuda":
            model.to(memory_format=torch.channels_last)

    @property
    def encoder(self) -> VGGEncoder:
        """The VGG loss network (loaded on first use)."""
        if self._encoder is None:
            self._encoder = get_encoder(self.config.weights, self.config.pooling, self.device)
        return self._encoder

    # -- hooks ----------------------------------------------------------------------------
    def _before_training(self, resumed: bool) -> None:
        """Called by :meth:`train` after a resume (or not), before the first step."""

    def _step_losses(self) -> dict[str, torch.Tensor]:
        """Losses of step ``self.step`` (0-based): float32 scalars named :attr:`LOSS_KEYS`,
        ``total`` differentiable with respect to the model's parameters."""
        raise NotImplementedError

    def _learning_rate(self, step: int) -> float:
        """Learning rate of 0-based ``step`` (default: ``config.lr``)."""
        return self.config.lr

    def _identity(self) -> dict:
        """What must match on resume besides ``RESUME_FIXED`` (e.g. the style files' sha256)."""
        return {}

    def _checkpoint_extra(self) -> dict:
        """Extra checkpoint entries (weights_only-loadable)."""
        return {}

    def _restore_extra(self, ckpt: dict) -> None:
        """Restore what :meth:`_checkpoint_extra` saved."""

    def preview(self) -> torch.Tensor:
        """The preview image: float32 (1, 3, H, W) in [0, 1], CPU."""
        raise NotImplementedError

    def _preview_metadata(self) -> dict:
        return {"step": self.step}

    def _architecture(self) -> dict:
        """The model card's ``architecture`` entry."""
        raise NotImplementedError

    def _card_inputs(self) -> dict:
        """Model card entries placed after ``dtype`` (styles, training images)."""
        raise NotImplementedError

    def _card_extra(self) -> dict:
        """Model card entries placed after ``hyperparameters``."""
        return {}

    def _weights_metadata(self) -> dict[str, str]:
        """String metadata stored in the safetensors header besides ``format``."""
        return {}

    # -- data ---------------------------------------------------------------------------
    def _perm_of(self, dataset: ImageFolderDataset, epoch: int, salt: int) -> list[int]:
        key = (salt, epoch)
        if key not in self._perms:
            g = torch.Generator().manual_seed(item_seed(self.config.seed, epoch, salt))
            self._perms = {k: v for k, v in self._perms.items() if k[0] != salt or k[1] >= epoch - 1}
            self._perms[key] = torch.randperm(len(dataset), generator=g).tolist()
        return self._perms[key]

    def _batch_of(self, dataset: ImageFolderDataset, step: int, salt: int = -1) -> torch.Tensor:
        """The crops of 0-based ``step`` from ``dataset``: float32 (batch_size, 3, S, S) in
        [0, 1], CPU. A pure function of (seed, salt, step): epochs are permutations of the
        files, shuffled by ``item_seed(seed, epoch, salt)`` (each dataset its own salt)."""
        bs, n = self.config.batch_size, len(dataset)
        items = []
        for j in range(bs):
            epoch, pos = divmod(step * bs + j, n)
            items.append(dataset.get(self._perm_of(dataset, epoch, salt)[pos], epoch))
        return torch.stack(items)

    # -- RNG state ----------------------------------------------------------------------
    def _rng_state(self) -> dict:
        v, state, gauss = random.getstate()
        out = {"torch": torch.get_rng_state(), "python": [v, list(state), gauss],
               "generator": self.generator.get_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            out["cuda"] = list(torch.cuda.get_rng_state_all())
        return out

    def _set_rng_state(self, rng: dict) -> None:
        torch.set_rng_state(rng["torch"])
        v, state, gauss = rng["python"]
        random.setstate((v, tuple(state), gauss))
        self.generator.set_state(rng["generator"])
        if rng.get("cuda") and torch.cuda.is_available():
            with contextlib.suppress(RuntimeError, IndexError):
                torch.cuda.set_rng_state_all(rng["cuda"])

    # -- checkpoints --------------------------------------------------------------------
    def save_checkpoint(self) -> pathlib.Path:
        """Write the checkpoint (atomically) and return its path.

        Contents (all loadable with ``torch.load(weights_only=True)``): ``format``,
        ``version``, ``step``, ``model`` and ``optimizer`` state dicts, ``rng`` (torch and
        CUDA states as tensors, Python ``random`` state as a list, the trainer's generator
        state), ``history``, ``wall_seconds``, ``config`` and ``identity``, plus the
        trainer's own entries. Called mid-step (after a second Ctrl-C before the update),
        the state of the last completed step is saved.
        """
        rng = self._rng_state() if self._phase == "boundary" else self._boundary_rng
        ckpt = {
            "format": self.CHECKPOINT_FORMAT,
            "version": _VERSION,
            "step": self.step,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "history": [dict(h) for h in self.history],
            "wall_seconds": float(self.wall_seconds),
            "config": self.config.to_dict(),
            "identity": self._identity(),
            **self._checkpoint_extra(),
        }
        with atomic_write(self.paths["checkpoint"]) as f:
            torch.save(ckpt, f)
        return self.paths["checkpoint"]

    def load_checkpoint(self, path: PathLike | None = None) -> int:
        """Restore model, optimizer, step, RNG states and history from a checkpoint.

        Loaded with ``torch.load(weights_only=True)``: no code in the file is run.

        Args:
            path: the checkpoint; default ``paths["checkpoint"]``.

        Returns:
            The step the checkpoint was written at.

        Raises:
            InputError: naming the file: missing, unreadable, not a checkpoint of this kind
                of training, or written for another network or data order (the settings in
                ``RESUME_FIXED`` and the trainer's identity, e.g. the style files). Changes
                of other hyperparameters (lr, weights, layers, ...) are allowed, with a warning.
        """
        p = pathlib.Path(path) if path is not None else self.paths["checkpoint"]
        if not p.is_file():
            raise InputError("no checkpoint to resume from; start without resume", p)
        try:
            ckpt = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling error means a bad file
            raise InputError(f"cannot read the checkpoint ({type(e).__name__}); it is corrupt or not an atelier "
                             "checkpoint; delete it to start over", p) from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != self.CHECKPOINT_FORMAT:
            raise InputError(f"not an atelier {self.KIND} training checkpoint", p)
        old, new = ckpt["config"], self.config.to_dict()
        fixed = [k for k in self.RESUME_FIXED if old.get(k) != new.get(k)]
        identity = self._identity()
        if ckpt["identity"] != identity:
            fixed.append("styles (files or their contents)" if "styles_sha256" in identity
                         else "identity " + ", ".join(sorted(k for k in identity
                                                             if ckpt["identity"].get(k) != identity[k])))
        if fixed:
            details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" if k in old else k for k in fixed)
            raise InputError(f"the checkpoint was written with other settings ({details}); use the same "
                             "settings to resume, or another output path to start a new run", p)
        changed = [k for k in new if k not in self.RESUME_FIXED and k not in self.RESUME_FREE and old.get(k) != new[k]]
        if changed:
            warnings.warn("resuming with changed settings: " + ", ".join(
                f"{k} {old.get(k)!r} -> {new[k]!r}" for k in changed), UserWarning, stacklevel=2)
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise InputError(f"the checkpoint does not fit this network ({e})", p) from None
        for group in self.optimizer.param_groups:  # a changed lr applies from now on
            group["lr"] = self._learning_rate(int(ckpt["step"]))
        self._set_rng_state(ckpt["rng"])
        self.step = int(ckpt["step"])
        self.history = [dict(h) for h in ckpt["history"]]
        self.wall_seconds = float(ckpt["wall_seconds"])
        self._restore_extra(ckpt)
        return self.step

    # -- training -----------------------------------------------------------------------
    def _train_step(self) -> dict[str, float]:
        self._boundary_rng = self._rng_state()
        self._phase = "forward"
        self.model.train()
        parts = self._step_losses()
        self.optimizer.zero_grad(set_to_none=True)
        parts["total"].backward()
        values = {k: float(v.detach()) for k, v in parts.items()}
        if not all(math.isfinite(v) for v in values.values()):
            self._phase = "boundary"
            self.optimizer.zero_grad(set_to_none=True)
            raise FloatingPointError(f"the loss became {values['total']} at step {self.step + 1}; lower the "
                                     "learning rate or the weights, or use precision fp32")
        lr = self._learning_rate(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._phase = "update"
        self.optimizer.step()
        self.step += 1
        self.history.append({"step": self.step, **values})
        self._phase = "boundary"
        return values

    def train(self, callback: LossCallback | None = None, resume: bool = False,
              preview_callback: PreviewCallback | None = None, time_budget: float | None = None) -> dict:
        """Train up to ``config.steps`` steps, then write the weights and the model card.

        Args:
            callback: called after every step as ``callback(step, losses, images_per_second)``
                with the 1-based step number, the losses (floats named :attr:`LOSS_KEYS`,
                e.g. ``content``, ``style``, ``tv``, ``total``) and the throughput of that
                step. It may raise KeyboardInterrupt to stop the run (a checkpoint is
                written first).
            resume: continue from the checkpoint at ``paths["checkpoint"]``: the same step,
                network, optimizer, RNG states and loss history, so the run continues
                exactly as if it had not been stopped. ``config.steps`` may be raised.
            preview_callback: called every ``preview_every`` steps as
                ``preview_callback(step, image)`` with :meth:`preview`'s image; without it
                the preview is written to ``paths["preview"]``.
            time_budget: wall-clock seconds this call may train (None: no limit). When they
                are spent the run stops after the current step, as if ``config.steps`` had been
                reached: checkpoint, weights and model card are written (the card's
                ``stopped_by`` says ``"time budget"``), and a later ``resume=True`` continues.

        Returns:
            The model card (also written to ``paths["card"]``), see :meth:`export`.

        Raises:
            KeyboardInterrupt: re-raised after writing the checkpoint (Ctrl-C is deferred to
                the end of the running step; a second Ctrl-C stops at once, keeping the
                previous consistent state).
            FloatingPointError: a loss became NaN or infinite (the network is not updated).
            InputError: unreadable style images or checkpoint, or no readable photo.
        """
        cfg = self.config
        if resume:
            self.load_checkpoint()
        try:  # the output folder, as for any file the user names
            self.paths["weights"].parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create the output folder ({e.strerror or e})", self.paths["weights"].parent) from None
        self._before_training(resumed=resume)
        start, base = time.perf_counter(), self.wall_seconds
        deadline = None if time_budget is None else start + float(time_budget)
        self.stopped_by = None
        with _SigintGuard() as sigint:
            try:
                while self.step < cfg.steps:
                    if deadline is not None and time.perf_counter() >= deadline:
                        self.stopped_by = "time budget"
                        break
                    t0 = time.perf_counter()
                    values = self._train_step()
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                    ips = cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
                    self.wall_seconds = base + time.perf_counter() - start
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                        self.save_checkpoint()
                    if cfg.preview_every and self.step % cfg.preview_every == 0:
                        self._write_preview(preview_callback)
                    if callback is not None:
                        callback(self.step, dict(values), ips)
                    if sigint.hit:
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                self.wall_seconds = base + time.perf_counter() - start
                if self._phase == "update":  # parameters may be half updated: keep the last checkpoint
                    warnings.warn("interrupted in the middle of an optimizer update; the checkpoint file keeps "
                                  "the last state written before it", UserWarning, stacklevel=2)
                else:  # at a step boundary, or before the update (state of the last completed step)
                    self.save_checkpoint()
                self._phase = "boundary"
                raise
        self.save_checkpoint()
        return self.export()

    def _write_preview(self, preview_callback: PreviewCallback | None) -> None:
        image = self.preview()
        if preview_callback is not None:
            preview_callback(self.step, image)
        else:
            img.save_image(image, self.paths["preview"], metadata=self._preview_metadata())

    # -- export -------------------------------------------------------------------------
    def final_losses(self) -> dict[str, float]:
        """Mean of each loss over the last :data:`FINAL_LOSS_WINDOW` steps ({} before any step)."""
        tail = self.history[-FINAL_LOSS_WINDOW:]
        if not tail:
            return {}
        return {k: sum(h.get(k, 0.0) for h in tail) / len(tail) for k in self.LOSS_KEYS}  # older runs lack new keys

    @staticmethod
    def _images_entry(dataset: ImageFolderDataset, sources) -> dict:
        """A model card entry for a folder of training images: ``count``, ``skipped``, ``sources``."""
        return {
            "count": len(dataset),
            "skipped": [{"file": str(p), "reason": r} for p, r in dataset.skipped_files],
            "sources": sources if isinstance(sources, list) else [sources],
        }

    def export(self) -> dict:
        """Write the weights (float16 safetensors) and the model card (JSON), atomically.

        Returns:
            The model card: ``format``, ``version``, ``architecture``, ``weights_file``,
            ``sha256`` (of the weights file), ``dtype``, the trainer's inputs (styles,
            training images), ``hyperparameters`` (the config's ``to_dict()``), the trainer's
            extra entries, ``steps``, ``final_losses`` (mean of the last 100 steps),
            ``last_losses``, ``wall_seconds``, ``device``, ``precision``, versions and
            creation time.
        """
        from safetensors.torch import save as st_save

        cfg = self.config
        state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in self.model.state_dict().items()}
        blob = st_save(state, metadata={"format": self.CARD_FORMAT, **self._weights_metadata()})
        with atomic_write(self.paths["weights"]) as f:
            f.write(blob)
        try:
            from importlib.metadata import version

            atelier_version = version("atelier")
        except Exception:  # noqa: BLE001
            atelier_version = "unknown"
        device = str(self.device)
        if self.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(self.device)})"
        else:
            device += f" ({platform.processor() or platform.machine()})"
        card = {
            "format": self.CARD_FORMAT,
            "version": _VERSION,
            "architecture": self._architecture(),
            "weights_file": self.paths["weights"].name,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "dtype": "float16",
            **self._card_inputs(),
            "hyperparameters": cfg.to_dict(),
            **self._card_extra(),
            "steps": self.step,
            "stopped_by": self.stopped_by or "steps",
            "final_losses": self.final_losses(),
            "last_losses": {k: v for k, v in self.history[-1].items() if k != "step"} if self.history else {},
            "wall_seconds": round(self.wall_seconds, 3),
            "device": device,
            "precision": self.precision,
            "atelier_version": atelier_version,
            "torch_version": torch.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        with atomic_write(self.paths["card"], "w") as f:
            json.dump(card, f, indent=2, sort_keys=False)
            f.write("\n")
        return card


class FeedForwardTrainer(BaseTrainer):
    """Trains a :class:`~atelier.networks.TransformerNet` on photos against style images.

    Example::

        cfg = TrainConfig(styles=["starry.jpg"], content="photos/", out="models/starry", steps=20000)
        card = FeedForwardTrainer(cfg).train(callback=lambda step, losses, ips: print(step, losses["total"]))
        net = load_trained("models/starry.safetensors")

    Each step: ``batch_size`` random crops (float32 (B, 3, S, S) in [0, 1]) are drawn
    deterministically from (seed, step), each gets a random style index, the network
    output is compared with the crops' VGG content features and with the style's Gram
    matrices (:class:`~atelier.losses.StyleTarget`), and Adam updates the network.
    The loop, checkpoints, resume and export are those of :class:`BaseTrainer`.

    Args:
        config: the run's parameters (validated here).
        encoder: a VGG encoder to use instead of :func:`~atelier.features.vgg.get_encoder`
            ``(config.weights, config.pooling, device)``.

    Attributes:
        model: the network being trained (on ``device``).
        optimizer: its Adam optimizer.
        dataset: the :class:`~atelier.training.data.ImageFolderDataset` of training photos.
        step: optimizer steps done so far.
        history: one dict per step done: ``step``, ``content``, ``style``, ``tv`` (unweighted,
            normalized) and ``total`` (weighted) losses, as floats.
        wall_seconds: training time so far (summed over resumed runs).
        paths: the output files, see :func:`output_paths`.

    Raises:
        ValueError: an invalid configuration.
        InputError: missing style files or training photos (from the constructor) or
            unreadable style images, a bad checkpoint (from :meth:`train`).
    """

    def __init__(self, config: TrainConfig, encoder: VGGEncoder | None = None):
        self._init_base(config, encoder)
        self.style_files = [pathlib.Path(os.fspath(s)).expanduser() for s in config.styles]
        for p in self.style_files:
            if not p.is_file():
                raise InputError("style image not found" if not p.exists() else "style path is not a file", p)
        self.dataset = make_dataset(config.content, config.image_size, config.scale_jitter, config.seed,
                                    config.in_memory, self.device)
        self.num_styles = len(self.style_files)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.model = TransformerNet(self.num_styles, config.width)
        self._to_device(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self._style_targets: list[StyleTarget] | None = None
        self._style_sha: list[str] | None = None
        self.initialized_from: dict | None = None

    # -- setup ------------------------------------------------------------------------
    def style_sha256(self) -> list[str]:
        """sha256 of each style image file, in order."""
        if self._style_sha is None:
            self._style_sha = [sha256_file(p) for p in self.style_files]
        return self._style_sha

    def style_targets(self) -> list[StyleTarget]:
        """One :class:`~atelier.losses.StyleTarget` per style image: Gram matrices of the image
        resized to ``style_scale * image_size`` px (longest side)."""
        if self._style_targets is None:
            cfg = self.config
            size = max(img.MIN_SIDE, round(cfg.style_scale * cfg.image_size))
            targets = []
            for p in self.style_files:
                s = img.load_image(p, size=size, device=self.device)
                with torch.no_grad():
                    feats = self.encoder(s, cfg.style_layers, self.precision)
                targets.append(StyleTarget([{n: gram_matrix(feats[n]) for n in cfg.style_layers}]))
            self._style_targets = targets
        return self._style_targets

    def initialize_from(self, path: PathLike | str) -> dict:
        """Copy the weights of a trained model into the (untrained) network: see
        ``TrainConfig.init_from``.

        Returns:
            ``{"file", "sha256", "styles_matched"}``: the source file name, its sha256 and,
            per style of this run, the source style index it was copied from (None: the mean).

        Raises:
            InputError: the source is missing, corrupt (sha256) or of another width.
        """
        from ..feedforward import model_path  # a shipped model's name or a file

        path = model_path(path)
        src = load_trained(path)
        if src.width != self.model.width:
            raise InputError(f"the model to start from has width {src.width}, this run {self.model.width}; "
                             "use the same width", path)
        by_sha = {s.get("sha256"): i for i, s in enumerate(src.card.get("styles", []))}
        matched = [by_sha.get(sha) for sha in self.style_sha256()]
        source = src.state_dict()
        state = {}
        for name, value in self.model.state_dict().items():
            v = source[name]
            if name.endswith((".gamma", ".beta")):
                v = torch.stack([v[m] if m is not None else v.mean(0) for m in matched])
            state[name] = v
        self.model.load_state_dict(state)
        self.initialized_from = {"file": pathlib.Path(os.fspath(path)).name, "sha256": src.card["sha256"],
                                 "styles_matched": matched}
        return self.initialized_from

    def _before_training(self, resumed: bool) -> None:
        if not resumed and self.config.init_from and self.step == 0:
            self.initialize_from(self.config.init_from)
        self.style_targets()

    # -- data ---------------------------------------------------------------------------
    def batch(self, step: int) -> torch.Tensor:
        """The training crops of 0-based ``step``: float32 (batch_size, 3, S, S) in [0, 1], on the
        CPU. A pure function of (seed, step): epochs are reshuffled permutations of the photos."""
        return self._batch_of(self.dataset, step, -1)

    # -- checkpoints --------------------------------------------------------------------
    def _identity(self) -> dict:
        return {"num_styles": self.num_styles, "styles_sha256": self.style_sha256()}

    def _checkpoint_extra(self) -> dict:
        return {"initialized_from": self.initialized_from}

    def _restore_extra(self, ckpt: dict) -> None:
        self.initialized_from = ckpt.get("initialized_from")

    # -- training -----------------------------------------------------------------------
    def losses(self, x: torch.Tensor, style_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses of the network on crops ``x`` (float32 (B, 3, S, S) in [0, 1], on ``device``)
        with per-item style indices ``style_index`` (int64 (B,), CPU).

        Returns:
            float32 scalars ``content``, ``style``, ``tv`` (unweighted) and ``total`` (weighted),
            differentiable with respect to the network's parameters.
        """
        cfg = self.config
        targets = self.style_targets()
        onehot = F.one_hot(style_index, self.num_styles).to(device=self.device, dtype=torch.float32)
        with torch.no_grad():
            content_targets = self.encoder(x, cfg.content_layers, self.precision)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            y = self.model(x, onehot)
        y = y.float()
        feats = self.encoder(y, set(cfg.content_layers) | set(cfg.style_layers), self.precision)
        lc = sum(content_loss(feats[n], content_targets[n]) for n in cfg.content_layers) / len(cfg.content_layers)
        idx = style_index.tolist()
        present = sorted(set(idx))
        if len(present) == 1:
            ls = targets[present[0]](feats)
        else:  # each style's loss on its own images, weighted by their share of the batch
            ls = 0.0
            for s in present:
                sel = torch.tensor([j for j, k in enumerate(idx) if k == s], device=self.device)
                ls = ls + (len(sel) / len(idx)) * targets[s]({n: feats[n].index_select(0, sel) for n in cfg.style_layers})
        lt = tv_loss(y)
        total = cfg.content_weight * lc + cfg.style_weight * ls + cfg.tv_weight * lt
        return {"content": lc, "style": ls, "tv": lt, "total": total}

    def _step_losses(self) -> dict[str, torch.Tensor]:
        x = self.batch(self.step).to(self.device, non_blocking=True)
        style_index = torch.randint(self.num_styles, (x.shape[0],), generator=self.generator)
        return self.losses(x, style_index)

    def preview(self) -> torch.Tensor:
        """A fixed training photo (centre crop of the first readable one) stylized with each
        style (at most 8), side by side: float32 (1, 3, S, S * min(num_styles, 8)) in [0, 1], CPU."""
        if self._preview_image is None:
            self._preview_image = self.dataset.center_crop(0).unsqueeze(0)
        x = self._preview_image.to(self.device)
        with torch.no_grad():
            outs = [self.model(x, i) for i in range(min(self.num_styles, 8))]
        return torch.cat(outs, dim=3).float().cpu()

    def _preview_metadata(self) -> dict:
        return {"step": self.step, "styles": [p.name for p in self.style_files]}

    # -- export -------------------------------------------------------------------------
    def _weights_metadata(self) -> dict[str, str]:
        return {"num_styles": str(self.num_styles), "width": repr(float(self.config.width))}

    def _architecture(self) -> dict:
        return {
            "name": "TransformerNet", "num_styles": self.num_styles, "width": float(self.config.width),
            "papers": ["Johnson, Alahi & Fei-Fei 2016, Perceptual Losses for Real-Time Style Transfer",
                       "Ulyanov, Vedaldi & Lempitsky 2016, Instance Normalization",
                       "Dumoulin, Shlens & Kudlur 2017, A Learned Representation for Artistic Style"],
        }

    def _card_inputs(self) -> dict:
        return {
            "styles": [{"index": i, "file": p.name, "sha256": sha}
                       for i, (p, sha) in enumerate(zip(self.style_files, self.style_sha256()))],
            "training_images": self._images_entry(self.dataset, self.config.to_dict()["content"]),
        }

    def _card_extra(self) -> dict:
        return {"initialized_from": self.initialized_from}

    def export(self) -> dict:
        """Write the weights (float16 safetensors) and the model card (JSON), atomically.

        Returns:
            The model card: ``format``, ``version``, ``architecture`` (with ``num_styles``,
            ``width``, ``papers``), ``weights_file``, ``sha256`` (of the weights file),
            ``dtype``, ``styles`` (file name and sha256 per style, in index order),
            ``training_images`` (``count`` of files listed, ``skipped`` unreadable ones met
            during training, ``sources``), ``hyperparameters`` (:meth:`TrainConfig.to_dict`),
            ``initialized_from``, ``steps``, ``final_losses`` (mean of the last 100 steps),
            ``last_losses``, ``wall_seconds``, ``device``, ``precision``, versions and
            creation time.
        """
        return super().export()


def read_verified(path: PathLike, parse: Callable[[dict], object] = lambda card: None
                  ) -> tuple[dict, dict[str, torch.Tensor], pathlib.Path, object]:
    """Read exported weights and their model card, verifying the weights' sha256.

    Args:
        path: the ``.safetensors`` file (or its ``.json`` model card, or the common stem).
        parse: called with the card inside the card-reading checks (its KeyError, ValueError
            or TypeError is reported as an unreadable card); its result is returned.

    Returns:
        ``(card, state, weights_path, parsed)``: the card dict, the tensors (as stored,
        float16), the weights file and ``parse(card)``.

    Raises:
        InputError: naming the file: weights or card missing or unreadable, or the
            weights' sha256 differs from the card's (a corrupt or modified file).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    p = pathlib.Path(os.fspath(path)).expanduser()
    paths = output_paths(p.with_suffix("") if p.suffix.lower() == ".json" else p)
    weights, card_path = paths["weights"], paths["card"]
    if not weights.is_file():
        raise InputError("model weights not found", weights)
    if not card_path.is_file():
        raise InputError(f"model card {card_path.name} not found beside the weights; it is needed to verify "
                         "them (sha256)", weights)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        expected = str(card["sha256"]).lower()
        parsed = parse(card)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read the model card ({type(e).__name__}: {e})", card_path) from None
    blob = weights.read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected:
        raise InputError(f"sha256 {actual[:16]}... does not match the model card's {expected[:16]}...; the file "
                         "is corrupt or was modified: download or export it again", weights)
    try:
        state = st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise InputError(f"cannot read the weights ({e})", weights) from None
    return card, state, weights, parsed


def load_trained(path: PathLike, device: str | torch.device = "cpu") -> TransformerNet:
    """Load a trained network from its safetensors file, verified against its model card.

    Args:
        path: the ``.safetensors`` file (or its ``.json`` model card, or the common stem).
            The card ``<stem>.json`` must lie beside the weights.
        device: where to put the network.

    Returns:
        A float32 :class:`~atelier.networks.TransformerNet` in eval mode, with attributes
        ``card`` (the model card dict) and ``style_names`` (style file names by index).

    Raises:
        InputError: naming the file: weights or card missing or unreadable, the weights'
            sha256 differs from the card's (a corrupt or modified file: an error, never a
            warning), or the weights do not fit the architecture the card describes.
    """
    card, state, weights, (num_styles, width) = read_verified(
        path, lambda c: (int(c["architecture"]["num_styles"]), float(c["architecture"]["width"])))
    try:
        net = TransformerNet(num_styles, width)
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, ValueError) as e:
        raise InputError(f"the weights do not fit the network the model card describes ({e})", weights) from None
    net.card = card
    net.style_names = [s.get("file", str(i)) for i, s in enumerate(card.get("styles", []))]
    return net.to(device).eval()
