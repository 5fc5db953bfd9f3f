"""The Gatys run behind ``atelier stylize`` and ``atelier demo``: checks, the print-size plan
(issue 24), the progress bar, Ctrl-C, saving and ``--metrics``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Optional, Tuple

import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..encoders.precision import precision_note
from ..methods.gatys.optimize import GatysConfig
from .common import (err, _check_outputs, _fail, _input_files, _metadata_source, _runtime, _save_result,
                     _write_json_or_fail)

#: ``--init`` names that start Gatys from that one-pass method's result (issue 25).
ONE_PASS_INITS = ("adain", "wct")


def _run_stylize(content: Path, styles: List[Path], output: Path, options: dict, *, max_pixels: Optional[int],
                 save_every: Optional[Tuple[int, Path]], metrics: Optional[Path], quiet: bool = False,
                 overwrite: bool = False, full_metadata: bool = False, prefilter: str = "none",
                 keep: Optional[dict] = None, masks: Optional[List[Path]] = None, feather: float = 0.0,
                 tile: str = "auto", max_memory: Optional[str] = None) -> None:
    """Shared by ``stylize`` and ``demo``: validate everything, run with a progress bar, save
    (``keep``: the content's ``alpha`` and the ``background``, see :func:`_transparency`)."""
    keep = keep or {}

    from .. import __version__
    from ..io import images as img
    from ..analysis.metrics import evaluate
    from ..core.errors import InputError
    from ..methods.gatys.optimize import GatysStyleTransfer, StyleTransferInterrupted, check_sizes

    init_method = options.get("init") if options.get("init") in ONE_PASS_INITS else None
    config = GatysConfig(**{**options, "init": "content"} if init_method else options)
    device = _runtime(config.device, config.precision)
    try:
        config.validate()
        init = config.init if config.init not in ("content", "noise", "style") else None
        out_path = _check_outputs(output, metrics, _input_files(content=content, style=list(styles), init=init,
                                                                mask=list(masks or [])), overwrite)
        if save_every is not None:
            every, save_dir = save_every
            if every < 1:
                raise ValueError(f"--save-every needs a positive iteration count, got {every}")
            save_dir.mkdir(parents=True, exist_ok=True)
        c = img.load_image(content, max_pixels=max_pixels)
        used_prefilter = None
        if prefilter != "none":  # issue 15: clean a noisy or blocky photo first
            from ..imaging.prefilter import prefilter as _clean

            c, used_prefilter = _clean(c, prefilter)
        s = [img.load_image(p, max_pixels=max_pixels) for p in styles]
        from .onepass import _masks

        region_masks = _masks(masks, len(s), False, c.shape[-2], c.shape[-1], max_pixels, feather, content)
        if region_masks and config.style_blend is not None:
            raise ValueError("give either --style-blend (mixing the styles) or --mask (placing them), not both")
        if init is not None:
            img.open_image(config.init, max_pixels=max_pixels)  # fail now, not after loading VGG
        from ..losses import normalize_weights

        normalize_weights(config.style_blend, len(s), "--style-blend (one weight per --style image)")
        if init_method:  # issue 25: start from a one-pass result, the loss starts far lower
            from ..api.video import build_stylizer

            _, one_pass = build_stylizer(init_method, styles, device=str(device), precision=config.precision)
            longest = config.size or max(c.shape[-2:])
            with torch.no_grad():
                start = one_pass(img.resize_longest(c, min(longest, 1024)).to(device)).float().clamp(0, 1).cpu()
            config = replace(config, init=start)
        sizes = check_sizes(config, tuple(c.shape[-2:]), [tuple(x.shape[-2:]) for x in s], max_pixels, device,
                            tile, max_memory)
        scales = len(sizes)
        config.iterations_per_scale(scales)  # one count per scale, checked before any work
        st = GatysStyleTransfer(config, max_pixels=max_pixels, tile=tile, max_memory=max_memory)
        plans = _print_gatys_plan(st, config, tuple(c.shape[-2:]), sizes, device, tile, max_memory, bool(region_masks),
                                  quiet)
    except (InputError, ValueError, OSError) as e:
        raise _fail(str(e)) from None
    except KeyboardInterrupt:
        err.print("interrupted before the first iteration; nothing was saved")
        raise typer.Exit(130)

    meta = {
        "atelier_version": __version__,
        "method": "gatys",
        "content": _metadata_source(content, full_metadata),
        "styles": [_metadata_source(p, full_metadata) for p in styles],
        "parameters": {**config.to_dict(), **({} if full_metadata or init is None
                                               else {"init": _metadata_source(init, False)}),
                       **({"init": init_method} if init_method else {})},
    }
    if used_prefilter is not None:
        meta["prefilter"] = used_prefilter
    if region_masks:
        meta.update(masks=[_metadata_source(p, full_metadata) for p in masks], feather=feather)
    total = sum(config.iterations_per_scale(scales))
    columns = [TextColumn("[bold]stylizing"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    interrupted = None
    with Progress(*columns, console=err, disable=quiet, transient=False) as bar:
        task = bar.add_task("stylize", total=total, losses="")
        if any(plans):  # an iteration of a tiled level takes minutes: show its tiles
            tiles_task = bar.add_task("tiles", total=1, losses="tiles of this iteration", visible=False)

            def on_tile(done, n):
                bar.update(tiles_task, completed=done, total=n, visible=done < n)

            st.tile_progress = on_tile

        def callback(p):
            nonlocal save_every
            if p.iteration % st.sync_every and p.iteration != p.iterations:
                bar.update(task, advance=1)  # the losses are read every st.sync_every iterations (no GPU wait)
            else:
                L = p.losses
                bar.update(task, advance=1, losses=(f"scale {p.scale + 1}/{p.scales} {p.size[1]}x{p.size[0]}  "
                                                    f"content {L['content']:.3g} style {L['style']:.3g} "
                                                    f"tv {L['tv']:.3g}"))
            if save_every is not None and p.iteration % save_every[0] == 0:
                name = f"scale{p.scale + 1}_iter{p.iteration:05d}.png"
                try:
                    img.save_image(p.image.clamp(0, 1), save_every[1] / name, {**meta, "iteration": p.iteration})
                except InputError as e:  # keep optimizing: the final result matters more than the frames
                    bar.console.print(f"[yellow]warning:[/] {e}; --save-every stopped", highlight=False)
                    save_every = None

        try:
            result = st.run(c, s, callback=callback, masks=region_masks)
        except StyleTransferInterrupted as e:
            interrupted, result = e, e.image
        except KeyboardInterrupt:
            bar.stop()
            err.print("interrupted before the first iteration; nothing was saved")
            raise typer.Exit(130)
        except FloatingPointError as e:
            raise _fail(str(e), 1) from None

    meta["losses"] = st.last_losses
    if any(plans):
        meta["tiles"] = st.stats.get("tiles")
    meta["seconds"] = st.stats.get("seconds")
    meta["precision_used"] = st.stats.get("precision")
    if (note := precision_note(st.config.precision, st.device)) is not None:
        meta["precision_choice"] = note  # how auto decided (issue 25)
    if interrupted is not None:
        meta["interrupted_at"] = {"scale": interrupted.scale + 1, "iteration": interrupted.iteration}
        written, error = img.save_with_rescue(result, out_path, meta, **keep)
        where = f"saved the current image ({result.shape[-1]}x{result.shape[-2]}) to {written}" if written \
            else "the current image could not be saved"
        err.print(f"interrupted at iteration {interrupted.iteration} of scale {interrupted.scale + 1}; {where}"
                  + (f" ({error})" if error else ""), highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    if keep.get("alpha") is not None:
        meta["alpha"] = "kept" if out_path.suffix.lower() in (".png", ".webp", ".tif", ".tiff") else "composited"
    out_path = _save_result(result, out_path, meta, **keep)
    if metrics is not None:
        scores = ({"scores": "not computed at a tiled size (the untiled scorer would not fit); see final_losses"}
                  if any(plans) else
                  evaluate(result, c, s, config=config, st=GatysStyleTransfer(config, encoder=st.encoder,
                                                                             precision="fp32")))
        scores.update({
            "iterations": st.stats["iterations"],
            "wall_seconds": st.stats["seconds"],
            "seconds_per_iteration": st.stats["seconds_per_iteration"],
            "image_size": st.stats["size"],
            "scales": st.stats["scales"],
            "device": st.stats["device"],
            "precision": st.stats["precision"],
            "precision_choice": precision_note(st.config.precision, st.device),
            "final_losses": st.last_losses,
            "tiles": st.stats.get("tiles"),
            "last_grid": st.stats.get("last_grid"),
            "method": "gatys",
        })
        _write_json_or_fail(metrics, scores, f"; the image was saved to {out_path}")
    if not quiet:
        L = st.last_losses
        err.print(f"wrote {out_path} ({st.stats['size'][1]}x{st.stats['size'][0]}, "
                  f"{st.stats['seconds']:.1f} s, {st.stats['seconds_per_iteration']:.3f} s/iteration, "
                  f"{st.stats['device']} {st.stats['precision']}"
                  + (f" \\[{note}]" if (note := precision_note(st.config.precision, st.device)) else "")
                  + f"; content {L['content']:.3g}, style {L['style']:.3g})", highlight=False)


def _print_gatys_plan(st, config, content_hw, sizes, device, tile, max_memory, masks: bool, quiet: bool) -> list:
    """Plan the levels of a Gatys run (issue 24); print the plan and a time estimate from a short
    measurement when a level is tiled. Returns the plans. Raises InputError like the run would."""
    from ..core.errors import InputError
    from ..methods.gatys.tiled import estimate_seconds, level_dims, measure_seconds_per_pixel, plan_levels

    plans = plan_levels(config, content_hw, sizes, device, tile, max_memory)
    if not any(plans):
        return plans
    if masks and any(p is not None and p.count > 1 for p in plans):
        raise InputError("--mask regions are not tiled; at this size the run needs tiles: ask for a smaller size "
                         "or a larger --max-memory")
    dims = level_dims(config, content_hw, sizes)
    if not quiet:
        spp = measure_seconds_per_pixel(st.encoder, list(config.content_layers) + list(config.style_layers),
                                        st.precision, st.device)
        for i, (plan, (h, w)) in enumerate(zip(plans, dims)):
            err.print(f"print size: scale {i + 1}/{len(dims)} {w}x{h}: " + (plan.describe() if plan else "whole"),
                      highlight=False)
        per_scale = config.iterations_per_scale(len(dims))
        secs = estimate_seconds(plans, dims, per_scale, spp)
        err.print(f"print size: about {f'{secs:.0f} s' if secs < 90 else f'{secs / 60:.0f} min'} in all "
                  f"({'/'.join(map(str, per_scale))} iterations per scale, from "
                  f"{spp * 1e6:.1f} us per pixel measured just now)", highlight=False)
    return plans
