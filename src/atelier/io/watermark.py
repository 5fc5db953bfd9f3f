"""An invisible watermark in the pixels (issue 28): DWT-DCT, through the ``invisible-watermark``
package (``pip install 'atelier[provenance]'``).

Unlike Content Credentials (:mod:`atelier.io.provenance`), which live in the file and vanish
when a site re-encodes it, the watermark is in the pixels themselves: a fixed 48-bit payload
(:data:`PAYLOAD`, the bytes ``b"atelir"``) written into the DCT of 4x4 blocks of the Haar
approximation band of the U (chroma) channel, the library's default for ``method="dwtDct"``
(``WatermarkEncoder.encode(bgr, "dwtDct")``), repeated over the whole image. Detection decodes the 48 bits and counts how many match the payload; at least
:data:`MIN_MATCHING_BITS` of 48 (a random image reaches that with probability about 5e-8 per
try) means "present". It reads the image as it is, then (when that fails) enlarged to twice its
size, so that a copy shrunk to half size is found again. How often it survives JPEG, resizing and cropping is measured by
``benchmarks/watermark.py`` (docs/provenance.md).

Images must have at least 256 x 256 = 65,536 pixels (the library's limit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_MATCHING_BITS", "MIN_PIXELS", "PAYLOAD", "WatermarkResult", "detect_watermark", "embed_watermark",
           "require_watermark"]

#: The watermark's payload (48 bits).
PAYLOAD = b"atelir"
#: Matching bits (of 48) from which the watermark counts as present.
MIN_MATCHING_BITS = 42
#: The smallest image (pixels) the library marks or reads.
MIN_PIXELS = 256 * 256


def require_watermark():
    """The ``imwatermark`` module, or an ImportError whose message says what to install."""
    try:
        import imwatermark
    except ImportError:
        raise ImportError("--watermark needs the invisible-watermark package: pip install 'atelier[provenance]'") \
            from None
    return imwatermark


def _bits() -> np.ndarray:
    return np.unpackbits(np.frombuffer(PAYLOAD, dtype=np.uint8)).astype(bool)


def embed_watermark(rgb: np.ndarray) -> np.ndarray:
    """Write the watermark into an image.

    Args:
        rgb: uint8 array (H, W, 3), RGB, with H * W >= :data:`MIN_PIXELS`.

    Returns:
        A new uint8 array (H, W, 3), RGB, visually the same (PSNR typically above 40 dB).

    Raises:
        ValueError: the image is too small or not (H, W, 3) uint8.
        ImportError: invisible-watermark is not installed.
    """
    rgb = _check(rgb)
    wm = require_watermark()
    enc = wm.WatermarkEncoder()
    enc.set_watermark("bytes", PAYLOAD)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    out = enc.encode(bgr, "dwtDct")
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8)[..., ::-1])


@dataclass(frozen=True)
class WatermarkResult:
    """What :func:`detect_watermark` found: ``matching_bits`` of ``total_bits`` equal the payload;
    ``present`` when at least :data:`MIN_MATCHING_BITS` do (``None``: the image is too small to read)."""

    present: bool | None
    matching_bits: int
    total_bits: int = 48

    def describe(self) -> str:
        if self.present is None:
            return "watermark: not checked (image smaller than 256 x 256 pixels)"
        word = "present" if self.present else "not found"
        return f"watermark: {word} ({self.matching_bits}/{self.total_bits} bits match)"


def detect_watermark(rgb: np.ndarray) -> WatermarkResult:
    """Look for the watermark in an image.

    Args:
        rgb: uint8 array (H, W, 3), RGB (any size; under :data:`MIN_PIXELS` even at twice the size
            gives ``present=None``).

    Returns:
        A :class:`WatermarkResult`.

    Raises:
        ImportError: invisible-watermark is not installed.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    wm = require_watermark()
    dec = wm.WatermarkDecoder("bits", len(PAYLOAD) * 8)
    best = None
    for scale in (1, 2):  # as it is, then at twice the size: a copy shrunk to half reads again
        x = rgb.astype(np.uint8)
        if scale != 1:
            from PIL import Image

            x = np.asarray(Image.fromarray(x).resize((x.shape[1] * scale, x.shape[0] * scale), Image.BICUBIC))
        if x.shape[0] * x.shape[1] < MIN_PIXELS:
            continue
        bits = np.asarray(dec.decode(np.ascontiguousarray(x[..., ::-1]), "dwtDct"), dtype=bool)
        n = int((bits == _bits()).sum())
        best = n if best is None else max(best, n)
        if n >= MIN_MATCHING_BITS:
            break
    if best is None:
        return WatermarkResult(None, 0)
    return WatermarkResult(best >= MIN_MATCHING_BITS, best)


def _check(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {rgb.dtype} {rgb.shape}")
    if rgb.shape[0] * rgb.shape[1] < MIN_PIXELS:
        raise ValueError(f"the invisible watermark needs at least 256 x 256 pixels; this image is "
                         f"{rgb.shape[1]}x{rgb.shape[0]}: use a larger --size or leave out --watermark")
    return rgb
