"""Fuzz the studio's REST API from its own OpenAPI schema (schemathesis strategies, driven by
hypothesis), both valid requests and requests that break the schema: whatever a client sends to
any operation, the server answers with a status the API documents (its schema's 200 and 422,
and the errors the studio raises: 400 bad input, 404 unknown id, 409 a preset before any pick,
413 too large, 429 queue full), never a 500; and a refused request leaves the server's state
(images, jobs, rounds and the files of the images folder) as it was."""

from __future__ import annotations

from conftest import require_extra

require_extra("fastapi")
schemathesis = require_extra("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from atelier.studio.app import create_app  # noqa: E402

EXAMPLES = 10  # per operation and mode (17 operations), derandomized: the same cases on every run
#: Error statuses the studio answers with besides those in the schema (app.py, docs/reliability.md).
ERRORS = {400, 404, 409, 413, 429}


def _state(app) -> tuple:
    """What a refused request must not change: the rows a client can create or answer, and the
    files of the images folder (results appear as jobs finish, so jobs count by id only)."""
    store = app.state.store
    q = store._q
    return (sorted(tuple(r) for r in q("SELECT id, kind, name, file FROM images")),
            sorted(r[0] for r in q("SELECT id FROM jobs")),
            sorted(tuple(r) for r in q("SELECT id, profile, picked, answered FROM rounds")),
            sorted(p.name for p in store.images.iterdir()))


def test_no_server_errors_on_any_operation(tmp_path):
    app = create_app(tmp_path / "data")
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        ops = [r.ok() for r in schema.get_all_operations()]
        assert len(ops) >= 15
        seen = []
        modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        for op, mode in [(op, mode) for op in ops for mode in modes]:
            @given(case=op.as_strategy(mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case):
                before = _state(app)
                response = case.call()
                seen.append(response.status_code)
                allowed = {int(c) for c in case.operation.definition.raw.get("responses", {}) if c.isdigit()} | ERRORS
                assert response.status_code in allowed, (case.method, case.formatted_path, case.body,
                                                          response.status_code, response.text[:300])
                if response.status_code >= 400:
                    assert _state(app) == before, (case.method, case.formatted_path, response.status_code)

            try:
                check()
            except Unsatisfiable:  # an operation without parameters has no invalid request
                assert mode == schemathesis.GenerationMode.NEGATIVE and op.path in ("/api/methods", "/api/images", "/api/history")
        assert len(seen) >= 10 * len(ops) and {200, 400, 404, 422} <= set(seen)
    finally:
        app.state.queue.stop()
