"""Batch jobs on Ray Data (issue 26): many input files, one output file each, on a local Ray
cluster or an existing one (``ray start`` / ``ray up`` / KubeRay).

The engine is Ray Data, not a scheduler of ours: the (input, output) pairs become a dataset
(``ray.data.from_items``), and ``map_batches`` runs a stateful worker class (an actor pool of
``workers`` actors, each loading its model once in ``__init__``) over batches of
``batch_size`` pairs. What a worker does is a *job* (:class:`BatchJob`): a picklable object
with ``setup()`` (load the model, once per worker), ``expected_metadata(src)`` (the
parameters embedded in a correct output) and ``run(pairs)`` (write the outputs atomically,
return one error message or None per input). The jobs of ``atelier apply``, ``sketch`` and
``stylize`` live in :mod:`atelier.api.batch` and call the same functions as the
single-machine commands, so the files, names and metadata are the same.

Resume: before running a pair the worker checks its output; one that exists, decodes whole
and carries exactly the expected metadata is skipped ("exists and verifies"), anything else
is (re)written. Bad inputs are reported with the one-line reason of the single-machine path
and skipped; the job never stops for them.

Files are read and written by the workers at the paths given, so on a multi-node cluster the
inputs and outputs must be on storage every node sees (NFS, a mounted bucket); see
docs/scale-out.md.
"""

from __future__ import annotations

import os
import pathlib
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Sequence

__all__ = ["BatchJob", "BatchSummary", "run_batch", "map_on_ray", "verify_output", "ray_available", "RAY_HINT"]

RAY_HINT = "Ray is not installed; install the extra: pip install 'atelier[ray]'"
#: Reason given for a pair skipped because its output is already there.
EXISTS = "output exists and verifies (same parameters); skipped"


class BatchJob(Protocol):
    """What :func:`run_batch` runs on every worker (must be picklable; set up lazily)."""

    def setup(self) -> None:
        """Load the model (called once per worker, in the worker's process)."""

    def expected_metadata(self, src: str) -> dict:
        """Metadata a correct output of input ``src`` carries (these keys compared on resume)."""

    def run(self, pairs: Sequence[tuple[str, str]]) -> list[Optional[str]]:
        """Write the outputs of (input, output) pairs atomically; one-line error or None each."""


@dataclass
class BatchSummary:
    """What :func:`run_batch` did.

    Attributes:
        done: (input, output) written; skipped: (input, reason): outputs already there and
        verified; failed: (input, one-line reason); startup_seconds: connecting to / starting
        the Ray cluster; seconds: the whole call (start-up included); workers: actors used;
        nodes: number of pairs handled per Ray node id; pids: pairs per worker process id.
    """

    done: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    startup_seconds: float = 0.0
    seconds: float = 0.0
    workers: int = 0
    nodes: dict = field(default_factory=dict)
    pids: dict = field(default_factory=dict)


