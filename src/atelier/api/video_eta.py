"""The time estimate of ``atelier video`` (issue 30): how long a run will take, told once before
most of it, measured on the first frame or, for Gatys (whose first frame alone can take minutes),
on the first tenth of that frame's iterations."""

from __future__ import annotations

import time
from typing import Callable, Optional

#: Called with one-line notices as they come: (kind, message); kind is "warning" (an upscale, a
#: truncated source), "estimate" (the time the run will take, once) or "progress" (Gatys: the
#: iteration within the current frame, e.g. "iteration 37/300", after each one; for a progress bar).
Notify = Callable[[str, str], None]
#: Runs estimated to take longer than this (seconds) get an "estimate" notice.
ESTIMATE_AFTER = 10.0


class Estimator:
    """The time a run will take, told once through ``notify`` when it exceeds :data:`ESTIMATE_AFTER`:
    for Gatys from the rate of the first frame's iterations after its first one, once a tenth of them
    are done (pyramid levels weighted by their pixels, each level 4x the one before; the set-up before
    the first iteration is left out); otherwise from the first frame when that already shows a
    long run (over 6x :data:`ESTIMATE_AFTER`), else from the second frame alone (the first carries
    the warm-up, the second the optical flow too)."""

    def __init__(self, expected: Optional[int], iterations: Optional[int], notify: Optional[Notify]):
        self.expected, self.iterations, self.notify = expected, iterations, notify
        self.t0: Optional[float] = None
        self.t1: Optional[float] = None  # when frame 1 was done
        self.first_iteration: Optional[tuple] = None  # Gatys: (time, share of frame 1 done) at its first iteration
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
        if self.notify is not None:
            self.notify("progress", f"iteration {p.iteration + p.scale * p.iterations}/{p.iterations * p.scales}")
        if self.told or self.t0 is None or not self.iterations:
            return
        weights = [4 ** level for level in range(p.scales)]
        done = (sum(weights[:p.scale]) * p.iterations + weights[p.scale] * p.iteration) / (sum(weights) * p.iterations)
        now = time.perf_counter()
        if self.first_iteration is None:  # the time before it is set-up (the network, the style targets)
            self.first_iteration = (now, done)
        elif done >= 0.1:
            t1, d1 = self.first_iteration
            self._tell((now - t1) / (done - d1), self.expected, f"iterations 2-{p.iteration} of frame 1" if p.iteration > 2 else "iteration 2 of frame 1")

    def frame(self, done: int) -> None:
        if self.told or self.t0 is None:
            return
        now = time.perf_counter()
        left = None if self.expected is None else max(0, self.expected - done)
        if left == 0:
            self.told = True
        elif done == 1:
            self.t1 = now
            first = now - self.t0
            if first * (left or 1) >= 6 * ESTIMATE_AFTER:
                self._tell(first, left, "the first frame")
        elif self.t1 is not None:
            self._tell(now - self.t1, left, "the second frame")


def _duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 10 s``, ``2 h 5 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
