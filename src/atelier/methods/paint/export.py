"""A painting's files: SVG (vector), a time-lapse (GIF or video) and the JSON stroke list, all written atomically.

SVG: a background rectangle, then one ``<g>`` per stroke in painting order, with the stroke's colour
and opacity, holding one ``<polygon>`` per piece of the curve (the exact hull of the piece's two
discs, :func:`~.strokes.segment_polygons`). Group opacity makes overlapping pieces of one stroke
blend once, as in the raster. :func:`read_svg` parses such a file with ``xml.etree`` and
:func:`rasterize_svg` paints the parsed polygons (Pillow, 4x supersampled coverage), so the file can
be checked against the PNG without a browser.
"""

from __future__ import annotations

import io
import os
import pathlib
import re
import xml.etree.ElementTree as ET
from typing import Optional, Union

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...core.errors import InputError
from ...core.files import atomic_write
from .plan import Painting
from .strokes import segment_polygons

__all__ = ["svg_text", "write_svg", "read_svg", "rasterize_svg", "write_timelapse", "write_strokes_json"]

PathLike = Union[str, os.PathLike]
_NS = "http://www.w3.org/2000/svg"


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(float(v) * 255)):02x}" for v in rgb)


def svg_text(painting: Painting, longest: Optional[int] = None) -> str:
    """The SVG document of a painting at an output size (longest side ``longest`` px, default the plan's)."""
    from .strokes import edge_pixels

    h, w = painting.size_for(longest)
    out = [f'<svg xmlns="{_NS}" version="1.1" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
           f'<rect x="0" y="0" width="{w}" height="{h}" fill="{_hex(painting.background)}"/>']
    soft = edge_pixels(painting.brush, h, w)
    blur = ""
    if soft > 1.0:  # a soft-edged brush: each stroke blurred by about its edge width
        out.append(f'<defs><filter id="soft" x="-20%" y="-20%" width="140%" height="140%">'
                   f'<feGaussianBlur stdDeviation="{soft / 3:.2f}"/></filter></defs>')
        blur = ' filter="url(#soft)"'
    for i, s in enumerate(painting.strokes.tolist()):
        polys = segment_polygons(s, h, w)
        out.append(f'<g id="stroke{i}" fill="{_hex(s[8:11])}" opacity="{s[11]:.4f}"{blur}>')
        for p in polys:
            out.append('<polygon points="' + " ".join(f"{x:.2f},{y:.2f}" for x, y in p) + '"/>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(painting: Painting, path: PathLike, longest: Optional[int] = None) -> None:
    """Write :func:`svg_text` to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(svg_text(painting, longest))


def _colour(text: str) -> tuple:
    m = re.fullmatch(r"#([0-9a-fA-F]{6})", text.strip())
    if not m:
        raise ValueError(f"unsupported colour {text!r}")
    return tuple(int(m.group(1)[i:i + 2], 16) / 255 for i in (0, 2, 4))


def read_svg(source: Union[PathLike, str]) -> dict:
    """Parse an SVG written by :func:`write_svg` (``xml.etree``; no code or external entity is run).

    Returns:
        ``{"width", "height", "background": (r, g, b), "strokes": [(rgb, opacity, [polygon (M, 2)])]}``.

    Raises:
        ValueError: not such an SVG document.
    """
    text = source if isinstance(source, str) and source.lstrip().startswith("<") else open(source).read()
    root = ET.fromstring(text)
    if root.tag != f"{{{_NS}}}svg":
        raise ValueError("not an SVG document")
    rect = root.find(f"{{{_NS}}}rect")
    strokes = []
    for g in root.findall(f"{{{_NS}}}g"):
        polys = [np.array([[float(v) for v in pt.split(",")] for pt in p.get("points").split()])
                 for p in g.findall(f"{{{_NS}}}polygon")]
        strokes.append((_colour(g.get("fill")), float(g.get("opacity", "1")), polys))
    return {"width": int(float(root.get("width"))), "height": int(float(root.get("height"))),
            "background": _colour(rect.get("fill")) if rect is not None else (1.0, 1.0, 1.0), "strokes": strokes}


def rasterize_svg(parsed: dict, supersample: int = 4) -> torch.Tensor:
    """Paint :func:`read_svg`'s polygons: float32 (1, 3, height, width) in [0, 1]."""
    h, w, ss = parsed["height"], parsed["width"], supersample
    canvas = torch.tensor(parsed["background"], dtype=torch.float32).reshape(1, 3, 1, 1).repeat(1, 1, h, w)
    for rgb, opacity, polys in parsed["strokes"]:
        pts = np.concatenate(polys)
        x0, y0 = max(int(np.floor(pts[:, 0].min())) - 1, 0), max(int(np.floor(pts[:, 1].min())) - 1, 0)
        x1, y1 = min(int(np.ceil(pts[:, 0].max())) + 1, w), min(int(np.ceil(pts[:, 1].max())) + 1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        mask = Image.new("L", ((x1 - x0) * ss, (y1 - y0) * ss), 0)
        draw = ImageDraw.Draw(mask)
        for p in polys:
            draw.polygon([((x - x0) * ss, (y - y0) * ss) for x, y in p], fill=255)
        cov = np.asarray(mask, dtype=np.float32).reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3)) / 255
        m = torch.from_numpy(cov) * opacity
        region = canvas[0, :, y0:y1, x0:x1]
        region.mul_(1 - m).add_(torch.tensor(rgb, dtype=torch.float32).reshape(3, 1, 1) * m)
    return canvas