def ray_available() -> bool:
    """Whether ``ray.data`` can be imported."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def _normal(meta: dict) -> dict:
    import json

    return json.loads(json.dumps(meta, default=str, sort_keys=True))


def verify_output(dst: str | os.PathLike, expected: dict) -> bool:
    """Whether ``dst`` is a finished output made with these parameters: it exists, every key
    of ``expected`` is in its embedded metadata with the same value (after a JSON round trip;
    a job passes all the keys it writes, or those that fix the result when some, like the
    seconds taken, vary) and its pixels decode whole (a truncated file fails). Never raises."""
    from PIL import Image

    from ..core.errors import InputError
    from ..io import images as img

    p = pathlib.Path(os.fspath(dst))
    if not p.is_file():
        return False
    try:
        stored = img.read_metadata(p)
        if not isinstance(stored, dict) or any(stored.get(k, object()) != v for k, v in _normal(expected).items()):
            return False
        with Image.open(p) as im:
            im.load()
    except (InputError, OSError, ValueError, SyntaxError):
        return False
    return True


class _Worker:
    """The stateful Ray Data UDF: the job is set up once per actor, then maps batches of
    {"src", "dst"} columns to {"src", "dst", "status", "reason", "node", "pid"}."""

    def __init__(self, job, threads: int = 1):
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.job = job
        self.job.setup()
        try:
            import ray

            self.node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - outside a Ray worker (tests of the class itself)
            self.node = "local"

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        src = [str(s) for s in batch["src"]]
        dst = [str(d) for d in batch["dst"]]
        status, reason = ["done"] * len(src), [""] * len(src)
        todo = []
        for i, (s, d) in enumerate(zip(src, dst)):
            if verify_output(d, self.job.expected_metadata(s)):
                status[i], reason[i] = "skipped", EXISTS
            else:
                todo.append(i)
        if todo:
            errors = self.job.run([(src[i], dst[i]) for i in todo])
            for i, e in zip(todo, errors):
                if e is not None:
                    status[i], reason[i] = "failed", e
        n = len(src)
        return {"src": np.array(src, dtype=object), "dst": np.array(dst, dtype=object),
                "status": np.array(status, dtype=object), "reason": np.array(reason, dtype=object),
                "node": np.array([self.node] * n, dtype=object), "pid": np.array([os.getpid()] * n)}


class _MapWorker:
    """The stateful UDF of :func:`map_on_ray`: ``job.map(items)`` gives (value, error) per item."""

    def __init__(self, job, threads: int = 1):
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.job = job
        self.job.setup()

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        items = [str(s) for s in batch["item"]]
        results = self.job.map(items)
        return {"item": np.array(items, dtype=object),
                "value": np.array([b"" if v is None else bytes(v) for v, _ in results], dtype=object),
                "error": np.array(["" if e is None else e for _, e in results], dtype=object)}


def map_on_ray(job, items: Sequence[str], *, address: Optional[str] = None, workers: Optional[int] = None,
               batch_size: int = 8, device: str = "cpu"):
    """Map ``items`` (strings: file paths) with ``job`` on Ray Data and yield
    ``(item, value bytes or None, error or None)`` as batches finish (any order). The job has
    ``setup()`` (once per worker) and ``map(items) -> [(bytes or None, error or None)]``;
    ``job.device`` is set as in :func:`run_batch`. A Ray started here is shut down when the
    generator is closed or exhausted.

    Raises:
        ImportError: Ray is not installed. ValueError: bad ``batch_size``, ``workers``, ``device``.
    """
    if batch_size < 1 or (workers is not None and workers < 1):
        raise ValueError(f"batch size and workers must be >= 1, got {batch_size}, {workers}")
    try:
        import ray
        import ray.data
    except ImportError:
        raise ImportError(RAY_HINT) from None
    if not items:
        return
    started = _connect(address, None)
    try:
        res = ray.cluster_resources()
        cuda = device == "cuda" or (device == "auto" and res.get("GPU", 0) > 0)
        if device not in ("cpu", "cuda", "auto") or (device == "cuda" and not res.get("GPU", 0)):
            raise ValueError(f"device {device!r}: use cpu, auto, or cuda on a cluster with GPUs")
        job.device = "cuda" if cuda else "cpu"
        n = max(1, min(workers or int(res.get("GPU" if cuda else "CPU", 1)), len(items)))
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ds = ray.data.from_items([{"item": str(i)} for i in items],
                                 override_num_blocks=max(1, min(-(-len(items) // batch_size), 10_000)))
        out = ds.map_batches(_MapWorker, fn_constructor_kwargs={"job": job}, batch_size=batch_size,
                             compute=ray.data.ActorPoolStrategy(size=n), num_cpus=1, num_gpus=1 if cuda else None,
                             batch_format="numpy")
        for row in out.iter_rows():
            err = str(row["error"]) or None
            yield str(row["item"]), (None if err else bytes(row["value"])), err
    finally:
        if started:
            ray.shutdown()


def _connect(address: Optional[str], num_cpus: Optional[int], log_to_driver: bool = False) -> bool:
    """Start a local Ray cluster or connect to ``address``; True when this call started it
    (and so must shut it down). A Ray already initialised in this process is used as it is.
    ``log_to_driver``: the workers' output is printed here (training's progress)."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    for name in ("ray", "ray.data"):  # Ray's INFO lines and advice are not the user's business here
        logging.getLogger(name).setLevel(logging.ERROR)
    kwargs = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=log_to_driver)
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    return True


