"""Who may talk to the studio (issue 30, item 1), with real HTTP requests through the whole app:
the Host header is checked (DNS rebinding), cross-origin state-changing requests are refused
(another web page cannot upload or start jobs), and with a token every request needs it. Also
the CLI: a token is generated and printed for a non-loopback host, and the message for a missing
studio extra names ``atelier[studio]``."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import require_extra

require_extra("fastapi")
require_extra("python_multipart")
from fastapi.testclient import TestClient  # noqa: E402

from atelier.studio.app import create_app  # noqa: E402
from atelier.studio.security import COOKIE, allowed_hosts_for  # noqa: E402

TOKEN = "s3cret-token-for-tests"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _upload(client, **headers):
    return client.post("/api/images", files={"file": ("p.png", _png(), "image/png")}, data={"kind": "content"},
                       headers=headers)


@pytest.fixture(scope="module")
def open_app(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("sec") / "data")
    yield app
    app.state.queue.stop()


@pytest.fixture(scope="module")
def token_app(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("sec-token") / "data", token=TOKEN)
    yield app
    app.state.queue.stop()


def _count(app) -> int:
    return len(app.state.store.list_images())


@pytest.mark.parametrize("host,status", [
    ("127.0.0.1:7860", 200), ("localhost:7860", 200), ("[::1]:7860", 200), ("localhost", 200),
    ("evil.example", 400), ("evil.example:7860", 400), ("127.0.0.1.evil.example", 400), ("192.168.1.5:7860", 400),
])
def test_host_header_is_checked(open_app, host, status):
    with TestClient(open_app, base_url="http://127.0.0.1") as client:
        r = client.get("/api/images", headers={"Host": host})
        assert r.status_code == status, (host, r.text)


def test_bound_address_and_wildcard_hosts():
    assert allowed_hosts_for("127.0.0.1") == ["127.0.0.1", "[::1]", "localhost"]
    assert "192.168.1.5" in allowed_hosts_for("192.168.1.5") and "[fe80::1]" in allowed_hosts_for("fe80::1")
    assert allowed_hosts_for("0.0.0.0") == ["*"]  # any name reaches it; the token guards it
    assert "studio.lan" in allowed_hosts_for("0.0.0.0", ["studio.lan"]) and "*" not in allowed_hosts_for("0.0.0.0", ["x"])


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.1:9999"},  # another local app (another port) is another origin
    {"Origin": "null"},  # a sandboxed frame or a file:// page
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1"},
])
def test_cross_origin_changes_are_refused_and_change_nothing(open_app, headers):
    with TestClient(open_app, base_url="http://127.0.0.1") as client:
        before = _count(open_app)
        r = _upload(client, **headers)
        assert r.status_code == 403 and "may not change" in r.json()["detail"], r.text
        r = client.post("/api/jobs", json={"content": "bundled-chelsea", "styles": ["bundled-starry_night"]},
                        headers=headers)
        assert r.status_code == 403
        assert _count(open_app) == before and open_app.state.queue.pending() == 0
        assert client.get("/api/images", headers=headers).status_code == 200  # reading is not refused


@pytest.mark.parametrize("headers", [
    {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"},  # what the studio's own page sends
    {},  # curl, scripts: no browser headers
    {"Sec-Fetch-Site": "none"},  # typed into the address bar
])
def test_same_origin_changes_work(open_app, headers):
    with TestClient(open_app, base_url="http://127.0.0.1") as client:
        before = _count(open_app)
        r = _upload(client, **headers)
        assert r.status_code == 200, r.text
        assert _count(open_app) == before + 1


def test_token_is_required_for_every_request(token_app):
    with TestClient(token_app, base_url="http://127.0.0.1") as client:
        for path in ("/api/images", "/static/index.html", "/openapi.json", "/"):
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 401, (path, r.status_code)
        assert "?token=" in client.get("/static/index.html").text  # tells the user what to do
        assert client.get("/api/images", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.get("/api/images", headers={"X-Atelier-Token": TOKEN + "x"}).status_code == 403
        before = _count(token_app)
        assert _upload(client).status_code == 401 and _count(token_app) == before
        assert client.get("/api/images", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/api/images", headers={"X-Atelier-Token": TOKEN}).status_code == 200
        assert _upload(client, **{"X-Atelier-Token": TOKEN}).status_code == 200 and _count(token_app) == before + 1


def test_token_url_sets_a_cookie_for_the_page(token_app):
    with TestClient(token_app, base_url="http://127.0.0.1") as client:
        r = client.get(f"/?token={TOKEN}", follow_redirects=False)
        assert r.status_code == 303 and "token" not in r.headers["location"]  # out of the address bar
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={TOKEN}") and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
        # the browser now sends the cookie: the page, its assets and the API work
        assert client.get("/").status_code == 200 and "Atelier Studio" in client.get("/").text
        assert client.get("/static/app.js").status_code == 200
        assert client.get("/api/images").status_code == 200
        # a cross-origin page cannot use the cookie to change anything
        assert _upload(client, Origin="http://evil.example").status_code == 403
    with TestClient(token_app, base_url="http://127.0.0.1", cookies={COOKIE: "wrong"}) as client:
        assert client.get("/api/images").status_code == 403


def _run_cli(monkeypatch, tmp_path, *args):
    from typer.testing import CliRunner

    import uvicorn

    from atelier.cli import app

    served = {}

    def fake_run(web, host, port, **kw):  # serve nothing: keep the app to send it requests
        served.update(app=web, host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    r = CliRunner().invoke(app, ["studio", "--data-dir", str(tmp_path / "data"), *args])
    if "app" in served:
        served["app"].state.queue.stop()
    return r, served


def test_cli_generates_and_prints_a_token_off_loopback(monkeypatch, tmp_path):
    r, served = _run_cli(monkeypatch, tmp_path, "--host", "0.0.0.0", "--port", "7999")
    assert r.exit_code == 0, r.output
    token = served["app"].state.token
    assert token and len(token) >= 32
    assert f"http://127.0.0.1:7999/?token={token}" in r.output.replace("\n", "")
    with TestClient(served["app"], base_url="http://192.168.1.5:7999") as client:
        assert client.get("/api/images").status_code == 401
        assert client.get("/api/images", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    r, served = _run_cli(monkeypatch, tmp_path, "--host", "127.0.0.1", "--token", TOKEN)
    assert r.exit_code == 0 and served["app"].state.token == TOKEN and f"?token={TOKEN}" in r.output
    r, served = _run_cli(monkeypatch, tmp_path)  # loopback: no token, as before
    assert r.exit_code == 0 and served["app"].state.token is None and "token" not in r.output
    r, served = _run_cli(monkeypatch, tmp_path, "--token", "short")
    assert r.exit_code == 2 and "--token must be" in r.output and not served


def test_missing_studio_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if uvicorn were not installed
    from typer.testing import CliRunner

    from atelier.cli import app

    r = CliRunner().invoke(app, ["studio", "--data-dir", str(tmp_path / "data")])
    assert r.exit_code == 2
    assert "pip install 'atelier[studio]'" in r.output, r.output
