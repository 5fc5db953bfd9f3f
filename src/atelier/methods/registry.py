"""The one list of stylization methods: what each is, what it takes, how to load and run it.

Every interface asks this registry instead of switching on method names: ``atelier stylize
--method``, :func:`atelier.stylize`, ``atelier video`` (:func:`atelier.api.video.build_stylizer`),
``atelier evaluate``, the studio's method list, its jobs and its preference learner. A new
method is one :func:`register_method` call (or an entry point in the ``atelier.methods``
group, whose object is a :class:`Method`), and it appears in all of them.

Families:

* ``"optimization"``: Gatys et al. 2016; the interfaces run :class:`~atelier.methods.gatys.
  optimize.GatysStyleTransfer` themselves (it has its own options, progress and resume).
* ``"arbitrary"``: one network pass with any style image (AdaIN, Huang & Belongie 2017; WCT,
  Li et al. 2017); ``load`` gives a model, ``run`` stylizes with it.
* ``"feedforward"``: a trained network with its styles built in (Johnson et al. 2016; Dumoulin
  et al. 2017): every shipped model name and any ``.safetensors`` file with its card.

Loaders and runners are given as ``"module:function"`` strings and imported when first used,
so that listing the methods imports no method (and the layering rule holds: this module
imports no method package).
"""

from __future__ import annotations

import importlib
import os
import pathlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

from ..core.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["FAMILIES", "Method", "get_method", "list_methods", "method_options", "register_method", "unregister_method",
           "weights_sha256"]

FAMILIES = ("optimization", "arbitrary", "feedforward")
#: Options of the one-pass runners: what ``run`` accepts beyond ``(model, content, styles)``.
RUN_OPTIONS = ("alpha", "blend", "mask", "preserve_color", "precision")

Target = Union[str, Callable[..., Any], None]


