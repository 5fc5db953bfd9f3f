"""``--ray`` for the batch commands (apply, sketch, stylize): the shared options check, the run
on :func:`atelier.api.ray_batch.run_batch` with a progress bar, and the done / skipped / failed
summary."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .common import _fail, err


def _ray_flags(ray: bool, address: Optional[str], workers: Optional[int]) -> bool:
    """``--ray``, ``--ray-address``, ``--workers``: the last two apply only with ``--ray`` (refused
    otherwise, never ignored); Ray must be installed. Returns ``ray``."""
    if not ray:
        for flag, value in (("--ray-address", address), ("--workers", workers)):
            if value is not None:
                raise _fail(f"{flag} applies only with --ray")
        return False
    if workers is not None and workers < 1:
        raise _fail(f"--workers must be >= 1, got {workers}")
    from ..api.ray_batch import RAY_HINT, ray_available

    if not ray_available():
        raise _fail(RAY_HINT)
    return True


def _pairs(inputs: List[Path], output: Path, overwrite: bool, rename=None):
    """(input, output) pairs of files and folders, as the single-machine path names them, the
    non-image files of folders (skipped with their reason), after the overwrite check; the
    output folder is created. ``rename(relative_output_name)`` changes the output names."""
    from ..core.errors import InputError
    from ..core.files import check_not_input
    from ..methods.feedforward.apply import list_inputs

    try:
        skipped: list = []
        files = list_inputs(inputs, skipped)
        check_not_input(output, [("input folder", p) for p in inputs if Path(p).is_dir()], overwrite, "the output folder")
        pairs = []
        for src, rel in files:
            dst = output / (rename(rel) if rename else rel)
            check_not_input(dst, [("input", src)], overwrite, "the output file")
            pairs.append((str(src), str(dst)))
        output.mkdir(parents=True, exist_ok=True)
    except InputError as e:
        raise _fail(str(e)) from None
    except OSError as e:
        raise _fail(f"{output}: cannot create the output folder ({e.strerror or e})") from None
    return pairs, skipped


def _run_on_ray(job, inputs: List[Path], output: Path, *, overwrite: bool, address: Optional[str],
                workers: Optional[int], batch_size: int, device: str, quiet: bool, rename=None) -> None:
    """Run ``job`` on Ray over the inputs, print the summary; exit 2 when an input failed (after
    all the others were done), 130 on Ctrl-C (the outputs written so far are complete)."""
    from ..api.ray_batch import run_batch

    pairs, not_images = _pairs(inputs, output, overwrite, rename)
    for _, reason in not_images:
        err.print(f"[yellow]skipped:[/] {escape(reason)}", highlight=False, soft_wrap=True)
    columns = [TextColumn("[bold]on Ray"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    counts = {"done": 0}
    with Progress(*columns, console=err, disable=quiet) as bar:
        task = bar.add_task("ray", total=len(pairs))

        def callback(src, status, reason):
            bar.update(task, advance=1)
            counts["done"] += status == "done"
            if status == "failed":
                bar.console.print(f"[bold red]skipped:[/] {escape(reason)}", highlight=False, soft_wrap=True)

        try:
            s = run_batch(job, pairs, address=address, workers=workers, batch_size=batch_size, device=str(device),
                          callback=callback)
        except (ImportError, ValueError, ConnectionError) as e:
            raise _fail(str(e)) from None
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"interrupted; {counts['done']} output(s) were written to {output} (each one complete); run "
                      "the same command again to do the rest", highlight=False)
            raise typer.Exit(130)
    nodes = f" on {len(s.nodes)} node(s)" if len(s.nodes) > 1 else ""
    err.print(f"done {len(s.done)}, skipped {len(s.skipped) + len(not_images)} "
              f"({len(s.skipped)} already there and verified), failed {len(s.failed)}; {s.workers} Ray worker(s)"
              f"{nodes}, {s.seconds:.1f} s ({s.startup_seconds:.1f} s start-up); outputs in {output}",
              highlight=False)
    if s.failed:
        raise _fail(f"{len(s.failed)} input(s) could not be read and were skipped: "
                    + "; ".join(msg for _, msg in s.failed[:5]))
