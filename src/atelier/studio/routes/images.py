"""``/api/images``: list, upload (PNG, JPEG, WebP, TIFF, BMP, GIF; checked by the same decoder as
the CLI) and fetch images. Files are stored under server-made ids, never under client names."""

from __future__ import annotations

import os
import re
from typing import Literal, Optional

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, UploadFile
from fastapi.responses import FileResponse

from ..jobs import JobQueue

from ...core.errors import InputError
from ...core.files import atomic_write
from ...io.decode import open_image
from ..deps import Limits, get_limits, get_queue, get_store
from ..requests import errors, one_line
from ..store import IMAGE_ID_PATTERN, Store, new_id

__all__ = ["router", "image_public"]

router = APIRouter(prefix="/api/images", tags=["images"])
_EXT = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "MPO": ".jpg"}


def _client_name(name: Optional[str]) -> str:
    base = re.split(r"[\\/]", name or "upload")[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:80]
    return base or "upload"


def image_public(row: dict) -> dict:
    """An image row as the API shows it (id, kind, name, size, url)."""
    return {"id": row["id"], "kind": row["kind"], "name": row["name"], "width": row["width"],
            "height": row["height"], "url": f"/api/images/{row['id']}"}


@router.get("", summary="Uploaded and bundled images")
def get_images(store: Store = Depends(get_store)) -> list[dict]:
    return [image_public(r) for r in store.list_images()]


@router.post("", summary="Upload an image (PNG, JPEG, WebP, TIFF, BMP, GIF)", responses=errors(400, 413))
async def upload(file: UploadFile = File(...), kind: Literal["content", "style", "mask"] = Form("content"),
                 store: Store = Depends(get_store), limits: Limits = Depends(get_limits)) -> dict:
    name = _client_name(file.filename)
    data = await file.read(limits.max_upload_bytes + 1)
    if len(data) > limits.max_upload_bytes:
        raise HTTPException(413, f"{name}: the file is larger than {limits.max_upload_bytes // 2**20} MB")
    if not data:
        raise HTTPException(400, f"{name}: the file is empty")
    image_id = new_id()
    tmp = store.images / f"{image_id}.upload"
    try:
        with atomic_write(tmp) as f:
            f.write(data)
        with open_image(tmp, max_pixels=limits.max_pixels) as im:
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
    return image_public(store.add_image(image_id, kind, name, dest.name, w, h))


@router.get("/{image_id}", summary="An image file", response_class=FileResponse, responses=errors(404))
def get_image(image_id: str = Path(..., pattern=IMAGE_ID_PATTERN), store: Store = Depends(get_store)):
    p = store.image_path(image_id)
    if p is None:
        raise HTTPException(404, f"no image with id {image_id}")
    return FileResponse(p)


@router.delete("/{image_id}", summary="Delete an uploaded image (results made from it stay)",
               responses=errors(400, 404, 409))
def delete_image(image_id: str = Path(..., pattern=IMAGE_ID_PATTERN), store: Store = Depends(get_store),
                 jobs: JobQueue = Depends(get_queue)) -> dict:
    if image_id.startswith("bundled-"):
        raise HTTPException(400, f"{image_id} comes with the studio and cannot be deleted")
    p = store.image_path(image_id)
    if store.image(image_id) is None:
        raise HTTPException(404, f"no image with id {image_id}")
    if p is not None and jobs.active_uses(p):
        raise HTTPException(409, "a queued or running job uses this image; cancel it first")
    store.delete_image(image_id)
    return {"deleted": image_id}
