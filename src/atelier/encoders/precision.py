"""``precision="auto"``: decided by measurement on the CPU.

A short calibration (one VGG19 forward and backward pass on a small image, in fp32 and in
bf16 autocast) picks bf16 only where it is clearly faster. The result is cached per CPU model
and torch version as a small JSON file in the cache folder (``$ATELIER_CACHE_DIR`` or the
platform's cache dir), so the calibration runs once per machine. On CUDA, ``auto`` means bf16
where the GPU supports it; elsewhere fp32. (It lives beside the encoder it times, not in
:mod:`atelier.core.runtime`, so that core never imports upward.)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Optional

import torch

from ..core.files import atomic_write, cache_dir
from ..core.runtime import PRECISIONS, Runtime, check_runtime, cpu_model

__all__ = ["BF16_MARGIN", "CALIBRATION_SIZE", "calibrate_cpu_precision", "precision_note", "resolve_precision"]

#: Side (pixels) of the square test image of the CPU calibration.
CALIBRATION_SIZE = 80
#: bf16 must take at most this fraction of the fp32 time to be chosen (noise margin).
BF16_MARGIN = 0.9

_LOCK = threading.Lock()
_DECISIONS: dict[str, dict] = {}  # cache key -> calibration record, this process


def _cache_key() -> str:
    return f"{cpu_model()} | torch {torch.__version__}"


def _cache_file(key: str):
    return cache_dir() / f"precision-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _time_pass(encoder, x: torch.Tensor, precision: str, repeats: int = 2) -> float:
    """Best wall time (seconds) of one forward+backward to relu5_1, after one warm-up."""
    best = float("inf")
    for i in range(repeats + 1):
        xi = x.clone().requires_grad_(True)
        t0 = time.perf_counter()
        feats = encoder(xi, ["relu5_1"], precision)
        feats["relu5_1"].float().square().mean().backward()
        if i:
            best = min(best, time.perf_counter() - t0)
    return best


def calibrate_cpu_precision(size: int = CALIBRATION_SIZE, encoder=None) -> dict:
    """Measure fp32 against bf16 on this CPU (no cache). Returns the calibration record:
    ``choice``, ``fp32_s``, ``bf16_s`` (best of 2 forward+backward passes), ``size``,
    ``cpu``, ``torch``."""
    if encoder is None:
        from .vgg import get_encoder  # imported late: costs a weight load

        encoder = get_encoder(None, "max", "cpu")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((1, 3, size, size), generator=gen)
    t32 = _time_pass(encoder, x, "fp32")
    try:
        t16 = _time_pass(encoder, x, "bf16")
    except RuntimeError:  # no bf16 kernels on this build
        t16 = float("inf")
    choice = "bf16" if t16 <= BF16_MARGIN * t32 else "fp32"
    return {"choice": choice, "fp32_s": round(t32, 5), "bf16_s": round(t16, 5) if t16 != float("inf") else None,
            "size": size, "cpu": cpu_model(), "torch": torch.__version__, "measured": time.strftime("%Y-%m-%d")}


def _cpu_decision() -> dict:
    key = _cache_key()
    with _LOCK:
        rec = _DECISIONS.get(key)
        if rec is not None:
            return rec
        path = _cache_file(key)
        try:
            rec = json.loads(path.read_text())
            if rec.get("choice") not in ("fp32", "bf16") or rec.get("cpu") != cpu_model() \
                    or rec.get("torch") != torch.__version__:
                rec = None
        except (OSError, ValueError, AttributeError):
            rec = None
        if rec is None:
            rec = calibrate_cpu_precision()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(path, "w") as f:
                    json.dump(rec, f, indent=1)
            except OSError:
                pass  # a read-only cache: measure again next time
        _DECISIONS[key] = rec
        return rec


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"``/``"bf16"`` as given; ``"auto"`` -> bf16 on CUDA with bf16 support, on the
    CPU whichever the (cached) calibration measured faster, else fp32.

    Raises:
        ValueError: an unknown precision name.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return _cpu_decision()["choice"]
    return "fp32"


def precision_note(precision: str, device: torch.device) -> Optional[str]:
    """How ``precision`` was chosen, for progress lines and metrics: ``None`` when it was
    given explicitly, else e.g. ``"auto: bf16 (measured 0.12 s vs fp32 0.19 s)"``."""
    if precision != "auto":
        return None
    device = torch.device(device)
    chosen = resolve_precision(precision, device)
    if device.type != "cpu":
        return f"auto: {chosen} ({device.type})"
    rec = _cpu_decision()
    bf = "n/a" if rec.get("bf16_s") is None else f"{rec['bf16_s']:.3g} s"
    return f"auto: {chosen} (measured bf16 {bf} vs fp32 {rec['fp32_s']:.3g} s per VGG pass at {rec['size']} px)"


def resolve_runtime(device: str = "auto", precision: str = "auto") -> Runtime:
    """``--device`` and ``--precision`` resolved once into a :class:`~atelier.core.runtime.Runtime`
    (``auto`` precision measured on the CPU, see :func:`resolve_precision`).

    Raises:
        ValueError: an unknown or unavailable device, or an unknown precision.
    """
    dev = check_runtime(device, precision)
    return Runtime(dev, resolve_precision(precision, dev))
