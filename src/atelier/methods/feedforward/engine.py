"""The engine that runs a feed-forward network's inference: PyTorch or ONNX Runtime (issue 25, item 3).

On a CPU in fp32, ONNX Runtime runs the same graph faster than eager PyTorch: measured on a
2-core AVX2-only EPYC at 512 x 512 with a shipped width-0.5 model (2026-12-04), PyTorch fp32
2.2 images/s, ONNX Runtime 3.3 images/s (``benchmarks/feedforward.py --speed``). Int8
post-training quantization (``onnxruntime.quantization.quantize_static``, QDQ or QOperator,
per-tensor or per-channel, calibrated on 16 training photos) was measured too and is not
used: 3.2-3.5 images/s on that CPU (no faster than fp32) for a mean absolute error of 4-6/255.

``auto`` picks ONNX Runtime when all of these hold, and PyTorch otherwise:

* the model is on the CPU, in eval mode, and the precision resolves to fp32 (bf16 autocast
  stays in PyTorch: on CPUs with AVX512-BF16 it is the faster path);
* ``onnxruntime`` and ``onnx`` are installed (the ``onnx`` extra);
* no circular padding is asked for (``--tileable``: the exported graph pads by reflection).

The graph is exported once per set of weights (:func:`~atelier.methods.feedforward.export.export_onnx`,
about 2 s) into the cache folder (``$ATELIER_CACHE_DIR``/onnx), keyed by the sha256 of the
weights and the torch, onnxruntime and opset versions, and kept in memory for the process.
Outputs agree with PyTorch's to float rounding (about 1e-6; test in tests/test_engine.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from typing import Any

import torch

from ...core.errors import InputError
from ...core.files import cache_dir
from ...core.padding import is_circular

__all__ = ["ENGINES", "check_engine", "onnxruntime_available", "resolve_engine", "onnx_runner"]

#: The engines :func:`resolve_engine` accepts.
ENGINES = ("auto", "torch", "onnxruntime")

_LOCK = threading.Lock()
_RUNNERS: dict[str, Any] = {}


def check_engine(engine: str) -> str:
    """``engine`` if it is one of :data:`ENGINES`; raises ValueError otherwise."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


def onnxruntime_available() -> bool:
    """True when both ``onnx`` (export) and ``onnxruntime`` (inference) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def resolve_engine(engine: str, model: torch.nn.Module, precision: str) -> str:
    """The engine that runs ``model``: ``"torch"`` or ``"onnxruntime"``.

    Args:
        engine: ``"auto"``, ``"torch"`` or ``"onnxruntime"``.
        model: the :class:`~atelier.networks.TransformerNet` to run.
        precision: the resolved precision (``"fp32"`` or ``"bf16"``).

    Raises:
        ValueError: an unknown engine; ``"onnxruntime"`` asked for with a model on a GPU,
            with bf16, or with circular padding; or onnxruntime not installed.
    """
    check_engine(engine)
    if engine == "torch":
        return "torch"
    device = next(model.parameters()).device
    reasons = []
    if device.type != "cpu":
        reasons.append(f"the model is on {device.type}")
    if precision != "fp32":
        reasons.append(f"the precision is {precision}")
    if is_circular():
        reasons.append("circular padding (--tileable) is on")
    if model.training:
        reasons.append("the model is in training mode")
    if not onnxruntime_available():
        reasons.append("onnx/onnxruntime are not installed (pip install 'atelier[onnx]')")
    if not reasons:
        return "onnxruntime"
    if engine == "onnxruntime":
        raise ValueError("engine onnxruntime cannot run here: " + "; ".join(reasons))
    return "torch"


def _weights_key(model: torch.nn.Module) -> str:
    import onnxruntime

    from .export import DEFAULT_OPSET

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    h.update(f"torch={torch.__version__} ort={onnxruntime.__version__} opset={DEFAULT_OPSET}".encode())
    return h.hexdigest()[:32]


def onnx_runner(model: torch.nn.Module):
    """An :class:`~atelier.methods.feedforward.export.OnnxStylizer` for ``model``'s weights,
    exported once into the cache folder and kept for the process; its session uses as many
    intra-op threads as torch does (``torch.get_num_threads()``).

    Raises:
        InputError: the export or the session failed (naming the cached file).
    """
    from .export import OnnxStylizer, export_onnx

    key = _weights_key(model)
    threads = torch.get_num_threads()  # follow torch's setting (Ray workers set theirs)
    with _LOCK:
        runner = _RUNNERS.get(f"{key}-{threads}")
        if runner is not None:
            return runner
        path = cache_dir() / "onnx" / f"transformer-{key}.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            export_onnx(model, path)  # atomic: a killed export leaves no file
        try:
            runner = OnnxStylizer(path, threads=threads)
        except InputError:
            path.unlink(missing_ok=True)  # a damaged cache file: export again next time
            raise
        _RUNNERS[f"{key}-{threads}"] = runner
        return runner
