"""Commands that inspect images: info (stored parameters), evaluate (scores), layers (VGG names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from .common import app, out, _check_json_output, _fail, _floats, _input_files, _runtime, _write_json_or_fail


@app.command()
def info(image: Path = typer.Argument(..., help="An image written by atelier.")):
    """Print the parameters stored in an image that atelier wrote (and its Content Credentials, if any)."""
    from ..io import images as img
    from ..core.errors import InputError

    from .provenance import manifest_summary

    try:
        meta = img.read_metadata(image)
    except InputError as e:
        raise _fail(str(e)) from None
    summary = manifest_summary(image)  # issue 28: the Content Credentials, when there are some
    if meta is None and summary is None:
        raise _fail(f"{image}: carries no atelier parameters (not written by atelier, or not a PNG)")
    if meta is not None:
        out.print_json(json.dumps(meta))
    if summary is not None:
        out.print("Content Credentials (C2PA):", highlight=False)
        for line in summary:
            out.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)


@app.command()
def evaluate(
    image: Path = typer.Argument(..., metavar="IMAGE", help="Stylized image (from any tool)."),
    content: Path = typer.Option(..., "--content", "-c", help="Content image."),
    style: List[Path] = typer.Option(..., "--style", "-s", metavar="PATH", help="Style image; repeat for several."),
    style_blend: Optional[str] = typer.Option(None, help="One weight per style image."),
    style_scale: float = typer.Option(1.0, help="Style image size relative to the image."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the metrics JSON here too."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow --output to replace an input file."),
):
    """Score IMAGE: content/style/TV loss, luminance SSIM to the content, Gram distance, style embedding
    distance and colour-histogram distance to each style (for a set of results: evaluate-set)."""
    from ..analysis.metrics import evaluate as _evaluate
    from ..core.errors import InputError
    from ..methods.gatys.optimize import GatysConfig

    device = str(_runtime(device))  # resolved once, passed down
    if output is not None:
        _check_json_output(output, _input_files(image=image, content=content, style=list(style)), overwrite)
    try:
        cfg = GatysConfig(style_blend=_floats(style_blend, "--style-blend"), style_scale=style_scale,
                          device=device, precision="fp32").validate()
        scores = _evaluate(image, content, style, config=cfg)
        scores.update(_style_extras(image, style))
    except (InputError, ValueError) as e:
        raise _fail(str(e)) from None
    text = json.dumps(scores, indent=2)
    out.print(text, highlight=False)
    if output is not None:
        _write_json_or_fail(output, scores, "; the scores are printed above")


def _style_extras(image: Path, styles: List[Path]) -> dict:
    """Issue 15: per style, the cosine distance of the style embeddings (:mod:`atelier.analysis.embeddings`,
    0 = the same style statistics, 2 = opposite) and the Hellinger distance of the RGB histograms (0..1)."""
    from ..analysis.embeddings import StyleEmbedder
    from ..io import images as img
    from ..analysis.metrics import histogram_distance

    emb = StyleEmbedder()
    _, vecs = emb.embed_files([image, *styles])
    x = img.load_image(image, size=256)
    return {"style_embedding_distance": [max(0.0, float(1.0 - vecs[0] @ v)) for v in vecs[1:]],
            "histogram_distance": [histogram_distance(x, img.load_image(p, size=256)) for p in styles]}


@app.command()
def layers(arch: str = typer.Option("vgg19", help="vgg19 or vgg16.")):
    """List the VGG layer names usable in --content-layers / --style-layers."""
    from ..encoders.vgg import layer_table

    try:
        rows = layer_table(arch)
    except ValueError as e:
        raise _fail(str(e)) from None
    table = Table("layer", "channels", "downsampling", title=f"{arch} layers")
    for name, ch, stride in rows:
        table.add_row(name, str(ch), f"1/{stride}")
    out.print(table)
