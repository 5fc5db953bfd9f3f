"""The studio's shared state, reached by the routes through FastAPI dependencies
(``Depends(get_store)``, ...) rather than through ``request.app.state`` in each handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from fastapi import Request

from .jobs import JobQueue
from .store import Store

__all__ = ["Limits", "get_limits", "get_methods", "get_queue", "get_store"]


@dataclass(frozen=True)
class Limits:
    """What an upload may be: ``max_pixels`` (None: ``$ATELIER_MAX_PIXELS`` or 100 MP) and
    ``max_upload_bytes``."""

    max_pixels: Optional[int]
    max_upload_bytes: int


def get_store(request: Request) -> Store:
    """The data folder's :class:`~atelier.studio.store.Store`."""
    return request.app.state.store


def get_queue(request: Request) -> JobQueue:
    """The :class:`~atelier.studio.jobs.JobQueue` (one worker thread)."""
    return request.app.state.queue


def get_methods(request: Request) -> dict:
    """The methods a job may name (:func:`atelier.studio.requests.method_list`, read at start)."""
    return request.app.state.methods


def get_limits(request: Request) -> Limits:
    """The upload limits the app was created with."""
    return request.app.state.limits
