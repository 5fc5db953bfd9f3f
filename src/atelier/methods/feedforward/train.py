"""Training of feed-forward style networks (Johnson et al. 2016; Dumoulin et al. 2017).

A :class:`~atelier.networks.TransformerNet` is trained with Adam so that its output for a
training photo has the photo's VGG19 content features and the Gram matrices of a style
image (the perceptual losses of Johnson et al., "Perceptual Losses for Real-Time Style
Transfer and Super-Resolution", 2016), plus a total-variation term. With several style
images one network learns them all (Dumoulin, Shlens & Kudlur, "A Learned Representation
for Artistic Style", 2017): each photo in a batch gets a random style index, the network
gets the one-hot style weights and the style loss uses that style's Gram matrices.

Losses are those of :mod:`atelier.losses` (normalized: the same weights suit any size)
on the project's VGG encoder (:func:`atelier.encoders.vgg.get_encoder`).

Files (for ``out = "models/starry.safetensors"``):

* ``models/starry.ckpt``: training checkpoint (model, Adam state, step, RNG states, loss
  history), written atomically every ``checkpoint_every`` steps, at the end, and when the
  run is interrupted with Ctrl-C; readable with ``torch.load(weights_only=True)``.
* ``models/starry.safetensors``: the trained weights in float16.
* ``models/starry.json``: the model card (styles and their sha256, training images,
  hyperparameters, steps, final losses, time, device, sha256 of the weights).
* ``models/starry.preview.png``: the latest preview, when ``preview_every`` > 0 and no
  preview callback is given.

The loop, checkpoints, resume and export are :class:`~atelier.training.loop.BaseTrainer`'s;
the files it writes are described there.
"""


from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ...io import images as img
from ...core.errors import InputError
from ...core.files import sha256_file
from ...encoders.vgg import VGGEncoder, validate_layers
from ...losses import EPS, ContentLoss, StyleTarget, TVLoss, content_loss, gram_matrix
from ...networks.transformer import TransformerNet
from ...training.data import make_dataset
from ...training.cards import load_trained
from ...training import distributed
from ...training.config import EncoderTrainerConfig, path_strings
from ...training.loop import BaseTrainer
from ...training.temporal import Motion, random_affine, temporal_loss, warp_affine
from ...core.runtime import autocast

__all__ = ["TrainConfig", "FeedForwardTrainer", "load_trained"]

PathLike = Union[str, os.PathLike]


