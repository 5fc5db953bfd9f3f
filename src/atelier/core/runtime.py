"""Where a model runs: device, accepted precision names, CPU threads.

How ``precision="auto"`` is decided (a measurement on the encoder) lives one layer up, in
:mod:`atelier.encoders.precision`, because it needs the VGG19 encoder.
"""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["PRECISIONS", "Runtime", "autocast", "check_precision", "check_runtime", "cpu_model", "resolve_device", "set_threads", "single_thread"]

#: Accepted precision names.
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> cuda if available, else mps if available, else cpu.

    Raises:
        ValueError: the requested device is not available in this torch build.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use --device cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but MPS is not available; use --device cpu")
    return dev


def check_precision(precision: str, what: str = "precision") -> str:
    """The one check of a precision name: returns it, or raises ValueError naming ``what`` and
    the accepted values (:data:`PRECISIONS`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"{what} must be auto, fp32 or bf16, got {precision!r}")
    return precision


@dataclass(frozen=True)
class Runtime:
    """Where and how a job runs, resolved once at the edge (CLI, API, studio) and passed down:
    ``device`` a torch.device, ``precision`` ``"fp32"`` or ``"bf16"`` (never ``"auto"``; see
    :func:`atelier.encoders.precision.resolve_runtime`)."""

    device: torch.device
    precision: str

    def autocast(self):
        """:func:`autocast` on this device at this precision."""
        return autocast(self.device, self.precision)


def check_runtime(device: str = "auto", precision: str = "auto") -> torch.device:
    """Validate a ``--device`` and ``--precision`` pair before any work (every CLI command uses
    this): the precision name, the device name, and that the device exists here.

    Returns:
        The resolved device.

    Raises:
        ValueError: a one-line message naming the option and the accepted values.
    """
    check_precision(precision, "--precision")
    name = str(device).strip().lower()
    if name != "auto":
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError):
            dev = None
        if dev is None or dev.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    dev = resolve_device(name)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` "model name"; else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def set_threads(threads: Optional[int]) -> int:
    """Set torch's intra-op CPU threads (``None`` or < 1: leave as is); returns the count in use."""
    if threads is not None and threads >= 1:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


@contextlib.contextmanager
def single_thread():
    """Run the block with one intra-op CPU thread, then restore the count (process-wide setting).

    For small dense LAPACK calls such as ``torch.linalg.eigh`` of a 512 x 512 float64 matrix: on
    the 2-core VM with other work running, 2 threads took 3.6-6.1 s per call and 1 thread 0.03 s
    (2026-11-27, load average 2.6), the threads spinning against each other."""
    before = torch.get_num_threads()
    if before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before > 1:
            torch.set_num_threads(before)


def autocast(device: "torch.device | str", precision: str):
    """The one autocast context of atelier: bf16 autocast on ``device`` when ``precision`` is
    ``"bf16"``, a no-op for ``"fp32"`` (``precision`` is already resolved: not ``"auto"``).
    Statistics that must stay float32 open ``autocast(device, "fp32")`` inside it."""
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    return torch.autocast(device_type=kind, dtype=torch.bfloat16, enabled=precision == "bf16")
