"""DCGAN training (Radford et al. 2016) with DiffAugment (Zhao et al. 2020) and a generator EMA.

Each step: a batch of random crops of the training paintings (resized to ``image_size``) and
as many generated images from z ~ N(0, I); the discriminator takes ``d_steps`` Adam steps on
the hinge (or non-saturating BCE) loss of DiffAugment-ed real and fake images, with an
optional R1 penalty (:mod:`atelier.training.adversarial`); then the generator takes one
Adam step on its adversarial loss through the same augmentation, and an exponential moving
average (EMA) of its weights is updated. The EMA generator is what previews show and what
is exported: its batch-norm statistics are recomputed from 8 fixed batches of 32 first
("standing statistics"), since averaged weights do not match the running statistics.

Held-out split: with ``holdout_every = k`` (> 0), every k-th training file (in the sorted
order of :func:`~atelier.training.data.list_images`, 1-based k, 2k, ...) is kept out of
training, so ``atelier gan evaluate`` can compare samples with paintings the networks never saw.

Files (``out = "run/generator.safetensors"``): ``run/generator.ckpt`` (checkpoint: generator,
discriminator, EMA, both Adam states, step, RNG states, history), ``run/generator.safetensors``
(the EMA generator, float16), ``run/generator.json`` (model card, format
:data:`~atelier.methods.gan.sample.GAN_CARD_FORMAT`), ``run/generator.preview.png`` (the latest
sample grid) and ``run/samples/step-NNNNNN.png`` (every ``preview_every`` steps). The loop,
checkpoints, exact resume, Ctrl-C and the time budget are those of
:class:`~atelier.training.loop.BaseTrainer`.

Data-parallel (``atelier gan train --nproc N``, :mod:`atelier.training.distributed`; the
arithmetic of PyTorch DDP and SyncBatchNorm): the global batch of ``batch_size`` paintings and
latents is split evenly over the ranks; the batch norms of both networks normalize with the
global batch's statistics (:class:`~atelier.training.distributed.SyncBatchNorm2d`); DiffAugment
draws its random numbers for the global batch and each rank keeps its rows; the
discriminator's gradients are averaged before each of its steps, as the generator's are. So N
processes follow one process at the same global batch up to float summation order. The
minibatch standard deviation (``d_mbstd``) of a share is not the global batch's: refused.
The EMA generator's standing statistics use fixed latents and are the same on every rank.
"""

from __future__ import annotations

import copy
import os
import pathlib
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from ...io import images as img
from ...core.errors import InputError
from ...networks.generators import DCGAN_SIZES, UPSAMPLE_MODES, DCGANDiscriminator, DCGANGenerator
from ...training import distributed
from ...training.adversarial import GAN_LOSSES, diff_augment, discriminator_update, ema_update, g_loss, parse_policy
from ...training.data import list_images, make_dataset
from ...training.config import TrainerConfig, path_strings
from ...training.loop import BaseTrainer
from ...core.runtime import autocast
from .sample import GAN_CARD_FORMAT, latents

__all__ = ["GANTrainConfig", "GANTrainer", "split_files", "standing_stats"]

PathLike = Union[str, os.PathLike]


def split_files(images, holdout_every: int) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """``(training, held_out)`` image files: every ``holdout_every``-th file of
    :func:`~atelier.training.data.list_images` ``(images)`` is held out (0: none).

    Raises:
        InputError: no image found, or nothing left to train on.
    """
    files = list_images(images)
    if holdout_every <= 0:
        return files, []
    train = [f for i, f in enumerate(files) if (i + 1) % holdout_every]
    held = [f for i, f in enumerate(files) if not (i + 1) % holdout_every]
    if not train:
        raise InputError(f"holding out every {holdout_every}th of {len(files)} image(s) leaves none to train on")
    return train, held


@torch.no_grad()
def standing_stats(g: DCGANGenerator, batches: int = 8, batch_size: int = 32, seed: int = 12345) -> None:
    """Recompute ``g``'s batch-norm running statistics as the plain average over ``batches``
    fixed random batches (deterministic; ``g`` is left in eval mode)."""
    bns = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    old = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    g.train()
    dev = next(g.parameters()).device
    for k in range(batches):
        g(latents(batch_size, g.z_dim, seed + k).to(dev))
    for m, mo in zip(bns, old):
        m.momentum = mo
    g.eval()


