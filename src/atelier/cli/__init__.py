"""The ``atelier`` command line (typer + rich).

Exit codes: 0 success, 2 bad input or options (one-line message, no output file),
130 interrupted by Ctrl-C or SIGTERM (the current image is saved; the message says where).

This module stays light (no torch, no typer at import) so that the entry point can catch a
Ctrl-C that arrives while the heavy modules are still being imported.
"""

from __future__ import annotations

import sys


def _load_app():
    from .common import app
    from . import analysis, inspect, models, stylize, train, video  # noqa: F401  (the command groups register themselves)
    from . import sketch  # noqa: F401  (issue 17: atelier sketch)
    from . import evaluation  # noqa: F401  (robustness, evaluate-set: issue 15)
    from . import studio  # noqa: F401  (issue 16: the web studio)
    from . import gan  # noqa: F401  (issue 14: atelier gan)
    from . import paint  # noqa: F401  (issue 27: atelier paint)
    from . import provenance  # noqa: F401  (issue 28: atelier verify)
    from . import recipes  # noqa: F401  (issue 23: atelier train-recipe)

    return app


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM is handled like Ctrl-C: the current result is kept


def main() -> None:
    """Console entry point: Ctrl-C at any time, start-up included, exits 130 with one line;
    SIGTERM is handled like Ctrl-C."""
    import signal
    import threading

    try:
        if threading.current_thread() is threading.main_thread():  # not in a Ray Train worker's thread
            signal.signal(signal.SIGTERM, _terminate)
        _load_app()()
    except KeyboardInterrupt:
        print("interrupted; nothing was saved", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # os._exit, not sys.exit: most likely a Ctrl-C that passed through an extension's PyRun_* call in the
        # imports leaves CPython's "unhandled KeyboardInterrupt" flag set even though it was caught
        # here, and the interpreter then kills itself with SIGINT at exit (status -2, not 130; seen
        # once in CI). Every file was already written or removed by its context manager.
        import os

        os._exit(130)


def __getattr__(name: str):
    if name == "app":
        return _load_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
