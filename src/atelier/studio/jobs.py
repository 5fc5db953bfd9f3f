"""One job queue with one worker thread, so that jobs never run at the same time (a laptop
CPU has few cores: two optimizations side by side would each take twice as long).

A job is queued, running, then done, failed or cancelled. Progress (fraction, message, the
latest preview image as PNG bytes, kept in memory only) is read by polling. Cancelling a
queued job drops it; cancelling a running one stops it at the next iteration (Gatys) or step.
Only a finished job writes a file (``results/<id>.png``, atomically, parameters embedded), so a
cancelled or failed job leaves nothing behind. Any exception in a job marks that job failed
and the worker goes on with the next one.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from ..io import images as img
from ..core.errors import InputError
from .paint_job import render_paint
from .render import JobCancelled, render
from .store import Store, new_id

__all__ = ["Job", "JobQueue", "MAX_PENDING", "QueueFull"]
log = logging.getLogger("atelier.studio")
#: Most jobs waiting or running at once; more are refused (HTTP 429) rather than piling up.
MAX_PENDING = 64


class QueueFull(Exception):
    """Too many jobs are waiting."""


@dataclass
class Job:
    """A job's live state (the database holds the durable part)."""

    id: str
    params: dict
    status: str = "queued"
    progress: float = 0.0
    message: str = "queued"
    error: Optional[str] = None
    preview: Optional[bytes] = None
    preview_version: int = 0
    created: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event)
    #: ``content``, ``styles``, ``mask``: files in the data folder (never sent to the client).
    inputs: dict = field(default_factory=dict, repr=False)

    def public(self) -> dict:
        return {"id": self.id, "status": self.status, "progress": round(self.progress, 4), "message": self.message,
                "error": self.error, "params": self.params, "preview_version": self.preview_version,
                "result_url": f"/api/jobs/{self.id}/result" if self.status == "done" else None}