def run_batch(job: BatchJob, pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]], *,
              address: Optional[str] = None, workers: Optional[int] = None, batch_size: int = 4,
              device: str = "cpu", gpus_per_worker: Optional[float] = None, cpus_per_worker: float = 1.0,
              callback: Optional[Callable[[str, str, str], None]] = None) -> BatchSummary:
    """Run ``job`` over ``pairs`` with Ray Data.

    Args:
        job: a :class:`BatchJob` (pickled to each worker).
        pairs: (input file, output file); the output folders are created by the job.
        address: ``None``: start a local Ray cluster on this machine's cores (shut down at
            the end); ``"auto"`` or ``"ray://HOST:10001"``: connect to a running cluster. A
            Ray already initialised in this process is used whatever ``address`` says.
        workers: actors (each loads the model once); default: the cluster's CPUs divided by
            ``cpus_per_worker`` (or its GPUs with ``gpus_per_worker``), at most one per pair.
        batch_size: pairs per ``map_batches`` call (images of equal size run in one pass).
        device: where the workers run the model: ``"cpu"``; ``"cuda"`` (one GPU per worker);
            ``"auto"`` (CUDA when the cluster has GPUs, else CPU). Sets ``job.device``.
        gpus_per_worker: ``num_gpus`` of each actor (default: 1 with CUDA, else 0).
        cpus_per_worker: ``num_cpus`` of each actor, also its torch thread count.
        callback: ``callback(input, status, reason)`` per pair as results stream back
            (status ``"done"``, ``"skipped"`` or ``"failed"``).

    Returns:
        A :class:`BatchSummary`.

    Raises:
        ImportError: Ray is not installed (message: :data:`RAY_HINT`).
        ValueError: ``batch_size`` or ``workers`` below 1.
        ConnectionError: no Ray cluster at ``address``.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    try:
        import ray
        import ray.data
    except ImportError:
        raise ImportError(RAY_HINT) from None
    t0 = time.perf_counter()
    summary = BatchSummary()
    rows = [{"src": str(s), "dst": str(d)} for s, d in pairs]
    if not rows:
        return summary
    started = _connect(address, None)
    try:
        summary.startup_seconds = time.perf_counter() - t0
        res = ray.cluster_resources()
        if device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be cpu, cuda or auto on Ray, got {device!r}")
        cuda = device == "cuda" or (device == "auto" and res.get("GPU", 0) > 0)
        if device == "cuda" and not res.get("GPU", 0):
            raise ValueError("--device cuda: the Ray cluster has no GPUs")
        if gpus_per_worker is None:
            gpus_per_worker = 1.0 if cuda else 0.0
        job.device = "cuda" if cuda else "cpu"
        if workers is None:
            if gpus_per_worker > 0:
                workers = max(1, int(res.get("GPU", 0) // gpus_per_worker))
            else:
                workers = max(1, int(res.get("CPU", 1) // max(cpus_per_worker, 1e-9)))
        workers = max(1, min(workers, len(rows)))
        summary.workers = workers
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        # one block per batch: results stream back (progress, resume) as each batch is written
        blocks = max(1, min(max(-(-len(rows) // batch_size), workers), len(rows), 10_000))
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        out = ds.map_batches(_Worker, fn_constructor_kwargs={"job": job, "threads": max(1, int(cpus_per_worker))},
                             batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=workers),
                             num_cpus=cpus_per_worker,
                             num_gpus=gpus_per_worker or None, batch_format="numpy")
        for row in out.iter_rows():
            s, d, st, why = str(row["src"]), str(row["dst"]), str(row["status"]), str(row["reason"])
            summary.nodes[str(row["node"])] = summary.nodes.get(str(row["node"]), 0) + 1
            summary.pids[int(row["pid"])] = summary.pids.get(int(row["pid"]), 0) + 1
            if st == "done":
                summary.done.append((s, d))
            elif st == "skipped":
                summary.skipped.append((s, why))
            else:
                summary.failed.append((s, why))
            if callback is not None:
                callback(s, st, why)
    finally:
        if started:
            ray.shutdown()
    summary.seconds = time.perf_counter() - t0
    return summary
