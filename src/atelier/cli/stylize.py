"""Commands that stylize images: stylize (every method) and demo."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import typer

from ..methods.gatys.optimize import GatysConfig

from .provenance import (build_credentials, opt_cert, opt_credentials, opt_key, opt_style_credit, opt_style_credits,
                         opt_watermark)
from .scale import _ray_flags, _run_on_ray

from .common import (app, _check_outputs, _fail, _floats, _input_files, _metadata_source, _names,
                     _refuse_unused, _runtime)
from .gatys_run import _run_stylize


def _options(size, style_scale, iterations, optimizer, lr, content_weight, style_weight, tv_weight, style_blend,
             init, seed, preserve_color, scales, content_layers, style_layers, pooling, device, precision,
             weights, tileable: bool = False, scale_iterations=None) -> dict:
    return dict(size=size, style_scale=style_scale, iterations=iterations, optimizer=optimizer, lr=lr,
                content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                style_blend=_floats(style_blend, "--style-blend"), init=init, seed=seed,
                preserve_color=preserve_color, scales=scales, content_layers=_names(content_layers),
                style_layers=_names(style_layers), pooling=pooling, device=device, precision=precision,
                weights=str(weights) if weights else None, tileable=tileable, scale_iterations=scale_iterations)


_D = GatysConfig()


@app.command()
def stylize(
    ctx: typer.Context,
    content: Path = typer.Argument(..., metavar="CONTENT", help="Content image (photo)."),
    style: Optional[List[Path]] = typer.Option(None, "--style", "-s", metavar="PATH", help="Style image; repeat for several."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png keeps the parameters)."),
    method: str = typer.Option("gatys", help="gatys (optimization), adain or wct (any style, one pass) or a "
                               "feed-forward model name/file (see 'atelier models')."),
    size: Optional[int] = typer.Option(None, help="Longest side of the output in pixels [default: content's]."),
    style_scale: float = typer.Option(_D.style_scale, help="Style image size relative to the output."),
    iterations: int = typer.Option(_D.iterations, "--iterations", "-n", help="Iterations per scale."),
    scale_iterations: Optional[str] = typer.Option(None, help="Iterations at each scale, coarse to fine, e.g. "
                                                   "300,100,30,10 for a 4K print (instead of --iterations)."),
    optimizer: str = typer.Option(_D.optimizer, help="lbfgs or adam."),
    lr: float = typer.Option(_D.lr, help="Adam step size (pixel units, [0, 1] images)."),
    content_weight: float = typer.Option(_D.content_weight, help="Content weight."),
    style_weight: float = typer.Option(_D.style_weight, help="Style weight."),
    tv_weight: float = typer.Option(_D.tv_weight, help="Total-variation weight."),
    style_blend: Optional[str] = typer.Option(None, help="One weight per style image, e.g. 0.7,0.3."),
    init: str = typer.Option("content", help="content, noise, style, adain or wct (start from that one-pass "
                             "result: a lower loss from the start) or an image path."),
    seed: Optional[int] = typer.Option(None, help="Random seed (same seed, same pixels on the CPU)."),
    preserve_color: str = typer.Option("none", help="none, luminance or histogram."),
    alpha: float = typer.Option(1.0, help="adain/wct: style strength in [0, 1] (0: content, 1: full style)."),
    mask: Optional[List[Path]] = typer.Option(None, "--mask", metavar="PATH", help="Regions, every method: one mask "
                                              "per --style (style k where mask k is white; the photo where no mask "
                                              "is); or one mask with two styles (the first where white, the second "
                                              "where black); a feed-forward model: its style where white."),
    feather: float = typer.Option(0.0, help="With --mask: soften the region edges over about 2x this many pixels."),
    tileable: bool = typer.Option(False, "--tileable", help="A seamless texture that tiles without a seam (sides "
                                  "rounded to a multiple of 16 px; circular padding, wrap-around TV)."),
    style_size: int = typer.Option(512, help="adain/wct: longest side of the style images in pixels."),
    stroke_scale: float = typer.Option(1.0, help="Brush strokes this many times larger, 0.25 to 16 (print "
                                       "sizes: a 4K print with strokes in the painting's proportions). One-pass "
                                       "methods run at 1/S of the size and are upscaled; Gatys: the style image "
                                       "S times larger (times --style-scale)."),
    decoder: Optional[Path] = typer.Option(None, help="adain: decoder file or 'adain-w1'; wct: folder of decoders "
                                           "from 'atelier train-decoders' [default: shipped]."),
    wct_layers: Optional[str] = typer.Option(None, help="wct: layers, coarse to fine [default: relu4_1,relu3_1,"
                                             "relu2_1,relu1_1; add relu5_1 for larger structures]."),
    scales: Optional[int] = typer.Option(None, help="Coarse-to-fine levels [default: 1 up to 512 px, +1 per doubling]."),
    content_layers: str = typer.Option(",".join(_D.content_layers), help="Comma-separated VGG layers."),
    style_layers: str = typer.Option(",".join(_D.style_layers), help="Comma-separated VGG layers."),
    pooling: str = typer.Option(_D.pooling, help="max or avg."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16."),
    weights: Optional[Path] = typer.Option(None, help="torchvision VGG16/VGG19 state dict [default: Caffe VGG19]."),
    save_every: Optional[Tuple[int, Path]] = typer.Option(None, metavar="N DIR", help="Save every N iterations to DIR."),
    metrics: Optional[Path] = typer.Option(None, help="Write metrics JSON here."),
    max_pixels: Optional[int] = typer.Option(None, help="Refuse images larger than this many pixels [default: 100M]."),
    tile: str = typer.Option("auto", help="Print sizes: auto (tiles only when the image would not fit --max-memory), "
                             "off, or a tile side in px; one-pass tiles share one set of statistics, Gatys tiles "
                             "optimize the whole image's losses on a grid that shifts every iteration (no seams)."),
    max_memory: Optional[str] = typer.Option(None, help="Memory the run may use, e.g. 8G or 512M "
                                             "[default: 80% of the memory available now]."),
    prefilter: str = typer.Option("none", help="Clean a noisy or JPEG-blocky photo first: auto, nlm, deblock or none."),
    background: str = typer.Option("white", help="Under a transparent CONTENT's see-through parts, for outputs "
                                   "without alpha (JPEG, BMP): white, black or #RRGGBB. PNG, WebP and TIFF keep "
                                   "the alpha."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow --output to replace an input file."),
    metadata: str = typer.Option("short", help="Inputs recorded in the output: short (file names and sha256) "
                                 "or full (paths)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    preset: Optional[str] = typer.Option(None, help="A preset saved from the studio's Explore (method, alpha, "
                                         "style scale, colours, blend); options on the command line win."),
    credentials: bool = opt_credentials(),
    style_credit: Optional[List[str]] = opt_style_credit(),
    style_credits: Optional[Path] = opt_style_credits(),
    c2pa_cert: Optional[Path] = opt_cert(),
    c2pa_key: Optional[Path] = opt_key(),
    watermark: bool = opt_watermark(),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray Data, one task per photo: CONTENT may be a folder, "
                             "--output is then a folder (same file names); re-runs skip outputs that verify."),
    ray_address: Optional[str] = typer.Option(None, help="With --ray: 'auto' or ray://HOST:10001 [default: a new "
                                              "local cluster]."),
    workers: Optional[int] = typer.Option(None, help="With --ray: Ray workers [default: one per CPU, or per GPU]."),
):
    """Stylize CONTENT with one or more --style images (default: Gatys et al. optimization).

    --method adain (Huang & Belongie 2017) and --method wct (Li et al. 2017) stylize with any
    style image in one pass; a feed-forward model name (see 'atelier models') needs no --style.
    """
    if metadata not in ("short", "full"):
        raise _fail(f"--metadata must be short or full, got {metadata!r}")
    from ..imaging.prefilter import PREFILTERS

    if prefilter not in PREFILTERS:
        raise _fail(f"--prefilter must be one of {', '.join(PREFILTERS)}, got {prefilter!r}")
    from ..io.images import parse_background

    try:
        bg = parse_background(background)
    except ValueError as e:
        raise _fail(str(e)) from None
    if preset is not None:
        v = _apply_preset(ctx, preset, content, style, size, dict(method=method, alpha=alpha, style_scale=style_scale,
                          style_size=style_size, preserve_color=preserve_color, style_blend=style_blend))
        method, alpha, style_scale, style_size, preserve_color, style_blend = (
            v["method"], v["alpha"], v["style_scale"], v["style_size"], v["preserve_color"], v["style_blend"])
    if not (0.25 <= stroke_scale <= 16):
        raise _fail(f"--stroke-scale must be from 0.25 to 16, got {stroke_scale}")
    use_ray = _ray_flags(ray, ray_address, workers)
    dev = _runtime("cpu" if use_ray else device, precision)  # --ray: the device is resolved on the workers
    from ..core.errors import InputError
    from ..methods.registry import get_method, method_options

    try:
        spec = get_method(method)
    except InputError as e:
        raise _fail(str(e)) from None
    _refuse_unused(ctx, [o for o in method_options() if o not in spec.options], method)
    if spec.family == "optimization" and not style:
        raise _fail("give at least one --style image (or --method MODEL_NAME for a feed-forward model)")
    try:
        per_scale = None if scale_iterations is None else [int(v) for v in scale_iterations.split(",")]
    except ValueError:
        raise _fail(f"--scale-iterations expects whole numbers separated by commas, e.g. 300,100,30; got "
                    f"{scale_iterations!r}") from None
    params = dict(method=method, style=list(style or []), size=size, style_scale=style_scale, iterations=iterations,
                  scale_iterations=per_scale,
                  optimizer=optimizer, lr=lr, content_weight=content_weight, style_weight=style_weight,
                  tv_weight=tv_weight, style_blend=style_blend, init=init, seed=seed, preserve_color=preserve_color,
                  alpha=alpha, mask=list(mask or []), feather=feather, tileable=tileable, style_size=style_size, decoder=decoder, wct_layers=wct_layers,
                  scales=scales, content_layers=content_layers, style_layers=style_layers, pooling=pooling,
                  device=str(dev), precision=precision, weights=weights, max_pixels=max_pixels, prefilter=prefilter,
                  overwrite=overwrite, full_metadata=metadata == "full", tile=tile, max_memory=max_memory,
                  background=bg, stroke_scale=stroke_scale)
    if use_ray and (credentials or watermark):
        raise _fail("--credentials and --watermark do not apply with --ray yet; sign the outputs afterwards with "
                    "atelier.sign_image (docs/provenance.md)")
    params["credentials"] = build_credentials(credentials, watermark, c2pa_cert, c2pa_key, style_credit,
                                              style_credits, content=content, styles=list(style or []),
                                              n_styles=len(style or []) if spec.styles != "builtin" else 0,
                                              output=output)
    if use_ray:
        for flag, value in (("--metrics", metrics), ("--save-every", save_every)):
            if value is not None:
                raise _fail(f"{flag} does not apply with --ray (one output per photo); leave it out")
        _run_on_ray(StylizeJob(params), [content], output, overwrite=overwrite, address=ray_address,
                    workers=workers, batch_size=1, device=device, quiet=quiet)
        return
    _stylize_one(content, output, params, metrics=metrics, save_every=save_every, quiet=quiet)


def _stylize_one(content: Path, output: Path, p: dict, *, metrics=None, save_every=None, quiet=True) -> None:
    """One photo with the checked options ``p`` of :func:`stylize`: what the command does after
    parsing (also run by :class:`StylizeJob` on Ray workers). Exits like the command."""
    from ..methods.registry import get_method

    keep = _transparency(content, p)
    if p.get("credentials") is not None:  # issue 28: signed and/or watermarked, in the same atomic write
        keep["credentials"] = p["credentials"]
    if get_method(p["method"]).family != "optimization":
        from .onepass import run_one_pass

        _check_outputs(output, metrics, _input_files(content=content, style=p["style"], mask=p["mask"]),
                       p["overwrite"])
        run_one_pass(p["method"], content, p["style"], output, size=p["size"], alpha=p["alpha"],
                     blend=p["style_blend"], mask=p["mask"], style_size=p["style_size"], decoder=p["decoder"],
                     preserve_color=p["preserve_color"], device=p["device"], precision=p["precision"],
                     max_pixels=p["max_pixels"], quiet=quiet, wct_layers=p["wct_layers"], metrics=metrics,
                     full_metadata=p["full_metadata"], prefilter=p["prefilter"], tile=p.get("tile", "auto"),
                     max_memory=p.get("max_memory"), keep=keep, feather=p.get("feather", 0.0),
                     tileable=p.get("tileable", False), stroke_scale=p.get("stroke_scale", 1.0))
        return
    style_scale = p["style_scale"] * p.get("stroke_scale", 1.0)  # issue 24: strokes S times larger
    opts = _options(p["size"], style_scale, p["iterations"], p["optimizer"], p["lr"], p["content_weight"],
                    p["style_weight"], p["tv_weight"], p["style_blend"], p["init"], p["seed"], p["preserve_color"],
                    p["scales"], p["content_layers"], p["style_layers"], p["pooling"], p["device"], p["precision"],
                    p["weights"], p.get("tileable", False), p.get("scale_iterations"))
    _run_stylize(content, p["style"], output, opts, max_pixels=p["max_pixels"], save_every=save_every,
                 metrics=metrics, quiet=quiet, overwrite=p["overwrite"], full_metadata=p["full_metadata"],
                 prefilter=p["prefilter"], keep=keep, masks=p.get("mask") or [], feather=p.get("feather", 0.0),
                 tile=p.get("tile", "auto"), max_memory=p.get("max_memory"))


def _transparency(content: Path, p: dict) -> dict:
    """``alpha`` (the content's alpha channel, or None) and ``background`` for :func:`_save_result`
    (issue 28: a transparent logo keeps its alpha). An unreadable content file is left to the
    run's own check, which names the problem."""
    from ..core.errors import InputError
    from ..io import images as img

    try:
        alpha = img.read_alpha(content)
    except InputError:
        alpha = None
    return {"alpha": alpha, "background": p.get("background", (255, 255, 255))}


class StylizeJob:
    """``atelier stylize --ray``: one photo per Ray task, any method, by the same code as the
    command (:func:`_stylize_one`), so outputs, names and metadata are the same; the error of a
    bad photo is the command's one-line message. Gatys runs its optimization on the worker;
    the VGG encoder and networks are cached per worker process.

    Resume compares the method, the content and style files (name and sha256), and the
    Gatys parameters or the one-pass colour mode and alpha (the seconds taken vary)."""

    def __init__(self, params: dict):
        self.params = dict(params)
        self.device = params["device"]

    def setup(self) -> None:
        import torch  # noqa: F401  (import once per worker, before the first photo)

    def expected_metadata(self, src: str) -> dict:
        p = self.params
        styles = [_metadata_source(s, p["full_metadata"]) for s in p["style"]]
        meta = {"content": _metadata_source(src, p["full_metadata"]), "styles": styles}
        from ..methods.registry import get_method

        family = get_method(p["method"]).family
        if family == "optimization":
            if p["init"] in ("content", "noise", "style"):
                opts = _options(p["size"], p["style_scale"], p["iterations"], p["optimizer"], p["lr"],
                                p["content_weight"], p["style_weight"], p["tv_weight"], p["style_blend"], p["init"],
                                p["seed"], p["preserve_color"], p["scales"], p["content_layers"], p["style_layers"],
                                p["pooling"], self.device, p["precision"], p["weights"],
                                scale_iterations=p.get("scale_iterations"))
                meta["parameters"] = GatysConfig(**opts).to_dict()
            return {"method": "gatys", **meta}
        if family == "arbitrary":
            return {"method": p["method"], **meta, "alpha": p["alpha"], "preserve_color": p["preserve_color"]}
        return {"method": "feedforward", "content": meta["content"], "preserve_color": p["preserve_color"]}

    def run(self, pairs) -> list:
        import contextlib
        import io

        out = []
        for src, dst in pairs:
            buf = io.StringIO()
            try:
                Path(dst).parent.mkdir(parents=True, exist_ok=True)  # sub-folders of a content folder
                with contextlib.redirect_stderr(buf):
                    _stylize_one(Path(src), Path(dst), {**self.params, "device": self.device})
                out.append(None)
            except OSError as e:
                out.append(f"{Path(dst).parent}: cannot create the output folder ({e.strerror or e})")
                continue
            except typer.Exit as e:
                lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
                msg = lines[-1] if lines else f"failed with exit code {e.exit_code}"
                out.append(None if e.exit_code == 0 else msg.removeprefix("error: ").strip())
        return out


def _apply_preset(ctx: typer.Context, name: str, content: Path, style, size, values: dict) -> dict:
    """Fill the options not given on the command line from a studio preset (issue 16): its
    style scale becomes --style-scale (gatys) or --style-size = scale x output size (adain, wct)."""
    from ..core.errors import InputError
    from ..studio.presets import load_preset

    try:
        p = load_preset(name)
    except InputError as e:
        raise _fail(str(e)) from None
    given = lambda k: (src := ctx.get_parameter_source(k)) is not None and src.name in ("COMMANDLINE", "ENVIRONMENT")  # noqa: E731
    out = dict(values)
    for key, opt in (("method", "method"), ("alpha", "alpha"), ("preserve_color", "preserve_color")):
        if key in p and not given(opt):
            out[opt] = p[key]
    if p.get("blend") is not None and len(style or []) == 2 and not given("style_blend"):
        out["style_blend"] = f"{float(p['blend']):.4g},{1 - float(p['blend']):.4g}"
    if "style_scale" in p:
        from ..methods.registry import get_method

        options = get_method(out["method"]).options
        if "style_scale" in options and not given("style_scale"):
            out["style_scale"] = float(p["style_scale"])
        elif "style_size" in options and not given("style_size"):
            longest = size
            if longest is None:
                try:
                    from PIL import Image

                    with Image.open(content) as im:
                        longest = max(im.size)
                except (OSError, ValueError):
                    longest = 512  # the content's own problem is reported when it is loaded
            out["style_size"] = max(16, round(float(p["style_scale"]) * longest))
    return out


@app.command()
def demo(
    output: Path = typer.Option(Path("atelier-demo.png"), "--output", "-o", help="Where to write the result."),
    size: int = typer.Option(320, help="Longest side in pixels."),
    iterations: int = typer.Option(150, "--iterations", "-n", help="L-BFGS iterations."),
    seed: int = typer.Option(0, help="Random seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Stylize the bundled photo (a cat, CC0) with the bundled painting (The Starry Night)."""
    from ..io.images import demo_images

    content, style = demo_images()
    opts = dict(size=size, iterations=iterations, seed=seed)
    _run_stylize(content, [style], output, opts, max_pixels=None, save_every=None, metrics=None, quiet=quiet)


# -- feed-forward networks ------------------------------------------------------------------
