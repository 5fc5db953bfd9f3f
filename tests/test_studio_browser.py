"""The studio in a real headless browser (Chromium from the system's packages, driven by
Playwright for Python): load the page, upload a photo and a painting, run a fast method and see
the result, pick a variant in Explore, reload and find the result in the history."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

from conftest import data_file, require_extra

require_extra("fastapi")
uvicorn = require_extra("uvicorn")
sync_api = require_extra("playwright.sync_api")

from atelier.studio.app import create_app  # noqa: E402

CHROMIUM = os.environ.get("ATELIER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("browser") / "data")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.time() + 20
    while not srv.started and time.time() < end:
        time.sleep(0.05)
    assert srv.started, "the studio server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    app.state.queue.stop()


@pytest.mark.slow
def test_studio_in_a_browser(server):
    if CHROMIUM is None:
        if os.environ.get("CI") or os.environ.get("ATELIER_REQUIRE_EXTRAS"):
            pytest.fail("chromium is required for the browser test (apt-get install chromium)", pytrace=False)
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    photo, painting = data_file("content/000000000086.jpg"), data_file("styles/great_wave.jpg")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            outside = []  # the page must not fetch anything from elsewhere (no CDN)
            page.on("request", lambda r: None if r.url.startswith((server, "data:")) else outside.append(r.url))
            page.goto(server + "/")
            page.wait_for_selector("#content-list img")
            page.set_input_files("#content-file", str(photo))
            page.wait_for_function("document.querySelectorAll('#content-list img').length === 2")
            page.set_input_files("#style-file", str(painting))
            page.wait_for_function("document.querySelectorAll('#style-list img.selected').length === 2")
            # the uploaded photo is the one selected and shown as "before"
            assert page.get_attribute("#content-list img.selected", "title") == photo.name
            page.eval_on_selector("#size", "e => { e.value = 96; e.dispatchEvent(new Event('input')); }")
            page.select_option("#method", "adain")
            page.click("#run")
            page.wait_for_function("document.getElementById('after').src.includes('/result')", timeout=60_000)
            page.wait_for_function("(i => Math.max(i.naturalWidth, i.naturalHeight) === 96)(document.getElementById('after'))")
            assert "done" in page.inner_text("#status")
            assert page.get_attribute("#download", "href").endswith("/result?download=true")
            # a fast method reruns by itself when a slider moves (debounced)
            first = page.evaluate("document.getElementById('after').src")
            page.eval_on_selector("#strength", "e => { e.value = 0.5; e.dispatchEvent(new Event('input')); }")
            page.wait_for_function(f"(s => s.includes('/result') && s !== {first!r})(document.getElementById('after').src)",
                                   timeout=60_000)

            page.click("#tab-explore")
            page.click("#new-round")
            page.wait_for_selector("#variants .variant .pick:not([disabled])", timeout=60_000)
            page.click("#variants .variant .pick:not([disabled])")
            page.wait_for_function("document.getElementById('explore-summary').textContent.startsWith('1 pick')")

            page.reload()
            page.click("#tab-history")
            page.wait_for_selector("#history .card img")
            page.wait_for_function("(i => Math.max(i.naturalWidth, i.naturalHeight) === 96)(document.querySelector('#history .card img'))")
            assert page.locator("#history .card").count() == 2  # Explore variants stay out of the history
            assert "strength 0.5" in page.inner_text("#history .card .meta")  # newest first
            assert not errors, errors
            assert not outside, outside
        finally:
            browser.close()
