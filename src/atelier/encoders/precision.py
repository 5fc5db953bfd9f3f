"""``precision="auto"``: decided by measurement on the CPU.

The CPU kinds this project meets differ by a factor of 50 in bf16 speed: on a CPU with bf16
instructions (AVX512-BF16, AMX) a bf16 VGG pass can be 2x faster than fp32, or slower (0.73x on a
Xeon VM); on an AVX2-only CPU it is 20-50x slower. So ``auto``:

* without bf16 instructions (:func:`cpu_features`): fp32, without measuring (the measurement
  there would take tens of seconds, for a known answer);
* with them: a calibration, one VGG19 forward and backward pass to relu5_1 on a
  :data:`CALIBRATION_SIZE` px image (a representative size: at 80 px the fixed costs hid the
  difference), after a warm-up, fp32 and bf16 alternately, repeated until the last two
  measurements of each agree within :data:`AGREEMENT` (at most :data:`MAX_ROUNDS`); bf16 is
  chosen where it takes at most :data:`BF16_MARGIN` of the fp32 time.

The record is cached as a small JSON file in the cache folder (``$ATELIER_CACHE_DIR`` or the
platform's cache dir), keyed by the CPU model, the instruction sets that matter
(:data:`BF16_FLAGS` and avx512f, and torch's CPU capability) and the torch version, so a new CPU
kind or torch measures again even where the model name is the same ("AMD EPYC" on both EPYC
kinds). A noisy record (the measurements never agreed) is used for this process and measured
once more by the next one, whose record is then kept. On CUDA, ``auto`` means bf16 where the GPU supports it; elsewhere fp32. Asking
for bf16 on a CPU without bf16 instructions warns once (:func:`bf16_warning`). (It lives beside
the encoder it times, not in :mod:`atelier.core.runtime`, so that core never imports upward.)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import warnings
from typing import Callable, Optional

import torch

from ..core.files import atomic_write, cache_dir
from ..core.runtime import PRECISIONS, Runtime, check_runtime, cpu_model

__all__ = ["AGREEMENT", "BF16_FLAGS", "BF16_MARGIN", "CALIBRATION_SIZE", "MAX_ROUNDS", "bf16_warning",
           "calibrate_cpu_precision", "cpu_features", "decide", "precision_note", "resolve_precision"]

#: Side (pixels) of the square test image of the CPU calibration.
CALIBRATION_SIZE = 256
#: bf16 must take at most this fraction of the fp32 time to be chosen (noise margin).
BF16_MARGIN = 0.9
#: Two measurements agree when they differ by at most this fraction of the smaller.
AGREEMENT = 0.10
#: Rounds of the calibration at most (each: one fp32 and one bf16 pass).
MAX_ROUNDS = 5
#: /proc/cpuinfo flags that give bf16 arithmetic its speed on x86.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")

_LOCK = threading.Lock()
_DECISIONS: dict[str, dict] = {}  # cache key -> calibration record, this process
_WARNED: set = set()


def cpu_features() -> dict:
    """The instruction sets that decide bf16 speed: ``flags`` (those of :data:`BF16_FLAGS` and
    ``avx512f`` that ``/proc/cpuinfo`` lists), ``capability`` (torch's
    ``torch.backends.cpu.get_cpu_capability()``, e.g. ``"AVX2"``, ``"AVX512"``) and ``bf16`` (True
    when a bf16 flag is there; on a system without ``/proc/cpuinfo``, None: unknown)."""
    flags: Optional[set] = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - older torch
        capability = "unknown"
    wanted = (*BF16_FLAGS, "avx512f")
    return {"flags": sorted(f for f in wanted if flags and f in flags), "capability": capability,
            "bf16": None if flags is None else any(f in flags for f in BF16_FLAGS)}


def _cache_key() -> str:
    feat = cpu_features()
    return f"{cpu_model()} | {','.join(feat['flags']) or 'no-bf16-flags'} | {feat['capability']} | torch {torch.__version__}"


def _cache_file(key: str):
    return cache_dir() / f"precision-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _time_pass(encoder, x: torch.Tensor, precision: str) -> float:
    """Wall time (seconds) of one forward+backward pass to relu5_1."""
    xi = x.clone().requires_grad_(True)
    t0 = time.perf_counter()
    feats = encoder(xi, ["relu5_1"], precision)
    feats["relu5_1"].float().square().mean().backward()
    return time.perf_counter() - t0


def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= AGREEMENT * min(a, b)


def decide(measure: Callable[[str], float], max_rounds: int = MAX_ROUNDS) -> dict:
    """The calibration's decision from a timer (``measure(precision) -> seconds``; injected in tests).

    One warm-up call of each precision, then rounds of one fp32 and one bf16 measurement until
    the last two of each agree within :data:`AGREEMENT`, at most ``max_rounds``. A precision whose
    measurement raises RuntimeError (no kernels in this build) counts as infinitely slow.

    Returns:
        ``choice`` (``"bf16"`` when its best time is at most :data:`BF16_MARGIN` of fp32's), the
        best times ``fp32_s`` and ``bf16_s`` (None: unavailable), ``rounds`` and ``noisy`` (True when
        the measurements never agreed).
    """
    times: dict[str, list] = {"fp32": [], "bf16": []}
    ok = {"fp32": True, "bf16": True}
    for p in times:  # warm-up
        try:
            measure(p)
        except RuntimeError:
            ok[p] = False
    if not ok["fp32"]:
        raise RuntimeError("fp32 autograd failed during the precision calibration")
    rounds, steady = 0, False
    while rounds < max_rounds:
        rounds += 1
        for p in times:
            if ok[p]:
                times[p].append(measure(p))
        steady = all(not ok[p] or (len(v) >= 2 and _agree(v[-1], v[-2])) for p, v in times.items())
        if steady:
            break
    t32 = min(times["fp32"])
    t16 = min(times["bf16"]) if ok["bf16"] else float("inf")
    return {"choice": "bf16" if t16 <= BF16_MARGIN * t32 else "fp32", "fp32_s": round(t32, 5),
            "bf16_s": round(t16, 5) if ok["bf16"] else None, "rounds": rounds, "noisy": not steady}


def calibrate_cpu_precision(size: int = CALIBRATION_SIZE, encoder=None, features: Optional[dict] = None) -> dict:
    """Decide fp32 or bf16 for this CPU (no cache; see the module doc). Returns the record:
    ``choice``, ``fp32_s``, ``bf16_s`` (best pass times; None when not measured), ``rounds``,
    ``noisy``, ``reason``, ``size``, ``cpu``, ``features``, ``torch``, ``measured`` (date)."""
    features = cpu_features() if features is None else features
    base = {"size": size, "cpu": cpu_model(), "features": features, "torch": torch.__version__,
            "measured": time.strftime("%Y-%m-%d")}
    if features.get("bf16") is False:
        return {**base, "choice": "fp32", "fp32_s": None, "bf16_s": None, "rounds": 0, "noisy": False,
                "reason": "no bf16 instructions (" + (features.get("capability") or "?") + "): fp32, not measured"}
    if encoder is None:
        from .vgg import get_encoder  # imported late: costs a weight load

        encoder = get_encoder(None, "max", "cpu")
    x = torch.rand((1, 3, size, size), generator=torch.Generator().manual_seed(0))
    rec = decide(lambda p: _time_pass(encoder, x, p))
    return {**base, **rec, "reason": "measured"}


def _valid(rec) -> bool:
    return (isinstance(rec, dict) and rec.get("choice") in ("fp32", "bf16") and rec.get("cpu") == cpu_model()
            and rec.get("torch") == torch.__version__ and rec.get("features") == cpu_features()
            and (not rec.get("noisy") or rec.get("retried", False)))


def _cpu_decision() -> dict:
    key = _cache_key()
    with _LOCK:
        rec = _DECISIONS.get(key)
        if rec is not None:
            return rec
        path = _cache_file(key)
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        rec = old if _valid(old) else None
        if rec is None:
            rec = calibrate_cpu_precision()
            # a noisy record is measured once more (next process); the second one is kept, noisy or
            # not, so a busy machine does not pay for a calibration in every process
            rec["retried"] = isinstance(old, dict) and bool(old.get("noisy")) and _valid({**old, "noisy": False})
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(path, "w") as f:
                    json.dump(rec, f, indent=1)
            except OSError:
                pass  # a read-only cache: measure again next time
        _DECISIONS[key] = rec
        return rec


def bf16_warning(device: torch.device) -> Optional[str]:
    """The warning for an explicit bf16 on a CPU without bf16 instructions (None where it does not
    apply); :func:`resolve_precision` gives it once per process as a ``RuntimeWarning``."""
    if torch.device(device).type != "cpu" or cpu_features().get("bf16") is not False:
        return None
    return (f"bf16 was asked for, but this CPU has no bf16 instructions ({cpu_features()['capability']}): "
            "bf16 runs 20-50x slower than fp32 here; use --precision fp32 or auto")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"``/``"bf16"`` as given; ``"auto"`` -> bf16 on CUDA with bf16 support, on the
    CPU whichever the (cached) calibration measured faster, else fp32.

    Raises:
        ValueError: an unknown precision name.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if precision == "bf16" and (message := bf16_warning(device)) and "bf16" not in _WARNED:
        _WARNED.add("bf16")
        warnings.warn(message, RuntimeWarning, stacklevel=2)
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
    if rec.get("fp32_s") is None:
        return f"auto: {chosen} ({rec.get('reason', 'not measured')})"
    bf = "n/a" if rec.get("bf16_s") is None else f"{rec['bf16_s']:.3g} s"
    return (f"auto: {chosen} (measured bf16 {bf} vs fp32 {rec['fp32_s']:.3g} s per VGG pass at {rec['size']} px"
            + (", noisy" if rec.get("noisy") else "") + ")")


def resolve_runtime(device: str = "auto", precision: str = "auto") -> Runtime:
    """``--device`` and ``--precision`` resolved once into a :class:`~atelier.core.runtime.Runtime`
    (``auto`` precision measured on the CPU, see :func:`resolve_precision`).

    Raises:
        ValueError: an unknown or unavailable device, or an unknown precision.
    """
    dev = check_runtime(device, precision)
    return Runtime(dev, resolve_precision(precision, dev))
