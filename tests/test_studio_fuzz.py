"""Fuzz the studio's REST API from its own OpenAPI schema (schemathesis strategies, driven by
hypothesis), both valid requests and requests that break the schema: whatever a client sends to
any operation, the server answers with a status code that operation documents (its 2xx and the
4xx codes its route declares, 422 for a body that breaks the schema), never a 500; and a refusal
changes nothing in the data folder (no image, job or round added, no pick recorded, no file)."""

from __future__ import annotations

import pytest

from conftest import require_extra

require_extra("fastapi")
schemathesis = require_extra("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from atelier.studio.app import create_app  # noqa: E402
from atelier.studio.security import LOOPBACK_HOSTS  # noqa: E402

EXAMPLES = 10  # per operation and mode (20 operations), derandomized: the same cases on every run


def _snapshot(app) -> tuple:
    """What a refused request must not change: the rows of the database and the uploaded files."""
    store = app.state.store
    rows = tuple(tuple(map(tuple, store._q(sql))) for sql in (
        "SELECT id, kind, name FROM images ORDER BY id", "SELECT id, params FROM jobs ORDER BY id",
        "SELECT id, picked FROM rounds ORDER BY id"))
    return rows, tuple(sorted(p.name for p in store.images.iterdir()))


def test_documented_status_codes_only_and_refusals_change_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_CONFIG_DIR", str(tmp_path / "config"))  # presets land here, if any
    # schemathesis' client sends Host: testserver; the studio answers only the hosts it is given
    app = create_app(tmp_path / "data", allowed_hosts=[*LOOPBACK_HOSTS, "testserver"])
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        ops = [r.ok() for r in schema.get_all_operations()]
        assert len(ops) >= 15
        seen = []
        modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        for op, mode in [(op, mode) for op in ops for mode in modes]:
            documented = {int(c) for c in op.definition.raw["responses"]}
            assert documented >= {200}, op.path

            @given(case=op.as_strategy(mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case):
                before = _snapshot(app)
                response = case.call()
                code = response.status_code
                seen.append(code)
                # 422: a body or parameter that breaks the schema, declared by FastAPI wherever there are any
                assert code in documented | {422}, (case.method, case.formatted_path, case.body, code,
                                                    sorted(documented), response.text[:300])
                if code >= 400:
                    assert _snapshot(app) == before, (case.method, case.formatted_path, case.body, code)

            try:
                check()
            except Unsatisfiable:  # an operation without parameters has no invalid request
                assert mode == schemathesis.GenerationMode.NEGATIVE and op.path in ("/api/methods", "/api/images", "/api/history", "/api/queue")
        assert len(seen) >= 10 * len(ops) and {200, 400, 404, 422} <= set(seen)
    finally:
        app.state.queue.stop()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from fastapi.testclient import TestClient

    app = create_app(tmp_path_factory.mktemp("nan") / "data")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.app_state = app.state
        yield c
    app.state.queue.stop()


@pytest.mark.parametrize("path,body", [
    ("/api/jobs", '{"content": "bundled-chelsea", "styles": ["bundled-starry_night"], "strength": NaN}'),
    ("/api/jobs", '{"content": "bundled-chelsea", "styles": ["bundled-starry_night"], "style_scale": Infinity}'),
    ("/api/jobs", '{"content": "bundled-chelsea", "styles": ["bundled-starry_night", "bundled-starry_night"], '
                  '"blend": [-Infinity, 1]}'),
    ("/api/jobs", '{"content": "bundled-chelsea", "styles": ["bundled-starry_night"], "size": 1e400}'),
    ("/api/jobs", '{"content": "bundled-chelsea", "styles": ["bundled-starry_night"], "seed": NaN}'),
    ("/api/explore/default/rounds", '{"content": "bundled-chelsea", "styles": ["bundled-starry_night"], "size": NaN}'),
    ("/api/explore/default/rounds/" + "a" * 32 + "/pick", '{"picked": Infinity}'),
])
def test_non_finite_numbers_are_refused_with_422(client, path, body):
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "body"  # strict JSON, naming the field
    assert client.app_state.queue.pending() == 0 and client.get("/api/history").json() == []
