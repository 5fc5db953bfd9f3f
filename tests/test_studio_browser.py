"""The studio in a real headless browser (Chromium from the system's packages, driven by
Playwright for Python): load the page, upload a photo and a painting, run a fast method and see
the result, pick a variant in Explore, reload and find the result in the history; an upload
replaces the selected painting unless "add to blend" is on, and the page says which paintings
a run uses (issue 30); a second Stylize stops the first and Cancel reaches every job; the page
fits a phone (420x900) and a laptop (1280x800) without scrolling sideways."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import data_file, require_extra

require_extra("fastapi")
uvicorn = require_extra("uvicorn")
sync_api = require_extra("playwright.sync_api")

from atelier.studio.app import create_app  # noqa: E402

CHROMIUM = os.environ.get("ATELIER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
#: where the layout test writes its screenshots: ATELIER_SCREENSHOT_DIR=docs/images refreshes the copies
#: the docs show (looked at before committing); by default a temporary folder, so a test run leaves the tree clean
SHOTS = Path(os.environ["ATELIER_SCREENSHOT_DIR"]) if os.environ.get("ATELIER_SCREENSHOT_DIR") else None
APPS = {}  # server URL -> its app (to read the job queue)


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
    APPS[f"http://127.0.0.1:{port}"] = app
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    app.state.queue.stop()


def _chromium():
    if CHROMIUM is None:
        if os.environ.get("CI") or os.environ.get("ATELIER_REQUIRE_EXTRAS"):
            pytest.fail("chromium is required for the browser test (apt-get install chromium)", pytrace=False)
        pytest.skip("no chromium on this machine (apt-get install chromium)")


@pytest.mark.slow
def test_studio_in_a_browser(server):
    _chromium()
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
            page.wait_for_function("document.querySelectorAll('#style-list img').length === 2")
            # the uploaded photo and painting are the ones selected: the painting replaced Starry Night
            assert page.get_attribute("#content-list img.selected", "title") == photo.name
            assert page.locator("#style-list img.selected").count() == 1
            assert page.get_attribute("#style-list img.selected", "title") == painting.name
            assert page.inner_text("#uses") == f"uses {painting.name}"
            # blending is a choice: with "add to blend", a click adds Starry Night, and the page says so
            page.check("#style-add")
            page.click("#style-list img[data-id='bundled-starry_night']")
            page.wait_for_function("document.querySelectorAll('#style-list img.selected').length === 2")
            assert page.inner_text("#uses") == f"uses {painting.name} 50% + starry_night.jpg 50%"
            page.eval_on_selector("#blend", "e => { e.value = 0.75; e.dispatchEvent(new Event('input')); }")
            assert page.inner_text("#uses") == f"uses {painting.name} 75% + starry_night.jpg 25%"
            page.uncheck("#style-add")
            page.click(f"#style-list img[title='{painting.name}']")  # without it, a click picks one alone
            assert page.locator("#style-list img.selected").count() == 1
            page.eval_on_selector("#size", "e => { e.value = 96; e.dispatchEvent(new Event('input')); }")
            page.select_option("#method", "adain")
            page.click("#run")
            page.wait_for_function("document.getElementById('after').src.includes('/result')", timeout=60_000)
            page.wait_for_function("(i => Math.max(i.naturalWidth, i.naturalHeight) === 96)(document.getElementById('after'))")
            assert "done" in page.inner_text("#status") and painting.name in page.inner_text("#status")
            assert page.get_attribute("#download", "href").endswith("/result?download=true")
            # a fast method reruns by itself when a slider moves (debounced)
            first = page.evaluate("document.getElementById('after').src")
            page.eval_on_selector("#strength", "e => { e.value = 0.5; e.dispatchEvent(new Event('input')); }")
            page.wait_for_function(f"(s => s.includes('/result') && s !== {first!r})(document.getElementById('after').src)",
                                   timeout=60_000)

            page.click("#tab-explore")
            page.click("#new-round")
            page.wait_for_selector("#variants .variant")
            # while the variants render: no broken-image icons (an image without src is hidden)
            assert page.evaluate("[...document.querySelectorAll('#variants img')].every(i => i.getAttribute('src') || "
                                 "getComputedStyle(i).visibility === 'hidden')")
            page.wait_for_selector("#variants .variant .pick:not([disabled])", timeout=60_000)
            ready = page.locator("#variants .variant:has(.pick:not([disabled]))").first
            assert ready.locator("a.download").get_attribute("href").endswith("/result?download=true")
            page.click("#variants .variant .pick:not([disabled])")
            page.wait_for_function("document.getElementById('explore-summary').textContent.startsWith('1 pick')")

            page.reload()
            page.click("#tab-history")
            page.wait_for_selector("#history .card img")
            page.wait_for_function("(i => Math.max(i.naturalWidth, i.naturalHeight) === 96)(document.querySelector('#history .card img'))")
            assert page.locator("#history .card").count() == 2  # Explore variants stay out of the history
            assert "strength 0.5" in page.inner_text("#history .card .meta")  # newest first
            assert painting.name in page.inner_text("#history .card .meta")  # the card names the painting
            assert not errors, errors
            assert not outside, outside
        finally:
            browser.close()


@pytest.mark.slow
def test_page_works_with_a_token(tmp_path):
    _chromium()
    app = create_app(tmp_path / "data", token="browser-token-123")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        end = time.time() + 20
        while not srv.started and time.time() < end:
            time.sleep(0.05)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                assert page.goto(f"http://127.0.0.1:{port}/").status == 401  # no token: nothing
                page.goto(f"http://127.0.0.1:{port}/?token=browser-token-123")
                assert "token" not in page.url  # the cookie holds it now
                page.wait_for_selector("#content-list img.selected")
                page.eval_on_selector("#size", "e => { e.value = 64; e.dispatchEvent(new Event('input')); }")
                page.click("#run")  # a POST from the page itself: same origin, token in the cookie
                page.wait_for_function("document.getElementById('after').src.includes('/result')", timeout=60_000)
                assert "done" in page.inner_text("#status") and not errors, errors
            finally:
                browser.close()
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        app.state.queue.stop()


def _jobs(server, method):
    """(id, status) of the server's jobs of one method, oldest first."""
    rows = APPS[server].state.store._q("SELECT id, params, status FROM jobs ORDER BY created")
    return [(r[0], r[2]) for r in rows if f'"method": "{method}"' in r[1]]