def _resolve(target: Target) -> Optional[Callable[..., Any]]:
    if target is None or callable(target):
        return target
    module, _, name = str(target).partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Method:
    """A stylization method.

    Attributes:
        name: what ``--method`` takes (``[a-z0-9_-]``, or a feed-forward model's name or file).
        label: shown in the studio.
        family: one of :data:`FAMILIES`.
        paper: the paper followed.
        load: ``load(device=..., precision=..., **options) -> model`` ("module:function" or a
            callable); ``None`` for the optimization family.
        run: ``run(model, content, styles, *, alpha, blend, mask, preserve_color, precision)``
            (``precision`` None: the one the model was loaded with):
            content float32 (1, 3, H, W) in [0, 1], styles a list of float32 (1, 3, h, w)
            (empty for feed-forward models), mask float (1, 1, H, W) or None; returns float32
            (1, 3, H, W) in [0, 1] on the CPU.
        fast: well under a second at studio sizes (the studio reruns it as sliders move).
        masks: splits two styles by one mask in its feature space (every method takes regions,
            :meth:`stylize` and :mod:`atelier.imaging.regions`).
        options: CLI options of ``atelier stylize`` this method uses beyond the common ones.
        memory: the memory model of :func:`atelier.core.limits.check_memory` (``"gatys"``, ``"wct"`` or
            ``"one-pass"``).
        tiled: ``tiled(model, content, styles, plan, *, alpha, blend, preserve_color, precision,
            progress)`` for print sizes (:mod:`atelier.imaging.tiles`; ``plan`` a
            :class:`~atelier.imaging.tiles.TilePlan`), or ``None`` for a method that is not tiled.
        temporal: the default temporal mode of ``atelier video`` (``"optimize"``, ``"blend"``).
        video_blend_weight: the default blend weight of video (``None``: the general default).
        model: for feed-forward models, the shipped name or file loaded.
    """

    name: str
    label: str
    family: str
    paper: str = ""
    load: Target = None
    run: Target = None
    fast: bool = True
    masks: bool = False
    options: tuple = ()
    memory: str = "one-pass"
    tiled: Target = None
    temporal: str = "blend"
    video_blend_weight: Optional[float] = None
    model: Optional[str] = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"method family must be one of {FAMILIES}, got {self.family!r}")
        if self.family != "optimization" and (self.load is None or self.run is None):
            raise ValueError(f"method {self.name!r}: a one-pass method needs load and run")

    @property
    def styles(self) -> str:
        """``"images"`` (style images are given) or ``"builtin"`` (a feed-forward model's own)."""
        return "builtin" if self.family == "feedforward" else "images"

    def build(self, device: Union[str, torch.device] = "auto", precision: str = "auto", **options):
        """The method's model, loaded (weights verified by sha256) on ``device``; ``options`` go to
        the loader (AdaIN/WCT: ``decoder``; WCT: ``layers``).

        Raises:
            InputError: missing or corrupt weights.
            ValueError: bad device, precision or options; or the optimization family (it has no model).
        """
        if self.family == "optimization":
            raise ValueError(f"{self.name} is an optimization and has no model to load")
        if self.family == "feedforward":
            options = {"name_or_path": self.model, **options}
        return _resolve(self.load)(device=device, precision=precision, **options)

    def cached(self, device: Union[str, torch.device] = "auto", precision: str = "auto", **options):
        """:meth:`build`, kept per (device, precision, options) for a long-running process (the
        studio); a file changed after the first load is not read again."""
        key = (self.name, self.model, str(device), precision, tuple(sorted(options.items())))
        with _LOCK:
            if key not in _MODELS:
                _MODELS[key] = self.build(device, precision, **options)
            return _MODELS[key]

    def stylize(self, model, content: torch.Tensor, styles: Sequence[torch.Tensor] = (), *, alpha: float = 1.0,
                blend: Optional[Sequence[float]] = None,
                mask: Union[torch.Tensor, Sequence[torch.Tensor], None] = None,
                preserve_color: str = "none", precision: Optional[str] = None,
                tileable: bool = False) -> torch.Tensor:
        """Run the one-pass method (see ``run`` above).

        Args:
            mask: regions (issue 28, :mod:`atelier.imaging.regions`): float (1, 1, H, W) in [0, 1]
                at the content's size, or a list of them: one per style image (style k where mask k
                is white, the photo where no mask is), or one with two styles (the first where
                white; a method with ``masks`` splits in feature space, Huang & Belongie 2017
                §7.3); a feed-forward model takes one (its style where white, the photo where
                black). Other combinations stylize once per style and place the results in their
                regions over the photo.
            tileable: a seamless texture (issue 28): the content rounded to a multiple of 16 px and
                made periodic (:mod:`atelier.imaging.tileable`), every convolution padded
                circularly (:mod:`atelier.core.padding`); the output tiles without a seam.

        Raises:
            ValueError: the optimization family (run
                :class:`~atelier.methods.gatys.optimize.GatysStyleTransfer`), a mask count that does
                not fit the styles, masks together with a style blend.
        """
        if self.family == "optimization":
            raise ValueError(f"{self.name} is an optimization; run GatysStyleTransfer")
        import torch

        from ..core.padding import circular_padding
        from ..imaging import regions, tileable as _tileable
        from ..io.images import resize_to

        run = _resolve(self.run)
        masks = [mask] if isinstance(mask, torch.Tensor) else list(mask or [])
        if tileable:
            h, w = _tileable.tileable_dims(*content.shape[-2:])
            content = _tileable.make_periodic(resize_to(content, h, w))
            masks = [resize_to(m, h, w).clamp(0, 1) for m in masks]

        def one(style_list, m=None, bl=blend):
            return run(model, content, list(style_list), alpha=alpha, blend=bl, mask=m,
                       preserve_color=preserve_color, precision=precision)

        with circular_padding(tileable):
            if not masks:
                return one(styles)
            regions.check_region_count(len(masks), len(styles), builtin=self.styles == "builtin")
            if self.masks and len(masks) == 1 and len(styles) == 2:
                return one(styles, masks[0])
            if self.styles == "builtin":
                outs = [one([])]
            elif blend is not None:
                raise ValueError("give either a style blend (mixing the styles) or masks (placing them), not both")
            else:
                outs = [one([s], bl=None) for s in styles]
            weights, keep = regions.region_weights(masks, len(outs))
            return regions.composite(outs, content, weights, keep)

    def stylize_tiled(self, model, content: torch.Tensor, styles: Sequence[torch.Tensor], plan, *,
                      alpha: float = 1.0, blend: Optional[Sequence[float]] = None, preserve_color: str = "none",
                      precision: Optional[str] = None, progress=None) -> torch.Tensor:
        """Run the method tile by tile (see ``tiled`` above). Raises ValueError where it is not tiled."""
        if self.tiled is None:
            raise ValueError(f"--method {self.name} is not tiled; ask for a smaller size")
        return _resolve(self.tiled)(model, content, list(styles), plan, alpha=alpha, blend=blend,
                                    preserve_color=preserve_color, precision=precision, progress=progress)

    def public(self) -> dict:
        """The JSON the studio and ``atelier methods`` show. ``tiled``: the method runs at print
        sizes in tiles (a one-pass ``tiled`` function, or Gatys, whose levels tile themselves)."""
        return {"name": self.name, "label": self.label, "family": self.family, "paper": self.paper,
                "fast": self.fast, "masks": self.masks, "styles": self.styles,
                "tiled": self.tiled is not None or self.family == "optimization"}


_LOCK = threading.RLock()
_MODELS: dict = {}
_REGISTRY: dict[str, Method] = {}
_ENTRY_POINTS_READ = False

