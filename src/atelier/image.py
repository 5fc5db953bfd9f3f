"""Image input/output and colour helpers.

Conventions used throughout atelier: an *image tensor* is a
``torch.float32`` tensor of shape ``(N, 3, H, W)`` (batch, RGB channels,
height, width in pixels) with values in ``[0, 1]`` (sRGB-encoded, not linear).

Reading (:func:`open_image`, :func:`load_image`) validates files up front and
turns every problem into an :class:`~atelier.errors.InputError` whose message
names the file, says what is wrong and what to do: missing or empty files,
directories, truncated or corrupt files, non-images, formats Pillow cannot read
(SVG, HEIC/HEIF, PDF, PSD, camera raw), images above a pixel limit
(decompression bombs, checked from the header before decoding) and images too
small for the VGG pooling stack.

Writing (:func:`save_image`) is atomic: a temporary file in the destination
directory is written, flushed to disk and renamed over the target, so an
interrupted job never leaves a half-written image behind.

Colour helpers use BT.601 full-range YCbCr (the JPEG/JFIF definition) and
implement luminance-only transfer and colour-histogram matching from
Gatys et al. (2016), "Preserving Color in Neural Artistic Style Transfer".
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import threading
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import InputError
from .utils import atomic_write

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MIN_SIDE",
    "OUTPUT_EXTENSIONS",
    "check_output_path",
    "combine_luminance_chroma",
    "load_image",
    "luminance",
    "match_color_histogram",
    "match_luminance",
    "max_pixels_from_env",
    "open_image",
    "pil_to_tensor",
    "read_metadata",
    "resize_longest",
    "resize_to",
    "rgb_to_ycbcr",
    "save_image",
    "tensor_to_pil",
    "ycbcr_to_rgb",
]

#: Largest image accepted by default, in pixels (width * height): 100 megapixels.
DEFAULT_MAX_PIXELS = 100_000_000

#: Smallest accepted side, in pixels. VGG halves the resolution four times
#: before conv5_1, so anything smaller has no spatial extent left there.
MIN_SIDE = 16

#: Environment variable that overrides :data:`DEFAULT_MAX_PIXELS`.
MAX_PIXELS_ENV = "ATELIER_MAX_PIXELS"

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

_SUPPORTED_INPUT = "PNG, JPEG, WebP, TIFF, BMP, GIF"

# Formats Pillow cannot read properly, by extension. Camera raw files are
# often TIFF containers that Pillow would open as a tiny embedded thumbnail,
# so they must be rejected by name. PSD: Pillow's reader handles only simple
# 8-bit files and ignores layer blending, so we ask for a flattened export.
_UNSUPPORTED_EXT = {
    ".svg": "SVG (vector graphics)",
    ".svgz": "SVG (vector graphics)",
    ".heic": "HEIC/HEIF",
    ".heif": "HEIC/HEIF",
    ".hif": "HEIC/HEIF",
    ".pdf": "PDF",
    ".ai": "Adobe Illustrator",
    ".psd": "Photoshop PSD",
    ".psb": "Photoshop PSB",
    ".xcf": "GIMP XCF",
    ".jxl": "JPEG XL",
    **{
        ext: "camera raw"
        for ext in (".cr2", ".cr3", ".crw", ".nef", ".nrw", ".dng", ".arw", ".srf", ".sr2",
                    ".orf", ".rw2", ".raf", ".pef", ".srw", ".raw", ".rwl", ".3fr", ".iiq",
                    ".erf", ".kdc", ".mrw", ".x3f")
    },
}

# Magic numbers of readable formats, to tell "corrupt PNG" from "not an image".
_KNOWN_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                b"mif1", b"msf1"}

# Pillow's decompression-bomb limit is a module global; we change it only
# while this lock is held and restore it afterwards.
_PIL_LIMIT_LOCK = threading.Lock()

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]


# --------------------------------------------------------------------------- limits


def max_pixels_from_env() -> int:
    """The pixel limit for input images, from the environment.

    Returns:
        ``int(os.environ["ATELIER_MAX_PIXELS"])`` if that variable is set and
        not blank (underscores allowed, e.g. ``200_000_000``), else
        :data:`DEFAULT_MAX_PIXELS` (100 000 000 pixels = width * height).

    Raises:
        InputError: the variable is set but is not a positive whole number.
    """
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise InputError(
            f"environment variable {MAX_PIXELS_ENV}={raw!r} is not a positive whole number of pixels; "
            f"unset it or set e.g. {MAX_PIXELS_ENV}=200000000"
        )
    return value


def _resolve_max_pixels(max_pixels: int | None) -> int:
    if max_pixels is None:
        return max_pixels_from_env()
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels <= 0:
        raise InputError(f"max_pixels must be a positive whole number of pixels, got {max_pixels!r}")
    return int(max_pixels)


def _check_size(width: int, height: int, max_pixels: int, path: Any = None) -> None:
    """Raise InputError when ``width x height`` is above ``max_pixels`` or below MIN_SIDE."""
    pixels = width * height
    if pixels > max_pixels:
        raise InputError(
            f"image is {width}x{height} ({pixels / 1e6:.1f} megapixels), above the limit of "
            f"{max_pixels:,} pixels; if you trust this file, raise the limit with "
            f"--max-pixels {pixels} or the {MAX_PIXELS_ENV} environment variable",
            path,
        )
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"image is too small ({width}x{height}); at least {MIN_SIDE} px per side needed", path
        )


@contextlib.contextmanager
def _pil_pixel_limit(limit: int | None):
    """Temporarily set ``PIL.Image.MAX_IMAGE_PIXELS`` (thread-safe among atelier callers)."""
    with _PIL_LIMIT_LOCK:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


# --------------------------------------------------------------------------- reading


def _sniff_unsupported(head: bytes) -> str | None:
    """Name of a known but unreadable format from the first bytes of a file, else None."""
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith(b"8BPS"):
        return "Photoshop PSD"
    if head.startswith(b"gimp xcf"):
        return "GIMP XCF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "HEIC/HEIF"
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand == b"crx ":
            return "camera raw"
        if brand == b"jxl ":
            return "JPEG XL"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL "):
        return "JPEG XL"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in text:
        return "SVG (vector graphics)"
    if head.startswith(b"\x1f\x8b") and b".svg" in head[:64].lower():
        return "SVG (vector graphics)"
    return None


def _check_path(path: pathlib.Path) -> bytes:
    """Validate that ``path`` is a non-empty regular file; return its first 1024 bytes."""
    if not path.exists():
        raise InputError("file not found; check the path and spelling", path)
    if path.is_dir():
        raise InputError("is a directory, not an image file; give the path of an image file", path)
    ext = path.suffix.lower()
    if ext in _UNSUPPORTED_EXT:
        raise InputError(f"{_UNSUPPORTED_EXT[ext]} format is not supported; convert it to PNG or JPEG", path)
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except PermissionError:
        raise InputError("permission denied; make the file readable", path) from None
    except OSError as e:
        raise InputError(f"cannot read the file ({e.strerror or e}); check that it is a regular file", path) from None
    if not head:
        raise InputError("file is empty (0 bytes); re-export or re-download the image", path)
    return head


def _open_header(path: pathlib.Path, head: bytes) -> Image.Image:
    """``Image.open`` (header only) with every failure turned into InputError."""
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        fmt = _sniff_unsupported(head)
        if fmt is not None:
            raise InputError(f"{fmt} format is not supported; convert it to PNG or JPEG", path) from None
        for magic, name in _KNOWN_MAGIC:
            if head.startswith(magic):
                raise InputError(
                    f"looks like a {name} file but cannot be decoded; it is probably truncated or corrupt, "
                    "re-export or re-download it",
                    path,
                ) from None
        raise InputError(
            f"not a recognized image file; supported formats: {_SUPPORTED_INPUT} "
            "(and others Pillow reads); convert it to PNG or JPEG",
            path,
        ) from None
    except Image.DecompressionBombError:  # not reached with the limit lifted, kept as a guard
        raise InputError("image is too large to open safely; raise the limit with --max-pixels or "
                         f"the {MAX_PIXELS_ENV} environment variable", path) from None
    except PermissionError:
        raise InputError("permission denied; make the file readable", path) from None
    except Exception as e:  # SyntaxError, struct.error, OSError ... from a broken header
        raise InputError(
            f"cannot read the image header ({type(e).__name__}: {e}); the file is probably truncated "
            "or corrupt, re-export or re-download it",
            path,
        ) from None


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _gray_array_to_rgb(a: np.ndarray) -> Image.Image:
    a8 = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(a8[:, :, None], 3, axis=2), "RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha composited over white)."""
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode.startswith("I;16"):
        # 16-bit grayscale (PNG, TIFF): 0..65535 -> 0..255 (x/257 maps 257*v back to v exactly).
        return _gray_array_to_rgb(np.asarray(img).astype(np.float64) / 257.0)
    if mode == "I":
        # 32-bit integers. Pillow uses this for 16-bit data from some sources;
        # scale by the range the values occupy (8-bit, 16-bit, else min..max).
        a = np.asarray(img).astype(np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo >= 0 and hi <= 255:
            return _gray_array_to_rgb(a)
        if lo >= 0 and hi <= 65535:
            return _gray_array_to_rgb(a / 257.0)
        return _gray_array_to_rgb((a - lo) * (255.0 / max(hi - lo, 1e-12)))
    if mode == "F":
        # Floating point: [0, 1] data (the usual convention) is scaled to 0..255,
        # [0, 255] kept, anything else stretched from min..max.
        a = np.nan_to_num(np.asarray(img).astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo >= 0 and hi <= 1.0:
            return _gray_array_to_rgb(a * 255.0)
        if lo >= 0 and hi <= 255:
            return _gray_array_to_rgb(a)
        return _gray_array_to_rgb((a - lo) * (255.0 / max(hi - lo, 1e-12)))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return _composite_on_white(img)
    if mode == "CMYK":
        if img.info.get("icc_profile"):
            with contextlib.suppress(Exception):
                import io

                from PIL import ImageCms

                src = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
                return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        return img.convert("RGB")
    return img.convert("RGB")  # L, 1, P, YCbCr, LAB, HSV, RGBX, ...


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF Orientation tag (a broken EXIF block is ignored)."""
    try:
        out = ImageOps.exif_transpose(img)
    except Exception:
        return img
    return img if out is None else out


def _from_array(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(f"array must have shape (H, W), (H, W, 3) or (H, W, 4); got {a.shape}")
    if a.dtype == np.uint8:
        a8 = a
    elif a.dtype == np.bool_:
        a8 = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise InputError("float array contains NaN or infinity")
        lo, hi = float(a.min()), float(a.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise InputError(
                f"float array values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]; divide uint8 data by 255"
            )
        a8 = np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise InputError(f"array dtype must be uint8 or float in [0, 1], got {a.dtype}")
    a8 = np.ascontiguousarray(a8)
    if a8.ndim == 2:
        return Image.fromarray(a8, "L")
    return Image.fromarray(a8, "RGB" if a8.shape[2] == 3 else "RGBA")


def open_image(source: ImageSource, max_pixels: int | None = None) -> Image.Image:
    """Open an image as an upright 8-bit RGB Pillow image, validating it thoroughly.

    Args:
        source: one of
            * a file path (``str`` or ``os.PathLike``), any format Pillow reads
              (PNG, JPEG, WebP, TIFF, BMP, GIF, ...); animated files give their
              first frame;
            * a ``PIL.Image.Image`` of any mode;
            * a ``numpy.ndarray`` of shape ``(H, W)``, ``(H, W, 3)`` (RGB) or
              ``(H, W, 4)`` (RGBA), dtype ``uint8`` (0..255) or float in ``[0, 1]``;
            * a ``torch.Tensor`` image ``(3, H, W)`` or ``(1, 3, H, W)`` in ``[0, 1]``.
        max_pixels: largest accepted ``width * height`` in pixels; ``None``
            means :func:`max_pixels_from_env` (default 100 000 000). It replaces
            Pillow's own decompression-bomb limit for this call.

    Returns:
        A new ``PIL.Image.Image`` in mode ``"RGB"`` (8 bits per channel), with
        the EXIF orientation applied (so it is upright), and:
        grayscale (``1``, ``L``, ``I``, ``I;16*``, ``F``) replicated to three
        channels, 16-bit data scaled 0..65535 -> 0..255 (``v / 257``), float
        (``F``) data in [0, 1] scaled to 0..255; transparency (``RGBA``, ``LA``,
        palette or ``tRNS`` transparency) composited over white; CMYK converted
        to RGB (through its ICC profile when it has one).

    Raises:
        InputError: naming the file, for: a missing file, a directory, an empty
            file, a truncated or corrupt image, a non-image file, a known but
            unsupported format (SVG, HEIC/HEIF, PDF, PSD, camera raw such as
            .cr2/.nef/.dng, ...), an image above ``max_pixels`` (checked from the
            header, before decoding; the message gives the size, the limit and
            how to raise it with ``--max-pixels`` or ``ATELIER_MAX_PIXELS``), an
            image whose smaller side is below :data:`MIN_SIDE` (16 px); also for
            arrays/tensors of the wrong shape, dtype or range, a bad
            ``max_pixels`` value or a bad ``ATELIER_MAX_PIXELS``.
    """
    limit = _resolve_max_pixels(max_pixels)
    if isinstance(source, torch.Tensor):
        img = tensor_to_pil(_as_batch(source))
    elif isinstance(source, np.ndarray):
        img = _from_array(source)
    elif isinstance(source, Image.Image):
        img = source
    elif isinstance(source, (str, os.PathLike)):
        return _open_path(pathlib.Path(os.fspath(source)).expanduser(), limit)
    else:
        raise InputError(
            f"cannot use a {type(source).__name__} as an image; pass a file path, a PIL image, "
            "a numpy array or a torch tensor"
        )
    _check_size(img.width, img.height, limit)
    try:
        return _to_rgb(_upright(img)).copy()
    except Image.DecompressionBombError as e:
        raise InputError(f"image is too large ({e})") from None
    except OSError as e:  # a lazily loaded PIL image whose file is broken
        raise InputError(f"cannot decode the image ({e})", getattr(img, "filename", None) or None) from None


def _open_path(path: pathlib.Path, limit: int) -> Image.Image:
    head = _check_path(path)
    truncated_flag = ImageFile.LOAD_TRUNCATED_IMAGES
    # Lift Pillow's limit while reading the header so that *our* check (with
    # the real size in the message) decides; decode with Pillow's limit set
    # to ours so its internal checks (e.g. GIF frames) agree with it.
    with _pil_pixel_limit(None):
        im = _open_header(path, head)
        try:
            with im:
                _check_size(im.width, im.height, limit, path)
                Image.MAX_IMAGE_PIXELS = limit
                ImageFile.LOAD_TRUNCATED_IMAGES = False
                try:
                    im.seek(0)  # first frame of animated images
                    im.load()  # full decode: truncated files fail here
                    out = _to_rgb(_upright(im))
                    if out is im:
                        out = im.copy()
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = truncated_flag
        except InputError:
            raise
        except Image.DecompressionBombError:
            raise InputError(
                f"image is too large to decode safely (more than {limit:,} pixels); raise the limit with "
                f"--max-pixels or the {MAX_PIXELS_ENV} environment variable",
                path,
            ) from None
        except MemoryError:
            raise InputError("not enough memory to decode this image; use a smaller image", path) from None
        except Exception as e:  # OSError ("image file is truncated"), SyntaxError, ValueError, ...
            raise InputError(
                f"cannot decode the image ({type(e).__name__}: {e}); the file is probably truncated or "
                "corrupt, re-export or re-download it",
                path,
            ) from None
    return out


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert a Pillow image to an image tensor.

    Args:
        img: a ``PIL.Image.Image`` of any mode; it is converted to RGB exactly
            as by :func:`open_image` (alpha over white, 16-bit scaled, ...) but
            without size checks or EXIF rotation.

    Returns:
        ``torch.float32`` tensor ``(1, 3, H, W)``, values ``pixel / 255`` in ``[0, 1]``, on the CPU.
    """
    rgb = np.asarray(_to_rgb(img), dtype=np.uint8)
    t = torch.from_numpy(rgb.copy()).permute(2, 0, 1).unsqueeze(0)
    return t.to(torch.float32).div_(255.0)


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """Convert an image tensor to an 8-bit RGB Pillow image.

    Args:
        image: tensor ``(1, 3, H, W)`` or ``(3, H, W)``, any float dtype and
            device, nominally in ``[0, 1]``; values are clamped to ``[0, 1]``
            (NaN becomes 0), multiplied by 255 and rounded to the nearest integer.

    Returns:
        ``PIL.Image.Image`` in mode ``"RGB"``, size ``(W, H)``.

    Raises:
        ValueError: ``image`` has another shape (e.g. a batch of more than one).
    """
    x = image.detach()
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3 or x.shape[0] != 3:
        raise ValueError(f"expected an image tensor of shape (1, 3, H, W) or (3, H, W), got {tuple(image.shape)}")
    x = torch.nan_to_num(x.to("cpu", torch.float32), nan=0.0).clamp_(0.0, 1.0)
    a = x.mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(a, "RGB")


def _as_batch(t: torch.Tensor) -> torch.Tensor:
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] != 3:
        raise InputError(f"image tensor must have shape (3, H, W) or (1, 3, H, W), got {tuple(t.shape)}")
    if not (t.is_floating_point()):
        raise InputError(f"image tensor must be floating point in [0, 1], got {t.dtype}")
    return t.to(torch.float32)


def _check_size_arg(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise InputError(f"size must be a positive whole number of pixels, got {size!r}")
    return int(size)


def _longest_side_dims(height: int, width: int, size: int) -> tuple[int, int]:
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


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
        t = _as_batch(source)
        if size is not None:
            t = resize_longest(t, size)
        return t if device is None else t.to(device)
    img = open_image(source, max_pixels=max_pixels)
    if size is not None:
        h, w = _longest_side_dims(img.height, img.width, size)
        if (h, w) != (img.height, img.width):
            img = img.resize((w, h), Image.Resampling.LANCZOS)
    t = pil_to_tensor(img)
    return t if device is None else t.to(device)


# --------------------------------------------------------------------------- resizing


def _check_image_tensor(image: torch.Tensor, name: str = "image") -> None:
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
    _check_image_tensor(image)
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
    _check_image_tensor(image)
    size = _check_size_arg(size)
    h, w = _longest_side_dims(image.shape[-2], image.shape[-1], size)
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


def save_image(
    image: torch.Tensor | Image.Image,
    path: str | os.PathLike,
    metadata: dict | None = None,
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

    Returns:
        The resolved absolute path written.

    Raises:
        InputError: the path fails :func:`check_output_path`, or writing fails
            (e.g. the disk is full).
        ValueError: ``image`` is a tensor of the wrong shape.
    """
    out = check_output_path(path)
    fmt = OUTPUT_EXTENSIONS[out.suffix.lower()]
    pil = tensor_to_pil(image) if isinstance(image, torch.Tensor) else _to_rgb(image)
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

    with atomic_write(out) as f:
        pil.save(f, format=fmt, **kwargs)
    return out


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
    head = _check_path(p)
    with _pil_pixel_limit(None):
        im = _open_header(p, head)
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


# --------------------------------------------------------------------------- colour

# BT.601 full-range (JPEG/JFIF) RGB -> YCbCr; offsets (0, 0.5, 0.5).
_RGB2YCC = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168735891647856, -0.331264108352144, 0.5],
        [0.5, -0.418687589158345, -0.081312410841655],
    ],
    dtype=torch.float64,
)
_YCC2RGB = torch.linalg.inv(_RGB2YCC)  # exact inverse, so the round trip is exact up to float error
_YCC_OFFSET = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)


def _check_rgb(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor of shape (N, 3, H, W), got {shape}")


def _mix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(device=x.device, dtype=x.dtype), x)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB to BT.601 full-range YCbCr (as in JPEG).

    Args:
        x: float tensor ``(N, 3, H, W)``, RGB in ``[0, 1]``.

    Returns:
        Tensor ``(N, 3, H, W)``, same dtype/device: channel 0 is Y in
        ``[0, 1]``, channels 1 and 2 are Cb and Cr in ``[0, 1]`` centred at 0.5
        (0.5 = no colour). Not clamped.

    Raises:
        ValueError: ``x`` is not ``(N, 3, H, W)``.
    """
    _check_rgb(x, "x")
    return _mix(_RGB2YCC, x) + _YCC_OFFSET.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """BT.601 full-range YCbCr to RGB; the exact inverse of :func:`rgb_to_ycbcr`.

    Args:
        x: float tensor ``(N, 3, H, W)``: Y in ``[0, 1]``, Cb/Cr centred at 0.5.

    Returns:
        RGB tensor ``(N, 3, H, W)``, same dtype/device. Not clamped: YCbCr
        triples outside the RGB gamut give values outside ``[0, 1]``.

    Raises:
        ValueError: ``x`` is not ``(N, 3, H, W)``.
    """
    _check_rgb(x, "x")
    return _mix(_YCC2RGB, x - _YCC_OFFSET.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1))


def luminance(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B``.

    Args:
        x: float tensor ``(N, 3, H, W)``, RGB in ``[0, 1]``. A ``(N, 1, H, W)``
            tensor is taken to be luminance already and returned unchanged.

    Returns:
        Tensor ``(N, 1, H, W)`` in ``[0, 1]``, same dtype/device.

    Raises:
        ValueError: ``x`` is not ``(N, 3, H, W)`` or ``(N, 1, H, W)``.
    """
    if isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[1] == 1:
        return x
    _check_rgb(x, "x")
    return _mix(_RGB2YCC[:1], x)


def match_luminance(source_y: torch.Tensor, target_y: torch.Tensor) -> torch.Tensor:
    """Affinely map ``source_y`` to the mean and standard deviation of ``target_y``.

    ``out = (source_y - mean_s) * std_t / std_s + mean_t`` per batch element,
    statistics over all pixels (population std) -- the luminance matching of
    Gatys et al. (2016), "Preserving Color in Neural Artistic Style Transfer",
    applied to the style image before luminance-only transfer. A constant
    source maps to the constant ``mean_t``.

    Args:
        source_y: float tensor ``(N, 1, H, W)`` (luminance in ``[0, 1]``; any
            channel count works, statistics are taken over all channels).
        target_y: float tensor ``(N, 1, H', W')`` or ``(1, 1, H', W')``; its
            size may differ from the source's.

    Returns:
        Tensor with the shape of ``source_y``. NOT clamped: values may leave
        ``[0, 1]``; clamp if you need an image.

    Raises:
        ValueError: the inputs are not 4-D or the batch sizes are incompatible.
    """
    _check_image_tensor(source_y, "source_y")
    _check_image_tensor(target_y, "target_y")
    if target_y.shape[0] not in (1, source_y.shape[0]):
        raise ValueError(f"batch sizes differ: source {source_y.shape[0]}, target {target_y.shape[0]}")
    target_y = target_y.to(device=source_y.device, dtype=source_y.dtype)
    dims = (1, 2, 3)
    mu_s = source_y.mean(dim=dims, keepdim=True)
    sd_s = source_y.std(dim=dims, keepdim=True, unbiased=False)
    mu_t = target_y.mean(dim=dims, keepdim=True)
    sd_t = target_y.std(dim=dims, keepdim=True, unbiased=False)
    # A (numerically) constant source has no contrast to scale: map it to mean_t.
    scale = torch.where(sd_s > 1e-6, sd_t / sd_s.clamp_min(1e-6), torch.zeros_like(sd_s))
    return (source_y - mu_s) * scale + mu_t


def combine_luminance_chroma(y: torch.Tensor, chroma_from: torch.Tensor) -> torch.Tensor:
    """An RGB image with the luminance of ``y`` and the colour (Cb, Cr) of ``chroma_from``.

    Used for colour preservation: keep the stylized luminance and the
    content's chroma (Gatys et al. 2016).

    Args:
        y: float tensor ``(N, 1, H, W)`` luminance in ``[0, 1]``, or an RGB
            image ``(N, 3, H, W)`` whose :func:`luminance` is used.
        chroma_from: RGB image ``(N, 3, h, w)`` or ``(1, 3, h, w)`` in
            ``[0, 1]``; resized to ``H x W`` with :func:`resize_to` if needed.

    Returns:
        RGB tensor ``(N, 3, H, W)`` clamped to ``[0, 1]``, dtype/device of ``y``.

    Raises:
        ValueError: wrong shapes or incompatible batch sizes.
    """
    _check_image_tensor(y, "y")
    if y.shape[1] == 3:
        y = luminance(y)
    if y.shape[1] != 1:
        raise ValueError(f"y must have 1 or 3 channels, got {tuple(y.shape)}")
    _check_rgb(chroma_from, "chroma_from")
    c = chroma_from.to(device=y.device, dtype=y.dtype)
    if tuple(c.shape[-2:]) != tuple(y.shape[-2:]):
        c = resize_to(c, y.shape[-2], y.shape[-1])
    if c.shape[0] not in (1, y.shape[0]):
        raise ValueError(f"batch sizes differ: y {y.shape[0]}, chroma_from {c.shape[0]}")
    ycc = rgb_to_ycbcr(c).expand(y.shape[0], -1, -1, -1)
    return ycbcr_to_rgb(torch.cat([y, ycc[:, 1:]], dim=1)).clamp_(0.0, 1.0)


def match_color_histogram(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``source`` with each RGB channel's histogram matched to ``reference``.

    Uses ``skimage.exposure.match_histograms(..., channel_axis=-1)`` (exact
    per-channel CDF matching) on each batch element. Used to give the style
    image the content's colours (Gatys et al. 2016, "colour histogram matching").

    Args:
        source: float tensor ``(N, 3, H, W)`` in ``[0, 1]``.
        reference: float tensor ``(N, 3, H', W')`` or ``(1, 3, H', W')`` in
            ``[0, 1]``; its size may differ.

    Returns:
        Tensor with the shape, dtype and device of ``source``, in ``[0, 1]``.

    Raises:
        ValueError: wrong shapes or incompatible batch sizes.
    """
    from skimage.exposure import match_histograms

    _check_rgb(source, "source")
    _check_rgb(reference, "reference")
    if reference.shape[0] not in (1, source.shape[0]):
        raise ValueError(f"batch sizes differ: source {source.shape[0]}, reference {reference.shape[0]}")
    src = source.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    ref = reference.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    out = np.stack(
        [match_histograms(src[i], ref[i if ref.shape[0] > 1 else 0], channel_axis=-1) for i in range(src.shape[0])]
    )
    t = torch.from_numpy(out).permute(0, 3, 1, 2).to(device=source.device, dtype=source.dtype)
    return t.clamp_(0.0, 1.0).contiguous()


# --------------------------------------------------------------------------- colour modes and masks

#: Colour-preservation modes shared by every method (Gatys, feed-forward, AdaIN).
PRESERVE_COLOR_MODES = ("none", "luminance", "histogram")


def _check_color_mode(mode: str) -> None:
    if mode not in PRESERVE_COLOR_MODES:
        raise ValueError(f"preserve color must be one of {PRESERVE_COLOR_MODES}, got {mode!r}")


def color_inputs(content: torch.Tensor, styles: list[torch.Tensor], mode: str) -> tuple[torch.Tensor, list]:
    """Prepare content and style images for a colour-preservation mode (before stylization).

    Gatys, Ecker, Bethge, Hertzmann & Shechtman (2017), "Controlling Perceptual Factors in
    Neural Style Transfer", §5:

    * ``"none"``: unchanged;
    * ``"histogram"``: each style image's colours are matched to the content's
      (:func:`match_color_histogram`), so the style brings its texture, not its palette;
    * ``"luminance"``: luminance-only transfer: the content becomes its luminance and each
      style its luminance matched to the content's mean and spread, both as 3 grey channels;
      finish with :func:`color_output`.

    Args:
        content: float32 (1, 3, H, W) in [0, 1].
        styles: float32 (1, 3, h, w) images in [0, 1].
        mode: one of :data:`PRESERVE_COLOR_MODES`.

    Returns:
        ``(content, styles)``, float32 in [0, 1].

    Raises:
        ValueError: an unknown mode.
    """
    _check_color_mode(mode)
    if mode == "histogram":
        styles = [match_color_histogram(s, content) for s in styles]
    elif mode == "luminance":
        cy = luminance(content)
        styles = [match_luminance(luminance(s), cy).clamp(0, 1).expand(-1, 3, -1, -1) for s in styles]
        content = cy.expand(-1, 3, -1, -1)
    return content, list(styles)


def color_output(result: torch.Tensor, content: torch.Tensor, mode: str) -> torch.Tensor:
    """Finish a colour-preservation mode after stylization: for ``"luminance"`` the result's
    luminance with the original ``content``'s chroma (YCbCr, same size); otherwise ``result``
    unchanged. Shapes (N, 3, H, W), float32 in [0, 1].

    Raises:
        ValueError: an unknown mode.
    """
    _check_color_mode(mode)
    if mode == "luminance":
        return combine_luminance_chroma(luminance(result), content)
    return result


def load_mask(source: ImageSource, height: int, width: int,
              max_pixels: int | None = None) -> tuple[torch.Tensor, str | None]:
    """Load a mask image for spatial control: white = 1, black = 0, grey in between.

    Args:
        source: a mask file (any image :func:`open_image` reads; colours are turned into
            luminance, transparency is composited over white), a PIL image, an array or a tensor.
        height, width: the size the mask must have (the content image's, in pixels).
        max_pixels: pixel limit, see :func:`open_image`.

    Returns:
        ``(mask, note)``: float32 (1, 1, height, width) in [0, 1], and ``None`` or a sentence
        saying the mask was resized from its own size (tell the user: the edges may have moved).

    Raises:
        InputError: naming the file: missing, not an image, corrupt, too large.
    """
    t = load_image(source, max_pixels=max_pixels)
    m = luminance(t)
    note = None
    if m.shape[-2:] != (height, width):
        note = (f"the mask is {m.shape[-1]}x{m.shape[-2]} px and the content image {width}x{height} px; "
                f"the mask was resized to fit (make them the same size to place the edge exactly)")
        m = F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return m.clamp(0, 1), note
