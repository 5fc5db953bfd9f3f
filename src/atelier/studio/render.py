"""Running one studio job: the studio's parameters mapped onto the methods, the way
``atelier stylize`` calls them (cli/stylize.py, cli/onepass.py).

The studio's parameters, the same for every method:

* ``strength`` in [0, 1]: AdaIN/WCT ``alpha``; Gatys ``style_weight = 10 ** (4 * strength - 1)``
  (0.5 gives the default 10; 0 gives 0.1, 1 gives 1000); a feed-forward model's output
  mixed with the content photo in pixels (``strength * out + (1 - strength) * content``).
* ``style_scale`` (0.25 ... 4): style image longest side relative to the output's: Gatys
  ``style_scale``; AdaIN/WCT ``style_size = style_scale * size``; a feed-forward model runs
  at ``size / style_scale`` and the result is resized to ``size`` (larger strokes above 1).
* ``size``: longest side of the output in pixels; ``preserve_color``: ``none``,
  ``luminance``, ``histogram``; ``blend``: one weight per style image (Gatys, AdaIN, WCT)
  or per built-in style of a multi-style model; ``mask``: AdaIN/WCT with two styles, the
  first where the mask is white.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import torch

from ..io import images as img
from ..core.limits import check_memory

__all__ = ["JobCancelled", "fast_methods", "gatys_style_weight", "render"]



def fast_methods() -> tuple[str, ...]:
    """Methods with style images that take well under a few seconds at studio sizes (rerun live
    as sliders move; the Explore tab varies among them)."""
    from ..methods.registry import list_methods

    return tuple(m.name for m in list_methods(include_models=False) if m.fast and m.styles == "images")


class JobCancelled(Exception):
    """The job was cancelled (raised from the progress callback inside the optimizer)."""


def gatys_style_weight(strength: float) -> float:
    """Gatys style weight for a studio strength in [0, 1]: ``10 ** (4 * strength - 1)``."""
    return float(10 ** (4 * float(strength) - 1))


#: The memory budget of a Gatys print export (``"8G"``, bytes, or None: 80 % of the memory
#: available when the job starts); levels above it are optimized in tiles.
PRINT_MAX_MEMORY: Optional[str] = None


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _tile_progress(report, cancelled):
    """A tiled run's ``progress(done, tiles)``: the fraction to the job, Cancel between tiles."""
    def progress(done: int, total: int) -> None:
        if cancelled():
            raise JobCancelled()
        report(done / max(total, 1), None, f"tile {done}/{total}")
    return progress


