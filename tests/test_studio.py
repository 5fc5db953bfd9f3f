"""The studio's REST API (issue 16) without a browser: uploads and their limits, jobs with a
fast method, progress and cancel, results with parameters, history and reproduce, Explore and
presets, no path from the client reaching the file system, and a queue that survives bad jobs."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from conftest import data_file, require_extra

require_extra("fastapi")
require_extra("python_multipart")
from fastapi.testclient import TestClient  # noqa: E402

from atelier.io import images as img  # noqa: E402
from atelier.studio import jobs as jobs_module  # noqa: E402
from atelier.studio.app import create_app  # noqa: E402


def _png_bytes(w=80, h=60, seed=0) -> bytes:
    arr = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio")
    app = create_app(root / "data")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.app_state = app.state
        client.data = root / "data"
        yield client
    app.state.queue.stop()


def _upload(client, path_or_bytes, name="photo.jpg", kind="content"):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
    return client.post("/api/images", files={"file": (name, data, "application/octet-stream")}, data={"kind": kind})


def _wait(client, job_id, timeout=120):
    state = client.app_state.queue.wait(job_id, timeout)
    assert state is not None
    return state


@pytest.fixture(scope="module")
def ids(studio):
    c = _upload(studio, data_file("content/000000000030.jpg"))
    s = _upload(studio, data_file("styles/the_scream.jpg"), "scream.jpg", "style")
    assert c.status_code == 200 and s.status_code == 200, (c.text, s.text)
    return {"content": c.json()["id"], "style": s.json()["id"], "style2": "bundled-starry_night"}


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_upload_is_stored_under_a_server_id(studio, ids):
    listed = {i["id"]: i for i in studio.get("/api/images").json()}
    assert listed[ids["content"]]["width"] == 640 and listed[ids["content"]]["kind"] == "content"
    assert {"bundled-chelsea", "bundled-starry_night"} <= set(listed)
    r = studio.get(f"/api/images/{ids['content']}")
    assert r.status_code == 200 and r.content == data_file("content/000000000030.jpg").read_bytes()
    assert all(f.startswith("images/") or f.startswith("studio.db") for f in _files(studio.data))


@pytest.mark.parametrize("data,name,status,words", [
    (b"this is not an image", "notes.txt", 400, "not a recognized image"),
    (b"", "empty.png", 400, "empty"),
    (_png_bytes()[:60], "cut.png", 400, "cut.png"),
])
def test_bad_uploads_are_refused_with_one_line(studio, data, name, status, words):
    before = _files(studio.data / "images")
    r = _upload(studio, data, name)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert words in detail and "\n" not in detail and str(studio.data) not in detail
    assert _files(studio.data / "images") == before  # nothing left behind


def test_upload_limits_bytes_and_pixels(tmp_path):
    app = create_app(tmp_path / "d", max_pixels=3000, max_upload_bytes=30_000)
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            big = client.post("/api/images", files={"file": ("big.bmp", b"BM" + b"\0" * 40_000)})
            assert big.status_code == 413 and "larger than" in big.json()["detail"]
            many = client.post("/api/images", files={"file": ("wide.png", _png_bytes(100, 60))})
            assert many.status_code == 400 and "pixels" in many.json()["detail"], many.text
            ok = client.post("/api/images", files={"file": ("small.png", _png_bytes(50, 40))})
            assert ok.status_code == 200
    finally:
        app.state.queue.stop()


def test_no_client_path_touches_the_file_system(studio, tmp_path):
    r = _upload(studio, _png_bytes(), "../../../../escape.png")
    assert r.status_code == 200 and r.json()["name"] == "escape.png"
    assert not list(studio.data.parent.glob("escape*")) and not (studio.data / "escape.png").exists()
    for url in ("/api/images/..%2F..%2Fstudio.db", "/api/images/../studio.db", "/api/jobs/..%2Fstudio.db/result",
                "/api/images/%2Fetc%2Fpasswd", "/api/jobs/" + "0" * 31 + "g/result"):
        resp = studio.get(url)
        assert resp.status_code in (404, 422), (url, resp.status_code)
        assert b"SQLite" not in resp.content and b"root:" not in resp.content


def test_store_refuses_file_names_that_leave_its_folders(tmp_path):
    """The second line of defence, called directly: a database row whose file name climbs out of
    images/ or results/ (``../``, an absolute path, a sub-folder) gives no path, even when the
    file it points at exists; a plain name inside the folder does."""
    from atelier.studio.store import Store, new_id

    store = Store(tmp_path / "data")
    try:
        (tmp_path / "secret.png").write_bytes(_png_bytes())
        (store.images / "sub").mkdir()
        (store.images / "sub" / "x.png").write_bytes(_png_bytes())
        (store.images / "ok.png").write_bytes(_png_bytes())
        (store.results / "ok.png").write_bytes(_png_bytes())
        for name in ("../../secret.png", "../studio.db", str(tmp_path / "secret.png"), "sub/x.png", "./../studio.db"):
            i = new_id()
            store.add_image(i, "content", "x", name, 10, 10)
            assert store.image(i) is not None and store.image_path(i) is None, name
            j = new_id()
            store.add_job(j, {})
            store.finish_job(j, "done", result=name.replace("images", "results"))
            assert store.job(j)["status"] == "done" and store.result_path(j) is None, name
        i, j = new_id(), new_id()
        store.add_image(i, "content", "x", "ok.png", 10, 10)
        store.add_job(j, {})
        store.finish_job(j, "done", result="ok.png")
        assert store.image_path(i) == store.images / "ok.png" and store.result_path(j) == store.results / "ok.png"
        assert store.image("../" + i) is None and store.job(j + "/..") is None  # ids are checked by pattern too
    finally:
        store.close()


def test_fast_job_result_has_its_parameters(studio, ids):
    body = {"method": "adain", "content": ids["content"], "styles": [ids["style"], ids["style2"]], "size": 96,
            "strength": 0.8, "style_scale": 1.5, "preserve_color": "luminance", "blend": [0.7, 0.3]}
    job = studio.post("/api/jobs", json=body).json()
    state = _wait(studio, job["id"])
    assert state["status"] == "done", state
    r = studio.get(state["result_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    path = studio.data / "results" / f"{job['id']}.png"
    meta = img.read_metadata(path)
    assert meta["parameters"]["strength"] == 0.8 and meta["parameters"]["blend"] == [0.7, 0.3]
    assert meta["alpha"] == 0.8 and meta["style_size"] == 144
    with Image.open(path) as im:
        assert max(im.size) == 96
    # a region mask (AdaIN/WCT, two styles): the left half gets the first style, the right the second
    half = np.zeros((60, 80), np.uint8)
    half[:, :40] = 255
    buf = io.BytesIO()
    Image.fromarray(half).save(buf, format="PNG")
    mask = _upload(studio, buf.getvalue(), "mask.png", "mask").json()
    both = studio.post("/api/jobs", json={**body, "mask": mask["id"]})
    assert both.status_code == 400 and "not both" in both.json()["detail"]
    masked = studio.post("/api/jobs", json={**body, "mask": mask["id"], "blend": None}).json()
    ms = _wait(studio, masked["id"])
    assert ms["status"] == "done", ms["error"]
    assert img.read_metadata(studio.data / "results" / f"{masked['id']}.png")["mask"] is True
    history = studio.get("/api/history").json()
    assert history[0]["id"] == masked["id"] and history[1]["id"] == job["id"]
    again = studio.post(f"/api/jobs/{job['id']}/reproduce").json()
    assert _wait(studio, again["id"])["status"] == "done" and again["params"] == state["params"]


@pytest.mark.slow
def test_feed_forward_model_and_gatys_progress(studio, ids):
    ff = studio.post("/api/jobs", json={"method": "starry_night", "content": ids["content"], "size": 80,
                                        "strength": 0.5, "style_scale": 2.0}).json()
    assert _wait(studio, ff["id"])["status"] == "done"
    g = studio.post("/api/jobs", json={"method": "gatys", "content": ids["content"], "styles": [ids["style"]],
                                       "size": 64, "iterations": 10, "seed": 0}).json()
    state = _wait(studio, g["id"], 180)
    assert state["status"] == "done" and state["progress"] == 1.0
    meta = img.read_metadata(studio.data / "results" / f"{g['id']}.png")
    assert meta["iterations"] == 10 and meta["style_weight"] == pytest.approx(1000.0)


@pytest.mark.parametrize("change,status,words", [
    ({"method": "nope"}, 400, "unknown method"),
    ({"styles": []}, 400, "needs at least one style"),
    ({"method": "starry_night"}, 400, "built in"),
    ({"blend": [1, 2, 3]}, 400, "one weight per"),
    ({"mask": "bundled-chelsea", "styles": ["bundled-starry_night"] * 3}, 400, "one mask per style"),
    ({"content": "f" * 32}, 404, "no image"),
    ({"size": 5000}, 422, "size"),
    ({"strength": 2}, 422, "strength"),
    ({"extra": 1}, 422, "extra"),
])
def test_bad_jobs_are_refused(studio, ids, change, status, words):
    body = {"method": "adain", "content": ids["content"], "styles": [ids["style"]], "size": 96, **change}
    r = studio.post("/api/jobs", json=body)
    assert r.status_code == status, r.text
    assert words in json.dumps(r.json()["detail"])


@pytest.mark.slow
def test_cancel_a_running_job_leaves_no_file(studio, ids):
    g = studio.post("/api/jobs", json={"method": "gatys", "content": ids["content"], "styles": [ids["style"]],
                                       "size": 64, "iterations": 2000}).json()
    queued = studio.post("/api/jobs", json={"method": "adain", "content": ids["content"], "styles": [ids["style"]],
                                            "size": 64}).json()
    end = time.time() + 120
    while time.time() < end:  # wait for a live preview: the optimizer is running
        if studio.get(f"/api/jobs/{g['id']}/preview").status_code == 200:
            break
        time.sleep(0.1)
    preview = studio.get(f"/api/jobs/{g['id']}/preview")
    assert preview.status_code == 200 and preview.content[:4] == b"\x89PNG"
    assert studio.get(f"/api/jobs/{g['id']}").json()["status"] == "running"
    assert studio.post(f"/api/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"
    studio.post(f"/api/jobs/{g['id']}/cancel")
    state = _wait(studio, g["id"], 60)
    assert state["status"] == "cancelled" and 0 < state["progress"] < 0.5
    for jid in (g["id"], queued["id"]):
        assert not (studio.data / "results" / f"{jid}.png").exists()
        assert studio.get(f"/api/jobs/{jid}/result").status_code == 404
    assert not [f for f in _files(studio.data / "results") if f.endswith(".tmp")]


def test_queue_survives_bad_jobs(studio, ids, monkeypatch):
    broken = _upload(studio, _png_bytes(), "soon-broken.png").json()
    (studio.data / "images" / f"{broken['id']}.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    bad = studio.post("/api/jobs", json={"method": "adain", "content": broken["id"], "styles": [ids["style"]],
                                         "size": 64}).json()
    state = _wait(studio, bad["id"])
    assert state["status"] == "failed" and "soon-broken" not in state["error"] and "\n" not in state["error"]

    real = jobs_module.render
    calls, spans = [], []

    def boom(params, *a, **k):
        calls.append(params)
        t0 = time.perf_counter()
        try:
            if len(calls) == 1:
                raise RuntimeError("simulated crash")
            return real(params, *a, **k)
        finally:
            spans.append((t0, time.perf_counter()))

    monkeypatch.setattr(jobs_module, "render", boom)
    crash = studio.post("/api/jobs", json={"method": "adain", "content": ids["content"], "styles": [ids["style"]],
                                           "size": 64}).json()
    after = studio.post("/api/jobs", json={"method": "adain", "content": ids["content"], "styles": [ids["style"]],
                                           "size": 64}).json()
    s1, s2 = _wait(studio, crash["id"]), _wait(studio, after["id"])
    assert s1["status"] == "failed" and "simulated crash" in s1["error"]
    assert s2["status"] == "done"
    assert not (studio.data / "results" / f"{crash['id']}.png").exists()
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # one job at a time


def test_studio_command_checks_and_host_warning():
    from typer.testing import CliRunner

    from atelier.cli import app
    from atelier.cli.studio import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.5") and not _is_loopback("example.org")
    r = CliRunner().invoke(app, ["studio", "--port", "70000"])
    assert r.exit_code == 2 and "--port must be 1..65535" in r.output


@pytest.mark.slow
def test_explore_rounds_picks_and_preset(studio, ids, tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_CONFIG_DIR", str(tmp_path / "config"))
    r = studio.post("/api/explore/alice/rounds", json={"content": ids["content"], "styles": [ids["style"]],
                                                      "size": 64}).json()
    assert len(r["settings"]) == 4 and len(r["jobs"]) == 4
    for j in r["jobs"]:
        assert _wait(studio, j["id"])["status"] == "done"
    assert not {j["id"] for j in r["jobs"]} & {h["id"] for h in studio.get("/api/history").json()}
    assert studio.post("/api/explore/alice/preset", json={"name": "x"}).status_code == 409
    s = studio.post(f"/api/explore/alice/rounds/{r['id']}/pick", json={"picked": 2}).json()
    assert s["picks"] == 1 and s["best"]["method"] in ("adain", "wct")
    assert studio.post(f"/api/explore/bob/rounds/{r['id']}/pick", json={"picked": 1}).status_code == 404
    assert studio.get("/api/explore/bob").json()["rounds"] == 0
    p = studio.post("/api/explore/alice/preset", json={"name": "alice-look"})
    assert p.status_code == 200, p.text
    saved = json.loads((tmp_path / "config" / "presets" / "alice-look.json").read_text())
    assert saved["parameters"] == p.json()["parameters"]
    assert studio.post("/api/explore/alice/preset", json={"name": "../evil"}).status_code == 422


def test_stylize_with_a_preset(tmp_path, monkeypatch, content_path, style_path):
    from typer.testing import CliRunner

    from atelier.cli import app
    from atelier.studio.presets import save_preset

    monkeypatch.setenv("ATELIER_CONFIG_DIR", str(tmp_path / "config"))
    save_preset("soft", {"method": "adain", "alpha": 0.4, "style_scale": 0.5, "preserve_color": "luminance",
                         "blend": 0.5})
    out = tmp_path / "out.png"
    r = CliRunner().invoke(app, ["stylize", str(content_path), "-s", str(style_path), "--preset", "soft",
                                 "--size", "96", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    meta = img.read_metadata(out)
    assert meta["method"] == "adain" and meta["alpha"] == 0.4 and meta["style_size"] == 48
    assert meta["preserve_color"] == "luminance"
    r = CliRunner().invoke(app, ["stylize", str(content_path), "-s", str(style_path), "--preset", "soft",
                                 "--alpha", "0.9", "--size", "96", "-o", str(out), "-q"])
    assert r.exit_code == 0 and img.read_metadata(out)["alpha"] == 0.9  # the command line wins
    r = CliRunner().invoke(app, ["stylize", str(content_path), "-s", str(style_path), "--preset", "missing",
                                 "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "no preset named 'missing'" in r.output
    assert not (tmp_path / "x.png").exists()


def test_a_full_queue_refuses_new_jobs(studio, ids, monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_PENDING", 0)
    r = studio.post("/api/jobs", json={"method": "adain", "content": ids["content"], "styles": [ids["style"]]})
    assert r.status_code == 429 and "already waiting" in r.json()["detail"]
    r = studio.post("/api/explore/carol/rounds", json={"content": ids["content"], "styles": [ids["style"]]})
    assert r.status_code == 429 and studio.get("/api/explore/carol").json()["rounds"] == 0


def test_the_page_needs_no_internet(studio):
    assert studio.get("/").status_code == 200  # redirected to the static page
    for name in ("index.html", "app.js", "style.css"):
        r = studio.get(f"/static/{name}")
        assert r.status_code == 200 and len(r.text) > 500
        assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
    assert studio.get("/docs").status_code == 404  # Swagger UI would load from a CDN
    assert studio.get("/openapi.json").json()["info"]["title"] == "Atelier Studio"


def test_region_mask_with_one_style_or_a_feed_forward_model_and_a_seamless_texture(studio, ids):
    """Issue 28: the studio's mask (uploaded or painted) works with every method: one style keeps
    the photo where the mask is black; a feed-forward model's style goes where it is white; and a
    job may ask for a texture that tiles without a seam."""
    from atelier.imaging.tileable import seam_ratio

    half = np.zeros((60, 80), np.uint8)
    half[:, :40] = 255
    buf = io.BytesIO()
    Image.fromarray(half).save(buf, format="PNG")
    mask = _upload(studio, buf.getvalue(), "left.png", "mask").json()["id"]
    photo = img.load_image(studio.app_state.store.image_path(ids["content"]), size=96)
    for body in ({"method": "adain", "styles": [ids["style"]]}, {"method": "starry_night", "styles": []}):
        job = studio.post("/api/jobs", json={**body, "content": ids["content"], "size": 96, "mask": mask,
                                             "feather": 2}).json()
        state = _wait(studio, job["id"])
        assert state["status"] == "done", state
        out = img.load_image(studio.data / "results" / f"{job['id']}.png")
        w = out.shape[-1]
        right = (out[..., w // 2 + 6:] - photo[..., w // 2 + 6:]).abs().mean()
        left = (out[..., : w // 2 - 6] - photo[..., : w // 2 - 6]).abs().mean()
        assert float(right) < 0.01 < float(left), (body["method"], float(left), float(right))
        assert img.read_metadata(studio.data / "results" / f"{job['id']}.png")["parameters"]["feather"] == 2
    three = studio.post("/api/jobs", json={"method": "adain", "content": ids["content"], "size": 96, "mask": mask,
                                           "styles": [ids["style"], ids["style2"], ids["style"]]})
    assert three.status_code == 400 and "mask" in three.json()["detail"]
    job = studio.post("/api/jobs", json={"method": "adain", "styles": [ids["style"]], "content": ids["content"],
                                         "size": 96, "tileable": True}).json()
    state = _wait(studio, job["id"])
    assert state["status"] == "done", state
    out = img.load_image(studio.data / "results" / f"{job['id']}.png")
    assert out.shape[-1] % 16 == 0 and out.shape[-2] % 16 == 0
    assert seam_ratio(out)["ratio"] < 1.6


def test_export_at_print_size_tiles_in_the_background_and_cancels(studio, ids):
    """Issue 24: a print-size export renders the same settings in tiles (the plan in the metadata);
    a method that is not tiled is refused; Cancel stops it between tiles and writes nothing."""
    body = {"method": "starry_night", "content": ids["content"], "styles": [], "size": 96, "print_size": 1024}
    import atelier.api.print_size as ps
    real = ps.print_plan
    # a small budget forces tiles at 1024 px on any machine
    ps_plan = lambda spec, h, w, tile, mem, dev: real(spec, h, w, 256, None, dev)  # noqa: E731
    try:
        ps.print_plan = ps_plan
        job = studio.post("/api/jobs", json=body).json()
        state = _wait(studio, job["id"], 300)
        assert state["status"] == "done", state
        path = studio.data / "results" / f"{job['id']}.png"
        with Image.open(path) as im:
            assert max(im.size) == 1024
        meta = img.read_metadata(path)
        assert meta["tiles"]["tile"] == 256 and meta["tiles"]["count"] > 1 and meta["parameters"]["print_size"] == 1024
        slow = studio.post("/api/jobs", json={**body, "print_size": 4096}).json()
        end = time.time() + 120
        while time.time() < end and studio.get(f"/api/jobs/{slow['id']}").json()["status"] == "queued":
            time.sleep(0.05)
        assert studio.post(f"/api/jobs/{slow['id']}/cancel").status_code == 200
        assert _wait(studio, slow["id"], 300)["status"] == "cancelled"
        assert not (studio.data / "results" / f"{slow['id']}.png").exists()
    finally:
        ps.print_plan = real


def test_gatys_exports_at_print_size_in_tiles_with_its_pyramid(studio, ids):
    """Issue 24: Gatys exports at print size too: the coarse-to-fine pyramid, the levels above the
    budget optimized in tiles (the plan per scale in the metadata), messages per tile; a mask is
    refused at print size."""
    import atelier.studio.render as render

    body = {"method": "gatys", "content": ids["content"], "styles": [ids["style"]], "size": 96,
            "iterations": 2, "seed": 1, "print_size": 1024}
    saved = render.PRINT_MAX_MEMORY
    try:
        render.PRINT_MAX_MEMORY = "1.5G"  # the 512 px level fits whole, the 1024 px one needs tiles
        job = studio.post("/api/jobs", json=body).json()
        seen = set()
        end = time.time() + 300
        while time.time() < end:
            state = studio.get(f"/api/jobs/{job['id']}").json()
            seen.add(state.get("message") or "")
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.05)
    finally:
        render.PRINT_MAX_MEMORY = saved
    assert state["status"] == "done", state
    path = studio.data / "results" / f"{job['id']}.png"
    with Image.open(path) as im:
        assert max(im.size) == 1024
    meta = img.read_metadata(path)
    scales, tiles = meta["scales"], meta["tiles"]
    assert len(scales) == 2 and tiles[0] is None and tiles[-1]["count"] > 1, (scales, tiles)
    assert any(m.startswith("tile ") for m in seen) and any("scale 2/2" in m for m in seen), seen
    out = img.load_image(path)
    assert float(out.std()) > 0.05 and not bool(out.isnan().any())
    mask = studio.post("/api/jobs", json={**body, "mask": ids["content"]})
    assert mask.status_code == 400 and "no mask" in mask.json()["detail"]
