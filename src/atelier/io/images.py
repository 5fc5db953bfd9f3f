"""Image input/output: load, resize, check output paths, save with PNG metadata.

Conventions used throughout atelier: an *image tensor* is a
``torch.float32`` tensor of shape ``(N, 3, H, W)`` (batch, RGB channels,
height, width in pixels) with values in ``[0, 1]`` (sRGB-encoded, not linear).

Reading (:func:`open_image`, :func:`load_image`) validates files up front (see
:mod:`atelier.io.decode`) and turns every problem into an
:class:`~atelier.core.errors.InputError` that names the file.

Writing (:func:`save_image`) is atomic: a temporary file in the destination
directory is written, flushed to disk and renamed over the target, so an
interrupted job never leaves a half-written image behind.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, PngImagePlugin

from .decode import (DEFAULT_MAX_PIXELS, MIN_SIDE, ImageSource, as_batch, check_path, open_header, pil_pixel_limit,
                     to_rgb, max_pixels_from_env, open_image, pil_to_tensor, tensor_to_pil)  # noqa: F401
from ..core.errors import InputError
from ..core.files import atomic_write
from ..core.limits import check_pixels, scaled_dims

__all__ = [
    "ALPHA_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "MIN_SIDE",
    "OUTPUT_EXTENSIONS",
    "check_output_path",
    "load_image",
    "max_pixels_from_env",
    "open_image",
    "parse_background",
    "pil_to_tensor",
    "read_alpha",
    "read_metadata",
    "resize_longest",
    "resize_to",
    "save_image",
    "save_with_rescue",
    "tensor_to_pil",
]

#: Output file extensions :func:`save_image` writes, mapped to Pillow format names.
OUTPUT_EXTENSIONS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}

#: Key of the PNG text chunk (and of the JSON object in EXIF UserComment) holding metadata.
METADATA_KEY = "atelier"


def _check_size_arg(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise InputError(f"size must be a positive whole number of pixels, got {size!r}")
    return int(size)


def load_image(
    source: ImageSource,
    size: int | None = None,
    max_pixels: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Load an image as an image tensor.

    Args:
        source: anything :func:`open_image` accepts. A ``torch.Tensor``
            ``(3, H, W)`` or ``(1, 3, H, W)`` is passed through (as float32,
            values untouched) without size checks.
        size: if given, resize so that the LONGEST side is ``size`` pixels,
            keeping the aspect ratio (each side at least 1 px): Lanczos
            (Pillow) for files/arrays, :func:`resize_longest` for tensors.
        max_pixels: pixel limit, see :func:`open_image`.
        device: torch device for the result (default: CPU, or the tensor's own device).

    Returns:
        ``torch.float32`` tensor ``(1, 3, H, W)``, RGB in ``[0, 1]``.

    Raises:
        InputError: everything :func:`open_image` raises; ``size`` not a
            positive integer; a tensor of the wrong shape or dtype.
    """
    if size is not None:
        size = _check_size_arg(size)
    if isinstance(source, torch.Tensor):
        t = as_batch(source)
        if size is not None:
            check_pixels(*scaled_dims(t.shape[-2], t.shape[-1], size), f"size {size}", max_pixels)
            t = resize_longest(t, size)
        return t if device is None else t.to(device)
    img = open_image(source, max_pixels=max_pixels)
    if size is not None:
        h, w = scaled_dims(img.height, img.width, size)
        check_pixels(h, w, f"size {size}", max_pixels)
        if (h, w) != (img.height, img.width):
            img = img.resize((w, h), Image.Resampling.LANCZOS)
    t = pil_to_tensor(img)
    return t if device is None else t.to(device)


# --------------------------------------------------------------------------- resizing


def check_image_tensor(image: torch.Tensor, name: str = "image") -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{name} must be a tensor of shape (N, C, H, W), got {shape}")


