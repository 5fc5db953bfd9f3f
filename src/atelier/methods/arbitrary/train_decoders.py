"""Training of the inversion decoders of universal style transfer (Li et al. 2017).

Li et al., "Universal Style Transfer via Feature Transforms" (NeurIPS 2017), §3.1: with the
VGG19 encoder ``f`` fixed, a decoder ``g`` (:class:`~atelier.networks.decoders.InversionDecoder`)
for one layer (relu1_1 ... relu5_1) is trained to reconstruct the input image ``x`` from
``f(x)``::

    L = pixel_weight * ||g(f(x)) - x||^2 + feature_weight * ||f(g(f(x))) - f(x)||^2

No style loss: the decoders depend on no style, and any image teaches them (here photos and
paintings alike, so that they also invert painting-like features, which is what whitening and
colouring produce). As for the AdaIN decoder the feature MSE is divided by the square of the
layer's mean activation over the images of step 1 (:attr:`InversionTrainer.layer_scale`), and
the pixel MSE by :data:`~atelier.methods.arbitrary.train.PIXEL_UNIT` squared, so both terms are about
1 for a poor reconstruction and the weights are comparable across layers.

The loop, checkpoints, exact resume, Ctrl-C, time budget, float16 safetensors export and the
model card are those of :class:`~atelier.training.loop.BaseTrainer`. Load the result with
:func:`load_inversion_decoder`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ...encoders.vgg import VGGEncoder
from ...networks.decoders import DECODER_LAYERS, InversionDecoder
from .train import PIXEL_UNIT
from ...training.data import make_dataset
from ...training.config import EncoderTrainerConfig, path_strings
from ...training.loop import BaseTrainer
from ...training.cards import DECODER_CARD_FORMAT, load_inversion_decoder  # noqa: F401  (re-exported)
from ...core.runtime import autocast

__all__ = ["DecoderTrainConfig", "InversionTrainer", "load_inversion_decoder", "DECODER_CARD_FORMAT"]

DECODER_CHECKPOINT_FORMAT = "atelier-inversion-decoder-checkpoint"

PathLike = Union[str, os.PathLike]


@dataclass(kw_only=True)
class DecoderTrainConfig(EncoderTrainerConfig):
    """Parameters of an inversion decoder training run (defaults after Li et al. 2017): the
    shared fields of :class:`~atelier.training.config.EncoderTrainerConfig` (defaults here as
    below) and its own.

    Attributes:
        content: training images (photos and/or paintings): a folder (searched recursively),
            a file, or a list of them.
        out: path of the decoder weights (``.safetensors`` appended if missing); checkpoint,
            model card and preview are written next to it.
        layer: the encoder layer to invert, ``"relu1_1"`` ... ``"relu5_1"``.
        width: channel multiplier of the decoder (> 0).
        image_size, batch_size, steps: square crop side (>= 16), images per step, steps in all.
        lr, lr_decay: Adam learning rate of step k: ``lr / (1 + lr_decay * k)``.
        pixel_weight, feature_weight: weights of the two reconstruction losses (>= 0).
        scale_jitter, precision, device, seed, checkpoint_every, preview_every, pooling,
        weights, in_memory: as for :class:`~atelier.methods.arbitrary.train.AdaINTrainConfig`.
    """

    NON_NEGATIVE = ("pixel_weight", "feature_weight", "lr_decay")
    POSITIVE = ("lr", "width")

    content: Union[PathLike, Sequence[PathLike]] = ()
    out: PathLike = "decoder-relu4_1.safetensors"
    layer: str = "relu4_1"
    width: float = 1.0
    steps: int = 20_000
    lr: float = 1e-4
    lr_decay: float = 5e-5
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    scale_jitter: Optional[tuple[float, float]] = (1.0, 1.5)
    in_memory: bool = False

    def validate(self) -> "DecoderTrainConfig":
        """Check every field; returns self.

        Raises:
            ValueError: a field out of range, with a message naming it.
        """
        v = self.content
        if (not os.fspath(v)) if isinstance(v, (str, os.PathLike)) else not list(v):
            raise ValueError("training images (content) are needed: a folder or a list of image files")
        if self.layer not in DECODER_LAYERS:
            raise ValueError(f"layer must be one of {DECODER_LAYERS}, got {self.layer!r}")
        self.check_fields()
        return self

    def to_dict(self) -> dict:
        """JSON-serializable parameters (paths as strings, tuples as lists)."""
        d = super().to_dict()
        d["content"] = path_strings(self.content)
        return d


class InversionTrainer(BaseTrainer):
    """Trains an :class:`~atelier.networks.decoders.InversionDecoder` for a fixed VGG encoder.

    Example::

        cfg = DecoderTrainConfig(content=["photos/", "paintings/"], layer="relu3_1", out="models/d3")
        card = InversionTrainer(cfg).train(time_budget=600)
        decoder = load_inversion_decoder("models/d3.safetensors")

    Losses (history, callback, card): ``pixel``, ``feature`` (unweighted, normalized) and
    ``total`` (weighted). Other attributes and errors as for
    :class:`~atelier.methods.arbitrary.train.AdaINTrainer`.
    """

    CHECKPOINT_FORMAT = DECODER_CHECKPOINT_FORMAT
    CARD_FORMAT = DECODER_CARD_FORMAT
    KIND = "inversion decoder"
    RESUME_FIXED = ("layer", "width", "image_size", "batch_size", "seed", "scale_jitter", "pooling", "weights")
    RESUME_FREE = ("steps", "checkpoint_every", "preview_every", "device", "out", "content", "in_memory")
    LOSS_KEYS = ("pixel", "feature", "total")
    #: torchrun / --nproc (issue 26): each rank reconstructs its share of the global batch; the
    #: calibration (feature scale, loss unit) is measured on the whole first batch on every rank.
    DISTRIBUTED = True

    def __init__(self, config: DecoderTrainConfig, encoder: VGGEncoder | None = None):
        self._init_base(config, encoder)
        self.dataset = make_dataset(config.content, config.image_size, config.scale_jitter, config.seed,
                                    config.in_memory, self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = InversionDecoder(config.layer, config.width)
        self._to_device(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self._layer_scale: float | None = None

    # -- setup ----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The features of the decoder's layer: float32 (N, C, H / f, W / f); differentiable."""
        layer = self.config.layer
        return self.encoder(x, [layer], self.precision)[layer].float()

    def _before_training(self, resumed: bool) -> None:
        if not resumed and self.step == 0:
            with torch.no_grad():
                f = self.encode(self.batch(0, whole=True).to(self.device))
            rms = float(f.pow(2).mean().sqrt())
            k = 0 if not (rms > 0) or math.isinf(rms) else min(14, max(-14, round(math.log2(rms))))
            self.model.feature_scale.fill_(2.0 ** -k)
            self._layer_scale = max(float(f.mean()), 1e-6)
        _ = self.layer_scale

    @property
    def layer_scale(self) -> float:
        """Loss unit of the feature term: the layer's mean activation over the images of step 1."""
        if self._layer_scale is None:
            with torch.no_grad():
                self._layer_scale = max(float(self.encode(self.batch(0, whole=True).to(self.device)).mean()), 1e-6)
        return self._layer_scale

    def _checkpoint_extra(self) -> dict:
        return {"layer_scale": self.layer_scale}

    def _restore_extra(self, ckpt: dict) -> None:
        self._layer_scale = ckpt.get("layer_scale")

    def _card_extra(self) -> dict:
        return {"layer_scale": self.layer_scale}

    def batch(self, step: int, whole: bool = False) -> torch.Tensor:
        """The crops of 0-based ``step``: float32 (batch_size, 3, S, S) in [0, 1] (distributed: this
        rank's share, or with ``whole`` all of them)."""
        return self._batch_of(self.dataset, step, -1, whole)

    # -- training -------------------------------------------------------------------------
    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstruction losses of crops ``x`` (float32 (B, 3, S, S) in [0, 1] on ``device``):
        float32 scalars ``pixel``, ``feature`` and ``total``."""
        cfg = self.config
        with torch.no_grad():
            fx = self.encode(x)
        with autocast(self.device, self.precision):
            out = self.model(fx).float()
        lp = F.mse_loss(out, x) / PIXEL_UNIT ** 2
        lf = F.mse_loss(self.encode(out), fx) / self.layer_scale ** 2
        return {"pixel": lp, "feature": lf, "total": cfg.pixel_weight * lp + cfg.feature_weight * lf}

    def _step_losses(self) -> dict[str, torch.Tensor]:
        return self.losses(self.batch(self.step).to(self.device, non_blocking=True))

    def _learning_rate(self, step: int) -> float:
        return self.config.lr / (1.0 + self.config.lr_decay * step)

    def _identity(self) -> dict:
        return {"network": "InversionDecoder", "layer": self.config.layer}

    def preview(self) -> torch.Tensor:
        """A fixed image (centre crop of the first one) and its reconstruction, side by side:
        float32 (1, 3, S, 2S) in [0, 1], CPU."""
        if self._preview_image is None:
            self._preview_image = self.dataset.center_crop(0).unsqueeze(0)
        x = self._preview_image.to(self.device)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            y = self.model(self.encode(x)).clamp(0, 1)
        self.model.train(was_training)
        return torch.cat([x, y], dim=3).float().cpu()

    # -- export ---------------------------------------------------------------------------
    def _weights_metadata(self) -> dict[str, str]:
        return {"layer": self.config.layer, "width": repr(float(self.config.width))}

    def _architecture(self) -> dict:
        cfg = self.config
        return {
            "name": "InversionDecoder", "layer": cfg.layer, "width": float(cfg.width),
            "channels": list(self.model.channels), "feature_scale": float(self.model.feature_scale),
            "encoder": {"arch": "vgg19", "layer": cfg.layer, "weights": cfg.weights, "pooling": cfg.pooling},
            "output": "linear, clipped to [0, 1] at inference",
            "papers": ["Li et al. 2017, Universal Style Transfer via Feature Transforms"],
        }

    def _card_inputs(self) -> dict:
        return {"training_images": self._images_entry(self.dataset, self.config.to_dict()["content"])}
