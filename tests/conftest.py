"""Shared fixtures: real images from ../shared/data and scikit-image."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ATELIER_TEST_DATA", REPO.parent / "shared" / "data"))

# A runner started in the background (`cmd &`, nohup, a mutation-testing worker) inherits SIGINT
# ignored, and Python then installs no KeyboardInterrupt handler: the Ctrl-C tests need the one an
# interactive run has (and the processes they start inherit the default action from it).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def data_file(rel: str) -> Path:
    """A file from the shared data set; the tests need it (CI has ../shared beside the clone)."""
    p = DATA / rel
    if not p.is_file():
        pytest.fail(f"test data {p} is missing; clone the repo next to shared/ or set ATELIER_TEST_DATA")
    return p


@pytest.fixture(scope="session")
def content_path() -> Path:
    return data_file("content/000000000030.jpg")


@pytest.fixture(scope="session")
def content2_path() -> Path:
    return data_file("content/000000000086.jpg")


@pytest.fixture(scope="session")
def style_path() -> Path:
    return data_file("styles/starry_night.jpg")


@pytest.fixture(scope="session")
def style2_path() -> Path:
    return data_file("styles/the_scream.jpg")


def require_extra(module: str):
    """Import an optional test dependency: skip without it locally, but fail in CI (where the
    env var ``CI`` or ``ATELIER_REQUIRE_EXTRAS`` is set), so a missing extra cannot silently
    turn parity checks into skips."""
    if os.environ.get("CI") or os.environ.get("ATELIER_REQUIRE_EXTRAS"):
        import importlib

        try:
            return importlib.import_module(module)
        except ImportError as e:
            pytest.fail(f"{module} is required here (CI / ATELIER_REQUIRE_EXTRAS is set) but cannot be imported: {e}",
                        pytrace=False)
    return pytest.importorskip(module)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the whole session (2 CPUs, no dashboard), started by the first
    test that asks for it and shut down at the end; skipped without Ray (failed in CI)."""
    ray = require_extra("ray")
    require_extra("ray.data")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Never write to the user's real cache folder: one temporary cache for the whole session
    (so the decoded VGG weights are built once and reused by every test)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATELIER_CACHE_DIR", str(tmp_path_factory.mktemp("atelier-cache")))
        yield


@pytest.fixture(autouse=True)
def _threads():
    # Deterministic, comparable runs on the 2-core CI machine.
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