def resize_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize an image tensor to exactly ``height x width`` pixels.

    Bicubic interpolation with antialiasing (``torch.nn.functional.interpolate``,
    ``mode="bicubic", antialias=True, align_corners=False``), then clamped to ``[0, 1]``.

    Args:
        image: float tensor ``(N, C, H, W)`` in ``[0, 1]`` (usually C = 3).
        height, width: output size in pixels, each >= 1.

    Returns:
        A new tensor ``(N, C, height, width)``, same dtype and device, in ``[0, 1]``.

    Raises:
        ValueError: ``image`` is not 4-D or the size is not positive.
    """
    check_image_tensor(image)
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"output size must be positive, got {height}x{width}")
    if tuple(image.shape[-2:]) == (height, width):
        return image.clamp(0.0, 1.0)
    out = F.interpolate(image, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0)


def resize_longest(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize an image tensor so that its longest side is ``size`` pixels.

    The aspect ratio is kept (the shorter side is rounded, at least 1 px);
    interpolation as in :func:`resize_to`.

    Args:
        image: float tensor ``(N, C, H, W)`` in ``[0, 1]``.
        size: length of the longest output side in pixels, >= 1.

    Returns:
        A new tensor ``(N, C, H', W')`` with ``max(H', W') == size``, in ``[0, 1]``.

    Raises:
        ValueError: ``image`` is not 4-D or ``size`` is not a positive integer.
    """
    check_image_tensor(image)
    size = _check_size_arg(size)
    h, w = scaled_dims(image.shape[-2], image.shape[-1], size)
    return resize_to(image, h, w)


# --------------------------------------------------------------------------- writing


