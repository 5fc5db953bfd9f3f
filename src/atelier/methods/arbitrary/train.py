"""Training of the AdaIN decoder for arbitrary style transfer (Huang & Belongie 2017).

Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization" (ICCV 2017), §6.2: the VGG19 encoder ``f`` is fixed; only the decoder
``g`` (:class:`~atelier.networks.AdaINDecoder`) is trained, on pairs of a content photo
``c`` and a style image ``s`` (MS-COCO and WikiArt in the paper), with

* the AdaIN target ``t = AdaIN(f(c), f(s))`` at relu4_1 and the output ``g(t)``;
* content loss ``L_c = MSE(f(g(t)), t)`` at relu4_1 (against ``t``, not ``f(c)``);
* style loss ``L_s = sum_i MSE(mu(phi_i(g(t))), mu(phi_i(s))) + MSE(sigma(phi_i(g(t))), sigma(phi_i(s)))``
  over relu1_1, relu2_1, relu3_1 and relu4_1;
* ``L = content_weight * L_c + style_weight * L_s`` (paper: style weight 10).

The losses are mean squared errors of the encoder's features as in the paper, with one
change of units. The paper's encoder is the *normalized* VGG19 of Gatys et al. (2016),
rescaled so that every filter's mean activation is 1; atelier's Caffe VGG19 is not, and its
relu4_1 activations are about 20x its relu1_1 ones, so plain MSEs weigh the relu1_1
statistics (the colours) 400x less than the relu4_1 ones: a decoder trained that way
learns one flat palette. So each layer's features are divided by that layer's mean
activation over the training photos of step 1 (:attr:`AdaINTrainer.layer_scales`, saved
in checkpoints and the model card), the paper's normalization per layer rather than per
filter, and the paper's weights keep their meaning. Adam with the learning rate decayed as
``lr / (1 + lr_decay * step)`` (the reference implementation's schedule).

Both content photos and style images come from folders (or lists of files) through
:class:`~atelier.training.data.ImageFolderDataset` crops; each step pairs ``batch_size``
photo crops with ``batch_size`` style crops, both pure functions of (seed, step). The
training loop, checkpoints (exact resume), Ctrl-C handling, previews, float16 safetensors
export and the model card are those of :class:`~atelier.training.loop.BaseTrainer`.
Files as for feed-forward training (:func:`~atelier.training.cards.output_paths`):
``<out>.safetensors`` (decoder weights), ``<out>.json`` (model card), ``<out>.ckpt``,
``<out>.preview.png``. Load the result with :func:`atelier.methods.arbitrary.adain.load_adain`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ...core.errors import InputError
from ...encoders.vgg import VGGEncoder
from .model import CONTENT_LAYER, STYLE_LAYERS, AdaINModel, adain
from ...networks.decoders import AdaINDecoder
from ...losses import mean_std
from ...training.data import item_seed, make_dataset
from ...training.config import EncoderTrainerConfig, path_strings
from ...training.loop import BaseTrainer
from ...training.cards import ADAIN_CARD_FORMAT

__all__ = ["AdaINTrainConfig", "AdaINTrainer", "ADAIN_CHECKPOINT_FORMAT", "ADAIN_CARD_FORMAT"]

ADAIN_CHECKPOINT_FORMAT = "atelier-adain-checkpoint"
#: Salts of the two datasets' epoch permutations (see ``BaseTrainer._batch_of``).
_CONTENT_SALT, _STYLE_SALT = -1, -2
#: Pixel loss unit: about the standard deviation of a photo's pixels in [0, 1], so that
#: ``MSE / PIXEL_UNIT**2`` is about one minus R^2 of the reconstruction.
PIXEL_UNIT = 0.25
#: Styles shown in a preview.
PREVIEW_STYLES = 4

PathLike = Union[str, os.PathLike]


@dataclass(kw_only=True)
class AdaINTrainConfig(EncoderTrainerConfig):
    """Parameters of an AdaIN decoder training run (defaults: Huang & Belongie 2017 and
    their reference implementation): the shared fields of
    :class:`~atelier.training.config.EncoderTrainerConfig` (defaults here as below) and its own.

    Attributes:
        content: content photos: a folder (searched recursively), a file, or a list of them
            (the paper: MS-COCO).
        styles: style images, the same way (the paper: WikiArt); any number, each step
            draws ``batch_size`` random crops.
        out: path of the decoder weights; ``.safetensors`` is appended if missing. The
            checkpoint, model card and preview are written next to it.
        image_size: side of the square crops of photos and style images (>= 16; paper 256).
        batch_size: content/style pairs per step (>= 1; paper 8).
        steps: optimizer steps in all (reference implementation: 160 000).
        lr: Adam learning rate (1e-4).
        lr_decay: the learning rate of step k is ``lr / (1 + lr_decay * k)`` (5e-5; >= 0).
        content_weight, style_weight: weights of the content and style losses (1 and 10).
        width: channel multiplier of the :class:`~atelier.networks.AdaINDecoder` (> 0).
        scale_jitter: ``(lo, hi)`` random rescaling of the crops of both folders (see
            :class:`~atelier.training.data.ImageFolderDataset`); the default (1, 2) crops
            between the whole and half the shorter side, like the paper's "resize to 512,
            crop 256". None: always the whole shorter side.
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (autocast for the encoder and the
            decoder; statistics and losses in fp32).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` or a torch device string.
        seed: seeds the decoder's initial weights and the crops of both folders.
        checkpoint_every: write the checkpoint every N steps (0: only at the end and on Ctrl-C).
        preview_every: stylize a fixed photo with up to 4 fixed style crops every N steps (0: never).
        pooling: ``"max"`` or ``"avg"`` pooling in the VGG encoder.
        weights: None for the Caffe VGG19, or a torchvision VGG19 state-dict path. The
            decoder only works with the encoder it was trained with.
        identity_fraction: share of each batch (rounded, the last items) whose style image
            is the content crop itself, so that the AdaIN target is the photo's own relu4_1
            features: the decoder is shown the plain reconstruction case (``alpha=0``), which
            the paper's pairs of photo and painting never show it (in [0, 1]; 0: the paper).
        pixel_weight: weight of the pixel loss on those identity items, ``MSE(g(f(c)), c)``
            divided by :data:`PIXEL_UNIT` squared (about one minus R^2 of the photo); >= 0.
        in_memory: decode all images once and crop them on ``device``
            (:class:`~atelier.training.data.InMemoryImageDataset`; for GPUs).
    """

    NON_NEGATIVE = ("content_weight", "style_weight", "lr_decay", "pixel_weight")
    POSITIVE = ("lr", "width")

    content: Union[PathLike, Sequence[PathLike]] = ()
    styles: Union[PathLike, Sequence[PathLike]] = ()
    out: PathLike = "adain-decoder.safetensors"
    steps: int = 160_000
    lr: float = 1e-4
    lr_decay: float = 5e-5
    content_weight: float = 1.0
    style_weight: float = 10.0
    width: float = 1.0
    scale_jitter: Optional[tuple[float, float]] = (1.0, 2.0)
    identity_fraction: float = 0.0
    pixel_weight: float = 0.0
    in_memory: bool = False

    def validate(self) -> "AdaINTrainConfig":
        """Check every field; returns self.

        Raises:
            ValueError: a field out of range, with a message naming it.
        """
        for name in ("content", "styles"):
            v = getattr(self, name)
            empty = (not os.fspath(v)) if isinstance(v, (str, os.PathLike)) else not list(v)
            if empty:
                what = "content photos" if name == "content" else "style images"
                raise ValueError(f"{what} ({name}) are needed: a folder or a list of image files")
        self.check_fields()
        if not 0.0 <= self.identity_fraction <= 1.0:
            raise ValueError(f"identity fraction must be in [0, 1], got {self.identity_fraction}")
        return self

    def to_dict(self) -> dict:
        """JSON-serializable parameters (paths as strings, tuples as lists)."""
        d = super().to_dict()
        for k in ("content", "styles"):
            d[k] = path_strings(getattr(self, k))
        return d


class AdaINTrainer(BaseTrainer):
    """Trains an :class:`~atelier.networks.AdaINDecoder` for a fixed VGG encoder.

    Example::

        cfg = AdaINTrainConfig(content="coco/", styles="wikiart/", out="models/adain", steps=160_000)
        card = AdaINTrainer(cfg).train(callback=lambda step, losses, ips: print(step, losses["total"]))
        model = load_adain("models/adain.safetensors")

    Before the first step of a new run, :meth:`AdaINModel.calibrate
    <atelier.methods.arbitrary.model.AdaINModel.calibrate>` sets the decoder's input scale from the
    photos of step 1 (it is part of the weights, so a resumed run keeps it).

    Args:
        config: the run's parameters (validated here).
        encoder: a VGG encoder to use instead of :func:`~atelier.encoders.vgg.get_encoder`
            ``(config.weights, config.pooling, device)``.

    Attributes:
        model: the decoder being trained (on ``device``); checkpointed and exported.
        network: an :class:`~atelier.methods.arbitrary.model.AdaINModel` of the encoder and this decoder.
        optimizer: its Adam optimizer.
        dataset, style_dataset: the :class:`~atelier.training.data.ImageFolderDataset` of
            content photos and of style images.
        step, history, wall_seconds, paths: as for
            :class:`~atelier.methods.feedforward.train.FeedForwardTrainer`; the losses are ``content``,
            ``style`` (unweighted) and ``total`` (weighted).

    Raises:
        ValueError: an invalid configuration.
        InputError: missing or empty content or style folders (from the constructor), a bad
            checkpoint or no readable image (from :meth:`train`).
    """

    CHECKPOINT_FORMAT = ADAIN_CHECKPOINT_FORMAT
    CARD_FORMAT = ADAIN_CARD_FORMAT
    KIND = "AdaIN"
    RESUME_FIXED = ("width", "image_size", "batch_size", "seed", "scale_jitter", "pooling", "weights")
    RESUME_FREE = ("steps", "checkpoint_every", "preview_every", "device", "out", "styles", "content", "in_memory")
    LOSS_KEYS = ("content", "style", "pixel", "total")

    #: torchrun / --nproc (issue 26): the global batch is split over the ranks; calibration and loss
    #: units come from the whole first batch, the identity pairs are the global batch's last items
    DISTRIBUTED = True

    def __init__(self, config: AdaINTrainConfig, encoder: VGGEncoder | None = None):
        self._init_base(config, encoder)
        self.dataset = make_dataset(config.content, config.image_size, config.scale_jitter, config.seed,
                                    config.in_memory, self.device)
        try:
            self.style_dataset = make_dataset(config.styles, config.image_size, config.scale_jitter,
                                              item_seed(config.seed, -1, _STYLE_SALT), config.in_memory, self.device)
        except InputError as e:
            raise InputError("style images: " + e.message.replace("training image", "style image"), e.path) from None
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.model = AdaINDecoder(config.width)
        self._to_device(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self._network: AdaINModel | None = None
        self._preview_styles = None
        self._layer_scales: dict[str, float] | None = None

    @property
    def network(self) -> AdaINModel:
        """The encoder and the decoder being trained, as an :class:`~atelier.methods.arbitrary.model.AdaINModel`."""
        if self._network is None:
            self._network = AdaINModel(self.encoder, self.model, self.precision)
        return self._network

    def _before_training(self, resumed: bool) -> None:
        if not resumed and self.step == 0:  # on resume the scales come with the checkpoint
            self.network.calibrate(self._first_photos().to(self.device))
            self._layer_scales = None
            _ = self.layer_scales

    @property
    def layer_scales(self) -> dict[str, float]:
        """Loss units: layer name (relu1_1 ... relu4_1) -> mean activation of that layer over
        the content photos of step 1 (float, > 0). The losses divide each layer's features by
        it (see the module docs). Measured on first use; restored on resume."""
        if self._layer_scales is None:
            with torch.no_grad():
                feats = self.encoder(self._first_photos().to(self.device), STYLE_LAYERS, self.precision)
            self._layer_scales = {n: max(float(feats[n].float().mean()), 1e-6) for n in STYLE_LAYERS}
        return self._layer_scales

    def _checkpoint_extra(self) -> dict:
        return {"layer_scales": dict(self.layer_scales)}

    def _restore_extra(self, ckpt: dict) -> None:
        self._layer_scales = ckpt.get("layer_scales")  # None (older checkpoint): measured again

    def _card_extra(self) -> dict:
        return {"layer_scales": dict(self.layer_scales)}

    # -- data ---------------------------------------------------------------------------
    def _first_photos(self) -> torch.Tensor:
        """The content crops of step 1, the whole global batch on every rank (calibration)."""
        return self._batch_of(self.dataset, 0, _CONTENT_SALT, whole=True)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The (content, style) crops of 0-based ``step``: two float32 (batch_size, 3, S, S)
        tensors in [0, 1] on the CPU, a pure function of (seed, step)."""
        return (self._batch_of(self.dataset, step, _CONTENT_SALT),
                self._batch_of(self.style_dataset, step, _STYLE_SALT))

    # -- training -----------------------------------------------------------------------
    def losses(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        """The paper's losses for content crops and style crops (float32 (B, 3, S, S) in
        [0, 1] on ``device``; item i of ``content`` is stylized with item i of ``style``).

        The last ``round(identity_fraction * B)`` items of the global batch (B items over all
        ranks) take their own content crop as the style image (the reconstruction case) and add
        the pixel loss: the mean over those items, so that the ranks' average is the global one.

        Returns:
            float32 scalars ``content`` and ``style`` (unweighted, in the units of
            :attr:`layer_scales`), ``pixel`` (unweighted, in units of :data:`PIXEL_UNIT`; 0
            without identity items) and ``total`` (weighted), differentiable with respect to
            the decoder's parameters.
        """
        cfg, net, p, unit = self.config, self.network, self.precision, self.layer_scales
        n = content.shape[0]
        world, rank = (1, 0) if self.dist is None else (self.dist.world_size, self.dist.rank)
        k = round(cfg.identity_fraction * n * world)  # identity pairs in the global batch
        ident = torch.zeros(n * world, dtype=torch.bool)
        ident[n * world - k:] = k > 0
        ident = ident[rank * n:(rank + 1) * n].to(content.device)
        if k:
            style = torch.where(ident[:, None, None, None], content, style)
        with torch.no_grad():
            fc = net.encode_content(content, p)
            sf = net.encode_style(style, p)
            t = adain(fc, sf.target_mean, sf.target_std)
        out = net.decode(t, p)
        feats = self.encoder(out, STYLE_LAYERS, p)
        lc = F.mse_loss(feats[CONTENT_LAYER], t) / unit[CONTENT_LAYER] ** 2
        ls = 0.0
        for n in STYLE_LAYERS:
            m, s = mean_std(feats[n])
            ls = ls + (F.mse_loss(m, sf.mean[n]) + F.mse_loss(s, sf.std[n])) / unit[n] ** 2
        if k:  # the mean over the global batch's identity items: this rank's share, times the ranks
            per_item = (out.float() - content.float()).pow(2).mean(dim=(1, 2, 3))
            lp = world * (per_item * ident).sum() / (k * PIXEL_UNIT ** 2)
        else:
            lp = torch.zeros((), device=out.device)
        total = cfg.content_weight * lc + cfg.style_weight * ls + cfg.pixel_weight * lp
        return {"content": lc, "style": ls, "pixel": lp, "total": total}

    def _step_losses(self) -> dict[str, torch.Tensor]:
        content, style = self.batch(self.step)
        return self.losses(content.to(self.device, non_blocking=True), style.to(self.device, non_blocking=True))

    def _learning_rate(self, step: int) -> float:
        return self.config.lr / (1.0 + self.config.lr_decay * step)

    def _identity(self) -> dict:
        return {"network": "AdaINDecoder", "content_layer": CONTENT_LAYER}

    def preview(self) -> torch.Tensor:
        """A fixed photo (centre crop of the first readable one) and its stylizations with the
        centre crops of the first (up to) 4 style images, side by side: float32
        (1, 3, S, S * (1 + min(4, styles))) in [0, 1], CPU."""
        if self._preview_image is None:
            self._preview_image = self.dataset.center_crop(0).unsqueeze(0)
            k = min(PREVIEW_STYLES, len(self.style_dataset))
            self._preview_styles = torch.stack([self.style_dataset.center_crop(i) for i in range(k)])
        net, x = self.network, self._preview_image.to(self.device)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            styles = net.encode_style(self._preview_styles.to(self.device))
            outs = [x] + [net(x, styles.select(i)) for i in range(styles.batch)]
        self.model.train(was_training)
        return torch.cat(outs, dim=3).float().cpu()

    def _preview_metadata(self) -> dict:
        return {"step": self.step, "styles": [p.name for p in self.style_dataset.files[:PREVIEW_STYLES]]}

    # -- export -------------------------------------------------------------------------
    def _weights_metadata(self) -> dict[str, str]:
        return {"width": repr(float(self.config.width))}

    def _architecture(self) -> dict:
        cfg = self.config
        return {
            "name": "AdaINDecoder", "width": float(cfg.width), "channels": list(self.model.channels),
            "feature_scale": float(self.model.feature_scale),
            "encoder": {"arch": "vgg19", "layer": CONTENT_LAYER, "weights": cfg.weights, "pooling": cfg.pooling},
            "output": "linear, clipped to [0, 1] at inference",
            "papers": ["Huang & Belongie 2017, Arbitrary Style Transfer in Real-time with Adaptive Instance "
                       "Normalization"],
        }

    def _card_inputs(self) -> dict:
        d = self.config.to_dict()
        return {"style_images": self._images_entry(self.style_dataset, d["styles"]),
                "training_images": self._images_entry(self.dataset, d["content"])}

    def export(self) -> dict:
        """Write the decoder weights (float16 safetensors) and the model card (JSON), atomically.

        Returns:
            The model card: ``format`` (``"atelier-adain-decoder"``), ``version``,
            ``architecture`` (``width``, ``channels``, ``encoder`` with ``weights`` and
            ``pooling``, ``papers``), ``weights_file``, ``sha256``, ``dtype``,
            ``style_images`` and ``training_images`` (``count``, ``skipped``, ``sources``),
            ``hyperparameters`` (:meth:`AdaINTrainConfig.to_dict`), ``steps``,
            ``layer_scales`` (the loss units), ``final_losses``, ``last_losses``,
            ``wall_seconds``, ``device``, ``precision``, versions and creation time.
        """
        return super().export()