@pytest.mark.slow
def test_second_stylize_stops_the_first_and_cancel_reaches_all(server):
    _chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server + "/")
            page.wait_for_selector("#content-list img.selected")
            page.select_option("#method", "gatys")
            for sel, value in (("#size", 64), ("#iterations", 500)):
                page.eval_on_selector(sel, f"e => {{ e.value = {value}; e.dispatchEvent(new Event('input')); }}")
            page.click("#run")
            page.wait_for_function("/gatys: (?!queued)/.test(document.getElementById('status').textContent)",
                                   timeout=60_000)
            page.click("#run")  # again, while the first is running
            page.wait_for_function("document.getElementById('status').textContent.includes('previous run cancelled')")
            end = time.time() + 60
            while time.time() < end and [s for _, s in _jobs(server, "gatys")][:1] != ["cancelled"]:
                time.sleep(0.1)
            jobs = _jobs(server, "gatys")
            assert len(jobs) == 2 and jobs[0][1] == "cancelled" and jobs[1][1] in ("queued", "running"), jobs
            assert not page.is_disabled("#cancel")
            page.click("#cancel")
            page.wait_for_function("document.getElementById('status').textContent === 'cancelled'", timeout=60_000)
            assert [s for _, s in _jobs(server, "gatys")] == ["cancelled", "cancelled"]
            assert APPS[server].state.queue.counts() == {"running": 0, "queued": 0}
            page.wait_for_function("document.getElementById('queue-note').textContent === 'queue: idle'")
            # the page's job poll (every 300 ms) may see the end a moment after the queue note: wait for it
            page.wait_for_function("document.getElementById('cancel').disabled", timeout=10_000)
            page.click("#tab-history")
            assert "gatys" not in page.inner_text("#history")  # nothing lands in History later
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.parametrize("width,height,name", [(420, 900, "phone"), (1280, 800, "desktop")])
def test_layout_fits_phone_and_laptop(server, width, height, name, tmp_path):
    _chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(server + "/")
            page.wait_for_selector("#content-list img.selected")
            page.select_option("#method", "adain")
            page.eval_on_selector("#size", "e => { e.value = 256; e.dispatchEvent(new Event('input')); }")
            page.click("#run")
            page.wait_for_function("document.getElementById('after').src.includes('/result')", timeout=60_000)
            page.wait_for_function("document.getElementById('after').naturalWidth > 0")
            wide = "document.documentElement.scrollWidth <= window.innerWidth"
            # the result fills the width it has (no 45-px thumbnail), and no tab scrolls sideways
            shown = page.evaluate("document.getElementById('before').getBoundingClientRect().width")
            assert shown >= (width - 40 if width < 760 else 600), shown
            assert page.evaluate(wide), page.evaluate("document.documentElement.scrollWidth")
            shots = SHOTS or tmp_path
            shots.mkdir(parents=True, exist_ok=True)
            page.evaluate("document.getElementById('compare').scrollIntoView()")
            page.screenshot(path=str(shots / f"studio-{name}.png"))
            assert (shots / f"studio-{name}.png").stat().st_size > 10_000
            for tab in ("explore", "history"):
                page.click(f"#tab-{tab}")
                page.wait_for_timeout(200)
                assert page.evaluate(wide), (tab, page.evaluate("document.documentElement.scrollWidth"))
        finally:
            browser.close()


@pytest.mark.slow
def test_paint_tab_shows_the_canvas_filling_in(server):
    """Issue 27: the Paint tab paints the selected photo; the canvas shows previews while the strokes
    are placed, then the painting; History lists it with its strokes."""
    _chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "/")
            page.wait_for_selector("#content-list img.selected")
            page.click("#tab-paint")
            page.eval_on_selector("#paint-strokes", "e => { e.value = 300; e.dispatchEvent(new Event('input')); }")
            page.select_option("#paint-brush", "watercolour")
            page.evaluate("window.srcs = []; new MutationObserver(() => window.srcs.push("
                          "document.getElementById('paint-canvas').src)).observe("
                          "document.getElementById('paint-canvas'), {attributes: true, attributeFilter: ['src']})")
            page.click("#paint-run")
            page.wait_for_function("document.getElementById('paint-canvas').src.includes('/result')", timeout=90_000)
            srcs = page.evaluate("window.srcs")
            assert sum("/preview" in u for u in srcs) >= 2 and "/result" in srcs[-1], srcs  # the canvas filled in
            page.wait_for_function("(i => i.complete && Math.max(i.naturalWidth, i.naturalHeight) === 768)"
                                   "(document.getElementById('paint-canvas'))")
            assert page.inner_text("#paint-status") == "done: 300 strokes, agent, watercolour"
            assert page.get_attribute("#paint-download", "href").endswith("/result?download=true")
            page.click("#tab-history")
            page.wait_for_selector("#history .card")
            assert "painted: 300 strokes · agent · watercolour" in page.inner_text("#history .card .meta")
            assert not errors, errors
        finally:
            browser.close()
