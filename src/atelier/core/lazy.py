"""Names of a package imported on first use (PEP 562), so that importing a light part of a
package (a loader, the CLI) does not import its heavy parts (a trainer, torch)."""

from __future__ import annotations

import importlib
from typing import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, table: Mapping[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``table`` maps a public name to the
    module (relative to ``package``, e.g. ``".train"``) that defines it; a name is imported
    on first access and cached in ``namespace`` (the package's ``globals()``).

    Raises (from ``__getattr__``):
        AttributeError: a name that is neither in ``table`` nor in the package.
    """

    def __getattr__(name: str):
        if name in table:
            value = getattr(importlib.import_module(table[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
