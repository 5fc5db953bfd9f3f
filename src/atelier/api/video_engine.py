"""Where the frames of :func:`atelier.api.video.stylize_video` are stylized: the per-frame
stylizer of a method (:func:`build_stylizer`), the picklable recipe that builds it
(:class:`FrameSettings`, sent to Ray workers as it is), and the default engine,
:class:`LocalFrames` (this process, one frame after another).

An *engine* is what :func:`~atelier.api.video.stylize_video` hands the decoded frames to; it
yields the stylized frames in order. Everything around it (the input checks, the window, the
writer, the audio, the progress file, Ctrl-C) is the same whatever the engine, so the Ray engine
(:class:`atelier.api.ray_video.RayFrames`) writes the same kind of output as this one.
Its methods, in the order they are called:

* ``open(settings, on_iteration)``: load the model (errors: :class:`~atelier.core.errors.InputError`
  with the one-line reason, before any frame is read);
* ``restore_counters(counters)`` and ``prime(frame, output)``: only for a resume;
* ``run(frames)``: uint8 ``(H, W, 3)`` frames in, float32 ``(1, 3, H, W)`` in [0, 1] out, one
  per frame, in order; ``counters()`` after each gives the flow statistics of the frames so far;
* ``stats`` (a dict, as the ``stats`` of :class:`~atelier.methods.video.VideoStylizer`); ``close()`` (always).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Sequence

import torch

from ..core.errors import InputError
from ..io import images as img
from ..methods.video import TemporalConfig, VideoStylizer

PathLike = os.PathLike | str


def build_stylizer(method: str, styles: Sequence[PathLike] = (), *, style_index: int = 0, alpha: float = 1.0,
                   iterations: int = 100, device: str = "auto", precision: str = "auto",
                   on_iteration: Optional[Callable] = None, tile="auto", max_memory=None):
    """The per-frame stylizer of a method, with what it needs loaded once.

    Args:
        method: a feed-forward model (a shipped name such as ``starry_night`` or a ``.safetensors``
            file), ``"adain"``, ``"wct"`` or ``"gatys"``.
        styles: style images (needed by adain, wct and gatys; one or more, equally blended).
        style_index: which style of a multi-style feed-forward model.
        alpha: style strength of AdaIN/WCT in [0, 1].
        iterations: L-BFGS iterations per frame (Gatys).
        on_iteration: Gatys: called after every iteration with its
            :class:`~atelier.methods.gatys.optimize.Progress` (for a time estimate).
        tile, max_memory: print sizes (issue 24, :func:`atelier.api.print_size.print_plan`): frames
            that would not fit ``max_memory`` are stylized in tiles by the one-pass methods (the plan
            made once per frame size); Gatys with temporal losses is not tiled (refused).

    Returns:
        ``("stylizer", fn)`` with ``fn(x)`` (1, 3, H, W) -> (1, 3, H, W), or ``("optimizer", fn)``
        with ``fn(x, init, extra_losses)`` for Gatys.

    Raises:
        InputError: an unknown model, a missing/unreadable style image, or no style for a method
            that needs one.
    """
    from ..methods.registry import get_method

    spec = get_method(method)
    if spec.styles == "images" and not styles:
        raise InputError(f"--method {method} needs at least one --style image")
    if spec.styles == "builtin" and styles:
        raise InputError(f"a feed-forward model ({method}) has its styles built in; leave out --style "
                         "(or use --method adain, wct or gatys for any style image)")
    if spec.family == "optimization":
        from ..methods.gatys import GatysConfig, GatysStyleTransfer

        st = GatysStyleTransfer(GatysConfig(iterations=iterations, device=device, precision=precision, seed=0),
                                tile=tile, max_memory=max_memory)
        style_ts = [img.load_image(s) for s in styles]
        return "optimizer", lambda x, init, extra: st.run(x, style_ts, on_iteration, init=init, extra_losses=extra)
    model = spec.build(device=device, precision=precision)
    if spec.family == "feedforward":
        if not 0 <= style_index < model.num_styles:
            raise InputError(f"model {method!r} has {model.num_styles} style(s); --style-index {style_index} is "
                             "out of range")
        return "stylizer", _tiled_frames(spec, model, [], tile, max_memory, precision, blend=style_index)
    encode = getattr(model, "encode_style", None)  # AdaIN/WCT: the styles encoded once, not per frame
    feats = [img.load_image(s, size=512) for s in styles]
    if encode is not None:
        dev = next(model.parameters()).device
        feats = [encode(f.to(dev)) for f in feats]
    return "stylizer", _tiled_frames(spec, model, feats, tile, max_memory, precision, alpha=alpha)


def _tiled_frames(spec, model, styles, tile, max_memory, precision, **kw) -> Callable[[torch.Tensor], torch.Tensor]:
    """``fn(frame)``: the method on one frame, whole or in the tiles its size needs (planned once
    per frame size; :func:`atelier.api.print_size.print_plan` raises for an impossible budget)."""
    from ..encoders.precision import resolve_precision
    from .print_size import print_plan

    dev = next(model.parameters()).device if hasattr(model, "parameters") else torch.device("cpu")
    plans: dict = {}

    def fn(x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape[-2:])
        if key not in plans:
            plans[key] = print_plan(spec, *key, tile, max_memory, dev)
        if plans[key] is None:
            return spec.stylize(model, x, styles, **kw)
        return spec.stylize_tiled(model, x, styles, plans[key], precision=resolve_precision(precision, dev), **kw)

    fn.plans = plans  # type: ignore[attr-defined]
    return fn


@dataclass
class FrameSettings:
    """The recipe of the per-frame stylizer (plain, picklable values: a Ray worker builds its own).

    Attributes:
        method, styles, style_index, alpha, iterations, device, precision, tile, max_memory: as for
        :func:`build_stylizer` (``styles``: absolute paths, seen by every worker).
        config: the :class:`~atelier.methods.video.TemporalConfig` of every
        :class:`~atelier.methods.video.VideoStylizer` made from it.
    """

    method: str
    styles: tuple = ()
    style_index: int = 0
    alpha: float = 1.0
    iterations: int = 100
    device: str = "auto"
    precision: str = "auto"
    config: TemporalConfig = None  # type: ignore[assignment]
    tile: object = "auto"
    max_memory: Optional[str] = None

    def load(self, on_iteration: Optional[Callable] = None, device: Optional[str] = None):
        """:func:`build_stylizer` with these settings (``device`` overrides); see there for errors."""
        return build_stylizer(self.method, self.styles, style_index=self.style_index, alpha=self.alpha,
                              iterations=self.iterations, device=device or self.device, precision=self.precision,
                              on_iteration=on_iteration, tile=self.tile, max_memory=self.max_memory)

    def video_stylizer(self, loaded) -> VideoStylizer:
        """A new :class:`VideoStylizer` (no previous frames) around ``loaded = self.load()``."""
        kind, fn = loaded
        # an optimizer also serves per frame (from the content, no temporal term) for --temporal none/blend
        stylizer = fn if kind == "stylizer" else (lambda x: fn(x, None, ()))
        return VideoStylizer(stylizer=stylizer, optimizer=fn if kind == "optimizer" else None, config=self.config)


class LocalFrames:
    """The default engine: the frames stylized in this process, one after another, by one
    :class:`VideoStylizer` (each frame blended with the previous output)."""

    def __init__(self):
        self.vs: Optional[VideoStylizer] = None

    def open(self, settings: FrameSettings, on_iteration: Optional[Callable] = None) -> None:
        self.vs = settings.video_stylizer(settings.load(on_iteration))

    def restore_counters(self, counters: dict) -> None:
        self.vs.restore_counters(counters)

    def prime(self, frame, output) -> None:
        """Make (input uint8 (H, W, 3), output uint8 (H, W, 3)) the previous frame (resume)."""
        self.vs.prime(to_tensor(frame), to_tensor(output))

    def run(self, frames: Iterable) -> Iterator[torch.Tensor]:
        for frame in frames:
            yield self.vs(to_tensor(frame))

    def counters(self) -> dict:
        return dict(self.vs.counters()) if self.vs is not None else {"reliable_sum": 0.0, "pairs": 0}

    @property
    def stats(self) -> dict:
        return dict(self.vs.stats) if self.vs is not None else {}

    def close(self) -> None:
        pass


def to_tensor(frame) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float().div_(255)


def to_array(x: torch.Tensor):
    """float (1, 3, H, W) in [0, 1] -> uint8 (H, W, 3)."""
    return (x[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
