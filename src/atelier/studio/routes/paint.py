"""``POST /api/paint``: paint the photo with brush strokes (issue 27, the studio's Paint tab); the
job is then followed, previewed, cancelled and fetched with the ``/api/jobs`` routes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from ..deps import get_queue, get_store
from ..jobs import JobQueue
from ..paint_job import PaintRequest
from ..requests import errors, image_files
from ..store import Store

__all__ = ["check_paint", "router"]

router = APIRouter(prefix="/api", tags=["paint"])


def check_paint(req: PaintRequest, store: Store) -> dict:
    """The job's inputs as files in the data folder; HTTPException (4xx) with one line."""
    content, styles = image_files(store, req.content, req.styles)
    if styles and req.method != "optimize":
        raise HTTPException(400, "a style painting needs method optimize (the agent and greedy paint the photo only)")
    return {"content": content, "styles": styles, "mask": None}


@router.post("/paint", summary="Paint a photo with brush strokes (a job)", responses=errors(400, 404, 429))
def submit_paint(req: PaintRequest, store: Store = Depends(get_store), jobs: JobQueue = Depends(get_queue)) -> dict:
    return jobs.submit(req.model_dump(), check_paint(req, store)).public()
