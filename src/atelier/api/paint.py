"""``atelier.paint``: a photo painted with brush strokes (issue 27)."""

from __future__ import annotations

import os
from typing import Optional, Union

import torch
from PIL import Image

from ..io import images as img

ImageLike = Union[str, "os.PathLike[str]", Image.Image, torch.Tensor]

#: Painting methods: the trained actor, the stroke optimizer, the greedy baseline.
METHODS = ("agent", "optimize", "greedy")
MAX_STROKES = 5000


def paint_tensor(target: torch.Tensor, *, strokes: int = 200, method: str = "agent",
                 style: Optional[torch.Tensor] = None, plan_size: int = 128, seed: int = 0,
                 iterations: int = 40, style_weight: float = 100.0, model=None, callback=None, brush: str = "oil"):
    """Paint a tensor (1, 3, H, W) in [0, 1]; returns a :class:`~atelier.methods.paint.plan.Painting`.

    ``style`` (1, 3, H', W') needs ``method="optimize"``. ``model``: a painting actor or its
    ``.safetensors`` path (agent only). ``brush``: how the planned strokes are painted (a key of
    :data:`~atelier.methods.paint.strokes.BRUSHES`: oil, watercolour, marker). Raises ValueError
    for bad options."""
    from ..methods.paint.strokes import BRUSHES, apply_brush

    if brush not in BRUSHES:
        raise ValueError(f"unknown brush {brush!r}; choose one of {', '.join(BRUSHES)}")
    p = _plan(target, strokes=strokes, method=method, style=style, plan_size=plan_size, seed=seed,
              iterations=iterations, style_weight=style_weight, model=model, callback=callback)
    p.strokes, p.brush = apply_brush(p.strokes, brush), brush
    return p


def _plan(target, *, strokes, method, style, plan_size, seed, iterations, style_weight, model, callback):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if isinstance(strokes, bool) or not isinstance(strokes, int) or not 1 <= strokes <= MAX_STROKES:
        raise ValueError(f"strokes must be an integer from 1 to {MAX_STROKES}, got {strokes!r}")
    if not 16 <= plan_size <= 1024:
        raise ValueError(f"the plan size must be 16 to 1024 px, got {plan_size}")
    if style is not None and method != "optimize":
        raise ValueError("a style painting needs method 'optimize' (the agent and greedy paint the photo only)")
    if method == "agent":
        from ..methods.paint.agent import agent_strokes, load_agent

        actor = model if model is None or isinstance(model, torch.nn.Module) else load_agent(model)
        return agent_strokes(target, strokes, plan_size, actor, callback=callback)
    if method == "greedy":
        from ..methods.paint.optimize import greedy_strokes

        return greedy_strokes(target, strokes, plan_size, seed=seed, callback=callback)
    from ..methods.paint.optimize import OptimizeConfig, optimize_strokes

    cfg = OptimizeConfig(strokes=strokes, size=plan_size, iterations=iterations, seed=seed, style_weight=style_weight)
    return optimize_strokes(target, cfg, style=style, callback=callback)


def paint(photo: ImageLike, *, strokes: int = 200, method: str = "agent", style: Optional[ImageLike] = None,
          plan_size: int = 128, seed: int = 0, iterations: int = 40, model=None, callback=None,
          max_pixels: Optional[int] = None, brush: str = "oil"):
    """Paint a photo with brush strokes (issue 27).

    Methods: ``"agent"`` (the shipped actor, Huang et al. 2019: fast), ``"optimize"`` (gradient
    descent on the strokes, Zou et al. 2021: slow, closest; the only one that takes ``style``) and
    ``"greedy"`` (random strokes kept when they help: the baseline). All paint coarse to fine on a
    plan whose longest side is ``plan_size`` pixels.

    Args:
        photo: path, PIL image, numpy array (H, W, 3) or tensor (1, 3, H, W) RGB in [0, 1].
        strokes: the number of strokes (1 to 5000). style: a painting (optimize only).
        seed: seed of the optimizer's and greedy's random draws. iterations: Adam steps per group (optimize).
        model: a painting actor or the path of one (agent). callback: ``callback(done, total, canvas)``.
        brush: ``"oil"`` (opaque, tapered, crisp), ``"watercolour"`` (translucent, soft edges) or
            ``"marker"`` (one width, slightly translucent): how the planned strokes are painted.

    Returns:
        A :class:`~atelier.methods.paint.plan.Painting`: ``.render(longest)`` gives the picture at any
        size (float32 (1, 3, H, W)), ``.strokes`` the (N, 12) stroke list, ``.to_dict()`` its JSON form;
        :mod:`atelier.methods.paint.export` writes SVG and GIF files.

    Raises:
        InputError: an unreadable image file. ValueError: a bad option.

    Example:
        >>> import atelier
        >>> photo, _ = atelier.demo_images()
        >>> p = atelier.paint(photo, strokes=40, plan_size=64)
        >>> tuple(p.strokes.shape), tuple(p.render(512).shape)  # a 512 px render of a 64 px plan
        ((40, 12), (1, 3, 352, 512))
    """
    x = img.load_image(photo, max_pixels=max_pixels)
    s = img.load_image(style, max_pixels=max_pixels) if style is not None else None
    return paint_tensor(x, strokes=strokes, method=method, style=s, plan_size=plan_size, seed=seed,
                        iterations=iterations, model=model, callback=callback, brush=brush)