_ARBITRARY_OPTIONS = ("alpha", "style_size", "decoder")
_BUILTIN = (
    Method("gatys", "Gatys (optimization)", "optimization",
           "Gatys, Ecker & Bethge 2016, Image Style Transfer Using Convolutional Neural Networks",
           fast=False, memory="gatys", temporal="optimize",
           options=("style_scale", "iterations", "optimizer", "lr", "content_weight", "style_weight", "tv_weight",
                    "init", "seed", "scales", "content_layers", "style_layers", "pooling", "weights", "save_every",
                    "tile", "max_memory", "scale_iterations")),
    Method("adain", "AdaIN (any style)", "arbitrary",
           "Huang & Belongie 2017, Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
           load="atelier.methods.arbitrary.adain:load_for_registry", run="atelier.methods.arbitrary.adain:adain_run",
           # video blend weight 0.5, not the general 0.7: AdaIN's fine texture softens under repeated
           # warping (20 Sintel frames at 512 px: 0.7 gave -78 % warping error at +22 % style loss;
           # 0.55 -69 % at +14 %; 0.4 -57 % at +8 %)
           masks=True, options=_ARBITRARY_OPTIONS + ("tile", "max_memory"), video_blend_weight=0.5,
           tiled="atelier.methods.arbitrary.tiled:adain_tiled_run"),
    Method("wct", "WCT (any style)", "arbitrary",
           "Li et al. 2017, Universal Style Transfer via Feature Transforms",
           load="atelier.methods.arbitrary.wct:load_for_registry", run="atelier.methods.arbitrary.wct:wct_run",
           masks=True, options=_ARBITRARY_OPTIONS + ("wct_layers", "tile", "max_memory"), memory="wct",
           tiled="atelier.methods.arbitrary.tiled_wct:wct_tiled_run"),
)


#: Options of every feed-forward model: tiling for print sizes (:mod:`atelier.methods.feedforward.tiled`).
_FEEDFORWARD_OPTIONS = ("tile", "max_memory")


def _feedforward(name: str) -> Method:
    return Method(name, f"{pathlib.Path(name).stem} (feed-forward)", "feedforward",
                  "Johnson, Alahi & Fei-Fei 2016; Dumoulin, Shlens & Kudlur 2017 (several styles)",
                  load="atelier.methods.feedforward.apply:load_for_registry",
                  run="atelier.methods.feedforward.apply:feedforward_run", model=name, options=_FEEDFORWARD_OPTIONS,
                  tiled="atelier.methods.feedforward.tiled:tiled_run")


def _read_entry_points() -> None:
    global _ENTRY_POINTS_READ
    if _ENTRY_POINTS_READ:
        return
    _ENTRY_POINTS_READ = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="atelier.methods"):
        m = ep.load()
        if isinstance(m, Method) and m.name not in _REGISTRY:
            _REGISTRY[m.name] = m


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry (every interface offers it from now on).

    Raises:
        ValueError: a method of that name exists (and ``replace`` is False), or a built-in name.
    """
    with _LOCK:
        if method.name in {m.name for m in _BUILTIN}:
            raise ValueError(f"{method.name!r} is a built-in method")
        if method.name in _REGISTRY and not replace:
            raise ValueError(f"a method named {method.name!r} is registered already")
        _REGISTRY[method.name] = method
        for k in [k for k in _MODELS if k[0] == method.name]:
            del _MODELS[k]
    return method


def unregister_method(name: str) -> None:
    """Remove a method added with :func:`register_method` (no error if absent)."""
    with _LOCK:
        _REGISTRY.pop(name, None)
        for k in [k for k in _MODELS if k[0] == name]:
            del _MODELS[k]


def method_options() -> tuple[str, ...]:
    """Every method-specific option of ``atelier stylize`` (the union of :attr:`Method.options`)."""
    return tuple(dict.fromkeys([o for m in list_methods(include_models=False) for o in m.options]
                               + list(_FEEDFORWARD_OPTIONS)))


def list_methods(include_models: bool = True) -> list[Method]:
    """The built-in methods, the registered ones, then (``include_models``) one feed-forward
    method per shipped model (:func:`atelier.training.zoo.list_models`) whose card reads."""
    from ..training.zoo import list_models, model_card

    _read_entry_points()
    out = list(_BUILTIN) + list(_REGISTRY.values())
    if include_models:
        for name in list_models():
            try:
                model_card(name)
            except InputError:
                continue
            out.append(_feedforward(name))
    return out


def get_method(name: Union[str, os.PathLike]) -> Method:
    """The method called ``name``: a built-in or registered method, a shipped feed-forward model
    name, or the ``.safetensors`` file of a trained feed-forward model.

    Raises:
        InputError: no such method or model (the message lists the methods).

    Example:
        >>> get_method("adain").family, get_method("starry_night").styles
        ('arbitrary', 'builtin')
    """
    from ..training.zoo import list_models

    name = os.fspath(name)
    _read_entry_points()
    for m in _BUILTIN:
        if m.name == name:
            return m
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in list_models() or name.endswith(".safetensors") or pathlib.Path(name).suffix == ".json":
        return _feedforward(name)
    names = [m.name for m in _BUILTIN] + list(_REGISTRY)
    raise InputError(f"unknown method {name!r}; use one of {', '.join(names)}, a model from 'atelier models' "
                     "or a .safetensors file")


def weights_sha256(model) -> Union[str, dict, None]:
    """The sha256 of a loaded model's weights, from its card(s): a string, or layer -> sha256
    for WCT's decoders, or None."""
    cards = getattr(model, "cards", None)
    if isinstance(cards, dict):
        return {k: c.get("sha256") for k, c in cards.items()}
    card = getattr(model, "card", None)
    return card.get("sha256") if isinstance(card, dict) else None

