"""Fuzz the studio's REST API from its own OpenAPI schema (schemathesis strategies, driven by
hypothesis), both valid requests and requests that break the schema: whatever a client sends to
any operation, the server answers with a 2xx or 4xx status, never a 500."""

from __future__ import annotations

from conftest import require_extra

require_extra("fastapi")
schemathesis = require_extra("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from atelier.studio.app import create_app  # noqa: E402

EXAMPLES = 10  # per operation and mode (17 operations), derandomized: the same cases on every run


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
                response = case.call()
                seen.append(response.status_code)
                assert response.status_code < 500, (case.method, case.formatted_path, case.body,
                                                     response.status_code, response.text[:300])

            try:
                check()
            except Unsatisfiable:  # an operation without parameters has no invalid request
                assert mode == schemathesis.GenerationMode.NEGATIVE and op.path in ("/api/methods", "/api/images", "/api/history")
        assert len(seen) >= 10 * len(ops) and {200, 400, 404, 422} <= set(seen)
    finally:
        app.state.queue.stop()