@dataclass(kw_only=True)
class GANTrainConfig(TrainerConfig):
    """Parameters of a DCGAN training run: the shared fields of
    :class:`~atelier.training.config.TrainerConfig` (defaults here as below) and its own.

    Attributes:
        images: the training paintings: a folder (searched recursively), a file, or a list.
        out: path of the exported (EMA) generator; ``.safetensors`` is appended if missing.
        image_size: side of the generated images, one of 32, 64 (Radford et al.), 128.
        batch_size: real (and fake) images per step (>= 2; Radford et al.: 128).
        steps: generator steps in all.
        lr, d_lr: Adam learning rates of generator and discriminator (Radford et al.: 2e-4,
            betas (0.5, 0.999)).
        z_dim: latent size; width, d_width: channel base of generator and discriminator.
        upsample: generator upsampling, ``"deconv"`` (transposed convolutions, Radford et al.) or
            ``"resize"`` (nearest resize + 3x3 convolution, Odena et al. 2016: no checkerboard).
        d_mbstd: minibatch standard-deviation channel in the discriminator (Karras et al. 2018).
        d_norm: ``"batch"`` (batch norm, the discriminator of Radford et al.; default) or
            ``"spectral"`` (spectral normalization, Miyato et al. 2018; on the training pack at
            width 32 it stayed near chance for 2,750 steps, see docs/benchmarks.md).
        gan_loss: ``"bce"`` (non-saturating, the paper's) or ``"hinge"``.
        d_steps: discriminator steps per generator step (>= 1).
        r1: R1 penalty gamma (0: none).
        diff_augment: DiffAugment ops, comma-separated subset of ``color,translation,cutout``
            ("" for none).
        ema_decay: EMA decay of the generator weights per step (0 <= decay < 1).
        holdout_every: hold out every k-th file for evaluation (0: train on all).
        scale_jitter: ``(lo, hi)`` zoom range of the random crops (see
            :class:`~atelier.training.data.ImageFolderDataset`); None: whole shorter side.
        in_memory: decode the paintings once and crop them in memory.
        precision, device, seed, checkpoint_every, preview_every: as for every trainer
            (``preview_every``: write a sample grid every N steps).
    """

    INTEGERS = (("batch_size", 2), ("steps", 0), ("z_dim", 1), ("width", 1), ("d_width", 1), ("d_steps", 1),
                ("holdout_every", 0), ("seed", 0), ("checkpoint_every", 0), ("preview_every", 0))
    NON_NEGATIVE = ("r1",)
    POSITIVE = ("lr", "d_lr")

    images: Union[PathLike, Sequence[PathLike]] = ()
    out: PathLike = "gan/generator.safetensors"
    image_size: int = 64
    batch_size: int = 32
    steps: int = 20_000
    lr: float = 2e-4
    d_lr: float = 2e-4
    z_dim: int = 128
    width: int = 64
    d_width: int = 64
    upsample: str = "deconv"
    d_mbstd: bool = False
    d_norm: str = "batch"
    gan_loss: str = "bce"
    d_steps: int = 1
    r1: float = 0.0
    diff_augment: str = "color,translation,cutout"
    ema_decay: float = 0.999
    holdout_every: int = 10
    scale_jitter: Optional[tuple[float, float]] = (1.0, 1.15)
    in_memory: bool = True
    precision: str = "fp32"
    checkpoint_every: int = 500
    preview_every: int = 500

    def validate(self) -> "GANTrainConfig":
        """Check every field; returns self.

        Raises:
            ValueError: a field out of range, with a message naming it.
        """
        if isinstance(self.images, (str, os.PathLike)) and not os.fspath(self.images) or \
                not isinstance(self.images, (str, os.PathLike)) and not list(self.images):
            raise ValueError("training images are needed: a folder or a list of image files")
        if self.image_size not in DCGAN_SIZES:
            raise ValueError(f"image size must be one of {DCGAN_SIZES} for the DCGAN, got {self.image_size!r}")
        self.check_fields()
        if not (0 <= self.ema_decay < 1):
            raise ValueError(f"ema decay must be in [0, 1), got {self.ema_decay}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        if not isinstance(self.d_mbstd, bool):
            raise ValueError(f"d mbstd must be true or false, got {self.d_mbstd!r}")
        if self.d_norm not in ("spectral", "batch"):
            raise ValueError(f"d norm must be 'spectral' or 'batch', got {self.d_norm!r}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")
        parse_policy(self.diff_augment)
        return self

    def to_dict(self) -> dict:
        """JSON-serializable parameters (paths as strings, tuples as lists)."""
        d = super().to_dict()
        d["images"] = path_strings(self.images)
        return d


class GANTrainer(BaseTrainer):
    """Trains a :class:`~atelier.networks.generators.DCGANGenerator` against a
    :class:`~atelier.networks.generators.DCGANDiscriminator` on a folder of paintings.

    Example::

        cfg = GANTrainConfig(images="paintings/", out="run/generator", steps=20000)
        card = GANTrainer(cfg).train(time_budget=3600)
        g = load_generator("run/generator.safetensors")

    Attributes:
        model: the generator being trained; ``discriminator``, ``ema`` (the averaged generator),
            ``optimizer`` and ``d_optimizer`` (Adam, betas (0.5, 0.999)).
        dataset: the training paintings; ``held_out``: the held-out files.
        history: per step ``g`` (generator loss), ``d`` (discriminator loss), ``d_real_acc`` and
            ``d_fake_acc`` (shares of real logits > 0 and fake logits < 0), ``r1`` (when used)
            and ``total`` (= ``g``).

    Under torchrun (``--nproc``) it trains data-parallel as the module docstring says: each rank
    holds ``batch_size / world_size`` rows of every batch.

    Raises:
        ValueError: an invalid configuration, or ``d_mbstd`` on several processes.
        InputError: no training image (constructor), a bad checkpoint (:meth:`train`).
    """

    CHECKPOINT_FORMAT = "atelier-dcgan-checkpoint"
    CARD_FORMAT = GAN_CARD_FORMAT
    KIND = "DCGAN"
    RESUME_FIXED = ("image_size", "batch_size", "seed", "z_dim", "width", "d_width", "d_norm", "upsample", "d_mbstd",
                    "holdout_every",
                    "scale_jitter")
    RESUME_FREE = ("steps", "checkpoint_every", "preview_every", "device", "out", "images", "in_memory")
    DISTRIBUTED = True  # data-parallel under torchrun, batch norm over the global batch

    def __init__(self, config: GANTrainConfig):
        self._init_base(config)
        cfg = self.config
        if self.dist is not None and cfg.d_mbstd:
            raise ValueError("--d-mbstd does not run on several processes (the minibatch standard deviation of a "
                             "share is not the global batch's); leave out --nproc or --d-mbstd")
        train_files, self.held_out = split_files(cfg.images, cfg.holdout_every)
        self.dataset = make_dataset(train_files, cfg.image_size, cfg.scale_jitter, cfg.seed, cfg.in_memory,
                                    self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = DCGANGenerator(cfg.z_dim, cfg.width, cfg.image_size, cfg.upsample)
            self.discriminator = DCGANDiscriminator(cfg.d_width, cfg.image_size, spectral=cfg.d_norm == "spectral",
                                                    mbstd=cfg.d_mbstd)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)  # plain batch norm: standing statistics
        distributed.sync_batchnorm(self.model, self.dist)  # distributed: the global batch's statistics
        distributed.sync_batchnorm(self.discriminator, self.dist)
        for m in (self.model, self.discriminator, self.ema):
            self._to_device(m)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.d_lr, betas=(0.5, 0.999))
        self.policy = parse_policy(cfg.diff_augment)
        self.LOSS_KEYS = ("g", "d", "d_real_acc", "d_fake_acc") + (("r1",) if cfg.r1 > 0 else ()) + ("total",)
        self.samples_dir = self.paths["weights"].parent / "samples"

    # -- checkpoints --------------------------------------------------------------------
    def _identity(self) -> dict:
        return {"training_images": len(self.dataset), "held_out": len(self.held_out)}

    def _checkpoint_extra(self) -> dict:
        return {"discriminator": {k: v.detach().cpu() for k, v in self.discriminator.state_dict().items()},
                "d_optimizer": self.d_optimizer.state_dict(),
                "ema": {k: v.detach().cpu() for k, v in self.ema.state_dict().items()}}

    def _restore_extra(self, ckpt: dict) -> None:
        try:
            self.discriminator.load_state_dict(ckpt["discriminator"])
            self.d_optimizer.load_state_dict(ckpt["d_optimizer"])
            self.ema.load_state_dict(ckpt["ema"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise InputError(f"the checkpoint does not fit these networks ({e})", self.paths["checkpoint"]) from None
        for group in self.d_optimizer.param_groups:
            group["lr"] = self.config.d_lr

    # -- training -----------------------------------------------------------------------
    def _autocast(self):
        return autocast(self.device, self.precision)

    def _before_training(self, resumed: bool) -> None:
        distributed.broadcast_parameters(self.discriminator, self.dist)  # the loop broadcasts the generator
        distributed.broadcast_parameters(self.ema, self.dist)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment of this rank's share: the rows of the global batch's augmentation."""
        if self.dist is None:
            return diff_augment(x, self.policy, self.generator)
        return diff_augment(x, self.policy, self.generator, rows=distributed.shard(self.config.batch_size, self.dist),
                            global_batch=self.config.batch_size)

    def _latents(self) -> torch.Tensor:
        """This rank's rows of the step's global batch of latents (drawn on every rank)."""
        z = torch.randn(self.config.batch_size, self.config.z_dim, generator=self.generator)
        return self._local(z).to(self.device)

    def _d_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.config
        real_aug = self._augment(real)
        fake_aug = self._augment(fake)

        def judge(t: torch.Tensor) -> torch.Tensor:
            with self._autocast():
                return self.discriminator(t)

        return discriminator_update(judge, real_aug, fake_aug, self.d_optimizer, cfg.gan_loss, cfg.r1, self.step + 1,
                                    before_update=self._mark_update,
                                    reduce_gradients=lambda: distributed.average_gradients(self.discriminator,
                                                                                           self.dist),
                                    reduce_values=None if self.dist is None else  # all ranks stop together on NaN
                                    lambda v: distributed.average_values(v, self.dist, self.device))

    def _mark_update(self) -> None:
        self._phase = "update"  # the discriminator changes from here on: a second Ctrl-C keeps the last checkpoint

    def _step_losses(self) -> dict[str, torch.Tensor]:
        cfg = self.config
        real = self._batch_of(self.dataset, self.step).to(self.device, non_blocking=True)
        z = self._latents()
        with self._autocast():
            fake = self.model(z).float()
        for k in range(cfg.d_steps):
            if k:
                with torch.no_grad(), self._autocast():
                    extra = self.model(self._latents()).float()
                d_out = self._d_step(real, extra)
            else:
                d_out = self._d_step(real, fake.detach())
        with self._autocast():
            logits = self.discriminator(self._augment(fake))
        lg = g_loss(logits, cfg.gan_loss)
        self.discriminator.zero_grad(set_to_none=True)  # its gradients from the generator loss are never used
        return {"g": lg, **d_out, "total": lg}

    def _train_step(self) -> dict[str, float]:
        values = super()._train_step()
        ema_update(self.ema, self.model, self.config.ema_decay)
        return values

    # -- previews -----------------------------------------------------------------------
    def preview(self) -> torch.Tensor:
        """An 8 x 8 grid of EMA-generator samples from 64 fixed latents (seeded by ``seed``):
        float32 (1, 3, 8 * S, 8 * S) in [0, 1], CPU."""
        standing_stats(self.ema)
        with torch.no_grad():
            x = self.ema(latents(64, self.config.z_dim, self.config.seed).to(self.device)).float().cpu()
        s = self.config.image_size
        return x.reshape(8, 8, 3, s, s).permute(2, 0, 3, 1, 4).reshape(1, 3, 8 * s, 8 * s)

    def _write_preview(self, preview_callback) -> None:
        if not self.is_main:  # rank 0 writes
            return
        image = self.preview()
        if preview_callback is not None:
            preview_callback(self.step, image)
            return
        meta = self._preview_metadata()
        img.save_image(image, self.paths["preview"], metadata=meta)
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        img.save_image(image, self.samples_dir / f"step-{self.step:06d}.png", metadata=meta)

    # -- export -------------------------------------------------------------------------
    def _architecture(self) -> dict:
        cfg = self.config
        return {"name": "DCGANGenerator", "z_dim": cfg.z_dim, "base": cfg.width, "size": cfg.image_size,
                "upsample": cfg.upsample,
                "discriminator": {"name": "DCGANDiscriminator", "base": cfg.d_width, "norm": cfg.d_norm,
                                  "mbstd": cfg.d_mbstd},
                "papers": ["Radford, Metz & Chintala 2016, Unsupervised Representation Learning with Deep "
                           "Convolutional Generative Adversarial Networks",
                           "Zhao, Liu, Lin, Zhu & Han 2020, Differentiable Augmentation for Data-Efficient GAN Training",
                           "Miyato, Kataoka, Koyama & Yoshida 2018, Spectral Normalization for GANs"]
                + (["Odena, Dumoulin & Olah 2016, Deconvolution and Checkerboard Artifacts"]
                   if cfg.upsample == "resize" else [])
                + (["Karras, Aila, Laine & Lehtinen 2018, Progressive Growing of GANs (minibatch stddev)"]
                   if cfg.d_mbstd else [])}

    def _card_inputs(self) -> dict:
        entry = self._images_entry(self.dataset, self.config.to_dict()["images"])
        entry["held_out"] = {"count": len(self.held_out), "rule": f"every {self.config.holdout_every}th file of the "
                             "sorted list, 1-based" if self.config.holdout_every else "none"}
        return {"training_images": entry}

    def _card_extra(self) -> dict:
        return {"weights": "exponential moving average of the generator (decay "
                f"{self.config.ema_decay}), batch-norm statistics recomputed from 8 batches of 32"}

    def _weights_metadata(self) -> dict[str, str]:
        cfg = self.config
        return {"z_dim": str(cfg.z_dim), "base": str(cfg.width), "size": str(cfg.image_size), "upsample": cfg.upsample}

    def export(self) -> dict:
        """Write the EMA generator (float16 safetensors, batch-norm statistics recomputed) and its
        model card (format :data:`GAN_CARD_FORMAT`), atomically; returns the card (see
        :meth:`BaseTrainer.export`)."""
        standing_stats(self.ema)
        trained, self.model = self.model, self.ema
        try:
            return super().export()
        finally:
            self.model = trained
