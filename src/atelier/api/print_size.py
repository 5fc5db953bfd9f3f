"""Print sizes in the interfaces (issue 24): whether and how a one-pass run is tiled, from
``tile`` (``"auto"``, ``"off"`` or a tile side in px) and ``max_memory`` (``"8G"``, ``"512M"``, a
byte count; default 80 % of the memory available now: RAM on the CPU, free VRAM on CUDA). Used by
``atelier stylize`` and :func:`atelier.stylize`; the tiling itself is :mod:`atelier.imaging.tiles`
and each method's ``tiled`` runner (:class:`atelier.methods.registry.Method`)."""

from __future__ import annotations

from typing import Optional, Union

from ..core.limits import parse_bytes

__all__ = ["SKETCH", "parse_bytes", "print_plan"]


def print_plan(spec, height: int, width: int, tile: Union[str, int] = "auto",
               max_memory: Optional[Union[str, int]] = None, device="cpu"):
    """The :class:`~atelier.imaging.tiles.TilePlan` of a run of ``spec`` (a registry method) at
    ``height x width``, or None to run untiled. ``auto`` tiles only when the untiled estimate
    (:data:`atelier.core.limits.BYTES_PER_PIXEL`) exceeds the budget.

    Raises:
        InputError: even the smallest tiles do not fit the budget, or the requested tiles do not.
        ValueError: a bad ``tile`` or ``max_memory``, or tiles asked of a method that is not tiled.
    """
    from ..core.errors import InputError
    from ..core.limits import BYTES_PER_PIXEL, available_memory
    from ..imaging.tiles import choose_tile, tile_plan

    if tile == "off":
        return None
    if spec.tiled is None:
        if tile != "auto":
            raise ValueError(f"--tile does not apply to --method {spec.name} (it is not tiled)")
        return None
    h, w = height, width
    free = available_memory(device)
    budget = parse_bytes(max_memory) if max_memory else (int(0.8 * free) if free else None)
    if tile != "auto":
        try:
            px = int(tile)
        except ValueError:
            raise ValueError(f"--tile must be auto, off or a tile side in px, got {tile!r}") from None
        plan = tile_plan(h, w, px, min(96, (px // 2) // 16 * 16), spec.memory)  # margins on relu5_1's grid
    elif budget is None or h * w * BYTES_PER_PIXEL[spec.memory] <= budget:
        return None
    else:
        plan = choose_tile(h, w, budget, kind=spec.memory)
        if plan is None:
            raise InputError(f"--method {spec.name} at {w}x{h} does not fit {budget / 2**30:.1f} GiB even in "
                             "256 px tiles; ask for a smaller size or allow more with --max-memory")
    if budget is not None and plan.peak_bytes > budget:
        raise InputError(f"{plan.describe()}: more than the {budget / 2**30:.1f} GiB allowed; use smaller "
                         "--tile or a larger --max-memory")
    return plan


class _Sketch:
    """``atelier sketch`` as :func:`print_plan` sees a method: tiled, with its own memory model
    (:data:`atelier.core.limits.BYTES_PER_PIXEL`: the contour network's full-size hypercolumns)."""

    name, tiled, memory = "sketch", True, "sketch"


#: Pass as ``spec`` to :func:`print_plan` to plan a sketch (:func:`atelier.methods.sketch.contours.boundary_map`).
SKETCH = _Sketch()
