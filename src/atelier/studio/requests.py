"""What the studio accepts as a job: the request schema and its checks against the store.

Shared by the job routes (:mod:`atelier.studio.app`) and the explore routes
(:mod:`atelier.studio.routes.explore`).
"""

from __future__ import annotations

from typing import List, Literal, Optional

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import InputError
from .presets import NAME_PATTERN
from .store import ID_PATTERN, IMAGE_ID_PATTERN, PROFILE_PATTERN, Store

__all__ = ["ErrorDetail", "JobRequest", "PATTERN_WORDS", "check_request", "errors", "image_files", "json_safe",
           "method_list", "one_line", "readable"]


class ErrorDetail(BaseModel):
    """Every refusal: HTTP 4xx with one line (422: FastAPI's list of schema errors)."""

    detail: str


_ERRORS = {400: "refused (or a body that cannot be parsed): the detail says why in one line",
           404: "no such image, job or round",
           409: "not possible yet (the detail says what to do first)", 413: "the upload is too large",
           429: "too many jobs are waiting; nothing was queued",
           501: "this server lacks an optional package (the detail says which to install)"}


#: What a pattern means, in words, for the 422 message (instead of the raw regular expression).
PATTERN_WORDS = {
    NAME_PATTERN: "a name is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit",
    PROFILE_PATTERN: "a profile is 1 to 40 letters, digits, '-' or '_', starting with a letter or digit",
    ID_PATTERN: "an id is 32 hexadecimal digits (as the server made it)",
    IMAGE_ID_PATTERN: "an image id is 32 hexadecimal digits or bundled-NAME (as GET /api/images lists them)",
}


def readable(errors_: list) -> list:
    """FastAPI's validation errors with pattern mismatches said in words (:data:`PATTERN_WORDS`)."""
    out = []
    for e in errors_:
        words = PATTERN_WORDS.get((e.get("ctx") or {}).get("pattern")) if e.get("type") == "string_pattern_mismatch" else None
        out.append({**e, "msg": words} if words else e)
    return out


def errors(*codes: int) -> dict:
    """The ``responses=`` entry of a route that may answer these 4xx codes (the OpenAPI schema
    documents them; the schema fuzz test checks that no other code comes back)."""
    return {c: {"model": ErrorDetail, "description": _ERRORS[c]} for c in codes}


class JobRequest(BaseModel):
    """A stylization job. ``strength``, ``style_scale``: see :mod:`atelier.studio.render`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    method: str = Field("adain", max_length=64, description="a method of GET /api/methods")
    content: str = Field(..., pattern=IMAGE_ID_PATTERN, description="id of the content image")
    styles: List[str] = Field(default_factory=list, max_length=4, description="ids of the style images")
    mask: Optional[str] = Field(None, pattern=IMAGE_ID_PATTERN, description="a region mask, every method: "
                                "one style (the photo where black), two styles (the first where white) or a "
                                "feed-forward model's style (the photo where black)")
    feather: float = Field(0.0, ge=0, le=64, description="with a mask: soft region edges, in pixels")
    tileable: bool = Field(False, description="a seamless texture that tiles without a seam")
    print_size: Optional[int] = Field(None, ge=1024, le=7680, description="export at print size: the longest "
                                      "side in px (replaces size), in tiles where it would not fit the memory; "
                                      "methods with tiled in GET /api/methods")
    size: int = Field(384, ge=64, le=2048, description="longest side of the output in pixels")
    strength: float = Field(1.0, ge=0, le=1, description="style strength")
    style_scale: float = Field(1.0, ge=0.25, le=4, description="style size relative to the output")
    preserve_color: Literal["none", "luminance", "histogram"] = "none"
    blend: Optional[List[float]] = Field(None, max_length=16, description="one weight per style")
    iterations: int = Field(100, ge=1, le=2000, description="gatys: L-BFGS iterations")
    seed: Optional[int] = Field(None, ge=0, le=2**31 - 1, description="gatys: random seed")


def json_safe(value):
    """``value`` (nested lists/dicts) with every non-finite float (NaN, ±Infinity, which strict
    JSON cannot carry) written as a string, so that a validation error quoting the client's
    input can be sent back (HTTP 422 instead of a failure to encode, HTTP 500)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def one_line(text: str) -> str:
    """``text`` on one line, at most 500 characters (error details)."""
    return " ".join(str(text).split())[:500]


def method_list() -> dict:
    """The methods a job may name, by name (:func:`atelier.methods.registry.list_methods`):
    ``{"name", "label", "family", "fast", "masks", "styles", ...}``; feed-forward models add
    ``builtin_styles`` (their style names)."""
    from ..methods.registry import list_methods
    from ..training.zoo import model_card

    out = {}
    for m in list_methods():
        entry = m.public()
        if m.family == "feedforward":
            try:
                card = model_card(m.model)
            except InputError:
                continue
            entry["builtin_styles"] = [s.get("file", str(i)) for i, s in enumerate(card.get("styles", []))]
        out[m.name] = entry
    return out


def image_files(store: Store, content: str, styles) -> tuple:
    """The files of a content image id and style image ids; HTTPException 404 for an unknown id."""
    paths = []
    for sid in [content, *styles]:
        p = store.image_path(sid)
        if p is None:
            raise HTTPException(404, f"no image with id {sid}")
        paths.append(p)
    return paths[0], paths[1:]


def check_request(req: JobRequest, store: Store, methods: dict) -> dict:
    """The job's inputs as files in the data folder; raises HTTPException (4xx) with one line."""
    from ..losses import normalize_weights

    m = methods.get(req.method)
    if m is None:
        raise HTTPException(400, f"unknown method {req.method!r}; use one of {', '.join(methods)}")
    content, styles = image_files(store, req.content, req.styles)
    if m["styles"] == "images" and not styles:
        raise HTTPException(400, f"method {req.method} needs at least one style image")
    if m["styles"] == "builtin" and styles:
        raise HTTPException(400, f"the feed-forward model {req.method} has its styles built in; send no styles")
    n = len(styles) if m["styles"] == "images" else len(m["builtin_styles"])
    if req.blend is not None:
        try:
            normalize_weights(req.blend, n, "blend (one weight per style)")
        except ValueError as e:
            raise HTTPException(400, one_line(e)) from None
    if req.print_size is not None:
        if not m.get("tiled"):
            tiled = ", ".join(k for k, v in methods.items() if v.get("tiled"))
            raise HTTPException(400, f"{req.method} does not export at print size (not tiled); use {tiled}")
        if req.mask is not None or req.tileable:
            raise HTTPException(400, "a print-size export takes no mask and no seamless texture (they are not tiled)")
    mask = None
    if req.mask is not None:
        from ..imaging.regions import check_region_count

        try:
            check_region_count(1, len(styles), builtin=m["styles"] == "builtin", what="mask")
        except ValueError as e:
            raise HTTPException(400, one_line(e)) from None
        if req.blend is not None and m["styles"] == "images":
            raise HTTPException(400, "give either blend (mixing the styles) or a mask (placing them), not both")
        mask = store.image_path(req.mask)
        if mask is None:
            raise HTTPException(404, f"no image with id {req.mask}")
    return {"content": content, "styles": styles, "mask": mask}
