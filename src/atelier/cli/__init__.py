"""The ``atelier`` command line (typer + rich).

Exit codes: 0 success, 2 bad input or options (one-line message, no output file),
130 interrupted by Ctrl-C (the current image is saved to the output path).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Atelier: neural style transfer from the command line.")
err = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> "typer.Exit":
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _floats(text: Optional[str], option: str) -> Optional[List[float]]:
    if text is None:
        return None
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise _fail(f"{option} expects comma-separated numbers like 0.7,0.3, got {text!r}") from None


def _names(text: str) -> List[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _write_json(path: Path, data: dict) -> None:
    from ..core.files import atomic_write

    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def _check_json_path(path: Path) -> Path:
    from ..core.errors import InputError

    parent = path.resolve().parent
    if not parent.is_dir():
        raise InputError("directory for the metrics file does not exist; create it first", path)
    if path.is_dir():
        raise InputError("is a directory; give a file name ending in .json", path)
    if not os.access(parent, os.W_OK):
        raise InputError("directory for the metrics file is not writable", path)
    return path


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


# the command groups register themselves on ``app``
from . import models, stylize, train  # noqa: E402,F401
