"""The studio's web app: a REST API (FastAPI, OpenAPI schema at ``/openapi.json``; no Swagger
page, which would load scripts from a CDN) and the static page that uses it (``/``).

Endpoints (all JSON unless said otherwise; errors are ``{"detail": "one line"}`` with a 4xx
status):

* ``GET /api/methods``; ``GET /api/images``; ``POST /api/images`` (multipart ``file`` and
  ``kind`` = content|style|mask) -> the stored image; ``GET /api/images/{id}`` (the file).
* ``POST /api/jobs`` (:class:`JobRequest`) -> the job; ``GET /api/jobs/{id}`` (status,
  progress, message); ``GET /api/jobs/{id}/preview`` (PNG, the latest image);
  ``POST /api/jobs/{id}/cancel``; ``GET /api/jobs/{id}/result`` (PNG, parameters embedded);
  ``POST /api/jobs/{id}/reproduce`` (the same parameters again); ``GET /api/history``.
* Explore (:mod:`atelier.studio.explore`): ``/api/explore/{profile}/...``.

No client-supplied name or path reaches the file system: files are stored under ids made by
the server (:func:`atelier.studio.store.new_id`), and every id in a URL is matched against a
strict pattern before it is looked up.
"""

from __future__ import annotations

import os
import pathlib
import re
import tempfile
from importlib import resources
from typing import Literal, Optional

from fastapi import FastAPI, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ..io.decode import open_image
from ..core.errors import InputError
from ..core.files import atomic_write
from .jobs import JobQueue, QueueFull
from .requests import JobRequest, check_request, method_list, one_line
from .store import ID_PATTERN, IMAGE_ID_PATTERN, Store, new_id

__all__ = ["JobRequest", "create_app", "DEFAULT_MAX_UPLOAD_BYTES"]  # JobRequest: re-exported