def render(params: dict, content_path, style_paths: list, mask_path=None, *,
           cancelled: Callable[[], bool] = lambda: False,
           on_progress: Optional[Callable[[float, Optional[torch.Tensor], str], None]] = None,
           preview_every: int = 5, max_pixels: Optional[int] = None) -> tuple[torch.Tensor, dict]:
    """Run one job.

    Args:
        params: the job's parameters (``method``, ``size``, ``strength``, ``style_scale``,
            ``preserve_color``, ``blend``, ``iterations``, ``seed``), already range-checked.
        content_path, style_paths, mask_path: files in the studio's data folder.
        cancelled: polled between iterations (Gatys) and between steps; ``True`` stops the job.
        on_progress: ``(fraction done in [0, 1], current image float32 (1, 3, H, W) or None,
            message)``; Gatys sends its current image every ``preview_every`` iterations.

    Returns:
        ``(image float32 (1, 3, H, W) in [0, 1], parameters for the PNG metadata)``.

    Raises:
        JobCancelled: ``cancelled()`` became true.
        InputError, ValueError: bad inputs or options (the message is shown to the user).
    """
    from ..methods.registry import get_method, weights_sha256

    report = on_progress or (lambda *a: None)
    method, size = params["method"], int(params.get("print_size") or params["size"])
    spec = get_method(method)
    c = img.load_image(content_path, size=size, max_pixels=max_pixels)
    plan = None
    if params.get("print_size") and spec.family != "optimization":  # issue 24: tiled where it would not fit
        from ..api.print_size import print_plan

        plan = print_plan(spec, c.shape[-2], c.shape[-1], "auto", None, _device())
    if plan is None and not (params.get("print_size") and spec.family == "optimization"):  # Gatys plans itself
        check_memory(c.shape[-2] * c.shape[-1], spec.memory, f"{method} at {c.shape[-1]}x{c.shape[-2]}")
    meta: dict = {"method": method, "size": size, "strength": params["strength"],
                  "style_scale": params["style_scale"], "preserve_color": params["preserve_color"],
                  "blend": params.get("blend")}
    tileable = bool(params.get("tileable", False))
    masks = []
    if mask_path is not None:
        from ..imaging import regions

        masks = regions.load_masks([mask_path], c.shape[-2], c.shape[-1], max_pixels=max_pixels,
                                   feather=float(params.get("feather") or 0.0))[0]
        meta.update(mask=True, feather=float(params.get("feather") or 0.0))
    if tileable:
        meta["tileable"] = True
    if cancelled():
        raise JobCancelled()
    report(0.0, None, "loading")
    t0 = time.perf_counter()
    if spec.family == "optimization":
        from ..methods.gatys.optimize import GatysConfig, GatysStyleTransfer

        styles = [img.load_image(p, max_pixels=max_pixels) for p in style_paths]
        printing = bool(params.get("print_size"))
        # a print: the coarse-to-fine pyramid (one more scale per doubling past 512 px) with the
        # levels that would not fit optimized in tiles (issue 24, methods/gatys/tiled.py)
        cfg = GatysConfig(style_scale=float(params["style_scale"]), iterations=int(params["iterations"]),
                          style_weight=gatys_style_weight(params["strength"]), style_blend=params.get("blend"),
                          preserve_color=params["preserve_color"], seed=params.get("seed"),
                          scales=None if printing else 1, tileable=tileable)
        cfg.validate()
        st = GatysStyleTransfer(cfg, max_pixels=max_pixels, tile="auto" if printing else "off",
                                max_memory=PRINT_MAX_MEMORY if printing else None)
        done = [0.0]  # the fraction reached, for the tiles' messages between iterations

        def callback(p):
            if cancelled():
                raise JobCancelled()
            show = p.iteration % preview_every == 0 or p.iteration == p.iterations
            done[0] = (p.scale + p.iteration / max(p.iterations, 1)) / max(p.scales, 1)
            scale = f"scale {p.scale + 1}/{p.scales} ({p.size[1]}x{p.size[0]}), " if p.scales > 1 else ""
            report(done[0], p.image.detach().clamp(0, 1).float().cpu() if show else None,
                   f"{scale}iteration {p.iteration}/{p.iterations}, style loss {p.losses['style']:.3g}")

        if printing:  # an iteration at 4K takes minutes: a message and Cancel between its tiles
            def tile_progress(tiles_done: int, total: int) -> None:
                if cancelled():
                    raise JobCancelled()
                report(done[0], None, f"tile {tiles_done}/{total}")

            st.tile_progress = tile_progress

        out = st.run(c, styles, callback=callback, masks=masks)
        meta.update(style_weight=cfg.style_weight, iterations=cfg.iterations, seed=cfg.seed,
                    losses=st.last_losses)
        if printing:
            meta.update(scales=st.stats["scales"], tiles=st.stats["tiles"])
    elif spec.styles == "images":
        model = spec.cached(device=_device())
        style_size = max(img.MIN_SIDE, round(float(params["style_scale"]) * size))
        styles = [img.load_image(p, size=style_size, max_pixels=max_pixels) for p in style_paths]
        if cancelled():
            raise JobCancelled()
        if plan is not None:
            out = spec.stylize_tiled(model, c, styles, plan, alpha=float(params["strength"]), blend=params.get("blend"),
                                     preserve_color=params["preserve_color"], progress=_tile_progress(report, cancelled))
        else:
            out = spec.stylize(model, c, styles, alpha=float(params["strength"]), blend=params.get("blend"),
                               mask=masks, preserve_color=params["preserve_color"], tileable=tileable)
        meta.update(alpha=float(params["strength"]), style_size=style_size)
    else:
        model = spec.cached(device=_device())
        # tileable: run at the output's size (a resize would break the wrap-around)
        run_size = size if tileable or plan is not None else \
            max(img.MIN_SIDE, min(2 * size, round(size / float(params["style_scale"]))))
        x = img.resize_longest(c, run_size) if run_size != max(c.shape[-2:]) else c
        if plan is not None:
            y = spec.stylize_tiled(model, x, [], plan, blend=params.get("blend"), preserve_color=params["preserve_color"],
                                   progress=_tile_progress(report, cancelled))
        else:
            y = spec.stylize(model, x, [], blend=params.get("blend"), preserve_color=params["preserve_color"],
                             tileable=tileable)
        if tileable:
            from ..imaging.tileable import make_periodic

            c = make_periodic(img.resize_to(c, y.shape[-2], y.shape[-1]))
        if y.shape[-2:] != c.shape[-2:]:
            y = img.resize_to(y, c.shape[-2], c.shape[-1])
        s = float(params["strength"])
        out = (s * y + (1 - s) * c).clamp(0, 1)
        if masks:  # the model's style where the mask is white, the photo where black
            from ..imaging import regions

            w, keep = regions.region_weights(masks, 1)
            out = regions.composite([out], c, w, keep)
        meta.update(model=method, model_sha256=weights_sha256(model), run_size=run_size)
    if cancelled():
        raise JobCancelled()
    if plan is not None:
        meta["tiles"] = {"tile": plan.tile, "overlap": plan.overlap, "count": plan.count}
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    report(1.0, None, "done")
    return out, meta
