"""What the command groups share: the typer app, the consoles, one-line failures, option parsing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Atelier: neural style transfer from the command line.")
err = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> "typer.Exit":
    # the message is plain text: escaped, so that "pip install 'atelier[studio]'" or a file name
    # with brackets is printed as it is, not read as rich markup
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
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


def _runtime(device: str, precision: str = "auto"):
    """``--device`` and ``--precision`` checked once, the same way for every command (exit 2)."""
    from ..core.runtime import check_runtime

    try:
        return check_runtime(device, precision)
    except ValueError as e:
        raise _fail(str(e)) from None


def _refuse_unused(ctx: typer.Context, names, method: str | None = None, reason: str | None = None) -> None:
    """Refuse options given on the command line that do not apply (never ignore them): the message
    says they do not apply to ``method``, or gives ``reason`` ("applies only with --adversarial...")."""
    for name in names:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            flag = "--" + name.replace("_", "-")
            raise _fail(f"{flag} {reason}" if reason else
                        f"{flag} does not apply to --method {method}; leave it out (see 'atelier stylize --help')")


def _save_result(image, path: Path, meta: dict, **keep) -> Path:
    """Save a finished result; when that fails, keep it somewhere recoverable and exit 2 saying where.
    ``keep``: ``alpha`` and ``background`` (:func:`atelier.io.images.save_image`)."""
    from ..io import images as img

    written, error = img.save_with_rescue(image, path, meta, **keep)
    if error is None:
        return written
    if written is not None:
        raise _fail(f"{error}; the result was saved to {written} instead")
    raise _fail(f"{error}; the result could not be saved anywhere (the fallbacks beside it and in the "
                "temporary folder failed too)")


def _write_json_or_fail(path: Path, data: dict, note: str = "") -> None:
    from ..core.errors import InputError

    try:
        _write_json(path, data)
    except InputError as e:
        raise _fail(f"{e}{note}") from None


def _input_files(**roles) -> list:
    """``(role, path)`` pairs of the input files a command reads, for the overwrite check."""
    pairs = []
    for role, paths in roles.items():
        for p in (paths if isinstance(paths, (list, tuple)) else [paths]):
            if p is not None and str(p) not in ("content", "noise", "style"):
                pairs.append((role.replace("_", " "), p))
    return pairs


def _metadata_source(path, full: bool):
    """How an input file is recorded in an output's metadata: its name and sha256 (``full``: the path)."""
    from ..core.files import sha256_file

    if path is None:
        return None
    if full:
        return str(path)
    try:
        return {"file": Path(path).name, "sha256": sha256_file(path)}
    except OSError:
        return {"file": Path(path).name}


def _check_outputs(output: Path, metrics: Optional[Path], inputs: list, overwrite: bool) -> Path:
    """The output image and metrics file: writable, and neither one an input file (unless --overwrite)."""
    from ..io import images as img
    from ..core.errors import InputError
    from ..core.files import check_not_input

    try:
        out_path = img.check_output_path(output)
        check_not_input(output, inputs, overwrite, "--output")
    except InputError as e:
        raise _fail(str(e)) from None
    if metrics is not None:
        _check_json_output(metrics, inputs, overwrite, "--metrics")
    return out_path


def _check_json_output(path: Path, inputs: list, overwrite: bool, option: str = "--output") -> None:
    """A JSON output (metrics): its folder exists and is writable, and it is not an input file."""
    from ..core.errors import InputError
    from ..core.files import check_not_input

    try:
        _check_json_path(path)
        check_not_input(path, inputs, overwrite, option)
    except InputError as e:
        raise _fail(str(e)) from None
