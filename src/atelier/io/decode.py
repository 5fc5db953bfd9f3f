"""Decoding untrusted image files into RGB pictures, checked up front.

Every problem becomes an :class:`~atelier.core.errors.InputError` whose message names the
file, says what is wrong and what to do: missing or empty files, directories, truncated
or corrupt files, non-images, formats Pillow cannot read (SVG, HEIC/HEIF, PDF, PSD,
camera raw), images above a pixel limit (decompression bombs, checked from the header
before decoding) and images too small for the VGG pooling stack. :mod:`atelier.io.images`
builds loading, resizing and saving on top of this.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import threading
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..core.errors import InputError
from ..core.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, max_pixels_from_env, resolve_max_pixels  # noqa: F401

#: Smallest accepted side, in pixels. VGG halves the resolution four times
#: before conv5_1, so anything smaller has no spatial extent left there.
MIN_SIDE = 16


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
def pil_pixel_limit(limit: int | None):
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


def check_path(path: pathlib.Path) -> bytes:
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


def open_header(path: pathlib.Path, head: bytes) -> Image.Image:
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


def to_rgb(img: Image.Image) -> Image.Image:
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
    limit = resolve_max_pixels(max_pixels)
    if isinstance(source, torch.Tensor):
        img = tensor_to_pil(as_batch(source))
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
        return to_rgb(_upright(img)).copy()
    except Image.DecompressionBombError as e:
        raise InputError(f"image is too large ({e})") from None
    except OSError as e:  # a lazily loaded PIL image whose file is broken
        raise InputError(f"cannot decode the image ({e})", getattr(img, "filename", None) or None) from None


def _open_path(path: pathlib.Path, limit: int) -> Image.Image:
    head = check_path(path)
    truncated_flag = ImageFile.LOAD_TRUNCATED_IMAGES
    # Lift Pillow's limit while reading the header so that *our* check (with
    # the real size in the message) decides; decode with Pillow's limit set
    # to ours so its internal checks (e.g. GIF frames) agree with it.
    with pil_pixel_limit(None):
        im = open_header(path, head)
        try:
            with im:
                _check_size(im.width, im.height, limit, path)
                Image.MAX_IMAGE_PIXELS = limit
                ImageFile.LOAD_TRUNCATED_IMAGES = False
                try:
                    im.seek(0)  # first frame of animated images
                    im.load()  # full decode: truncated files fail here
                    out = to_rgb(_upright(im))
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
    rgb = np.asarray(to_rgb(img), dtype=np.uint8)
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


def as_batch(t: torch.Tensor) -> torch.Tensor:
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] != 3:
        raise InputError(f"image tensor must have shape (3, H, W) or (1, 3, H, W), got {tuple(t.shape)}")
    if not (t.is_floating_point()):
        raise InputError(f"image tensor must be floating point in [0, 1], got {t.dtype}")
    h, w = t.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise InputError(f"image is too small ({w}x{h}); at least {MIN_SIDE} px per side needed")
    t = t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise InputError("image tensor contains NaN or infinity")
    lo, hi = float(t.min()), float(t.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(f"image tensor values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]; "
                         "divide 0-255 data by 255")
    return t.clamp(0.0, 1.0) if lo < 0 or hi > 1 else t
