"""Video on Ray (issue 26, item 2): ``atelier video IN -o OUT --ray``.

The clip is cut into chunks of ``chunk_frames`` consecutive frames (of those selected by
``start``/``duration``/``every``); each chunk is stylized on a Ray worker by a fresh
:class:`~atelier.methods.video.VideoStylizer` with the same temporal consistency as on one
machine (flow-guided blending, or Gatys with its temporal loss). So that the first frame of a
chunk is blended like any other, the worker first runs the ``overlap`` frames *before* the chunk
(a warm-up) and drops their outputs: the blend forgets its start geometrically (by the temporal
weight, 0.7, per frame), so after a few frames the warm-up output is close to what the previous
chunk gave for the same frames, and the chunk's first kept frame is blended with it. The driver
joins the chunks in order into the one output, through the same code as the single-machine path
(:func:`atelier.api.video.stylize_video` with :class:`RayFrames` as its engine): the same checks
and one-line errors, the same fps, size and copied audio, the same atomic output, progress file,
Ctrl-C and ``resume``.

Workers are Ray actors (one per CPU, or per GPU with ``device="cuda"``; each loads the model
once, :class:`_ChunkWorker`); chunks go to whichever actor is free
(:class:`ray.util.ActorPool`) and come back in order. The driver decodes the frames and sends
each chunk's frames through the object store, at most two chunks per worker in flight, so its
memory stays bounded whatever the length of the clip; the workers need to see the style images
(the same path on every node) but not the video.

Measured on ``sintel_mountain_2`` (``benchmarks/ray_video.py``; docs/scale-out.md; 48 frames at
256 px, feed-forward ``starry_night``, chunks of 8): the short-term warping error of the pairs
across a chunk boundary over that of the pairs inside the chunks is 4.19 with no overlap, 1.26
with 4, 1.16 with the default 8 (1.16 is also the single-machine run's own ratio at the same
positions: the clip moves more there); against the single-machine run at the same pairs, 1.004.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import torch

from ..core.errors import InputError
from .ray_batch import RAY_HINT, _connect
from .video_engine import FrameSettings, to_array, to_tensor

__all__ = ["DEFAULT_CHUNK_FRAMES", "DEFAULT_OVERLAP", "RayFrames", "WorkerError", "stylize_video_on_ray",
           "chunk_frames_of"]

#: Frames per chunk: the 8 warm-up frames cost 17 % more stylizing.
DEFAULT_CHUNK_FRAMES = 48
#: Warm-up frames before each chunk (their outputs dropped): 8 keep the boundary error within 1.2x
#: of the inside error (4 did not: 1.26x; see docs/scale-out.md).
DEFAULT_OVERLAP = 8


class WorkerError(RuntimeError):
    """A Ray worker failed for a reason other than bad input (its error in one line)."""


def chunk_frames_of(frames: Iterable, size: int, overlap: int) -> Iterator[tuple[list, list]]:
    """Cut a stream of frames into ``(warm-up, chunk)`` lists: ``chunk`` holds ``size``
    consecutive frames (the last one fewer), ``warm-up`` the ``overlap`` frames before it (fewer
    at the start). Lazy: holds one chunk and its warm-up."""
    tail: deque = deque(maxlen=overlap)
    chunk: list = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield list(tail), chunk
            tail.extend(chunk)
            chunk = []
    if chunk:
        yield list(tail), chunk


class _ChunkWorker:
    """A Ray actor: the stylizer loaded once, then :meth:`run` per chunk."""

    def __init__(self, settings: FrameSettings, threads: int = 1):
        torch.set_num_threads(max(1, int(threads)))
        try:
            import cv2

            cv2.setNumThreads(max(1, int(threads)))  # the flow: no more threads than the CPUs asked for
        except ImportError:  # pragma: no cover - opencv is a dependency
            pass
        self.settings = settings
        self.loaded = settings.load()
        try:
            import ray

            self.node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - outside a Ray worker
            self.node = "local"

    def run(self, warm, frames, prime=None) -> dict:
        """Stylize one chunk. ``warm``: uint8 (K, H, W, 3) or None, run first and dropped;
        ``frames``: uint8 (N, H, W, 3); ``prime``: (input, output) uint8 (H, W, 3) of the frame
        before (resume). Returns ``frames`` (uint8 (N, H, W, 3)), ``pairs`` (per frame: the
        share of reliable pixels added and the flow pairs added), seconds, ``node``, ``pid``."""
        import numpy as np

        vs = self.settings.video_stylizer(self.loaded)
        if prime is not None:
            vs.prime(to_tensor(np.array(prime[0])), to_tensor(np.array(prime[1])))
        for f in warm if warm is not None else ():
            vs(to_tensor(np.array(f)))
        out, pairs = [], []
        for f in frames:
            before = vs.counters()
            y = vs(to_tensor(np.array(f)))
            after = vs.counters()
            out.append(to_array(y))
            pairs.append((after["reliable_sum"] - before["reliable_sum"], after["pairs"] - before["pairs"]))
        return {"frames": np.stack(out), "pairs": pairs, "flow_seconds": vs.stats["flow_seconds"],
                "stylize_seconds": vs.stats["stylize_seconds"], "warm": 0 if warm is None else len(warm),
                "node": self.node, "pid": os.getpid()}


class RayFrames:
    """The Ray engine of :func:`atelier.api.video.stylize_video` (see the module doc).

    Args:
        address: ``None``: a local Ray cluster on this machine's cores (shut down at the end);
            ``"auto"`` or ``"ray://HOST:10001"``: a running cluster. A Ray already initialised in
            this process is used as it is.
        workers: actors (each loads the model once); default: the cluster's CPUs (GPUs with
            CUDA), at most one per chunk.
        chunk_frames: frames per chunk (>= 1); overlap: warm-up frames before each (>= 0; 0 with
            ``temporal="none"``, which needs none). Gatys with ``long_term`` looks 20 frames back:
            an overlap under 20 gives the first frames of a chunk only the nearer terms.

    Attributes:
        stats: as the ``stats`` of :class:`~atelier.methods.video.VideoStylizer` over the kept frames (the
            seconds summed over the workers, warm-up included), plus ``chunks``, ``workers``,
            ``chunk_frames``, ``overlap``, ``warmup_frames``, ``startup_seconds`` (the cluster) and
            ``nodes`` (chunks per Ray node id).

    Raises (from ``open``/``run``): ImportError: no Ray (:data:`~atelier.api.ray_batch.RAY_HINT`);
        ValueError: bad numbers, or ``device`` not cpu/cuda/auto, or cuda on a cluster without GPUs;
        ConnectionError: no cluster at ``address``; InputError: as on one machine (checked here
        before the cluster starts), or a worker that cannot load the model or a style image;
        :class:`WorkerError`: a worker failed otherwise.
    """

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None,
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES, overlap: int = DEFAULT_OVERLAP):
        if int(chunk_frames) != chunk_frames or chunk_frames < 1:
            raise ValueError(f"--chunk-frames must be a whole number >= 1, got {chunk_frames}")
        if int(overlap) != overlap or overlap < 0:
            raise ValueError(f"--overlap must be a whole number >= 0, got {overlap}")
        if workers is not None and (int(workers) != workers or workers < 1):
            raise ValueError(f"--workers must be >= 1, got {workers}")
        self.address, self.workers = address, workers
        self.chunk_frames, self.overlap = int(chunk_frames), int(overlap)
        self._started = False
        self._actors: list = []
        self._prime = None
        self._sum, self._pairs = 0.0, 0
        self.stats: dict = {"frames": 0, "flow_seconds": 0.0, "stylize_seconds": 0.0, "reliable": None, "chunks": 0,
                            "workers": 0, "chunk_frames": self.chunk_frames, "overlap": self.overlap,
                            "warmup_frames": 0, "startup_seconds": 0.0, "nodes": {}}

    def open(self, settings: FrameSettings, on_iteration: Optional[Callable] = None) -> None:
        try:
            import ray
            import ray.util  # noqa: F401
        except ImportError:
            raise ImportError(RAY_HINT) from None
        if settings.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be cpu, cuda or auto on Ray, got {settings.device!r}")
        settings.load(device="cpu")  # the single-machine path's one-line errors, before the cluster starts
        settings = replace(settings, styles=tuple(str(Path(os.fspath(s)).resolve()) for s in settings.styles))
        if settings.config.mode == "none":
            self.overlap = self.stats["overlap"] = 0
        t0 = time.perf_counter()
        self._started = _connect(self.address, None)
        self.stats["startup_seconds"] = time.perf_counter() - t0
        res = ray.cluster_resources()
        cuda = settings.device == "cuda" or (settings.device == "auto" and res.get("GPU", 0) > 0)
        if settings.device == "cuda" and not res.get("GPU", 0):
            raise ValueError("--device cuda: the Ray cluster has no GPUs")
        self.settings = replace(settings, device="cuda" if cuda else "cpu")
        self._gpus = 1 if cuda else 0
        self._capacity = max(1, self.workers or int(res.get("GPU" if cuda else "CPU", 1)))

    def restore_counters(self, counters: dict) -> None:
        self._sum, self._pairs = float(counters.get("reliable_sum", 0.0)), int(counters.get("pairs", 0))
        self._update()

    def prime(self, frame, output) -> None:
        self._prime = (frame, output)

    def counters(self) -> dict:
        return {"reliable_sum": self._sum, "pairs": self._pairs}

    def _update(self) -> None:
        self.stats["reliable"] = self._sum / self._pairs if self._pairs else None

    def run(self, frames: Iterable) -> Iterator[torch.Tensor]:
        import numpy as np
        import ray
        from ray.util import ActorPool

        chunks = chunk_frames_of(frames, self.chunk_frames, self.overlap)
        first = list(islice(chunks, self._capacity))  # no more actors than chunks
        if not first:
            return
        actor = ray.remote(num_cpus=1, num_gpus=self._gpus or None)(_ChunkWorker)
        self._actors = [actor.remote(self.settings) for _ in first]
        self.stats["workers"] = len(self._actors)
        pool = ActorPool(self._actors)
        in_flight = 0

        def submit(item) -> None:
            warm, chunk = item
            prime, self._prime = self._prime, None  # a resume primes the first chunk (as on one machine)
            pool.submit(lambda a, v: a.run.remote(*v),
                        (np.stack(warm) if warm and prime is None else None, np.stack(chunk), prime))

        for item in first:
            submit(item)
            in_flight += 1
        for item in chunks:  # at most two chunks per worker in flight: the driver's memory stays bounded
            while in_flight >= 2 * len(self._actors):
                yield from self._take(_get(pool))
                in_flight -= 1
            submit(item)
            in_flight += 1
        while pool.has_next():
            yield from self._take(_get(pool))

    def _take(self, result: dict) -> Iterator[torch.Tensor]:
        st = self.stats
        st["chunks"] += 1
        st["warmup_frames"] += result["warm"]
        st["flow_seconds"] += result["flow_seconds"]
        st["stylize_seconds"] += result["stylize_seconds"]
        st["nodes"][result["node"]] = st["nodes"].get(result["node"], 0) + 1
        for frame, (share, pairs) in zip(result["frames"], result["pairs"]):
            self._sum += share
            self._pairs += pairs
            self._update()
            st["frames"] += 1
            yield to_tensor(frame.copy())  # the object store's arrays are read-only

    def close(self) -> None:
        try:
            import ray
        except ImportError:
            return
        for a in self._actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._actors = []
        if self._started:
            ray.shutdown()
            self._started = False


def _get(pool):
    """The next chunk's result, in order; a worker's failure as one line."""
    import ray.exceptions as rex

    try:
        return pool.get_next()
    except rex.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, (InputError, ValueError)):
            raise cause from None
        raise WorkerError(f"a Ray worker failed: {_first_line(cause or e)}") from None
    except rex.RayActorError as e:
        raise WorkerError(f"a Ray worker died: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"


def stylize_video_on_ray(source, output, *, address: Optional[str] = None, workers: Optional[int] = None,
                         chunk_frames: int = DEFAULT_CHUNK_FRAMES, overlap: int = DEFAULT_OVERLAP, **options):
    """:func:`atelier.api.video.stylize_video` with the frames stylized in chunks on Ray.

    Args:
        source, output, options: as for :func:`~atelier.api.video.stylize_video` (``device``:
            ``"cpu"``, ``"cuda"`` (one GPU per worker) or ``"auto"``, resolved on the cluster).
        address, workers, chunk_frames, overlap: see :class:`RayFrames`.

    Returns:
        A :class:`~atelier.api.video.VideoResult`; its ``stats`` add the chunks, workers and
        start-up (see :attr:`RayFrames.stats`).

    Raises:
        As :func:`~atelier.api.video.stylize_video` (nothing is left at ``output`` on error), and as
        :class:`RayFrames`; :class:`WorkerError`: a worker failed for another reason (one line).

    Example::

        from atelier.api.ray_video import stylize_video_on_ray
        r = stylize_video_on_ray("clip.mp4", "out.mp4", method="starry_night", chunk_frames=32)
    """
    from .video import stylize_video

    return stylize_video(source, output, engine=RayFrames(address, workers, chunk_frames, overlap), **options)
