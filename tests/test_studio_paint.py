"""The studio's Paint tab (issue 27) through its REST API: a painting job shows the canvas filling
in (previews while it runs), ends with the painting rendered at the size asked and its strokes in
the PNG, can be cancelled, is refused with one line for bad input, and runs again from History."""

from __future__ import annotations

import io
import json
import time

import pytest
from PIL import Image

from conftest import data_file, require_extra

require_extra("fastapi")
require_extra("python_multipart")
from fastapi.testclient import TestClient  # noqa: E402

from atelier.studio.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("paint") / "data")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.queue = app.state.queue
        photo = data_file("content/000000000030.jpg").read_bytes()
        r = client.post("/api/images", files={"file": ("photo.jpg", photo, "application/octet-stream")},
                        data={"kind": "content"})
        assert r.status_code == 200, r.text
        client.photo = r.json()["id"]
        yield client
    app.state.queue.stop()


def test_a_painting_job_fills_in_and_keeps_its_strokes(studio, monkeypatch):
    import atelier.studio.jobs as jobs_module
    from atelier.studio.paint_job import render_paint

    seen = []

    def recorded(*a, on_progress=None, **k):  # the previews the job sends as the canvas fills in
        def rec(fraction, image, message):
            if image is not None:
                seen.append((fraction, tuple(image.shape), float(image.std())))
            on_progress(fraction, image, message)
        return render_paint(*a, on_progress=rec, **k)

    monkeypatch.setattr(jobs_module, "render_paint", recorded)
    r = studio.post("/api/paint", json={"content": studio.photo, "strokes": 100, "size": 320})
    assert r.status_code == 200, r.text
    state = studio.queue.wait(r.json()["id"], 120)
    assert state["status"] == "done", state
    assert len(seen) >= 6 and seen[-1][0] == 1.0  # a preview every ~5 % of the strokes, the last the whole painting
    assert seen[0][2] < seen[-1][2]  # the canvas starts flat and fills in with contrast
    res = studio.get(state["result_url"])
    with Image.open(io.BytesIO(res.content)) as im:
        meta = json.loads(im.info["atelier"])
        assert max(im.size) == 320
    assert meta["method"] == "paint" and meta["painter"] == "agent" and len(meta["painting"]["strokes"]) == 100
    again = studio.post(f"/api/jobs/{state['id']}/reproduce")
    assert again.status_code == 200 and again.json()["params"]["kind"] == "paint"
    assert studio.queue.wait(again.json()["id"], 120)["status"] == "done"


def test_paint_requests_are_checked_and_a_painting_can_be_cancelled(studio):
    for body, status, words in (({"content": "f" * 32}, 404, "no image"),
                                ({"content": studio.photo, "strokes": 0}, 422, "strokes"),
                                ({"content": studio.photo, "brush": "crayon"}, 422, "brush"),
                                ({"content": studio.photo, "styles": ["bundled-starry_night"]}, 400, "optimize")):
        r = studio.post("/api/paint", json=body)
        assert r.status_code == status and words in r.text, (body, r.text)
    r = studio.post("/api/paint", json={"content": studio.photo, "strokes": 2000})
    assert r.status_code == 200, r.text
    job = r.json()["id"]
    end = time.time() + 60
    while studio.get(f"/api/jobs/{job}").json()["progress"] == 0 and time.time() < end:
        time.sleep(0.05)  # running, strokes on the canvas
    assert studio.post(f"/api/jobs/{job}/cancel").status_code == 200
    state = studio.queue.wait(job, 30)
    assert state["status"] == "cancelled" and state["result_url"] is None and state["progress"] < 1
