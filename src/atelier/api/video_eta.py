"""The time estimate of ``atelier video`` (issue 30): how long a run will take, told once before
most of it, measured on the first frame or, for Gatys (whose first frame alone can take minutes),
on the first tenth of that frame's iterations."""

from __future__ import annotations

import time
from typing import Callable, Optional

#: Called with one-line notices as they come: (kind, message); kind is "warning" (an upscale, a
#: truncated source) or "estimate" (the time the run will take).
Notify = Callable[[str, str], None]
#: Runs estimated to take longer than this (seconds) get an "estimate" notice.
ESTIMATE_AFTER = 10.0


class Estimator:
    """The time a run will take, told once through ``notify`` when it exceeds :data:`ESTIMATE_AFTER`:
    measured on the first frame, or for Gatys on the first tenth of the first frame's iterations
    (pyramid levels weighted by their pixels, each level 4x the one before)."""

    def __init__(self, expected: Optional[int], iterations: Optional[int], notify: Optional[Notify]):
        self.expected, self.iterations, self.notify = expected, iterations, notify
        self.t0: Optional[float] = None
        self.told = False

    def begin(self) -> None:
        self.t0 = time.perf_counter()

    def _tell(self, per_frame: float, frames_left: Optional[int], basis: str) -> None:
        self.told = True
        total = per_frame * frames_left if frames_left else per_frame
        if self.notify is None or total < ESTIMATE_AFTER:
            return
        todo = f", about {_duration(total)} for the {frames_left} frames to go" if frames_left else ""
        self.notify("estimate", f"estimate: {_duration(per_frame)} per frame{todo} (measured on {basis})")

    def iteration(self, p) -> None:
        if self.told or self.t0 is None or not self.iterations:
            return
        weights = [4 ** level for level in range(p.scales)]
        done = (sum(weights[:p.scale]) * p.iterations + weights[p.scale] * p.iteration) / (sum(weights) * p.iterations)
        if done >= 0.1 and p.iteration >= 2:
            self._tell((time.perf_counter() - self.t0) / done, self.expected,
                       f"the first {p.iteration} iterations of frame 1")

    def frame(self, done: int) -> None:
        if not self.told and self.t0 is not None:
            left = None if self.expected is None else max(0, self.expected - done)
            if left == 0:
                self.told = True
                return
            self._tell((time.perf_counter() - self.t0) / done, left, "the first frame")


def _duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 10 s``, ``2 h 5 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