def check_output_path(path: str | os.PathLike) -> pathlib.Path:
    """Check that an image can be written to ``path``; call it BEFORE a long job.

    Args:
        path: output file path. Its extension picks the format: ``.png``
            (recommended: lossless, keeps metadata), ``.jpg``/``.jpeg``,
            ``.webp``, ``.tif``/``.tiff`` or ``.bmp`` (case-insensitive).

    Returns:
        The absolute, resolved ``pathlib.Path``. An existing file there is
        allowed (it will be replaced).

    Raises:
        InputError: naming the path, when the extension is missing or not one
            of the above (or this Pillow build cannot write it), the path is an
            existing directory, the parent directory does not exist or is not a
            directory, or the parent directory is not writable.
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    if p.is_dir():
        raise InputError("is a directory; give a file name such as out.png", p)
    ext = p.suffix.lower()
    fmt = OUTPUT_EXTENSIONS.get(ext)
    Image.init()
    if fmt is None or fmt not in Image.SAVE:
        raise InputError(
            f"unsupported output format {ext or '(no extension)'!r}; use .png (recommended), "
            ".jpg, .webp, .tif or .bmp",
            p,
        )
    parent = p.parent.resolve() if str(p.parent) else pathlib.Path.cwd()
    if not parent.exists():
        raise InputError(f"output directory {parent} does not exist; create it first", p)
    if not parent.is_dir():
        raise InputError(f"{parent} is not a directory; choose an output path inside a directory", p)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(
            f"output directory {parent} is not writable; choose another directory or fix its permissions", p
        )
    return parent / p.name


def _metadata_json(metadata: dict) -> str:
    return json.dumps(metadata, default=str, sort_keys=True)


def read_alpha(source) -> "np.ndarray | None":
    """The alpha channel of an image file or PIL image as uint8 (H, W), or None when it has none
    (or it is fully opaque): RGBA, LA, PA and palette images with a transparent colour count.

    Raises:
        InputError: an unreadable file (as :func:`open_image`).
    """
    if not isinstance(source, Image.Image):
        open_image(source)  # validated first (size limit, truncation): InputError naming the file
        from PIL import ImageOps

        with Image.open(os.fspath(source)) as f:
            im = ImageOps.exif_transpose(f)
            im.load()
    else:
        im = source
    if im.mode not in ("RGBA", "LA", "PA") and not (im.mode == "P" and "transparency" in im.info):
        return None
    a = np.asarray(im.convert("RGBA"))[..., 3]
    return None if int(a.min()) == 255 else a.copy()


def parse_background(text: str) -> tuple[int, int, int]:
    """``white``, ``black`` or ``#RRGGBB`` -> an RGB triple (0-255). Raises ValueError otherwise."""
    named = {"white": (255, 255, 255), "black": (0, 0, 0)}
    t = text.strip().lower()
    if t in named:
        return named[t]
    if len(t) == 7 and t.startswith("#"):
        try:
            return tuple(int(t[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            pass
    raise ValueError(f"--background must be white, black or #RRGGBB, got {text!r}")


#: Output formats that keep an alpha channel (the others get it composited over a background).
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")


def save_image(
    image: torch.Tensor | Image.Image,
    path: str | os.PathLike,
    metadata: dict | None = None,
    *,
    alpha: "np.ndarray | None" = None,
    background: tuple[int, int, int] = (255, 255, 255),
    credentials=None,
) -> pathlib.Path:
    """Write an image atomically, optionally with JSON metadata.

    The image is written to a temporary file in the destination directory,
    flushed and ``fsync``-ed, then renamed over ``path`` (``os.replace``), so
    readers never see a partial file; on any error the temporary file is
    removed and an existing file at ``path`` is left untouched. The new file
    gets the usual permissions (``0o666`` minus the umask).

    Metadata (``metadata`` serialized with ``json.dumps``; values that are not
    JSON types are stored as ``str(value)``) is stored:

    * PNG: in a text chunk with key ``"atelier"``;
    * JPEG and WebP: in the EXIF ``UserComment`` tag, as the JSON object
      ``{"atelier": metadata}``;
    * TIFF and BMP: not stored (silently skipped).

    :func:`read_metadata` reads it back. Encoding: PNG lossless; JPEG quality
    95 without chroma subsampling; WebP quality 95; TIFF uncompressed; BMP 24-bit.

    Args:
        image: tensor ``(1, 3, H, W)`` or ``(3, H, W)`` in ``[0, 1]`` (clamped,
            rounded to 8 bits) or a ``PIL.Image.Image`` (converted to RGB as by
            :func:`pil_to_tensor`; alpha is composited over white).
        path: output path; see :func:`check_output_path`.
        metadata: JSON-serializable ``dict`` or ``None``.
        alpha: optional uint8 (h, w) alpha channel (e.g. :func:`read_alpha` of the content image),
            resized to the image's size (bilinear) when it differs and kept bit for bit when it
            does not: written as RGBA to PNG, WebP and TIFF (:data:`ALPHA_FORMATS`); JPEG and BMP
            get the image composited over ``background`` with it instead.
        background: RGB (0-255) under a transparent image in a format without alpha.
        credentials: an :class:`atelier.io.provenance.Credentials` (issue 28): embed the invisible
            watermark in the final pixels (``.watermark``) and/or sign the encoded file with a
            C2PA manifest (``.signer``), still in one atomic write. Needs the provenance extra.

    Returns:
        The resolved absolute path written.

    Raises:
        InputError: the path fails :func:`check_output_path`, or writing fails
            (e.g. the disk is full).
        ValueError: ``image`` is a tensor of the wrong shape.
    """
    out = check_output_path(path)
    fmt = OUTPUT_EXTENSIONS[out.suffix.lower()]
    signing = credentials is not None and credentials.signer is not None
    if signing:
        from .provenance import MIME_TYPES

        if fmt not in MIME_TYPES:
            raise InputError(f"{fmt} files cannot carry Content Credentials; use .png, .jpg, .webp or .tif", out)
    pil = tensor_to_pil(image) if isinstance(image, torch.Tensor) else to_rgb(image)
    if alpha is not None:
        a = Image.fromarray(np.asarray(alpha, dtype=np.uint8), "L")
        if a.size != pil.size:
            a = a.resize(pil.size, Image.BILINEAR)
        if fmt in ALPHA_FORMATS:
            pil = pil.convert("RGBA")
            pil.putalpha(a)
        else:
            pil = Image.composite(pil, Image.new("RGB", pil.size, tuple(background)), a)
    if credentials is not None and credentials.watermark:
        pil = _watermarked(pil, out)
    kwargs: dict[str, Any] = {}
    if fmt == "JPEG":
        kwargs.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        kwargs.update(quality=95)
    if metadata is not None:
        text = _metadata_json(metadata)
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_text(METADATA_KEY, text)
            kwargs["pnginfo"] = info
        elif fmt in ("JPEG", "WEBP"):
            exif = Image.Exif()
            exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + json.dumps(
                {METADATA_KEY: json.loads(text)}, sort_keys=True
            ).encode("ascii")
            kwargs["exif"] = exif.tobytes()

    with atomic_write(out, "w+b" if signing else "wb") as f:
        if not signing:
            pil.save(f, format=fmt, **kwargs)
        else:
            import io

            buf = io.BytesIO()
            pil.save(buf, format=fmt, **kwargs)
            try:
                credentials.sign(buf.getvalue(), fmt, out.name, metadata, f)
            except InputError:
                raise
            except Exception as e:  # c2pa.C2paError; the temporary file is removed
                raise InputError(f"signing the Content Credentials failed ({e})", out) from None
    return out


def _watermarked(pil: Image.Image, out: pathlib.Path) -> Image.Image:
    """``pil`` with the invisible watermark in its colour (alpha kept as it is)."""
    from .watermark import embed_watermark

    try:
        marked = Image.fromarray(embed_watermark(np.asarray(pil.convert("RGB"))))
    except ValueError as e:
        raise InputError(str(e), out) from None
    if pil.mode == "RGBA":
        marked.putalpha(pil.getchannel("A"))
    return marked


def save_with_rescue(image, path: str | os.PathLike, metadata: dict | None = None, **keep
                     ) -> tuple[pathlib.Path | None, str | None]:
    """Save a finished result, and never lose it silently when that fails (disk full, a
    target that cannot be written): then save it as PNG next to ``path``
    (``NAME.recovered.png``), else in the temporary folder.

    Returns:
        ``(path written or None, None)`` on success; ``(fallback written or None, message)``
        when saving to ``path`` failed (``None``: no fallback could be written either).
        ``keep``: ``alpha``, ``background`` and ``credentials``, as for :func:`save_image` (the
        fallback copy is written without credentials).
    """
    try:
        return save_image(image, path, metadata, **keep), None
    except (InputError, OSError) as e:
        error = str(e)
    import tempfile

    p = pathlib.Path(os.fspath(path)).expanduser()
    keep = {k: v for k, v in keep.items() if k != "credentials"}  # the rescue copy is plain (never signed)
    for cand in (p.with_name(f"{p.stem}.recovered.png"),
                 pathlib.Path(tempfile.gettempdir()) / f"atelier-recovered-{os.getpid()}-{p.stem}.png"):
        try:
            return save_image(image, cand, metadata, **keep), error
        except (InputError, OSError):
            continue
    return None, error


def read_metadata(path: str | os.PathLike) -> dict | None:
    """Read the metadata that :func:`save_image` stored in an image file.

    Only the header is read (the pixels are not decoded).

    Args:
        path: an image file path.

    Returns:
        The stored ``dict`` (from the PNG ``"atelier"`` text chunk or the JPEG/WebP
        EXIF ``UserComment``), or ``None`` when the file has none (or it is not
        valid JSON object data).

    Raises:
        InputError: naming the file, for a missing file, a directory, an empty
            file, a non-image or unsupported format (as :func:`open_image`).
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    head = check_path(p)
    with pil_pixel_limit(None):
        im = open_header(p, head)
    with im:
        text = im.info.get(METADATA_KEY)
        if text is None and im.format in ("JPEG", "WEBP", "MPO"):
            try:
                raw = im.getexif().get_ifd(0x8769).get(0x9286)
            except Exception:
                raw = None
            if isinstance(raw, bytes):
                raw = raw[8:] if raw[:8] in (b"ASCII\x00\x00\x00", b"UNICODE\x00", b"\x00" * 8) else raw
                raw = raw.decode("utf-8", "replace")
            if isinstance(raw, str):
                try:
                    obj = json.loads(raw.strip("\x00 "))
                except ValueError:
                    obj = None
                if isinstance(obj, dict) and isinstance(obj.get(METADATA_KEY), dict):
                    return obj[METADATA_KEY]
            return None
    if not isinstance(text, str):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def demo_images() -> tuple[pathlib.Path, pathlib.Path]:
    """The bundled demo images: (content photo, style painting) -- scikit-image's "chelsea" (CC0)
    and Van Gogh's The Starry Night (public domain), as files inside the package.

    Example:
        >>> photo, painting = demo_images()
        >>> photo.name, painting.name
        ('chelsea.jpg', 'starry_night.jpg')
    """
    from importlib import resources

    base = resources.files("atelier") / "assets"
    return pathlib.Path(str(base / "chelsea.jpg")), pathlib.Path(str(base / "starry_night.jpg"))
