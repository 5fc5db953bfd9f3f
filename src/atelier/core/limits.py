"""Bounds checked before any work starts: every image size a user can ask for (output size,
style scale, pyramid levels, style size) against the pixel limit, and a rough estimate of
the memory a run needs against the memory this machine has free.

Both checks raise :class:`~atelier.core.errors.InputError` with a one-line message, so the
CLI refuses with exit code 2 before loading a network or allocating an image.
"""

from __future__ import annotations

import os

import numpy as np
from typing import Optional

from .errors import InputError

#: Environment variable that overrides :data:`DEFAULT_MAX_PIXELS`.
MAX_PIXELS_ENV = "ATELIER_MAX_PIXELS"

#: Largest image accepted by default, in pixels (width * height): 100 megapixels.
DEFAULT_MAX_PIXELS = 100_000_000



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


def resolve_max_pixels(max_pixels: int | None) -> int:
    if max_pixels is None:
        return max_pixels_from_env()
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels <= 0:
        raise InputError(f"max_pixels must be a positive whole number of pixels, got {max_pixels!r}")
    return int(max_pixels)


__all__ = ["BYTES_PER_PIXEL", "available_memory", "check_memory", "check_pixels", "parse_bytes", "scaled_dims"]

#: Rough peak bytes per output pixel of each kind of run (an estimate from the layer sizes, fp32,
#: generous; not a measurement): an optimization keeps VGG19 activations and their gradients
#: for a forward and backward pass (about 600 floats per pixel, twice) plus the L-BFGS
#: history; a one-pass network (feed-forward, AdaIN) only the activations of a few layers at a
#: time. WCT whitens and colours every level's features in float64 (at relu1_1, 64 channels per
#: pixel, several copies): an untiled 4K run passed 21 GB of RSS and was killed (2026-12-03). The
#: sketch's contour network upsamples five stages' projections to full size: an untiled 4K sketch
#: peaked at 16.9 GB of RSS (1720 bytes per pixel, 2026-12-04).
BYTES_PER_PIXEL = {"gatys": 6000, "one-pass": 1500, "wct": 4000, "sketch": 1800}


def scaled_dims(height: int, width: int, longest: int) -> tuple[int, int]:
    """(H, W) of a ``height x width`` image resized so that its longest side is ``longest``."""
    s = longest / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def check_pixels(height: int, width: int, what: str, max_pixels: Optional[int] = None) -> None:
    """Refuse a planned image of ``height x width`` above the pixel limit (``max_pixels``,
    default 100 MP or ``$ATELIER_MAX_PIXELS``).

    Args:
        what: what the size is, for the message (e.g. ``"--size 100000"``).

    Raises:
        InputError: above the limit; the message gives the size, the limit and how to raise it.
    """
    limit = resolve_max_pixels(max_pixels)
    pixels = int(height) * int(width)
    if pixels > limit:
        raise InputError(f"{what} gives a {width}x{height} image ({pixels / 1e6:.1f} megapixels), above the "
                         f"limit of {limit:,} pixels; ask for a smaller size, or raise the limit with "
                         f"--max-pixels or {MAX_PIXELS_ENV} if this machine can hold it")


def available_memory(device=None) -> Optional[int]:
    """Bytes of memory free for a new allocation: the GPU's free memory for a CUDA device,
    else ``MemAvailable`` from ``/proc/meminfo`` (Linux) or ``os.sysconf`` available pages;
    ``None`` when unknown."""
    if device is not None and getattr(device, "type", str(device).split(":")[0]) == "cuda":
        try:
            import torch

            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(pixels: int, kind: str, what: str, device=None, images: int = 1) -> int:
    """Refuse a run whose estimated peak memory exceeds the memory available now.

    Args:
        pixels: output pixels of the largest image processed at once.
        kind: a key of :data:`BYTES_PER_PIXEL`.
        what: what is being run, for the message.
        images: images processed together (a batch).

    Returns:
        The estimate in bytes.

    Raises:
        InputError: the estimate exceeds :func:`available_memory` (when that is known).
    """
    need = int(pixels) * BYTES_PER_PIXEL[kind] * max(1, images)
    free = available_memory(device)
    if free is not None and need > free:
        raise InputError(f"{what} needs about {need / 2**30:.1f} GiB of memory, but only {free / 2**30:.1f} GiB "
                         "is available; ask for a smaller size")
    return need


def parse_bytes(text) -> int:
    """``8G``, ``512M``, ``2.5GiB``, ``"1000"`` or an int -> bytes. Raises ValueError otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"max_memory must be > 0 bytes, got {text}")
        return text
    t = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    unit = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if unit != 1 else t) * unit
    except ValueError:
        value = -1
    if not value > 0 or value == float("inf"):
        raise ValueError(f"--max-memory expects a size like 8G or 512M, got {text!r}")
    return int(value)
