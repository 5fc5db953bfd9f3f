"""``stylize --method adain|wct|MODEL``: one network pass, then save with metadata (and metrics)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from ..api.print_size import print_plan
from .common import (_fail, _floats, _metadata_source, _names, _save_result, _write_json_or_fail, err)


def _masks(paths, n_styles: int, builtin: bool, height: int, width: int, max_pixels, feather: float,
           content=None):
    """The region masks (issue 28) at the content's size, count checked first; a mask resized to
    fit (other than from the ``content`` file's own size) is said on stderr. Returns a list (empty
    without masks)."""
    from ..imaging import regions
    from ..io.images import open_image

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths or [])
    regions.check_region_count(len(paths), n_styles, builtin=builtin)
    if not paths:
        return []
    original = open_image(content).size[::-1] if content is not None else None
    masks, notes = regions.load_masks(paths, height, width, max_pixels=max_pixels, feather=feather,
                                      original=original)
    for note in notes:
        err.print(f"[yellow]warning:[/] {note}", highlight=False)
    return masks


def _load_inputs(spec, content, styles, mask, size, style_size, max_pixels, feather: float = 0.0):
    """Content, style images and masks, sizes checked against the pixel limit before resizing."""
    from ..io import images as img

    method = spec.name
    c = img.load_image(content, size=size, max_pixels=max_pixels)
    if spec.styles == "builtin":
        if styles:
            raise ValueError(f"a feed-forward model ({method}) has its styles built in; leave out --style "
                             "(or use --method adain for any style image)")
        return c, [], _masks(mask, 1, True, c.shape[-2], c.shape[-1], max_pixels, feather, content)
    if not styles:
        raise ValueError(f"--method {method} needs at least one --style image")
    m = _masks(mask, len(styles), False, c.shape[-2], c.shape[-1], max_pixels, feather, content)
    return c, [img.load_image(p, size=style_size, max_pixels=max_pixels) for p in styles], m


def run_one_pass(method: str, content: Path, styles: List[Path], output: Path, *, size, alpha, blend, mask,
                 style_size, decoder, preserve_color, device, precision, max_pixels, quiet,
                 wct_layers: Optional[str] = None, metrics: Optional[Path] = None, full_metadata: bool = False,
                 prefilter: str = "none", tile: str = "auto", max_memory: Optional[str] = None,
                 keep: Optional[dict] = None, feather: float = 0.0, tileable: bool = False,
                 stroke_scale: float = 1.0) -> None:
    """One network pass over ``content`` (tiled where the print-size plan says so), saved with
    metadata. ``stroke_scale`` S (issue 24): the network runs on the content at 1/S of its size
    and the result is upscaled (bicubic) back, so strokes are S times larger; with S > 1 a 4K
    print keeps the strokes the network paints at about 4K/S px. Refused with --mask/--tileable."""
    from .. import __version__
    from ..core.errors import InputError
    from ..core.limits import check_memory
    from ..encoders.precision import resolve_precision

    meta = {"atelier_version": __version__, "content": _metadata_source(content, full_metadata),
            "preserve_color": preserve_color}
    try:
        from ..methods.registry import get_method, weights_sha256

        spec = get_method(method)
        if wct_layers is not None and "wct_layers" not in spec.options:
            raise ValueError(f"--wct-layers is an option of --method wct, not of --method {method}")
        c, style_imgs, m = _load_inputs(spec, content, styles, mask, size, style_size, max_pixels, feather)
        if prefilter != "none":  # issue 15: clean a noisy or blocky photo first
            from ..imaging.prefilter import prefilter as _clean

            c, meta["prefilter"] = _clean(c, prefilter)
        full_c = c
        if stroke_scale != 1.0:
            if m or tileable:
                raise ValueError("--stroke-scale does not combine with --mask or --tileable yet; leave one out")
            from ..io.images import resize_longest

            c = resize_longest(c, max(16, round(max(c.shape[-2:]) / stroke_scale)))
            meta["stroke_scale"] = stroke_scale
        largest = max([c.shape[-2] * c.shape[-1]] + [s.shape[-2] * s.shape[-1] for s in style_imgs])
        for flag, used in (("--mask", bool(m)), ("--tileable", tileable)):
            if used and tile not in ("auto", "off") and spec.tiled is not None:
                raise ValueError(f"{flag} is not tiled; leave out --tile (or ask for a smaller size)")
        plan = (print_plan(spec, c.shape[-2], c.shape[-1], tile, max_memory, device)
                if spec.tiled is not None and not m and not tileable else None)
        if plan is None:
            check_memory(largest, spec.memory, f"--method {method} at {c.shape[-1]}x{c.shape[-2]}", device=device)
        elif not quiet:
            err.print(f"print size: {plan.describe()}", highlight=False)
        weights = _floats(blend, "--style-blend")
        if m and weights is not None and spec.styles == "images":
            raise ValueError("give either --style-blend (mixing the styles) or --mask (placing them), not both")
        options = {}
        if decoder is not None:
            options["decoder"] = str(decoder)
        if "wct_layers" in spec.options:
            from ..methods.arbitrary.wct import DEFAULT_LAYERS

            options["layers"] = tuple(_names(wct_layers) if wct_layers else DEFAULT_LAYERS)
            meta["wct_layers"] = list(options["layers"])
        model = spec.build(device=device, precision=precision, **options)
        t0 = time.perf_counter()
        if plan is not None:
            from ..encoders.precision import resolve_precision as _rp

            dev = next(model.parameters()).device
            result = spec.stylize_tiled(model, c, style_imgs, plan, alpha=alpha, blend=weights,
                                        preserve_color=preserve_color, precision=_rp(precision, dev))
            meta["tiles"] = {"tile": plan.tile, "overlap": plan.overlap, "count": plan.count}
        else:
            result = spec.stylize(model, c, style_imgs, alpha=alpha, blend=weights, mask=m,
                                  preserve_color=preserve_color, tileable=tileable)
        if c is not full_c:
            from ..io.images import resize_to

            result, c = resize_to(result, full_c.shape[-2], full_c.shape[-1]), full_c
        if m:
            meta.update(masks=[_metadata_source(p, full_metadata) for p in ([mask] if isinstance(mask, (str, Path))
                                                                              else mask)], feather=feather)
        if tileable:
            meta["tileable"] = True
        if spec.family == "feedforward":
            meta.update(method="feedforward", model=Path(method).name, model_sha256=weights_sha256(model),
                        style_weights=weights)
        else:
            meta.update(method=method, styles=[_metadata_source(p, full_metadata) for p in styles], alpha=alpha,
                        style_blend=weights, style_size=style_size,
                        mask=meta.get("masks", [None])[0] if m else None,
                        decoder=(Path(str(decoder)).name if decoder else method),
                        decoder_sha256=weights_sha256(model))
        seconds = time.perf_counter() - t0
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    except KeyboardInterrupt:
        err.print("interrupted before the result was ready; nothing was saved")
        raise typer.Exit(130)
    meta["seconds"] = seconds
    keep = keep or {}
    if keep.get("alpha") is not None:  # issue 28: the content's transparency, kept or composited
        meta["alpha"] = "kept" if output.suffix.lower() in (".png", ".webp", ".tif", ".tiff") else "composited"
    out_path = _save_result(result, output, meta, **keep)
    if metrics is not None:
        from ..analysis.metrics import evaluate
        from ..methods.gatys.optimize import GatysConfig

        dev = next(model.parameters()).device if hasattr(model, "parameters") else device
        cfg = GatysConfig(style_blend=weights if style_imgs else None, device=str(dev), precision="fp32")
        scores = evaluate(result, c, style_imgs, config=cfg)
        scores.update(iterations=None, wall_seconds=seconds, seconds_per_iteration=None,
                      image_size=[int(result.shape[-2]), int(result.shape[-1])], scales=None, device=str(dev),
                      precision=resolve_precision(precision, dev), precision_choice=None, final_losses=None,
                      method=meta["method"])
        _write_json_or_fail(metrics, scores, f"; the image was saved to {out_path}")
    if not quiet:
        err.print(f"wrote {out_path} ({result.shape[-1]}x{result.shape[-2]}, {seconds:.2f} s, {meta['method']})")
