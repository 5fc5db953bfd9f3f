"""The shared training loop: steps, checkpoints, exact resume, Ctrl-C, previews, a time
budget and export with a model card (:class:`BaseTrainer`).

Every trained thing (feed-forward networks, AdaIN and inversion decoders, ...) subclasses
:class:`BaseTrainer` and supplies its losses, batches and model-card fields; the methods'
trainers live with their methods (``atelier.methods.<method>.train``).

Files (for ``out = "models/starry.safetensors"``):

* ``models/starry.ckpt``: training checkpoint (model, Adam state, step, RNG states, loss
  history), written atomically every ``checkpoint_every`` steps, at the end, and when the
  run is interrupted with Ctrl-C; readable with ``torch.load(weights_only=True)``.
* ``models/starry.safetensors``: the trained weights in float16.
* ``models/starry.json``: the model card (see :mod:`atelier.training.cards`).
* ``models/starry.preview.png``: the latest preview, when ``preview_every`` > 0 and no
  preview callback is given.
Under torchrun (``atelier train --nproc N``) the loop runs data-parallel (rank 0 writes the
files): see :mod:`atelier.training.distributed`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import pathlib
import platform
import time
import warnings
from typing import Callable, Union

import torch

from ..io import images as img
from ..core.errors import InputError
from ..core.files import atomic_write
from ..encoders.vgg import VGGEncoder, get_encoder
from ..core.runtime import resolve_device
from ..encoders.precision import resolve_precision
from .cards import CARD_FORMAT, output_paths  # noqa: F401  (output_paths: part of this API)
from .checkpoint import SigintGuard, rng_state, set_rng_state
from .config import check_training_fields  # noqa: F401  (part of this API)
from .data import ImageFolderDataset, item_seed
from . import distributed

__all__ = ["BaseTrainer", "check_training_fields", "output_paths", "CHECKPOINT_FORMAT"]


CHECKPOINT_FORMAT = "atelier-feedforward-checkpoint"
_VERSION = 1
#: Steps averaged for the model card's ``final_losses``.
FINAL_LOSS_WINDOW = 100
# Changing these on resume would change the network or the data order: refused.
_RESUME_FIXED = ("width", "image_size", "batch_size", "seed", "scale_jitter")
# Changing these on resume is normal and not reported.
_RESUME_FREE = ("steps", "checkpoint_every", "preview_every", "device", "out", "styles", "content", "init_from",
                "in_memory")

PathLike = Union[str, os.PathLike]
LossCallback = Callable[[int, dict, float], None]
PreviewCallback = Callable[[int, torch.Tensor], None]

class BaseTrainer:
    """Machinery shared by atelier's trainers (:class:`FeedForwardTrainer`,
    :class:`~atelier.methods.arbitrary.train.AdaINTrainer`).

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

    The config is a :class:`~atelier.training.config.TrainerConfig` (the fields read here and
    ``validate()``, ``to_dict()``); one whose trainer uses :attr:`encoder` is an
    :class:`~atelier.training.config.EncoderTrainerConfig` (``pooling``, ``weights``).
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
    #: Whether this trainer runs data-parallel under torchrun (:mod:`atelier.training.distributed`):
    #: its per-item random draws are made for the global batch and cut with :meth:`_local`.
    DISTRIBUTED: bool = False

    config: object
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    dataset: ImageFolderDataset

    def _init_base(self, config, encoder: VGGEncoder | None = None) -> None:
        """Validate ``config`` and set the attributes every trainer has."""
        self.config = config.validate()
        self.dist, self.device = distributed.setup(resolve_device(config.device))
        if self.dist is not None and not self.DISTRIBUTED:
            raise ValueError(f"{self.KIND} training does not run on several processes yet; leave out --nproc")
        distributed.shard(config.batch_size, self.dist)  # distributed: the global batch must split evenly
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

    def _batch_of(self, dataset: ImageFolderDataset, step: int, salt: int = -1, whole: bool = False) -> torch.Tensor:
        """The crops of 0-based ``step`` from ``dataset``: float32 (batch_size, 3, S, S) in [0, 1], CPU, a
        pure function of (seed, salt, step): epochs are permutations of the files, shuffled by ``item_seed(seed,
        epoch, salt)``. Distributed: this rank's share of the global batch, or (``whole``) all of it."""
        bs, n = self.config.batch_size, len(dataset)
        items = []
        for j in (range(bs) if whole else distributed.shard(bs, self.dist)):
            epoch, pos = divmod(step * bs + j, n)
            items.append(dataset.get(self._perm_of(dataset, epoch, salt)[pos], epoch))
        return torch.stack(items)

    def _local(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a tensor drawn for the global batch (all ranks draw the same numbers)."""
        idx = distributed.shard(self.config.batch_size, self.dist)
        return batch if self.dist is None else batch[idx.start:idx.stop]

    is_main = property(lambda self: distributed.is_main(self.dist), doc="Whether this process writes files.")

    # -- RNG state ----------------------------------------------------------------------
    def _rng_state(self) -> dict:
        return rng_state(self.generator)

    def _set_rng_state(self, rng: dict) -> None:
        set_rng_state(rng, self.generator)

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
        if not self.is_main:  # rank 0 writes; the states are the same on every rank
            return self.paths["checkpoint"]
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
        distributed.average_gradients(self.model, self.dist)  # distributed: the global batch's gradient
        values = distributed.average_values({k: float(v.detach()) for k, v in parts.items()}, self.dist, self.device)
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
        distributed.broadcast_parameters(self.model, self.dist)  # every rank starts from rank 0's network
        start, base = time.perf_counter(), self.wall_seconds
        deadline = None if time_budget is None else start + float(time_budget)
        self.stopped_by = None
        with SigintGuard() as sigint:
            try:
                while self.step < cfg.steps:
                    if deadline is not None and distributed.any_rank(time.perf_counter() >= deadline, self.dist,
                                                                     self.device):
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
                    if distributed.any_rank(sigint.hit, self.dist, self.device):  # all ranks stop together
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
        if not self.is_main:
            return
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
        if self.is_main:
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
        card.update({} if self.dist is None else {"processes": self.dist.world_size, "backend": self.dist.backend})
        if self.is_main:
            with atomic_write(self.paths["card"], "w") as f:
                json.dump(card, f, indent=2, sort_keys=False)
                f.write("\n")
        return card