def _png(t) -> bytes:
    buf = io.BytesIO()
    img.tensor_to_pil(t).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class JobQueue:
    """The queue and its worker thread.

    Args:
        store: the data folder.
        max_pixels: pixel limit for reading images (as the CLI's ``--max-pixels``).
        keep: how many finished jobs to keep in memory (older ones are read from the database).
    """

    def __init__(self, store: Store, max_pixels: Optional[int] = None, keep: int = 500):
        self.store, self.max_pixels, self.keep = store, max_pixels, keep
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="atelier-studio-worker", daemon=True)
        self._worker.start()

    # -- public --------------------------------------------------------------------------
    def submit(self, params: dict, inputs: dict, origin: str = "studio") -> Job:
        """Queue a job. ``inputs``: ``content``, ``styles`` and ``mask`` file paths (already
        resolved inside the data folder).

        Raises:
            QueueFull: :data:`MAX_PENDING` jobs are already waiting or running.
        """
        if self.pending() >= MAX_PENDING:
            raise QueueFull(f"{MAX_PENDING} jobs are already waiting; wait for them or cancel some")
        job = Job(new_id(), params, inputs=inputs)
        self.store.add_job(job.id, params, origin)
        with self._lock:
            self._jobs[job.id] = job
            self._trim()
        self._queue.put(job.id)
        return job

    def get(self, job_id: str) -> Optional[dict]:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job.public()
        row = self.store.job(job_id)
        if row is None:
            return None
        return {"id": row["id"], "status": row["status"], "progress": 1.0 if row["status"] == "done" else 0.0,
                "message": row["status"], "error": row["error"], "params": row["params"], "preview_version": 0,
                "result_url": f"/api/jobs/{row['id']}/result" if row["status"] == "done" else None}

    def preview(self, job_id: str) -> Optional[bytes]:
        with self._lock:
            job = self._jobs.get(job_id)
        return job.preview if job is not None else None

    def cancel(self, job_id: str) -> Optional[dict]:
        """Ask a job to stop; returns its state, ``None`` for an unknown id."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return self.get(job_id)
        if job.status in ("queued", "running"):
            job.cancel.set()
            if job.status == "queued":
                self._end(job, "cancelled", message="cancelled")
        return job.public()

    def active_uses(self, path) -> bool:
        """Whether a queued or running job reads the file ``path``."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.status in ("queued", "running")]
        return any(path == j.inputs.get("content") or path == j.inputs.get("mask") or path in j.inputs.get("styles", ())
                   for j in jobs)

    def forget(self, job_id: str) -> bool:
        """Drop an ended job from memory and the database (its result file too); False while it
        is queued or running (cancel it first)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.status in ("queued", "running"):
                return False
            self._jobs.pop(job_id, None)
        row = self.store.job(job_id)
        if row is not None and row["status"] in ("queued", "running"):
            return False
        self.store.delete_job(job_id)
        return True

    def counts(self) -> dict:
        """``{"running": n, "queued": n}``: jobs of any origin (studio, explore) not yet ended."""
        with self._lock:
            status = [j.status for j in self._jobs.values()]
        return {"running": status.count("running"), "queued": status.count("queued")}

    def pending(self) -> int:
        with self._lock:
            return sum(j.status in ("queued", "running") for j in self._jobs.values())

    def wait(self, job_id: str, timeout: float = 60.0) -> Optional[dict]:
        """Block until the job has ended (for tests and scripts); its final state."""
        end = time.time() + timeout
        while time.time() < end:
            state = self.get(job_id)
            if state is None or state["status"] not in ("queued", "running"):
                return state
            time.sleep(0.02)
        return self.get(job_id)

    def stop(self) -> None:
        with self._lock:
            for j in self._jobs.values():
                j.cancel.set()
        self._queue.put(None)
        self._worker.join(timeout=30)

    # -- worker --------------------------------------------------------------------------
    def _trim(self) -> None:
        ended = [j for j in self._jobs.values() if j.status not in ("queued", "running")]
        for j in sorted(ended, key=lambda j: j.created)[:max(0, len(ended) - self.keep)]:
            del self._jobs[j.id]

    def _end(self, job: Job, status: str, *, message: str, error: Optional[str] = None,
             result: Optional[str] = None, meta: Optional[dict] = None) -> None:
        job.status, job.message, job.error = status, message, error
        job.preview = None  # the result file replaces it; ended jobs keep no image in memory
        if status == "done":
            job.progress = 1.0
        self.store.finish_job(job.id, status, error, result, meta)

    def _run(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
            if job is None or job.status != "queued":
                continue
            try:
                self._run_one(job)
            except Exception as e:  # the queue survives any bad job
                log.exception("job %s failed", job.id)
                self._end(job, "failed", message="failed", error=f"internal error: {type(e).__name__}: {e}")

    def _run_one(self, job: Job) -> None:
        job.status, job.message = "running", "starting"
        self.store.set_status(job.id, "running")

        def on_progress(fraction, image, message):
            job.progress, job.message = float(fraction), message
            if image is not None:
                job.preview = _png(image)
                job.preview_version += 1

        inputs = job.inputs
        try:
            run = render_paint if job.params.get("kind") == "paint" else render  # the Paint tab's jobs
            out, meta = run(job.params, inputs["content"], inputs["styles"], inputs.get("mask"),
                            cancelled=job.cancel.is_set, on_progress=on_progress, max_pixels=self.max_pixels)
        except JobCancelled:
            self._end(job, "cancelled", message="cancelled")
            return
        except (InputError, ValueError, FloatingPointError) as e:
            self._end(job, "failed", message="failed", error=str(e).replace("\n", " "))
            return
        if job.cancel.is_set():
            self._end(job, "cancelled", message="cancelled")
            return
        from .. import __version__

        meta = {"atelier_version": __version__, "studio_job": job.id, "parameters": job.params, **meta}
        name = f"{job.id}.png"
        img.save_image(out, self.store.results / name, meta)
        self._end(job, "done", message="done", result=name, meta=meta)
