"""Commands for trained models: apply, models, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


from .common import app, err, out, _fail, _floats, _runtime
from .provenance import (build_credentials, opt_cert, opt_credentials, opt_key, opt_style_credit, opt_style_credits,
                         opt_watermark)
from .scale import _ray_flags, _run_on_ray


def _style_weights(model, style_mix: Optional[str], style_index: Optional[int]):
    if style_mix is not None and style_index is not None:
        raise _fail("give --style-mix or --style-index, not both")
    if style_index is not None:
        return style_index
    weights = _floats(style_mix, "--style-mix")
    if weights is not None and len(weights) != model.num_styles:
        names = ", ".join(f"{i}: {n}" for i, n in enumerate(model.style_names))
        raise _fail(f"--style-mix needs {model.num_styles} weight(s), one per style of the model ({names}); "
                    f"got {len(weights)}")
    return weights


@app.command()
def apply(
    model: str = typer.Argument(..., metavar="MODEL", help="Shipped model name (see 'atelier models') or a .safetensors file."),
    inputs: List[Path] = typer.Argument(..., metavar="INPUTS", help="Image files and/or folders."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (same file names as the inputs)."),
    size: Optional[int] = typer.Option(None, help="Longest side of the outputs in pixels [default: input's]."),
    style_mix: Optional[str] = typer.Option(None, help="Multi-style models: one weight per style, e.g. 0.5,0.5,0,..."),
    style_index: Optional[int] = typer.Option(None, help="Multi-style models: the style to use [default: 0]."),
    preserve_color: str = typer.Option("none", help="none, luminance or histogram."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    batch_size: int = typer.Option(4, help="Images per forward pass (images of equal size are batched)."),
    engine: str = typer.Option("auto", help="auto (ONNX Runtime for fp32 on the CPU when installed, 1.5x faster "
                               "on AVX2; else PyTorch), torch or onnxruntime."),
    tileable: bool = typer.Option(False, "--tileable", help="Seamless textures that tile without a seam (sides "
                                  "rounded to a multiple of 16 px; circular padding)."),
    max_pixels: Optional[int] = typer.Option(None, help="Refuse images (and --size) larger than this many pixels "
                                             "[default: 100M]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow writing over the input files (-o an input "
                                   "folder)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    credentials: bool = opt_credentials(),
    style_credit: Optional[List[str]] = opt_style_credit(),
    style_credits: Optional[Path] = opt_style_credits(),
    c2pa_cert: Optional[Path] = opt_cert(),
    c2pa_key: Optional[Path] = opt_key(),
    watermark: bool = opt_watermark(),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray Data: a local Ray cluster on this machine's cores, "
                             "or the cluster of --ray-address. Re-runs skip outputs that exist and verify."),
    ray_address: Optional[str] = typer.Option(None, help="With --ray: 'auto' (the cluster 'ray start' made here) or "
                                              "ray://HOST:10001 [default: a new local cluster]."),
    workers: Optional[int] = typer.Option(None, help="With --ray: Ray workers, each loads the model once "
                                          "[default: one per CPU, or per GPU]."),
):
    """Stylize images with a trained feed-forward model (one pass per image).

    GIF inputs give their first frame, written as PNG.
    """
    from .. import __version__
    from ..core.errors import InputError
    from ..methods.feedforward.apply import _inputs, apply_model, load_model

    use_ray = _ray_flags(ray, ray_address, workers)
    # --ray: the workers' device is resolved on them (--device cuda asks Ray for one GPU per worker)
    dev = _runtime("cpu" if use_ray else device, precision)
    try:
        from ..methods.feedforward.engine import check_engine, resolve_engine
        from ..encoders.precision import resolve_precision

        check_engine(engine)
        net = load_model(model, device=str(dev))
        weights = _style_weights(net, style_mix, style_index)
        if not use_ray:  # refuse an engine that cannot run before any file is read
            from ..core.padding import circular_padding

            with circular_padding(tileable):
                resolve_engine(engine, net, resolve_precision(precision, next(net.parameters()).device))
        n_files = len(_inputs(inputs))
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    meta = {"atelier_version": __version__, "method": "feedforward", "model": Path(model).name,
            "model_sha256": net.card.get("sha256"), "style_weights": weights, "preserve_color": preserve_color}
    if tileable:
        meta["tileable"] = True
    if use_ray and (credentials or watermark):
        raise _fail("--credentials and --watermark do not apply with --ray yet; sign the outputs afterwards with "
                    "atelier.sign_image (docs/provenance.md)")
    creds = build_credentials(credentials, watermark, c2pa_cert, c2pa_key, style_credit, style_credits, n_styles=0)
    if use_ray:
        from ..api.batch import ApplyJob

        job = ApplyJob(model=model, metadata=meta, device=device, size=size, style_weights=weights,
                       preserve_color=preserve_color, precision=precision, batch_size=batch_size,
                       max_pixels=max_pixels, tileable=tileable, engine=engine)
        _run_on_ray(job, inputs, output, overwrite=overwrite, address=ray_address, workers=workers,
                    batch_size=batch_size, device=device, quiet=quiet)
        return
    columns = [TextColumn("[bold]applying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, disable=quiet) as bar:
        task = bar.add_task("apply", total=n_files)

        written = []

        def callback(path, error):
            if error is None:
                written.append(path)
            if error is not None and "not an image file" in error:
                bar.console.print(f"[yellow]skipped:[/] {escape(error)}", highlight=False, soft_wrap=True)
                return
            bar.update(task, advance=1)
            if error is not None:
                bar.console.print(f"[bold red]skipped:[/] {escape(error)}", highlight=False, soft_wrap=True)

        try:
            res = apply_model(net, inputs, output, size=size, style_weights=weights, preserve_color=preserve_color,
                              precision=precision, batch_size=batch_size, max_pixels=max_pixels, metadata=meta,
                              callback=callback, overwrite=overwrite, tileable=tileable, credentials=creds,
                              engine=engine)
        except (InputError, ValueError) as e:
            raise _fail(str(e)) from None
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"interrupted; {len(written)} image(s) were written to {output} before that, the others "
                      "were not", highlight=False)
            raise typer.Exit(130)
    if res.written:
        rate = f", {res.pixels / 1e6 / res.seconds:.2f} MP/s" if res.seconds else ""
        err.print(f"wrote {len(res.written)} image(s) to {output} ({res.seconds:.1f} s in the network{rate})",
                  highlight=False)
    else:
        err.print(f"wrote nothing to {output}", highlight=False)
    if res.failed:
        raise _fail(f"{len(res.failed)} input(s) could not be read and were skipped: "
                    + "; ".join(msg for _, msg in res.failed[:5]))


_USE = {"adain": "atelier stylize --method adain", "wct": "atelier stylize --method wct",
        "sketch": "atelier sketch", "gan": "atelier gan sample", "analysis": "atelier index (whitening)",
        "paint": "atelier paint --method agent"}


@app.command()
def models(
    name: Optional[str] = typer.Argument(None, metavar="NAME", help="Show this model's whole model card "
                                         "(a feed-forward model, 'adain', or KIND/NAME from the second table)."),
):
    """List every model shipped with atelier, of every kind (or print one model card)."""
    from ..core.errors import InputError
    from ..training.zoo import list_models, model_card, shipped_weights

    others = [w for w in shipped_weights() if w["kind"] != "feedforward"]
    if name is not None:
        try:
            if name == "adain":
                from ..training.zoo import decoder_path

                out.print_json(decoder_path().with_suffix(".json").read_text())
                return
            hit = [w for w in others if name == f"{w['kind']}/{w['name']}"]
            if hit:
                if hit[0]["card"] is None:
                    raise InputError("the model card is missing or unreadable", hit[0]["path"].with_suffix(".json"))
                out.print_json(json.dumps(hit[0]["card"]))
                return
            out.print_json(json.dumps(model_card(name)))
        except InputError as e:
            raise _fail(str(e)) from None
        return
    table = Table("name", "styles", "width", "steps", "final content / style loss", "trained on",
                  title="shipped feed-forward models (atelier stylize --method NAME, atelier apply NAME)")
    table.columns[0].no_wrap = True  # the names are what users type: never cut or folded
    for n in list_models():
        card = model_card(n)
        fl = card.get("final_losses", {})
        table.add_row(n, ", ".join(s["file"].rsplit(".", 1)[0] for s in card.get("styles", [])),
                      str(card["architecture"]["width"]), str(card.get("steps")),
                      f"{fl.get('content', float('nan')):.3f} / {fl.get('style', float('nan')):.3f}",
                      card.get("device", "?"))
    out.print(table)
    table = Table("kind/name", "format", "steps", "trained on", "used by", title="other shipped weights")
    table.columns[0].no_wrap = True
    for w in others:
        card = w["card"] or {}
        table.add_row(f"{w['kind']}/{w['name']}", str(card.get("format", "card missing")), str(card.get("steps", "-")),
                      str(card.get("device", "-")), _USE.get(w["kind"], ""))
    out.print(table)


@app.command()
def methods():
    """List the stylization methods (built in, registered by plugins, and the shipped models)."""
    from ..methods.registry import list_methods

    table = Table("name", "family", "styles", "fast", "masks", "paper", title="stylization methods (--method NAME)")
    table.columns[0].no_wrap = True
    for m in list_methods():
        table.add_row(m.name, m.family, m.styles, "yes" if m.fast else "no", "yes" if m.masks else "no", m.paper)
    out.print(table)


@app.command()
def export(
    model: str = typer.Argument(..., metavar="MODEL", help="Shipped model name or a .safetensors file."),
    onnx: Path = typer.Option(..., "--onnx", help="Output .onnx file (dynamic batch, height and width)."),
    opset: int = typer.Option(17, help="ONNX opset version."),
):
    """Export a feed-forward model to ONNX (run it with onnxruntime or any ONNX runtime)."""
    from ..core.errors import InputError
    from ..methods.feedforward.export import export_onnx
    from ..methods.feedforward.apply import load_model

    try:
        net = load_model(model, device="cpu")
        path = export_onnx(net, onnx, opset=opset)
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    inputs = "image (N,3,H,W)" + (f", style_weights (N,{net.num_styles})" if net.num_styles > 1 else "")
    err.print(f"wrote {path} (inputs: {inputs}; output: stylized (N,3,H,W), RGB in [0, 1])")
