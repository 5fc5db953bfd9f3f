"""Explore: rounds of 4 variants proposed by the preference learner
(:mod:`atelier.studio.preference`), the user's picks stored per profile in SQLite, and the
learned favourite exported as a preset for ``atelier stylize --preset NAME``.

* ``POST /api/explore/{profile}/rounds`` ({content, styles, size}) -> a round: its id, the 4
  settings and the 4 jobs rendering them (AdaIN or WCT, in the one job queue);
* ``POST /api/explore/{profile}/rounds/{round_id}/pick`` ({picked: 0..3 or null for none});
* ``GET /api/explore/{profile}``: rounds answered and the current favourite;
* ``POST /api/explore/{profile}/preset`` ({name}): save the favourite as a named preset.

The model is refitted from the profile's stored rounds on every request (a few ms for
hundreds of rounds), so nothing but the database holds state.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from ..preference import PreferenceModel, studio_space
from ..presets import NAME_PATTERN, save_preset
from ..requests import JobRequest, check_request, errors
from ..deps import get_methods, get_queue, get_store
from ..jobs import MAX_PENDING, JobQueue, QueueFull
from ..store import ID_PATTERN, IMAGE_ID_PATTERN, PROFILE_PATTERN, Store, new_id

__all__ = ["router", "setting_to_job"]
router = APIRouter(prefix="/api/explore", tags=["explore"])
VARIANTS = 4


class RoundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(..., pattern=IMAGE_ID_PATTERN)
    styles: List[str] = Field(..., min_length=1, max_length=2)
    size: int = Field(256, ge=64, le=1024)


class PickRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    picked: Optional[int] = Field(None, ge=0, le=VARIANTS - 1, description="index of the favourite; null: none")


class PresetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., pattern=NAME_PATTERN)


def setting_to_job(setting: dict, content: str, styles: list, size: int) -> dict:
    """A learner setting as a studio job's parameters."""
    b = float(setting.get("blend", 0.5))
    return {"method": setting["method"], "content": content, "styles": list(styles), "mask": None, "size": size,
            "strength": round(float(setting["alpha"]), 4), "style_scale": round(float(setting["style_scale"]), 4),
            "preserve_color": setting["preserve_color"], "blend": [b, 1 - b] if len(styles) == 2 else None,
            "iterations": 100, "seed": None}


def _model(store, profile: str) -> PreferenceModel:
    """The profile's learner, refitted from its stored rounds over the fast methods of the registry
    (rounds that showed a method no longer registered are left out)."""
    from ..render import fast_methods

    methods = fast_methods()
    model = PreferenceModel(studio_space(2, methods))
    for r in store.rounds(profile):
        if all(s.get("method") in methods for s in r["shown"]):
            model.observe(r["shown"], r["picked"])
    return model


def _summary(store, profile: str) -> dict:
    model = _model(store, profile)
    picks = sum(1 for _, c in model.rounds if c is not None)
    best = model.best() if picks else None
    return {"profile": profile, "rounds": len(model.rounds), "picks": picks,
            "best": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in best.items()} if best else None}


@router.get("/{profile}", summary="Rounds answered and the current favourite of a profile")
def summary(profile: str = Path(..., pattern=PROFILE_PATTERN), store: Store = Depends(get_store)) -> dict:
    return _summary(store, profile)


@router.post("/{profile}/rounds", summary="Propose 4 variants and start rendering them",
             responses=errors(400, 404, 429))
def new_round(body: RoundRequest, profile: str = Path(..., pattern=PROFILE_PATTERN),
              store: Store = Depends(get_store), queue: JobQueue = Depends(get_queue),
              methods: dict = Depends(get_methods)) -> dict:
    settings = _model(store, profile).propose(VARIANTS, np.random.default_rng())
    reqs = [JobRequest(**setting_to_job(s, body.content, body.styles, body.size)) for s in settings]
    inputs = [check_request(r, store, methods) for r in reqs]  # all checked before any is queued
    if queue.pending() + VARIANTS > MAX_PENDING:
        raise QueueFull(f"{MAX_PENDING} jobs are already waiting; wait for them or cancel some")
    jobs = [queue.submit(r.model_dump(), i, origin="explore").public() for r, i in zip(reqs, inputs)]
    round_id = new_id()
    store.add_round(round_id, profile, settings, [j["id"] for j in jobs])
    return {"id": round_id, "profile": profile, "settings": settings, "jobs": jobs}


@router.post("/{profile}/rounds/{round_id}/pick", summary="The user's favourite of a round (or none)",
             responses=errors(400, 404))
def pick(body: PickRequest, profile: str = Path(..., pattern=PROFILE_PATTERN),
         round_id: str = Path(..., pattern=ID_PATTERN), store: Store = Depends(get_store)) -> dict:
    r = store.round(round_id)
    if r is None or r["profile"] != profile:
        raise HTTPException(404, f"no round {round_id} in profile {profile}")
    store.answer_round(round_id, body.picked)
    return _summary(store, profile)


@router.post("/{profile}/preset", summary="Save the profile's favourite as a named preset for the CLI",
             responses=errors(400, 409))
def preset(body: PresetRequest, profile: str = Path(..., pattern=PROFILE_PATTERN),
           store: Store = Depends(get_store)) -> dict:
    s = _summary(store, profile)
    if s["best"] is None:
        raise HTTPException(409, f"profile {profile} has no picks yet; pick a favourite in a round first")
    best = s["best"]
    params = {k: best[k] for k in ("method", "alpha", "style_scale", "preserve_color", "blend")}
    save_preset(body.name, params, source=f"atelier studio, Explore profile {profile}, {s['picks']} picks")
    return {"name": body.name, "parameters": params,
            "command": f"atelier stylize PHOTO --style PAINTING --preset {body.name} -o out.png"}