#: Largest accepted upload in bytes (50 MB); the pixel limit is the CLI's (``$ATELIER_MAX_PIXELS``).
DEFAULT_MAX_UPLOAD_BYTES = 50 * 2**20
_EXT = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "MPO": ".jpg"}
def _client_name(name: Optional[str]) -> str:
    base = re.split(r"[\\/]", name or "upload")[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:80]
    return base or "upload"


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
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> FastAPI:
    """The studio app over the data folder ``data_dir`` (created if missing). The job queue's
    worker thread starts here; ``app.state.queue.stop()`` ends it."""
    from .. import __version__
    from .explore import router as explore_router

    store = Store(data_dir)
    _bundle(store)
    jobs = JobQueue(store, max_pixels=max_pixels)
    methods = method_list()
    # no /docs or /redoc: FastAPI's pages load their scripts from a CDN, and the studio works offline
    app = FastAPI(title="Atelier Studio", version=__version__, docs_url=None, redoc_url=None,
                  description="Local neural style transfer studio: upload images, run jobs, learn preferences.")
    app.state.store, app.state.queue, app.state.methods = store, jobs, methods

    @app.exception_handler(QueueFull)
    async def _queue_full(request: Request, exc: QueueFull):
        return JSONResponse({"detail": str(exc)}, status_code=429)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return JSONResponse({"detail": one_line(exc)}, status_code=400)

    @app.get("/", include_in_schema=False)
    def index():
        return RedirectResponse("/static/index.html")

    @app.get("/api/methods", summary="Methods and shipped models")
    def get_methods() -> list[dict]:
        return list(methods.values())

    @app.get("/api/images", summary="Uploaded and bundled images")
    def get_images() -> list[dict]:
        return [_image_public(r) for r in store.list_images()]

    @app.post("/api/images", summary="Upload an image (PNG, JPEG, WebP, TIFF, BMP, GIF)")
    async def upload(file: UploadFile = File(...), kind: Literal["content", "style", "mask"] = Form("content")
                     ) -> dict:
        name = _client_name(file.filename)
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"{name}: the file is larger than {max_upload_bytes // 2**20} MB")
        if not data:
            raise HTTPException(400, f"{name}: the file is empty")
        image_id = new_id()
        tmp = store.images / f"{image_id}.upload"
        try:
            with atomic_write(tmp) as f:
                f.write(data)
            with open_image(tmp, max_pixels=max_pixels) as im:
                w, h = im.size
            from PIL import Image

            with Image.open(tmp) as raw:
                fmt = raw.format
            ext = _EXT.get(fmt)
            if ext is None:
                raise InputError(f"{fmt} images are not accepted here; upload PNG, JPEG, WebP, TIFF, BMP or GIF")
            dest = store.images / f"{image_id}{ext}"
            os.replace(tmp, dest)
        except InputError as e:
            raise HTTPException(400, one_line(f"{name}: {e.message}")) from None
        finally:
            tmp.unlink(missing_ok=True)
        return _image_public(store.add_image(image_id, kind, name, dest.name, w, h))

    @app.get("/api/images/{image_id}", summary="An image file", response_class=FileResponse)
    def get_image(image_id: str = Path(..., pattern=IMAGE_ID_PATTERN)):
        p = store.image_path(image_id)
        if p is None:
            raise HTTPException(404, f"no image with id {image_id}")
        return FileResponse(p)

    @app.post("/api/jobs", summary="Submit a stylization job")
    def submit(req: JobRequest) -> dict:
        inputs = check_request(req, store, methods)
        return jobs.submit(req.model_dump(), inputs).public()

    @app.get("/api/jobs/{job_id}", summary="A job's status and progress")
    def get_job(job_id: str = Path(..., pattern=ID_PATTERN)) -> dict:
        state = jobs.get(job_id)
        if state is None:
            raise HTTPException(404, f"no job with id {job_id}")
        return state

    @app.get("/api/jobs/{job_id}/preview", summary="The latest image of a job (PNG)", response_class=Response)
    def get_preview(job_id: str = Path(..., pattern=ID_PATTERN)):
        data = jobs.preview(job_id)
        if data is None:
            raise HTTPException(404, f"no preview for job {job_id} yet")
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/jobs/{job_id}/cancel", summary="Cancel a queued or running job")
    def cancel(job_id: str = Path(..., pattern=ID_PATTERN)) -> dict:
        state = jobs.cancel(job_id)
        if state is None:
            raise HTTPException(404, f"no job with id {job_id}")
        return state

    @app.get("/api/jobs/{job_id}/result", summary="The result (PNG with its parameters)",
             response_class=FileResponse)
    def result(job_id: str = Path(..., pattern=ID_PATTERN), download: bool = False):
        p = store.result_path(job_id)
        if p is None:
            raise HTTPException(404, f"job {job_id} has no result (unknown, not finished, failed or cancelled)")
        return FileResponse(p, media_type="image/png",
                            filename=f"atelier-{job_id[:8]}.png" if download else None)

    @app.post("/api/jobs/{job_id}/reproduce", summary="Run a finished job's parameters again")
    def reproduce(job_id: str = Path(..., pattern=ID_PATTERN)) -> dict:
        row = store.job(job_id)
        if row is None:
            raise HTTPException(404, f"no job with id {job_id}")
        req = JobRequest(**row["params"])
        return jobs.submit(req.model_dump(), check_request(req, store, methods)).public()

    @app.get("/api/history", summary="Finished studio jobs, newest first")
    def history() -> list[dict]:
        return [{"id": r["id"], "params": r["params"], "finished": r["finished"],
                 "result_url": f"/api/jobs/{r['id']}/result", "seconds": (r["meta"] or {}).get("seconds")}
                for r in store.history()]

    app.include_router(explore_router)
    static = pathlib.Path(__file__).resolve().parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    return app


def _image_public(row: dict) -> dict:
    return {"id": row["id"], "kind": row["kind"], "name": row["name"], "width": row["width"],
            "height": row["height"], "url": f"/api/images/{row['id']}"}


def default_data_dir() -> pathlib.Path:
    """``$ATELIER_STUDIO_DIR``, else the platform's user data folder ``atelier/studio``."""
    if os.environ.get("ATELIER_STUDIO_DIR"):
        return pathlib.Path(os.environ["ATELIER_STUDIO_DIR"])
    try:
        import platformdirs

        return pathlib.Path(platformdirs.user_data_dir("atelier")) / "studio"
    except ImportError:  # pragma: no cover
        return pathlib.Path(tempfile.gettempdir()) / "atelier-studio"
