"""Optimization-based style transfer (Gatys, Ecker & Bethge 2016, "Image Style Transfer
Using Convolutional Neural Networks"), with the extensions of Gatys et al. 2017
("Controlling Perceptual Factors in Neural Style Transfer"): coarse-to-fine scales,
colour preservation and several blended styles.

The stylized image's pixels are optimized directly with L-BFGS or Adam against
content, Gram-matrix style and total-variation losses (:mod:`atelier.losses`) on
VGG19 features computed in one encoder pass per iteration.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ...io import images as img
from ...imaging import color
from ...core.protocols import ExtraLoss
from ...core.limits import scaled_dims
from ...core.padding import circular_padding
from ...core.runtime import resolve_device
from ...encoders.precision import resolve_precision
from ...encoders.vgg import VGGEncoder, get_encoder
from ...imaging import regions, tileable as _tileable
from ...losses import (ContentLoss, GuidedStyleTarget, PerceptualLoss, StyleTarget, TVLoss, gram_matrix,
                       normalize_weights)
from .config import (LBFGS_MEMORY, MIN_SCALE_SIZE, OPTIMIZERS, PRESERVE_COLOR_MODES, PYRAMID_THRESHOLD,  # noqa: F401
                     GatysConfig, check_sizes, pyramid_sizes)
from .lbfgs import LBFGS
from .tiled import TILED_LBFGS_HISTORY, TiledObjective, plan_levels, tiled_grams

@dataclass
class Progress:
    """What a progress callback receives after every iteration.

    Attributes:
        iteration: 1-based iteration within the current scale.
        iterations: iterations per scale.
        scale: 0-based pyramid level; ``scales`` levels in all.
        size: (H, W) of the current level in pixels.
        loss_tensors: the losses as 0-dim tensors on the device (reading them does not wait).
        losses: (property) ``content``, ``style``, ``tv`` (unweighted, normalized) and ``total``
            (weighted) as floats; the first read waits for the device (a host synchronisation on a GPU).
        image: the current stylized image, float32 (1, 3, H, W) in [0, 1] (not a copy: clone it to keep it).
        elapsed: seconds since the run started.
    """

    iteration: int
    iterations: int
    scale: int
    scales: int
    size: tuple[int, int]
    loss_tensors: dict
    image: torch.Tensor
    elapsed: float

    @property
    def losses(self) -> dict:
        cached = self.__dict__.get("_floats")
        if cached is None:
            cached = self.__dict__["_floats"] = {k: float(v) for k, v in self.loss_tensors.items()}
        return cached


class StyleTransferInterrupted(KeyboardInterrupt):
    """Raised when a run is interrupted (Ctrl-C); ``.image`` holds the current stylized
    image at the size of the scale it was on (not enlarged: with several scales an early
    stop gives a smaller image), float32 (1, 3, H, W) in [0, 1], and ``.iteration`` the
    iterations done at the last scale."""

    def __init__(self, image: torch.Tensor, iteration: int, scale: int):
        super().__init__("interrupted")
        self.image, self.iteration, self.scale = image, iteration, scale


class GatysStyleTransfer:
    """Gatys et al. style transfer on tensors, with a per-iteration callback.

    Example::

        st = GatysStyleTransfer(GatysConfig(size=512, iterations=200))
        out = st.run(content, [style1, style2], callback=lambda p: print(p.iteration, p.losses))

    ``content`` and each style are float32 (1, 3, H, W) RGB tensors in [0, 1] (any size;
    they are resized here). The result is float32 (1, 3, H, W) in [0, 1] with the longest
    side equal to ``config.size`` (or the content's size).

    After :meth:`run`, ``last_losses`` holds the final losses and ``stats`` timing
    figures (``seconds``, ``iterations``, ``seconds_per_iteration``, ``device``,
    ``precision``).

    ``sync_every``: the losses are brought to the host (``last_losses``, the check that they are
    finite) every that many iterations and at the end of each scale, not after every one, so a
    GPU is never waited for inside the loop (issue 25); None: 1 on the CPU (where reading a
    scalar costs nothing), 20 elsewhere. A non-finite loss is then reported at the first check
    after it appeared. The L-BFGS step itself never synchronises (:mod:`.lbfgs`).

    Print sizes (issue 24): ``tile`` (``"auto"``: tile the levels that would not fit
    ``max_memory``; ``"off"``; or a tile side in px) and ``max_memory`` (``"8G"``, bytes; default
    80 % of the memory available) choose, per level, whether it is optimized whole or tile by tile
    with the whole image's objective (:mod:`atelier.methods.gatys.tiled`); ``plans`` holds the
    plans of the last :meth:`run` and ``tile_progress(done, total)``, if set, is called after every
    tile (an iteration at 4K takes minutes).

    Raises (from :meth:`run`):
        ValueError: invalid configuration.
        InputError: a level that does not fit even in tiles, or tiles asked with masks or extra losses.
        StyleTransferInterrupted: on KeyboardInterrupt, carrying the current image.
    """

    def __init__(self, config: GatysConfig | None = None, encoder: VGGEncoder | None = None,
                 max_pixels: Optional[int] = None, sync_every: Optional[int] = None, tile="auto",
                 max_memory=None, **overrides):
        config = replace(config or GatysConfig(), **overrides)
        self.max_pixels = max_pixels
        self.tile, self.max_memory = tile, max_memory
        self.plans: list = []
        self.tile_progress: Optional[Callable[[int, int], None]] = None
        self.config = config.validate()
        self.device = resolve_device(config.device)
        if sync_every is not None and (isinstance(sync_every, bool) or not isinstance(sync_every, int)
                                       or sync_every < 1):
            raise ValueError(f"sync_every must be an integer >= 1, got {sync_every!r}")
        self.sync_every = sync_every or (1 if self.device.type == "cpu" else 20)
        self.precision = resolve_precision(config.precision, self.device)
        self.encoder = encoder if encoder is not None else get_encoder(config.weights, config.pooling, self.device)
        self.last_losses: dict = {}
        self.stats: dict = {}

    # -- targets --------------------------------------------------------------------------
    def _prepare(self, content: torch.Tensor, styles: Sequence[torch.Tensor]):
        return color.color_inputs(content, list(styles), self.config.preserve_color)

    def style_grams(self, styles: Sequence[torch.Tensor], longest: int,
                    tile: Optional[int] = None) -> list[dict[str, torch.Tensor]]:
        """Gram targets of each style image resized to ``style_scale * longest`` px (longest side);
        ``tile`` (px): a style image larger than that is passed in tiles, its Gram matrices summed
        (:func:`~atelier.methods.gatys.tiled.tiled_grams`)."""
        cfg = self.config
        out = []
        for s in styles:
            size = max(img.MIN_SIDE, round(cfg.style_scale * longest))
            s = img.resize_longest(s.to(self.device), size)
            if tile is not None and size > tile:
                out.append(tiled_grams(self.encoder, s, cfg.style_layers, self.precision, tile))
                continue
            with torch.no_grad():
                feats = self.encoder(s, cfg.style_layers, self.precision)
            out.append({n: gram_matrix(f) for n, f in feats.items()})
        return out

    def _init_image(self, content: torch.Tensor, styles: Sequence[torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        init = self.config.init
        h, w = content.shape[-2:]
        if isinstance(init, torch.Tensor):
            x = img.resize_to(img.load_image(init).to(self.device), h, w)
        elif init == "content":
            x = content.clone()
        elif init == "noise":
            x = torch.rand(content.shape, generator=gen, device="cpu").to(self.device)
            if self.config.preserve_color == "luminance":
                x = x[:, :1].expand(-1, 3, -1, -1).clone()
        elif init == "style":
            x = img.resize_to(styles[0], h, w)
        else:  # a path
            x = img.resize_to(img.load_image(init).to(self.device), h, w)
            if self.config.preserve_color == "luminance":
                x = color.luminance(x).expand(-1, 3, -1, -1).clone()
        return x.to(self.device, torch.float32)

    # -- losses ---------------------------------------------------------------------------
    def objective(self, content_targets: dict, style_target: StyleTarget) -> PerceptualLoss:
        """The weighted objective of Gatys et al. (2016, eq. 7, plus total variation) against
        prepared targets: a :class:`~atelier.losses.PerceptualLoss` of ``content``
        (:class:`~atelier.losses.ContentLoss` on ``content_layers``), ``style`` (``style_target``, a
        :class:`~atelier.losses.StyleTarget` or, with regions, a
        :class:`~atelier.losses.GuidedStyleTarget`) and ``tv`` (:class:`~atelier.losses.TVLoss`,
        wrapping when ``tileable``), weighted by ``content_weight``, ``style_weight``, ``tv_weight``."""
        cfg = self.config
        return PerceptualLoss({"content": (cfg.content_weight, ContentLoss(content_targets, cfg.content_layers)),
                               "style": (cfg.style_weight, style_target),
                               "tv": (cfg.tv_weight, TVLoss(wrap=cfg.tileable))})

    def losses(self, x: torch.Tensor, content_targets: dict, style_target: StyleTarget) -> dict:
        """Unweighted and total losses of image ``x`` (float32 (1, 3, H, W) in [0, 1]) against
        prepared targets (see :meth:`objective`): 0-dim float32 tensors ``content``, ``style``,
        ``tv`` and ``total``, differentiable with respect to ``x``."""
        cfg = self.config
        feats = self.encoder(x, set(cfg.content_layers) | set(cfg.style_layers), self.precision)
        return self.objective(content_targets, style_target)(feats, x)

    # -- main loop ------------------------------------------------------------------------
    def run(self, content: torch.Tensor, styles: Sequence[torch.Tensor],
            callback: Callable[[Progress], None] | None = None, *, init: torch.Tensor | None = None,
            extra_losses: Sequence[ExtraLoss] = (), masks: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        """Stylize ``content`` with ``styles``; see the class docstring for shapes and errors.

        Args:
            init: float32 (1, 3, H, W) in [0, 1], the image to start from instead of
                ``config.init`` (resized to the first scale), e.g. the previous video frame's
                result warped by the optical flow (Ruder et al. 2016).
            extra_losses: terms added to the objective at the last scale only (the output size):
                each maps the current image (1, 3, H, W) to a weighted scalar; their sum is
                reported as the ``extra`` loss (e.g. the temporal loss of video).
            masks: regions with their own style (Gatys et al. 2017 §4.1, issue 28): float (1, 1, H, W)
                in [0, 1] at the content's size, one per style image (style k where mask k is white,
                the photo kept where no mask is), or one with two styles (the first where white);
                see :mod:`atelier.imaging.regions`. Each region's guided Gram matrices
                (:class:`~atelier.losses.GuidedStyleTarget`, the masks averaged onto every layer's
                grid) are matched to its own style; the kept region is the photo in the output.
                Not with ``style_blend``.
        """
        cfg = self.config
        if not styles:
            raise ValueError("at least one style image is needed")
        blend = normalize_weights(cfg.style_blend, len(styles), "style blend")
        guides = keep = None
        if masks:
            if cfg.style_blend is not None:
                raise ValueError("give either a style blend (mixing the styles) or masks (placing them), not both")
            guides, keep = regions.region_weights(list(masks), len(styles))
        gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else torch.seed() % 2**63)
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed)
        content = img.load_image(content).to(self.device)
        styles = [img.load_image(s).to(self.device) for s in styles]
        original_content = content
        h0, w0 = content.shape[-2:]
        final = cfg.size or max(h0, w0)
        out_h, out_w = scaled_dims(h0, w0, final)
        if cfg.tileable:
            out_h, out_w = _tileable.tileable_dims(out_h, out_w)
        sizes = check_sizes(cfg, (h0, w0), [tuple(s.shape[-2:]) for s in styles], self.max_pixels, self.device,
                            self.tile, self.max_memory)
        per_scale = cfg.iterations_per_scale(len(sizes))
        self.plans = plans = plan_levels(cfg, (h0, w0), sizes, self.device, self.tile, self.max_memory)
        if any(p is not None and p.count > 1 for p in plans) and (masks or extra_losses):
            from ...core.errors import InputError

            raise InputError(f"{'--mask regions' if masks else 'temporal losses (video)'} are not tiled; at "
                             f"{out_w}x{out_h} the run needs tiles ({next(p for p in plans if p and p.count > 1).describe()}): ask "
                             "for a smaller size or a larger --max-memory")
        content, styles = self._prepare(content, styles)
        layer_w = None if cfg.style_layer_weights is None else dict(zip(cfg.style_layers, cfg.style_layer_weights))

        start = time.perf_counter()
        total_iters = 0
        x = None
        self._keep = keep
        with circular_padding(cfg.tileable):  # tileable: every convolution wraps around
            for level, longest in enumerate(sizes):
                h, w = (out_h, out_w) if level == len(sizes) - 1 else scaled_dims(h0, w0, longest)
                if cfg.tileable:
                    h, w = _tileable.tileable_dims(h, w)
                c = img.resize_to(content, h, w)
                if cfg.tileable:
                    c = _tileable.make_periodic(c)
                plan = plans[level]
                tiled = plan is not None and plan.count > 1  # one tile: the whole image, a short history
                if not tiled:
                    with torch.no_grad():
                        content_targets = self.encoder(c, cfg.content_layers, self.precision)
                if plan is not None:
                    style_target = StyleTarget(self.style_grams(styles, max(h, w), plan.tile), blend, layer_w)
                elif guides is None:
                    style_target = StyleTarget(self.style_grams(styles, max(h, w)), blend, layer_w)
                else:
                    g = F.interpolate(guides, size=(h, w), mode="bilinear", align_corners=False).to(self.device)
                    style_target = GuidedStyleTarget(self.style_grams(styles, max(h, w)), g, layer_w)
                if x is None and init is not None:
                    x = img.resize_to(init.to(self.device, torch.float32), h, w).clamp(0, 1)
                elif x is None:
                    x = self._init_image(c, styles, gen)
                else:
                    x = F.interpolate(x.detach(), size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
                x = x.detach().contiguous().requires_grad_(True)
                if self.precision == "bf16":  # channels_last inside the encoder; keep the grad dense
                    x.register_hook(lambda g: g.contiguous())
                if tiled:
                    objective = TiledObjective(self.encoder, c, cfg.content_layers, cfg.style_layers, style_target,
                                               plan, (cfg.content_weight, cfg.style_weight, cfg.tv_weight),
                                               self.precision, self.device, self.tile_progress)
                    content_targets = objective  # for the final losses below
                optimizer = plan.optimizer if plan is not None else cfg.optimizer
                if optimizer == "lbfgs":
                    history = (TILED_LBFGS_HISTORY if plan is not None
                               else max(5, min(100, LBFGS_MEMORY // (2 * x.numel() * 4))))
                    opt = LBFGS([x], history_size=history, max_step=0.5)
                else:
                    opt = torch.optim.Adam([x], lr=cfg.lr)
                current: dict = {}
                extras = list(extra_losses) if level == len(sizes) - 1 else []

                def closure():
                    opt.zero_grad(set_to_none=True)
                    if tiled:  # the whole image's objective, tile by tile
                        parts, x.grad = objective(x.detach(), total_iters)
                        current.update(parts)
                        return parts["total"]
                    parts = self.losses(x, content_targets, style_target)
                    if extras:
                        parts["extra"] = sum(f(x) for f in extras)
                        parts["total"] = parts["total"] + parts["extra"]
                    parts["total"].backward()
                    current.update({k: v.detach() for k, v in parts.items()})  # tensors: no host sync
                    return parts["total"]

                i = 0
                try:
                    n_iter = per_scale[level]
                    for i in range(1, n_iter + 1):
                        opt.step(closure)
                        if optimizer == "adam":
                            with torch.no_grad():
                                x.clamp_(0, 1)
                        total_iters += 1
                        if i % self.sync_every == 0 or i == n_iter:
                            self._check_finite(current, i)
                        if callback is not None:
                            callback(Progress(i, n_iter, level, len(sizes), (h, w), dict(current),
                                              x.detach(), time.perf_counter() - start))
                except KeyboardInterrupt:  # keep the current image at the size it has (no upsampling)
                    partial = self._finish(x.detach(), original_content, h, w)
                    raise StyleTransferInterrupted(partial, i, level) from None

        result = self._finish(x.detach(), original_content, out_h, out_w)
        seconds = time.perf_counter() - start
        self.stats = {
            "seconds": seconds,
            "iterations": total_iters,
            "seconds_per_iteration": seconds / max(total_iters, 1),
            "device": str(self.device),
            "precision": self.precision,
            "scales": sizes,
            "size": [out_h, out_w],
            "tiles": [None if p is None else {"tile": p.tile, "margin": p.margin, "count": p.count,
                                              "optimizer": p.optimizer} for p in plans],
            "last_grid": None if plans[-1] is None else plans[-1].bounds(total_iters - 1),
        }
        if (per_scale[-1] == 0 or not self.last_losses) and isinstance(content_targets, TiledObjective):
            self.last_losses = {k: float(v) for k, v in content_targets(x.detach(), total_iters)[0].items()}
        elif per_scale[-1] == 0 or not self.last_losses:
            with torch.no_grad(), circular_padding(cfg.tileable):
                self.last_losses = {k: float(v) for k, v in self.losses(x, content_targets, style_target).items()}
        return result

    def _check_finite(self, current: dict, i: int) -> None:
        """Bring the losses to the host (one synchronisation); FloatingPointError if one is not finite."""
        values = {k: float(v) for k, v in current.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f"the loss became {values['total']} by iteration {i}; lower the weights or use "
                                     "--precision fp32")
        self.last_losses = values

    def _finish(self, x: torch.Tensor, original_content: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
        x = x.clamp(0, 1)
        photo = img.resize_to(original_content, h, w)
        if self.config.tileable:
            photo = _tileable.make_periodic(photo)
        x = color.color_output(x, photo, self.config.preserve_color)
        keep = getattr(self, "_keep", None)
        if keep is not None:  # the region no mask covers is the photo
            x = regions.composite([x], photo, 1 - keep, keep)
        return x.float().cpu()
