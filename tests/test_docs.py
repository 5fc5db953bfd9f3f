"""The documentation (issue 23, item 8): the examples in the public API's docstrings run as
doctests, and every module that has examples is collected here (a new ``>>>`` elsewhere is not
forgotten). The site itself (``mkdocs build --strict``: broken links, anchors and references fail)
is built by CI (``.ci/run``)."""

from __future__ import annotations

import doctest
import importlib
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
DOCTEST_MODULES = ["atelier.api", "atelier.api.paint", "atelier.imaging.flow", "atelier.methods.registry",
                   "atelier.io.verify", "atelier.io.images"]


def test_every_module_with_examples_is_doctested():
    found = sorted(".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
                   for p in (SRC / "atelier").rglob("*.py") if ">>>" in p.read_text())
    assert found == sorted(DOCTEST_MODULES)


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and (result.attempted > 0 or name == "atelier.io.verify"), result
