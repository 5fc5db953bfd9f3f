"""The studio's Paint tab (issue 27): a painting job. The photo is painted with brush strokes by
:func:`atelier.api.paint.paint` (the shipped agent, the stroke optimizer or the greedy baseline)
and the canvas is sent as the job's preview while it fills in; the result is the stroke list
rendered at the size asked, with the strokes in the PNG's metadata.

A paint job goes through the same queue, progress, preview, Cancel and result routes as a
stylization job; its parameters carry ``kind: "paint"``.
"""

from __future__ import annotations

from typing import Callable, Literal, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field

from .render import JobCancelled
from .store import IMAGE_ID_PATTERN

__all__ = ["PaintRequest", "render_paint"]


class PaintRequest(BaseModel):
    """A painting job."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kind: Literal["paint"] = "paint"
    content: str = Field(..., pattern=IMAGE_ID_PATTERN, description="id of the photo to paint")
    styles: list[str] = Field(default_factory=list, max_length=1,
                              description="optimize only: one painting whose style the strokes take")
    method: Literal["agent", "optimize", "greedy"] = Field("agent", description="agent (fast), optimize (slow, "
                                                           "closest; takes a style) or greedy (the baseline)")
    strokes: int = Field(400, ge=1, le=2000, description="number of strokes")
    brush: Literal["oil", "watercolour", "marker"] = "oil"
    size: int = Field(768, ge=64, le=4096, description="longest side of the rendered painting in pixels")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the optimizer's and greedy's draws")
    iterations: int = Field(40, ge=1, le=200, description="optimize: Adam steps per group of strokes")


def render_paint(params: dict, content_path, style_paths: list, mask_path=None, *,
                 cancelled: Callable[[], bool] = lambda: False,
                 on_progress: Optional[Callable[[float, Optional[torch.Tensor], str], None]] = None,
                 preview_every: int = 5, max_pixels: Optional[int] = None) -> tuple[torch.Tensor, dict]:
    """Run one painting job (the signature of :func:`atelier.studio.render.render`).

    Returns:
        ``(image float32 (1, 3, H, W) in [0, 1], metadata with the strokes)``.

    Raises:
        JobCancelled: ``cancelled()`` became true (checked after every step of strokes).
        InputError, ValueError: a bad photo or option.
    """
    import time

    from ..api.paint import paint

    report = on_progress or (lambda *a: None)
    total = int(params["strokes"])
    shown = {"at": 0}

    def callback(done: int, n: int, canvas: torch.Tensor) -> None:
        if cancelled():
            raise JobCancelled()
        show = done >= n or done - shown["at"] >= max(1, n // 20)  # about 20 previews as the canvas fills in
        if show:
            shown["at"] = done
        report(done / max(n, 1), canvas.detach().clamp(0, 1).float().cpu() if show else None,
               f"stroke {done}/{n}")

    if cancelled():
        raise JobCancelled()
    report(0.0, None, "loading the painter")
    t0 = time.perf_counter()
    painting = paint(content_path, strokes=total, method=params["method"],
                     style=style_paths[0] if style_paths else None, seed=int(params["seed"]),
                     iterations=int(params["iterations"]), callback=callback, max_pixels=max_pixels,
                     brush=params["brush"])
    out = painting.render(int(params["size"]))
    meta = {"method": "paint", "painter": params["method"], "brush": params["brush"], "strokes": total,
            "seconds": time.perf_counter() - t0, "painting": painting.to_dict()}
    return out, meta
