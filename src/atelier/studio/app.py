"""The studio's web app: a REST API (FastAPI, OpenAPI schema at ``/openapi.json``; no Swagger
page, which would load scripts from a CDN) and the static page that uses it (``/``).

:func:`create_app` only wires: the shared state (store, job queue, methods, limits; reached by
the routes through :mod:`atelier.studio.deps`), the error handlers, one router per area and the
static page. Endpoints (all JSON unless said otherwise; errors are ``{"detail": "one line"}``
with a 4xx status):

* Images (:mod:`atelier.studio.routes.images`): ``GET /api/images``; ``POST /api/images``
  (multipart ``file`` and ``kind`` = content|style|mask) -> the stored image;
  ``GET /api/images/{id}`` (the file); ``DELETE /api/images/{id}`` (an upload).
* Jobs (:mod:`atelier.studio.routes.jobs`): ``GET /api/methods``; ``POST /api/jobs``
  (:class:`~atelier.studio.requests.JobRequest`) -> the job; ``GET /api/jobs/{id}`` (status,
  progress, message); ``GET /api/jobs/{id}/preview`` (PNG, the latest image);
  ``POST /api/jobs/{id}/cancel``; ``GET /api/jobs/{id}/result`` (PNG, parameters embedded);
  ``POST /api/jobs/{id}/reproduce`` (the same parameters again); ``DELETE /api/jobs/{id}`` (an
  ended job and its result); ``GET /api/history``; ``GET /api/queue`` (running and waiting counts).
* Who may call (:mod:`atelier.studio.security`): the Host header is checked (400), cross-origin
  state-changing requests are refused (403), and with a token every request needs it (401/403).
* Explore (:mod:`atelier.studio.routes.explore`): ``/api/explore/{profile}/...`` (rounds, picks, presets).

No client-supplied name or path reaches the file system: files are stored under ids made by
the server (:func:`atelier.studio.store.new_id`), and every id in a URL is matched against a
strict pattern before it is looked up.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from importlib import resources
from typing import Optional, Sequence

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from ..core.errors import InputError
from ..core.files import atomic_write
from ..io.decode import open_image
from .deps import Limits
from .jobs import JobQueue, QueueFull
from .requests import JobRequest, json_safe, method_list, one_line, readable
from .security import LOOPBACK_HOSTS, OriginGuard, TokenGuard
from .store import Store

__all__ = ["JobRequest", "create_app", "default_data_dir", "DEFAULT_MAX_UPLOAD_BYTES"]  # JobRequest: re-exported

#: Largest accepted upload in bytes (50 MB); the pixel limit is the CLI's (``$ATELIER_MAX_PIXELS``).
DEFAULT_MAX_UPLOAD_BYTES = 50 * 2**20


def _bundle(store: Store) -> None:
    """The images shipped in the package, as ``bundled-NAME`` images (copied once)."""
    base = pathlib.Path(str(resources.files("atelier") / "assets"))
    for p, kind in ((base / "chelsea.jpg", "content"), (base / "starry_night.jpg", "style")):
        image_id = f"bundled-{p.stem}"
        if store.image(image_id) is not None and store.image_path(image_id) is not None or not p.is_file():
            continue
        with open_image(p) as im:
            w, h = im.size
        dest = store.images / f"{image_id}{p.suffix}"
        with atomic_write(dest) as f:
            f.write(p.read_bytes())
        store.add_image(image_id, kind, p.name, dest.name, w, h)


def create_app(data_dir, *, max_pixels: Optional[int] = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               allowed_hosts: Optional[Sequence[str]] = None, token: Optional[str] = None) -> FastAPI:
    """The studio app over the data folder ``data_dir`` (created if missing). The job queue's
    worker thread starts here; ``app.state.queue.stop()`` ends it.

    Args:
        allowed_hosts: the ``Host`` header values answered (others: HTTP 400); default the
            loopback names ``localhost``, ``127.0.0.1``, ``[::1]``; ``["*"]``: any.
        token: when given, every request must carry it (cookie, ``Authorization: Bearer``,
            ``X-Atelier-Token`` or ``?token=``): HTTP 401 without, 403 when wrong.
            Cross-origin POST/PUT/PATCH/DELETE requests get HTTP 403 in any case
            (:mod:`atelier.studio.security`).
    """
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from .. import __version__
    from .routes.explore import router as explore_router
    from .routes.images import router as images_router
    from .routes.jobs import router as jobs_router
    from .routes.paint import router as paint_router

    store = Store(data_dir)
    _bundle(store)
    # no /docs or /redoc: FastAPI's pages load their scripts from a CDN, and the studio works offline
    app = FastAPI(title="Atelier Studio", version=__version__, docs_url=None, redoc_url=None,
                  description="Local neural style transfer studio: upload images, run jobs, learn preferences.")
    app.state.store, app.state.methods = store, method_list()
    app.state.queue = JobQueue(store, max_pixels=max_pixels)
    app.state.limits = Limits(max_pixels=max_pixels, max_upload_bytes=max_upload_bytes)

    @app.exception_handler(QueueFull)
    async def _queue_full(request: Request, exc: QueueFull):
        return JSONResponse({"detail": str(exc)}, status_code=429)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        # NaN/Infinity (or 1e400) in the body are refused by the schema (allow_inf_nan=False);
        # the error quotes them, so they are made strict-JSON before it is sent
        return JSONResponse({"detail": json_safe(jsonable_encoder(readable(exc.errors())))}, status_code=422)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return JSONResponse({"detail": one_line(exc)}, status_code=400)

    @app.get("/", include_in_schema=False)
    def index():
        return RedirectResponse("/static/index.html")

    for router in (images_router, jobs_router, explore_router, paint_router):
        app.include_router(router)
    static = pathlib.Path(__file__).resolve().parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    # outermost last: Host check, then the origin check, then the token
    if token:
        app.add_middleware(TokenGuard, token=token)
    app.add_middleware(OriginGuard)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts or LOOPBACK_HOSTS), www_redirect=False)
    app.state.token = token
    return app


def default_data_dir() -> pathlib.Path:
    """``$ATELIER_STUDIO_DIR``, else the platform's user data folder ``atelier/studio``."""
    if os.environ.get("ATELIER_STUDIO_DIR"):
        return pathlib.Path(os.environ["ATELIER_STUDIO_DIR"])
    try:
        import platformdirs

        return pathlib.Path(platformdirs.user_data_dir("atelier")) / "studio"
    except ImportError:  # pragma: no cover
        return pathlib.Path(tempfile.gettempdir()) / "atelier-studio"
