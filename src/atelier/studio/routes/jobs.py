"""``/api/methods``, ``/api/jobs`` and ``/api/history``: submit a stylization job, follow its
progress and preview, cancel it, fetch its result (PNG with its parameters), run it again."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import FileResponse, Response

from ..deps import get_methods, get_queue, get_store
from ..jobs import JobQueue
from ..requests import JobRequest, check_request, errors
from ..store import ID_PATTERN, Store

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["jobs"])


@router.get("/methods", summary="Methods and shipped models (the method registry)")
def get_methods_list(methods: dict = Depends(get_methods)) -> list[dict]:
    return list(methods.values())


@router.post("/jobs", summary="Submit a stylization job", responses=errors(400, 404, 429))
def submit(req: JobRequest, store: Store = Depends(get_store), jobs: JobQueue = Depends(get_queue),
           methods: dict = Depends(get_methods)) -> dict:
    inputs = check_request(req, store, methods)
    return jobs.submit(req.model_dump(), inputs).public()


@router.get("/jobs/{job_id}", summary="A job's status and progress", responses=errors(404))
def get_job(job_id: str = Path(..., pattern=ID_PATTERN), jobs: JobQueue = Depends(get_queue)) -> dict:
    state = jobs.get(job_id)
    if state is None:
        raise HTTPException(404, f"no job with id {job_id}")
    return state


@router.get("/jobs/{job_id}/preview", summary="The latest image of a job (PNG)", response_class=Response,
            responses=errors(404))
def get_preview(job_id: str = Path(..., pattern=ID_PATTERN), jobs: JobQueue = Depends(get_queue)):
    data = jobs.preview(job_id)
    if data is None:
        raise HTTPException(404, f"no preview for job {job_id} yet")
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/jobs/{job_id}/cancel", summary="Cancel a queued or running job", responses=errors(404))
def cancel(job_id: str = Path(..., pattern=ID_PATTERN), jobs: JobQueue = Depends(get_queue)) -> dict:
    state = jobs.cancel(job_id)
    if state is None:
        raise HTTPException(404, f"no job with id {job_id}")
    return state


@router.get("/jobs/{job_id}/result", summary="The result (PNG with its parameters)", response_class=FileResponse,
            responses=errors(400, 404, 501))
def result(job_id: str = Path(..., pattern=ID_PATTERN), download: bool = False, credentials: bool = False,
           store: Store = Depends(get_store)):
    """``credentials=true`` (issue 28): a copy signed with Content Credentials (C2PA, the local
    certificate; the photo and the styles as ingredients), made for this response and removed
    after it; needs the provenance extra (501 without it)."""
    p = store.result_path(job_id)
    if p is None:
        raise HTTPException(404, f"job {job_id} has no result (unknown, not finished, failed or cancelled)")
    name = f"atelier-{job_id[:8]}.png" if download else None
    if not credentials:
        return FileResponse(p, media_type="image/png", filename=name)
    return _signed_copy(p, store.job(job_id) or {}, store, name)


def _signed_copy(path, row: dict, store: Store, name):
    import os
    import tempfile

    from starlette.background import BackgroundTask

    from ...core.errors import InputError
    from ...io.verify import sign_image

    params = row.get("params") or {}
    content = store.image_path(params.get("content", "")) if params.get("content") else None
    styles = [q for q in (store.image_path(s) for s in params.get("styles", [])) if q is not None]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signed-", suffix=".png")
    os.close(fd)
    try:
        sign_image(path, tmp, content=content, styles=styles)
    except ImportError as e:
        os.unlink(tmp)
        raise HTTPException(501, str(e)) from None
    except InputError as e:
        os.unlink(tmp)
        raise HTTPException(400, str(e).replace(str(path.parent), "results")) from None
    return FileResponse(tmp, media_type="image/png", filename=name, background=BackgroundTask(os.unlink, tmp))


@router.delete("/jobs/{job_id}", summary="Delete an ended job and its result (out of History)",
               responses=errors(404, 409))
def delete_job(job_id: str = Path(..., pattern=ID_PATTERN), store: Store = Depends(get_store),
               jobs: JobQueue = Depends(get_queue)) -> dict:
    if jobs.get(job_id) is None:
        raise HTTPException(404, f"no job with id {job_id}")
    if not jobs.forget(job_id):
        raise HTTPException(409, f"job {job_id} is queued or running; cancel it first")
    return {"deleted": job_id}


@router.post("/jobs/{job_id}/reproduce", summary="Run a finished job's parameters again",
             responses=errors(400, 404, 429))
def reproduce(job_id: str = Path(..., pattern=ID_PATTERN), store: Store = Depends(get_store),
              jobs: JobQueue = Depends(get_queue), methods: dict = Depends(get_methods)) -> dict:
    row = store.job(job_id)
    if row is None:
        raise HTTPException(404, f"no job with id {job_id}")
    if row["params"].get("kind") == "paint":  # a Paint tab job
        from ..paint_job import PaintRequest
        from .paint import check_paint

        preq = PaintRequest(**row["params"])
        return jobs.submit(preq.model_dump(), check_paint(preq, store)).public()
    req = JobRequest(**row["params"])
    return jobs.submit(req.model_dump(), check_request(req, store, methods)).public()


@router.get("/queue", summary="How many jobs are running and waiting (all views)")
def queue_counts(jobs: JobQueue = Depends(get_queue)) -> dict:
    return jobs.counts()


@router.get("/history", summary="Finished studio jobs, newest first")
def history(store: Store = Depends(get_store)) -> list[dict]:
    return [{"id": r["id"], "params": r["params"], "finished": r["finished"],
             "result_url": f"/api/jobs/{r['id']}/result", "seconds": (r["meta"] or {}).get("seconds")}
            for r in store.history()]
