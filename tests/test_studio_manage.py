"""Keeping the studio's data tidy (issue 30, item 11), with real requests: the queue counts the
header shows, deleting an upload or a History entry (and what may not be deleted), and
validation messages that say what a name may be instead of quoting a regular expression."""

from __future__ import annotations

import pytest

from conftest import data_file, require_extra

require_extra("fastapi")
require_extra("python_multipart")
from fastapi.testclient import TestClient  # noqa: E402

from atelier.studio.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("manage") / "data")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.app_state = app.state
        yield c
    app.state.queue.stop()


def _upload(client, rel, kind):
    p = data_file(rel)
    r = client.post("/api/images", files={"file": (p.name, p.read_bytes(), "image/jpeg")}, data={"kind": kind})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow  # a Gatys job holds the image (the first one in a process loads VGG19)
def test_delete_an_upload(client):
    im = _upload(client, "content/000000000030.jpg", "content")
    path = client.app_state.store.image_path(im["id"])
    assert path.is_file()
    # in use by a job that has not ended: refused, the file stays
    g = client.post("/api/jobs", json={"method": "gatys", "content": im["id"], "styles": ["bundled-starry_night"],
                                       "size": 64, "iterations": 2000}).json()
    r = client.delete(f"/api/images/{im['id']}")
    assert r.status_code == 409 and "cancel it first" in r.json()["detail"] and path.is_file()
    client.post(f"/api/jobs/{g['id']}/cancel")
    assert client.app_state.queue.wait(g["id"], 60)["status"] == "cancelled"
    assert client.get("/api/queue").json() == {"running": 0, "queued": 0}
    r = client.delete(f"/api/images/{im['id']}")
    assert r.status_code == 200 and r.json() == {"deleted": im["id"]}
    assert not path.exists() and im["id"] not in {i["id"] for i in client.get("/api/images").json()}
    assert client.get(f"/api/images/{im['id']}").status_code == 404
    assert client.delete(f"/api/images/{im['id']}").status_code == 404
    r = client.delete("/api/images/bundled-starry_night")
    assert r.status_code == 400 and "comes with the studio" in r.json()["detail"]
    assert client.app_state.store.image_path("bundled-starry_night").is_file()


def test_delete_a_history_entry(client):
    job = client.post("/api/jobs", json={"method": "adain", "content": "bundled-chelsea",
                                         "styles": ["bundled-starry_night"], "size": 64}).json()
    # the header's indicator: this job is waiting or running until it ends
    assert sum(client.get("/api/queue").json().values()) in (0, 1)
    assert client.app_state.queue.wait(job["id"], 120)["status"] == "done"
    result = client.app_state.store.result_path(job["id"])
    assert result.is_file() and job["id"] in {h["id"] for h in client.get("/api/history").json()}
    assert client.delete(f"/api/jobs/{job['id']}").json() == {"deleted": job["id"]}
    assert not result.exists() and job["id"] not in {h["id"] for h in client.get("/api/history").json()}
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 404


@pytest.mark.slow
def test_a_running_job_cannot_be_deleted(client):
    g = client.post("/api/jobs", json={"method": "gatys", "content": "bundled-chelsea",
                                       "styles": ["bundled-starry_night"], "size": 64, "iterations": 2000}).json()
    assert client.get("/api/queue").json()["running"] + client.get("/api/queue").json()["queued"] == 1
    r = client.delete(f"/api/jobs/{g['id']}")
    assert r.status_code == 409 and "cancel it first" in r.json()["detail"]
    client.post(f"/api/jobs/{g['id']}/cancel")
    assert client.app_state.queue.wait(g["id"], 60)["status"] == "cancelled"
    assert client.delete(f"/api/jobs/{g['id']}").status_code == 200  # a cancelled job can go


@pytest.mark.parametrize("path,body,words", [
    ("/api/explore/default/preset", {"name": "my look!"}, "a name is 1 to 64 letters, digits"),
    ("/api/explore/-bad/rounds", {"content": "bundled-chelsea", "styles": ["bundled-starry_night"]},
     "a profile is 1 to 40 letters"),
    ("/api/jobs", {"content": "../etc/passwd", "styles": ["bundled-starry_night"]}, "an image id is 32 hexadecimal"),
])
def test_pattern_errors_are_said_in_words(client, path, body, words):
    r = client.post(path, json=body)
    assert r.status_code == 422
    msg = r.json()["detail"][0]["msg"]
    assert msg.startswith(words) and "^" not in msg and "[" not in msg, msg
