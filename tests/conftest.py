"""Shared fixtures: real images from ../shared/data and scikit-image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ATELIER_TEST_DATA", REPO.parent / "shared" / "data"))


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


@pytest.fixture(autouse=True)
def _threads():
    # Deterministic, comparable runs on the 2-core CI machine.
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
