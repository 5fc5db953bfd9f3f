"""The examples in the public API's docstrings run (issue 23): a changed signature or result
fails here, not in a user's terminal."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["atelier.api", "atelier.io.images", "atelier.methods.registry"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