#: Time-lapse formats: GIF (Pillow) or a video (H.264 .mp4/.mov/.mkv, VP9 .webm; PyAV, as ``atelier video``).
TIMELAPSE_FORMATS = (".gif", ".mp4", ".mov", ".mkv", ".webm")


def write_timelapse(painting: Painting, path: PathLike, longest: int = 384, frames: int = 60,
                    frame_ms: int = 80, hold_ms: int = 1500) -> int:
    """Write a time-lapse of the painting being painted, in painting order: a looping GIF, or a
    video (``.mp4`` H.264, ``.mov``, ``.mkv``, ``.webm`` VP9) written with
    :class:`atelier.io.video.VideoWriter` at ``1000 / frame_ms`` frames per second, the finished
    painting shown for ``hold_ms`` at the end.

    Args:
        longest: the time-lapse's longest side in pixels. frames: about how many frames (the empty
            canvas, then every ``ceil(N / frames)`` strokes, then the finished painting).
        frame_ms: milliseconds per frame (>= 10). hold_ms: how long the finished painting stays.

    Returns:
        The number of frames written (for a video, the held frames included).

    Raises:
        InputError: an extension other than :data:`TIMELAPSE_FORMATS`, or a write that fails.
    """
    from .strokes import edge_pixels, render_frames

    ext = pathlib.Path(os.fspath(path)).suffix.lower()
    if ext not in TIMELAPSE_FORMATS:
        raise InputError(f"a time-lapse is {', '.join(TIMELAPSE_FORMATS)}, not {ext or 'a name without extension'!r}",
                         path)
    h, w = painting.size_for(longest)
    n = max(1, painting.strokes.shape[0])
    every = max(1, -(-n // frames))
    shots = render_frames(painting.strokes, h, w, every, painting.background, edge_pixels(painting.brush, h, w))
    arrays = [(f[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8) for f in shots]
    if ext != ".gif":
        from ...io.video import VideoWriter

        hold = max(1, round(hold_ms / frame_ms))
        with VideoWriter(path, 1000 / max(10, frame_ms), w, h) as out:
            for a in arrays + [arrays[-1]] * (hold - 1):
                out.write(a)
        return len(arrays) + hold - 1
    images = [Image.fromarray(a).quantize(colors=255, method=Image.Quantize.MEDIANCUT) for a in arrays]
    durations = [frame_ms] * (len(images) - 1) + [hold_ms]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    with atomic_write(path) as f:
        f.write(buf.getvalue())
    return len(images)


def write_strokes_json(painting: Painting, path: PathLike) -> None:
    """Write :meth:`Painting.to_dict` as JSON, atomically."""
    import json

    with atomic_write(path, "w") as f:
        json.dump(painting.to_dict(), f)
        f.write("\n")
