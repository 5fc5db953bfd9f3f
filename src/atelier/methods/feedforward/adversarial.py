"""Adversarial training of feed-forward style networks: content + style + adversarial loss.

The :class:`~atelier.networks.TransformerNet` of :class:`~.train.FeedForwardTrainer` is the
generator; a PatchGAN discriminator with spectral normalization
(:class:`~atelier.networks.discriminators.PatchDiscriminator`, Isola et al. 2017; Miyato et
al. 2018), at one or more scales, learns to tell random patches of the style painting(s)
from random patches of stylized training photos, and the network is trained to fool it on
top of the usual normalized content, style and total-variation losses. This is the
Markovian-GAN recipe of Li & Wand (2016, "Precomputed Real-Time Texture Synthesis with
Markovian Generative Adversarial Networks") with the perceptual losses of Johnson et al. 2016.

Each step after ``adv_warmup`` steps of plain perceptual training:

1. the perceptual losses of the batch and its stylized crops ``y`` (as in the plain trainer);
2. ``d_steps`` discriminator steps (Adam, betas (0.5, 0.999)): real = ``batch_size`` random
   ``patch_size`` patches of the style image (resized as for the style loss), fake = as many
   random patches of ``y`` (detached), both through DiffAugment (Zhao et al. 2020); hinge or
   non-saturating BCE loss, optional R1 penalty (:mod:`atelier.training.adversarial`). With
   several styles the discriminator has one logit map per style and each patch is judged by
   its own style's map;
3. the network's loss gains ``adv_weight`` times the generator's adversarial loss on fresh
   patches of ``y``.

A NaN or infinite loss stops the run before any network is updated, with a message naming
the loss and the step; the checkpoint on disk (the last good state) is kept. The
discriminator, its Adam state and every random draw are in the checkpoint, so a resumed run
continues exactly. The exported model is an ordinary feed-forward model (same model card
format): ``atelier apply`` and :func:`~atelier.training.cards.load_trained` use it unchanged.

Data-parallel (``atelier train --adversarial --nproc N``, :mod:`atelier.training.distributed`;
the arithmetic of PyTorch DDP, Li et al. 2020, as for the DCGAN of :mod:`atelier.methods.gan.train`):
each rank holds ``batch_size / N`` crops; the style indices, the patch positions and flips (real
and fake) and the DiffAugment numbers are drawn for the global batch on every rank and each rank
keeps its rows; the discriminator's gradients (R1 penalty included) are averaged over the ranks
before each of its steps, as the network's are before its step, and its losses are checked for
NaN/inf on the global batch (every rank stops together); batch norms in the discriminator
would be synchronized (:func:`~atelier.training.distributed.sync_batchnorm`; the PatchGAN has
none: spectral normalization only, whose power iteration depends on the weights alone, the
same on every rank). So N processes follow one process at the same global batch up to float
summation order; rank 0 alone writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...io import images as img
from ...training import distributed
from ...networks.discriminators import MultiScaleDiscriminator, patch_output_size
from ...training.adversarial import GAN_LOSSES, diff_augment, discriminator_update, g_loss, parse_policy, \
    random_patches
from ...training.loop import _RESUME_FIXED
from .train import FeedForwardTrainer, TrainConfig
from ...core.runtime import autocast

__all__ = ["AdversarialTrainConfig", "AdversarialTrainer"]


@dataclass
class AdversarialTrainConfig(TrainConfig):
    """:class:`~.train.TrainConfig` plus the adversarial term.

    Attributes:
        adv_weight: weight of the generator's adversarial loss (>= 0) next to the normalized
            content (1.0) and style (10.0) weights.
        gan_loss: ``"hinge"`` or ``"bce"`` (non-saturating).
        adv_warmup: steps of plain perceptual training before the adversarial term and the
            discriminator start (>= 0).
        d_lr: discriminator Adam learning rate (> 0).
        d_steps: discriminator steps per network step (>= 1).
        r1: R1 penalty gamma on real patches (>= 0; 0: none).
        d_width: channels of the discriminator's first layer (pix2pix: 64).
        d_layers: stride-2 layers of each PatchGAN (3: 70 x 70 px receptive field).
        d_scales: discriminator scales (1: one PatchGAN; 2 or more: each also sees the
            patches downsampled by 2, 4, ...).
        patch_size: side of the judged patches in pixels (0: ``image_size // 2``, at least 32).
        diff_augment: DiffAugment ops on real and fake patches (subset of
            ``color,translation,cutout``; "" for none).
    """

    adv_weight: float = 0.1
    gan_loss: str = "hinge"
    adv_warmup: int = 0
    d_lr: float = 2e-4
    d_steps: int = 1
    r1: float = 0.0
    d_width: int = 32
    d_layers: int = 3
    d_scales: int = 1
    patch_size: int = 0
    diff_augment: str = "cutout"

    @property
    def patch_side(self) -> int:
        """The patch side actually used (``patch_size`` or its default)."""
        return self.patch_size or max(32, self.image_size // 2)

    def validate(self) -> "AdversarialTrainConfig":
        """Check every field; returns self.

        Raises:
            ValueError: a field out of range, with a message naming it.
        """
        super().validate()
        for name, low in (("adv_warmup", 0), ("d_steps", 1), ("d_width", 1), ("d_layers", 1), ("d_scales", 1),
                          ("patch_size", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name.replace('_', ' ')} must be an integer >= {low}, got {v!r}")
        for name, positive in (("adv_weight", False), ("r1", False), ("d_lr", True)):
            v = getattr(self, name)
            if not (v > 0 if positive else v >= 0) or math.isinf(v):
                raise ValueError(f"{name.replace('_', ' ')} must be a finite number {'>' if positive else '>='} 0, "
                                 f"got {v}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")
        parse_policy(self.diff_augment)
        side = self.patch_side
        if side > self.image_size:
            raise ValueError(f"patch size {side} is larger than the training crops ({self.image_size} px)")
        try:
            patch_output_size(side // 2 ** (self.d_scales - 1), self.d_layers)
        except ValueError:
            raise ValueError(f"patches of {side} px are too small for {self.d_scales} scale(s) of a PatchGAN with "
                             f"{self.d_layers} layers; use larger patches or fewer scales/layers") from None
        return self


class AdversarialTrainer(FeedForwardTrainer):
    """:class:`~.train.FeedForwardTrainer` with a PatchGAN discriminator (see the module doc).

    Example::

        cfg = AdversarialTrainConfig(styles=["starry.jpg"], content="photos/", out="models/starry-adv",
                                     steps=4000, adv_weight=0.1, adv_warmup=500)
        card = AdversarialTrainer(cfg).train()

    Attributes (besides the plain trainer's):
        discriminator: the :class:`~atelier.networks.discriminators.MultiScaleDiscriminator`.
        d_optimizer: its Adam optimizer.
        history: per step also ``adv`` (the generator's adversarial loss, unweighted), ``d``
            (discriminator loss), ``d_real_acc`` and ``d_fake_acc`` (shares of real patch logits
            > 0 and fake ones < 0), ``r1`` when used; these are 0 during the warm-up.
        last_checkpoint_step: the step of the last checkpoint written (None before any).

    Raises:
        ValueError, InputError: as for the plain trainer.
    """

    CHECKPOINT_FORMAT = "atelier-adversarial-feedforward-checkpoint"
    KIND = "adversarial feed-forward"
    DISTRIBUTED = True  # torchrun / --nproc: global-batch draws, the discriminator's gradients averaged (module doc)
    RESUME_FIXED = _RESUME_FIXED + ("d_width", "d_layers", "d_scales")

    def __init__(self, config: AdversarialTrainConfig, encoder=None):
        super().__init__(config, encoder)
        cfg = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 1)
            self.discriminator = MultiScaleDiscriminator(cfg.d_scales, cfg.d_width, cfg.d_layers, self.num_styles)
        distributed.sync_batchnorm(self.discriminator, self.dist)  # none in the PatchGAN; any added: global statistics
        self._to_device(self.discriminator)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.d_lr, betas=(0.5, 0.999))
        self.policy = parse_policy(cfg.diff_augment)
        base = self.LOSS_KEYS[:-1]
        self.LOSS_KEYS = base + ("adv", "d", "d_real_acc", "d_fake_acc") + (("r1",) if cfg.r1 > 0 else ()) + ("total",)
        self._style_images: list[torch.Tensor] | None = None
        self.last_checkpoint_step: int | None = None

    # -- real patches -------------------------------------------------------------------
    def style_images(self) -> list[torch.Tensor]:
        """Each style image as the style loss sees it (longest side ``style_scale * image_size``),
        upscaled if needed so its shorter side holds a patch: float32 (1, 3, H, W) on ``device``."""
        if self._style_images is None:
            cfg = self.config
            size = max(img.MIN_SIDE, round(cfg.style_scale * cfg.image_size))
            out = []
            for p in self.style_files:
                s = img.load_image(p, size=size, device=self.device)
                short = min(s.shape[-2:])
                if short < cfg.patch_side:
                    f = cfg.patch_side / short
                    s = img.resize_to(s, math.ceil(s.shape[-2] * f), math.ceil(s.shape[-1] * f))
                out.append(s)
            self._style_images = out
        return self._style_images

    def real_patches(self, style_index: list[int]) -> torch.Tensor:
        """One random patch of the style painting of each index: float32 (B, 3, P, P) on ``device``.
        Distributed, ``style_index`` is the global batch's (its draws are made on every rank) and
        this rank's rows are returned: float32 (B / world size, 3, P, P)."""
        side = self.config.patch_side
        return self._local(torch.cat([random_patches(self.style_images()[s], side, 1, self.generator)
                                      for s in style_index]))

    def fake_patches(self, y: torch.Tensor) -> torch.Tensor:
        """One random patch (position and flip) of each stylized crop of ``y`` (float32 (b, 3, S, S),
        this rank's share): float32 (b, 3, P, P), differentiable; drawn for the global batch."""
        cfg = self.config
        if self.dist is None:
            return random_patches(y, cfg.patch_side, y.shape[0], self.generator)
        return random_patches(y, cfg.patch_side, cfg.batch_size, self.generator,
                              rows=distributed.shard(cfg.batch_size, self.dist), global_batch=cfg.batch_size)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment of this rank's share: the rows of the global batch's augmentation."""
        if self.dist is None:
            return diff_augment(x, self.policy, self.generator)
        return diff_augment(x, self.policy, self.generator, rows=distributed.shard(self.config.batch_size, self.dist),
                            global_batch=self.config.batch_size)

    def _judge(self, patches: torch.Tensor, style_index: list[int]) -> list[torch.Tensor]:
        """Logit maps (one per scale) of ``patches``, each patch judged by its own style's map."""
        rows = torch.arange(len(style_index), device=self.device)
        cols = torch.tensor(style_index, device=self.device)
        with autocast(self.device, self.precision):
            maps = self.discriminator(patches)
        return [m.float()[rows, cols] for m in maps]

    # -- training -----------------------------------------------------------------------
    def _d_step(self, y: torch.Tensor, idx: list[int]) -> dict[str, torch.Tensor]:
        """One discriminator step on this rank's stylized crops ``y`` (detached) with the global
        batch's style indices ``idx`` (the draws in the order of one process)."""
        cfg = self.config
        mine = idx[self._rows.start:self._rows.stop]
        real = self._augment(self.real_patches(idx))
        fake = self._augment(self.fake_patches(y))
        return discriminator_update(lambda t: self._judge(t, mine), real, fake, self.d_optimizer, cfg.gan_loss, cfg.r1,
                                    self.step + 1, before_update=self._mark_update,
                                    reduce_gradients=lambda: distributed.average_gradients(self.discriminator,
                                                                                           self.dist),
                                    reduce_values=None if self.dist is None else
                                    lambda v: distributed.average_values(v, self.dist, self.device))

    @property
    def _rows(self) -> range:
        """This rank's rows of the global batch (all of them on one process)."""
        return distributed.shard(self.config.batch_size, self.dist)

    def _before_training(self, resumed: bool) -> None:
        super()._before_training(resumed)
        distributed.broadcast_parameters(self.discriminator, self.dist)  # the loop broadcasts the network

    def _mark_update(self) -> None:
        self._phase = "update"  # the discriminator changes from here on

    def _step_losses(self) -> dict[str, torch.Tensor]:
        cfg = self.config
        x = self.batch(self.step).to(self.device, non_blocking=True)
        style_index = torch.randint(self.num_styles, (cfg.batch_size,), generator=self.generator)  # the global batch's
        out, y = self.losses_and_output(x, self._local(style_index), self.network_input(x, self.step))
        total = out.pop("total")
        zero = torch.zeros((), device=self.device)
        extra = {"adv": zero, "d": zero, "d_real_acc": zero, "d_fake_acc": zero}
        if cfg.r1 > 0:
            extra["r1"] = zero
        if self.step >= cfg.adv_warmup:
            idx = style_index.tolist()
            for _ in range(cfg.d_steps):
                extra.update(self._d_step(y.detach(), idx))
            fake = self._augment(self.fake_patches(y))
            extra["adv"] = g_loss(self._judge(fake, idx[self._rows.start:self._rows.stop]), cfg.gan_loss)
            total = total + cfg.adv_weight * extra["adv"]
            self.discriminator.zero_grad(set_to_none=True)  # its gradients from the network's loss are never used
        return {**out, **extra, "total": total}

    def _train_step(self) -> dict[str, float]:
        try:
            return super()._train_step()
        except FloatingPointError as e:
            kept = (f"the checkpoint of step {self.last_checkpoint_step} is kept" if self.last_checkpoint_step is not None
                    else "no checkpoint was written yet")
            raise FloatingPointError(f"{e} ({kept}; nothing was saved after the failure)") from None

    # -- checkpoints --------------------------------------------------------------------
    def save_checkpoint(self):
        path = super().save_checkpoint()
        self.last_checkpoint_step = self.step
        return path

    def _checkpoint_extra(self) -> dict:
        return {**super()._checkpoint_extra(),
                "discriminator": {k: v.detach().cpu() for k, v in self.discriminator.state_dict().items()},
                "d_optimizer": self.d_optimizer.state_dict()}

    def _restore_extra(self, ckpt: dict) -> None:
        from ...core.errors import InputError

        super()._restore_extra(ckpt)
        try:
            self.discriminator.load_state_dict(ckpt["discriminator"])
            self.d_optimizer.load_state_dict(ckpt["d_optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise InputError(f"the checkpoint does not fit this discriminator ({e})", self.paths["checkpoint"]) from None
        for group in self.d_optimizer.param_groups:
            group["lr"] = self.config.d_lr
        self.last_checkpoint_step = self.step

    # -- export -------------------------------------------------------------------------
    def _architecture(self) -> dict:
        arch = super()._architecture()
        arch["papers"] = arch["papers"] + [
            "Isola, Zhu, Zhou & Efros 2017, Image-to-Image Translation with Conditional Adversarial Networks (PatchGAN)",
            "Li & Wand 2016, Precomputed Real-Time Texture Synthesis with Markovian GANs",
            "Miyato, Kataoka, Koyama & Yoshida 2018, Spectral Normalization for GANs"]
        return arch

    def _card_extra(self) -> dict:
        cfg = self.config
        return {**super()._card_extra(), "adversarial": {
            "discriminator": {"name": "PatchDiscriminator", "spectral_norm": True, "base": cfg.d_width,
                              "layers": cfg.d_layers, "scales": cfg.d_scales, "patch_size": cfg.patch_side},
            "gan_loss": cfg.gan_loss, "weight": cfg.adv_weight, "warmup": cfg.adv_warmup, "r1": cfg.r1,
            "diff_augment": list(self.policy),
            "note": "the discriminator is kept in the checkpoint (.ckpt), not in the exported weights"}}