@dataclass(kw_only=True)
class TrainConfig(EncoderTrainerConfig):
    """Parameters of a feed-forward style network training run: the shared fields of
    :class:`~atelier.training.config.EncoderTrainerConfig` (defaults here as below) and its own.

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
            :mod:`atelier.losses` (same defaults as :class:`~atelier.methods.gatys.optimize.GatysConfig`).
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
        temporal_weight: weight of the synthetic-motion temporal loss (>= 0; 0: none), which makes
            the network stable on video with no optical flow at inference
            (:mod:`atelier.training.temporal`; an extra network pass per step).
        motion: the random motions of that loss (:class:`~atelier.training.temporal.Motion`).
        augment_corruptions: share in [0, 1] of the training crops that the network sees
            JPEG-compressed, noisy or blurred while the content target stays the clean crop
            (:mod:`atelier.training.augment`; 0: none). Makes results hold up on phone photos.
    """

    NON_NEGATIVE = ("content_weight", "style_weight", "tv_weight", "temporal_weight")
    POSITIVE = ("lr", "style_scale", "width")

    styles: Sequence[PathLike] = ()
    content: Union[PathLike, Sequence[PathLike]] = ()
    out: PathLike = "style-net.safetensors"
    batch_size: int = 4
    steps: int = 40_000
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    style_scale: float = 1.0
    width: float = 1.0
    scale_jitter: Optional[tuple[float, float]] = (0.8, 1.2)
    content_layers: Sequence[str] = ("relu4_2",)
    style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    init_from: Optional[str] = None
    in_memory: bool = False
    temporal_weight: float = 0.0
    motion: Motion = Motion()
    augment_corruptions: float = 0.0

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
        self.check_fields()
        validate_layers(self.content_layers, self.style_layers)
        if not 0.0 <= float(self.augment_corruptions) <= 1.0:
            raise ValueError(f"augment_corruptions (the share of corrupted crops, --augment-share) must be in [0, 1], "
                             f"got {self.augment_corruptions}")
        return self

    def to_dict(self) -> dict:
        """JSON-serializable parameters (paths as strings, tuples as lists)."""
        d = super().to_dict()
        d["styles"] = [os.fspath(s) for s in self.styles]
        d["content"] = path_strings(self.content)
        for k in ("content_layers", "style_layers"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d


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
        encoder: a VGG encoder to use instead of :func:`~atelier.encoders.vgg.get_encoder`
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

    DISTRIBUTED = True  # torchrun / --nproc: per-item draws are made for the global batch (BaseTrainer._local)

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
        if config.temporal_weight > 0:
            self.LOSS_KEYS = ("content", "style", "tv", "temporal", "total")

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
        from ...training.zoo import model_path  # a shipped model's name or a file

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
    def network_input(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """What the network is fed for clean crops ``x`` at 0-based ``step``: ``x`` itself, or with
        ``augment_corruptions`` > 0 a corrupted copy (:func:`atelier.training.augment.corrupt_batch`,
        a pure function of (seed, step)); ``x`` is never modified. Distributed, ``x`` is this rank's
        share and gets the rows of the global batch's corruptions."""
        cfg = self.config
        if not cfg.augment_corruptions:
            return x
        from ...training.augment import corrupt_batch

        if self.dist is None:
            return corrupt_batch(x, cfg.seed, step, float(cfg.augment_corruptions))[0]
        return corrupt_batch(x, cfg.seed, step, float(cfg.augment_corruptions),
                             rows=distributed.shard(cfg.batch_size, self.dist), global_batch=cfg.batch_size)[0]

    def losses(self, x: torch.Tensor, style_index: torch.Tensor,
               net_input: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Losses of the network on crops ``x`` (float32 (B, 3, S, S) in [0, 1], on ``device``)
        with per-item style indices ``style_index`` (int64 (B,), CPU). ``net_input`` (same shape):
        what the network is fed instead of ``x`` (a corrupted copy); the content target is
        always ``x``.

        Returns:
            float32 scalars ``content``, ``style``, ``tv`` (unweighted) and ``total`` (weighted),
            differentiable with respect to the network's parameters.
        """
        return self.losses_and_output(x, style_index, net_input)[0]

    def losses_and_output(self, x: torch.Tensor, style_index: torch.Tensor, net_input: torch.Tensor | None = None
                          ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """:meth:`losses` and the stylized crops they were computed on: float32 (B, 3, S, S),
        differentiable (for losses added by a subclass, e.g. an adversarial term)."""
        cfg = self.config
        targets = self.style_targets()
        onehot = F.one_hot(style_index, self.num_styles).to(device=self.device, dtype=torch.float32)
        with torch.no_grad():
            content_targets = self.encoder(x, cfg.content_layers, self.precision)
        with autocast(self.device, self.precision):
            y = self.model(x if net_input is None else net_input, onehot)
        y = y.float()
        feats = self.encoder(y, set(cfg.content_layers) | set(cfg.style_layers), self.precision)
        lc = ContentLoss(content_targets, cfg.content_layers, loss=self._content_loss)(feats)
        idx = style_index.tolist()
        present = sorted(set(idx))
        if len(present) == 1:
            ls = targets[present[0]](feats)
        else:  # each style's loss on its own images, weighted by their share of the batch
            ls = 0.0
            for s in present:
                sel = torch.tensor([j for j, k in enumerate(idx) if k == s], device=self.device)
                ls = ls + (len(sel) / len(idx)) * targets[s]({n: feats[n].index_select(0, sel) for n in cfg.style_layers})
        lt = TVLoss()(y)
        total = cfg.content_weight * lc + cfg.style_weight * ls + cfg.tv_weight * lt
        out = {"content": lc, "style": ls, "tv": lt}
        if cfg.temporal_weight > 0:  # net(A(x) + noise) should equal A(net(x)) where A keeps the pixel in frame
            # drawn for the global batch, this rank's rows kept (all of them on one process)
            theta = self._local(random_affine(cfg.batch_size, cfg.motion, self.generator, self.device))
            moved, valid = warp_affine(x, theta)
            noise = self._local(torch.randn((cfg.batch_size, *moved.shape[1:]), generator=self.generator))
            noise = noise.to(self.device) * cfg.motion.noise
            with autocast(self.device, self.precision):
                y_moved = self.model((moved + noise).clamp(0, 1), onehot)
            lm = temporal_loss(y_moved, warp_affine(y, theta)[0], valid)
            total = total + cfg.temporal_weight * lm
            out["temporal"] = lm
        out["total"] = total
        return out, y

    def _content_loss(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """:func:`~atelier.losses.content_loss`; distributed, its denominator ``mean(target**2)`` is
        the global batch's, so the mean over the ranks is the one-process loss."""
        if self.dist is None:
            return content_loss(features, target)
        den = distributed.global_mean(target.float().pow(2).mean(), self.dist)
        return (features.float() - target.float()).pow(2).mean() / (den + EPS)

    def _step_losses(self) -> dict[str, torch.Tensor]:
        x = self.batch(self.step).to(self.device, non_blocking=True)
        style_index = self._local(torch.randint(self.num_styles, (self.config.batch_size,), generator=self.generator))
        return self.losses(x, style_index, self.network_input(x, self.step))

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

