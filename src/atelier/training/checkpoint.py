"""Pieces of exact resume: Ctrl-C deferred to a step boundary, and the random states saved in a
checkpoint (used by :class:`atelier.training.loop.BaseTrainer`)."""

from __future__ import annotations

import contextlib
import random
import signal
import threading

import torch

__all__ = ["SigintGuard", "rng_state", "set_rng_state"]


class SigintGuard:
    """Defer Ctrl-C to the end of the current training step (so checkpoints are consistent).

    Active only in the main thread with Python's default SIGINT handler. A second Ctrl-C
    during the same step raises KeyboardInterrupt at once.
    """

    def __init__(self):
        self.hit = False
        self._old = None

    def _handle(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None
        return False


def rng_state(generator: torch.Generator) -> dict:
    """The torch, CUDA (when initialised), Python ``random`` and ``generator`` states, as
    tensors and lists (loadable with ``torch.load(weights_only=True)``)."""
    v, state, gauss = random.getstate()
    out = {"torch": torch.get_rng_state(), "python": [v, list(state), gauss], "generator": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = list(torch.cuda.get_rng_state_all())
    return out


def set_rng_state(rng: dict, generator: torch.Generator) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only where CUDA is available)."""
    torch.set_rng_state(rng["torch"])
    v, state, gauss = rng["python"]
    random.setstate((v, tuple(state), gauss))
    generator.set_state(rng["generator"])
    if rng.get("cuda") and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, IndexError):
            torch.cuda.set_rng_state_all(rng["cuda"])
