"""Feed-forward style transfer: shipped models, loading by name, and applying them to images.

A feed-forward model is a :class:`~atelier.networks.TransformerNet` trained for one style
(Johnson, Alahi & Fei-Fei 2016, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution") or for several with conditional instance normalization (Dumoulin,
Shlens & Kudlur 2017, "A Learned Representation for Artistic Style"): one forward pass
stylizes an image, so a photo takes milliseconds to seconds instead of the minutes of the
optimization of Gatys et al.

Models are a float16 ``.safetensors`` file plus a JSON model card beside it (see
:mod:`atelier.training.loop`). The models shipped with the package live in
``atelier/models``; :func:`list_models` names them and :func:`load_model` loads one by
name or any trained model by path.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Optional, Sequence, Union

import torch

from ...io import images as img
from ...imaging import color
from ...imaging.tileable import make_periodic, tileable_dims
from ...core.errors import InputError
from ...core.files import check_not_input
from ...core.limits import check_memory
from ...core.padding import circular_padding
from ...networks.transformer import StyleWeights, TransformerNet
from ...core.runtime import autocast, check_precision, resolve_device
from ...encoders.precision import resolve_precision
from ...training.data import IMAGE_EXTENSIONS
from .engine import check_engine, onnx_runner, resolve_engine
from ...training.cards import load_trained
from ...training.zoo import list_models, model_card, model_path  # noqa: F401  (re-exported: the apply API)

__all__ = ["list_models", "model_card", "model_path", "load_model", "stylize_tensor", "ApplyResult", "apply_model",
           "PRESERVE_COLOR_MODES", "apply_files", "output_metadata", "list_inputs"]

PathLike = Union[str, os.PathLike]
#: Colour modes of :func:`stylize_tensor`.
PRESERVE_COLOR_MODES = color.PRESERVE_COLOR_MODES


def load_model(name_or_path: PathLike, device: str | torch.device = "cpu") -> TransformerNet:
    """Load a shipped model by name or a trained model by path.

    Args:
        name_or_path: a name from :func:`list_models` or a ``.safetensors`` path with its
            ``.json`` model card beside it.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``, ...

    Returns:
        A float32 :class:`~atelier.networks.TransformerNet` (a ``torch.nn.Module``) in eval
        mode. ``model(images)`` maps float32 (N, 3, H, W) RGB in [0, 1] (H, W >= 16) to a
        stylized float32 tensor of the same shape and range; multi-style models take the
        style as a second argument: an index, or ``num_styles`` blend weights
        (``model(x, [0.5, 0.5, 0, ...])``). Attributes ``card`` (the model card) and
        ``style_names`` (style file names by index).

    Raises:
        InputError: unknown name or missing file, a weights file whose sha256 differs from
            its card (corrupt or modified), or weights that do not fit the card.
        ValueError: an unavailable device.
    """
    return load_trained(model_path(name_or_path), device=resolve_device(str(device)))


def stylize_tensor(model: TransformerNet, images: torch.Tensor, style_weights: StyleWeights = None,
                   preserve_color: str = "none", precision: str = "auto", engine: str = "torch") -> torch.Tensor:
    """Run a model on a batch and apply the colour mode.

    Args:
        model: a loaded model (its device is used).
        images: float32 (N, 3, H, W) RGB in [0, 1], H, W >= 16.
        style_weights: as for :meth:`TransformerNet.forward`.
        preserve_color: ``"none"``; ``"luminance"`` (the output's luminance with the
            content's chroma in YCbCr, Gatys et al. 2017 "Controlling Perceptual Factors");
            ``"histogram"`` (each RGB channel of the output matched to the content's
            histogram).
        precision: ``"auto"`` (bf16 on CUDA with bf16 / AMX CPUs, else fp32), ``"fp32"``,
            ``"bf16"`` (autocast; instance-norm statistics stay float32).
        engine: ``"torch"`` (default), ``"onnxruntime"`` or ``"auto"`` (ONNX Runtime for fp32
            on the CPU when it is installed, 1.5x faster on an AVX2 CPU; see
            :mod:`atelier.methods.feedforward.engine`).

    Returns:
        float32 (N, 3, H, W) in [0, 1] on the CPU.

    Raises:
        ValueError: a bad colour mode, precision, engine or style weights, or a bad image tensor.
    """
    if preserve_color not in PRESERVE_COLOR_MODES:
        raise ValueError(f"preserve color must be one of {PRESERVE_COLOR_MODES}, got {preserve_color!r}")
    device = next(model.parameters()).device
    precision = resolve_precision(precision, device)
    x = images.to(device, torch.float32)
    if resolve_engine(engine, model, precision) == "onnxruntime":
        y = onnx_runner(model)(x, style_weights)
    else:
        with torch.inference_mode(), autocast(device, precision):
            y = model(x, style_weights).float()
    if preserve_color == "luminance":
        y = color.combine_luminance_chroma(color.luminance(y), x)
    elif preserve_color == "histogram":
        y = color.match_color_histogram(y, x)
    return y.clamp(0, 1).cpu()


def load_for_registry(name_or_path: PathLike, device: str | torch.device = "cpu",
                      precision: str = "auto") -> TransformerNet:
    """:func:`load_model`, with ``precision`` kept as the model's default for
    :func:`feedforward_run` (the registry's loader, :mod:`atelier.methods.registry`)."""
    check_precision(precision)
    model = load_model(name_or_path, device=device)
    model.default_precision = precision
    return model


def feedforward_run(model: TransformerNet, content: torch.Tensor, styles: Sequence[torch.Tensor] = (), *,
                    alpha: float = 1.0, blend: StyleWeights = None, mask=None, preserve_color: str = "none",
                    precision: Optional[str] = None) -> torch.Tensor:
    """The registry's runner (:mod:`atelier.methods.registry`): :func:`stylize_tensor` with
    ``blend`` as the style weights, and ``alpha`` < 1 mixing the content back in pixels
    (``alpha * out + (1 - alpha) * content``). ``styles`` must be empty and ``mask`` None (the
    styles are built in).

    Raises:
        ValueError: style images or a mask given, ``alpha`` outside [0, 1], or bad style weights.
    """
    if len(styles) or mask is not None:
        raise ValueError("a feed-forward model has its styles built in; give no style images or mask")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    precision = precision or getattr(model, "default_precision", "auto")
    y = stylize_tensor(model, content, blend, preserve_color=preserve_color, precision=precision)
    return y if alpha == 1 else (alpha * y + (1 - alpha) * content.cpu().float()).clamp(0, 1)


def _output_name(rel: pathlib.Path) -> pathlib.Path:
    """The output name of an input: the same, or ``.png`` for formats we read but do not write (GIF)."""
    return rel if rel.suffix.lower() in img.OUTPUT_EXTENSIONS else rel.with_suffix(".png")


def _inputs(inputs: Iterable[PathLike], skipped: Optional[list] = None) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """(file, output name relative to OUT) for files and folders (recursively, image files).
    Files of a folder that are not images (by extension) are appended to ``skipped`` as
    (path, reason); hidden files and folders are left out silently."""
    out = []
    for src in inputs:
        p = pathlib.Path(os.fspath(src)).expanduser()
        if p.is_dir():
            visible = sorted(f for f in p.rglob("*") if f.is_file()
                             and not any(part.startswith(".") for part in f.relative_to(p).parts))
            files = [f for f in visible if f.suffix.lower() in IMAGE_EXTENSIONS]
            if skipped is not None:
                skipped += [(f, f"{f}: not an image file ({f.suffix or 'no extension'}); skipped")
                            for f in visible if f.suffix.lower() not in IMAGE_EXTENSIONS]
            if not files:
                raise InputError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder", p)
            out += [(f, _output_name(f.relative_to(p))) for f in files]
        elif p.is_file():
            out.append((p, _output_name(pathlib.Path(p.name))))
        else:
            raise InputError("input not found", p)
    names = [rel for _, rel in out]
    dup = sorted({str(n) for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"several inputs would be written to the same output name(s) {dup[:3]}; apply them "
                         "in separate runs or rename them")
    return out


def list_inputs(inputs: Iterable[PathLike], skipped: Optional[list] = None) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """The input image files of :func:`apply_model` and their output names relative to the
    output folder: ``(file, name)`` pairs (folders searched recursively; GIF gives ``.png``).
    Non-image files of a folder are appended to ``skipped`` as (path, one-line reason).

    Raises:
        InputError: a path that does not exist, a folder without images, clashing output names.
    """
    return _inputs(inputs, skipped)


@dataclass
class ApplyResult:
    """What :func:`apply_model` did: ``written`` output paths, ``failed`` (input, reason) pairs,
    ``skipped`` non-image files of input folders (file, reason),
    ``seconds`` of model time and ``pixels`` stylized."""

    written: list[pathlib.Path] = field(default_factory=list)
    failed: list[tuple[pathlib.Path, str]] = field(default_factory=list)
    skipped: list[tuple[pathlib.Path, str]] = field(default_factory=list)  # not image files
    seconds: float = 0.0
    pixels: int = 0


def apply_model(model: TransformerNet, inputs: Sequence[PathLike], out_dir: PathLike, *, size: Optional[int] = None,
                style_weights: StyleWeights = None, preserve_color: str = "none", precision: str = "auto",
                batch_size: int = 4, max_pixels: Optional[int] = None, metadata: Optional[dict] = None,
                callback: Optional[Callable[[pathlib.Path, Optional[str]], None]] = None,
                overwrite: bool = False, tileable: bool = False, credentials=None,
                engine: str = "auto") -> ApplyResult:
    """Stylize image files and folders into ``out_dir`` (same file names; folders keep their
    sub-folders).

    Images of equal size after resizing are run in batches of ``batch_size``. A file that
    cannot be read is reported in ``failed`` and skipped; the others are written
    (atomically, with the parameters in the PNG/JPEG metadata).

    Args:
        model: from :func:`load_model`.
        inputs: image files and/or folders (searched recursively for :data:`IMAGE_EXTENSIONS`).
        out_dir: output folder (created if missing).
        size: longest side of the outputs in pixels (default: each input's own size).
        style_weights, preserve_color, precision: as for :func:`stylize_tensor`.
        batch_size: images per forward pass (>= 1).
        max_pixels: decompression-bomb limit per input image.
        metadata: extra JSON fields stored in each output.
        callback: ``callback(input_path, error_or_None)`` after each input (and for each
            non-image file of a folder, which is skipped).
        overwrite: allow writing over an input (``out_dir`` an input folder, or an output
            file that is an input file); refused otherwise.
        tileable: seamless textures (issue 28): each image's sides rounded to a multiple of 16 px,
            the image made periodic and the network padded circularly
            (:mod:`atelier.imaging.tileable`); the outputs tile without a seam.
        credentials: an :class:`atelier.io.provenance.Credentials` (issue 28): each output is
            signed (its input as the parent ingredient) and/or watermarked.
        engine: ``"auto"`` (ONNX Runtime for fp32 on the CPU when installed, else PyTorch),
            ``"torch"`` or ``"onnxruntime"`` (:mod:`atelier.methods.feedforward.engine`).

    Returns:
        An :class:`ApplyResult`.

    Raises:
        InputError: an input path that does not exist, an empty folder, clashing output
            names, an output that would replace an input (without ``overwrite``), an output
            folder that cannot be created, or a batch that needs more memory than available.
        ValueError: bad ``size``, ``batch_size``, style weights or modes (before anything
            is written).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    check_engine(engine)
    if size is not None and size < img.MIN_SIDE:
        raise ValueError(f"size must be at least {img.MIN_SIDE} px, got {size}")
    if preserve_color not in PRESERVE_COLOR_MODES:
        raise ValueError(f"preserve color must be one of {PRESERVE_COLOR_MODES}, got {preserve_color!r}")
    from ...networks.transformer import style_weights_matrix

    style_weights_matrix(style_weights, 1, model.num_styles)  # validate before any work
    skipped: list = []
    files = _inputs(inputs, skipped)
    out_dir = pathlib.Path(os.fspath(out_dir)).expanduser()
    check_not_input(out_dir, [("input folder", p) for p in inputs if pathlib.Path(os.fspath(p)).is_dir()],
                    overwrite, "the output folder")
    for src, rel in files:
        check_not_input(out_dir / rel, [("input", src)], overwrite, "the output file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the output folder ({e.strerror or e})", out_dir) from None
    result = ApplyResult()
    for src, reason in skipped:
        result.skipped.append((src, reason))
        if callback is not None:
            callback(src, reason)
    return apply_files(model, [(src, out_dir / rel) for src, rel in files], size=size, style_weights=style_weights,
                       preserve_color=preserve_color, precision=precision, batch_size=batch_size,
                       max_pixels=max_pixels, metadata=metadata, callback=callback, result=result,
                       tileable=tileable, credentials=credentials, engine=engine)


def output_metadata(metadata: Optional[dict], src: PathLike) -> dict:
    """The JSON metadata stored in the output of input ``src``: ``metadata`` plus ``input``
    (the input's file name)."""
    return {**(metadata or {}), "input": pathlib.Path(os.fspath(src)).name}


def apply_files(model: TransformerNet, pairs: Sequence[tuple[PathLike, PathLike]], *, size: Optional[int] = None,
                style_weights: StyleWeights = None, preserve_color: str = "none", precision: str = "auto",
                batch_size: int = 4, max_pixels: Optional[int] = None, metadata: Optional[dict] = None,
                callback: Optional[Callable[[pathlib.Path, Optional[str]], None]] = None,
                result: Optional[ApplyResult] = None, tileable: bool = False, credentials=None,
                engine: str = "auto") -> ApplyResult:
    """Stylize ``(input file, output file)`` pairs: the work of :func:`apply_model` once its
    inputs are listed and checked (batch engines call it on their share of the files).

    Images of equal size after resizing run in batches of ``batch_size``; each output is
    written atomically with :func:`output_metadata`. A file that cannot be read or written
    is reported in ``failed`` as (input, one-line reason) and skipped.

    Args:
        pairs: (input image file, output image path); the output's folder is created.
        result: an :class:`ApplyResult` to add to (default: a new one).
        Others: as for :func:`apply_model`.

    Returns:
        The :class:`ApplyResult`.

    Raises:
        InputError: a batch that needs more memory than available.
    """
    import time

    result = ApplyResult() if result is None else result
    pending: dict[tuple[int, int], list[tuple[pathlib.Path, pathlib.Path, torch.Tensor]]] = {}

    def flush(key):
        group = pending.pop(key)
        check_memory(key[0] * key[1], "one-pass", f"a batch of {len(group)} image(s) of {key[1]}x{key[0]}",
                     device=next(model.parameters()).device, images=len(group))
        t0 = time.perf_counter()
        with circular_padding(tileable):
            y = stylize_tensor(model, torch.cat([t for _, _, t in group]), style_weights, preserve_color, precision,
                               engine=engine)
        result.seconds += time.perf_counter() - t0
        for (src, dst, _), out in zip(group, y):
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                cred = None if credentials is None else replace(credentials, content=src)
                img.save_image(out.unsqueeze(0), dst, metadata=output_metadata(metadata, src), credentials=cred)
                result.written.append(dst)
                result.pixels += out.shape[-1] * out.shape[-2]
                err = None
            except (InputError, OSError) as e:
                result.failed.append((src, str(e)))
                err = str(e)
            if callback is not None:
                callback(src, err)

    for src, dst in pairs:
        src, dst = pathlib.Path(os.fspath(src)), pathlib.Path(os.fspath(dst))
        try:
            t = img.load_image(src, size=size, max_pixels=max_pixels)
            if min(t.shape[-2:]) < img.MIN_SIDE:
                raise InputError(f"too small after resizing ({t.shape[-1]}x{t.shape[-2]} px; both sides must be "
                                 f">= {img.MIN_SIDE} px); use a larger --size", src)
        except InputError as e:
            result.failed.append((src, str(e)))
            if callback is not None:
                callback(src, str(e))
            continue
        if tileable:
            t = make_periodic(img.resize_to(t, *tileable_dims(*t.shape[-2:])))
        key = tuple(t.shape[-2:])
        pending.setdefault(key, []).append((src, dst, t))
        if len(pending[key]) >= batch_size:
            flush(key)
    for key in list(pending):
        flush(key)
    return result
