"""Stroke size at print sizes (issue 24): ``--stroke-scale``.

A feed-forward model paints strokes of a fixed size in pixels, so at 4K they cover a quarter of
the painting's proportion they had at 1K (lengstrom/fast-style-transfer#259). This runs
``atelier stylize --method MODEL`` on one photo at 1K, at 4K and at 4K with
``--stroke-scale 3.75`` (the network at 1024 px, the result upscaled), crops the same part of the
picture from each, shows the crops at the same size side by side, and measures the strokes'
fineness there as the mean absolute Laplacian of the luminance (lower: larger strokes). Run:

    python benchmarks/stroke_scale.py --json docs/results/stroke_scale.json \
        --grid docs/images/stroke-scale-crops.jpg
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "data" / "content" / "000000000030.jpg"
CASES = (("1K", 1024, 1.0), ("4K", 3840, 1.0), ("4K, --stroke-scale 3.75", 3840, 3.75))


def fineness(im: Image.Image) -> float:
    """Mean absolute 4-neighbour Laplacian of the luminance in [0, 1] units."""
    y = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
    lap = -4 * y[1:-1, 1:-1] + y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]
    return float(np.abs(lap).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, default=PHOTO)
    ap.add_argument("--model", default="starry_night")
    ap.add_argument("--crop", type=float, default=0.3, help="crop width as a fraction of the picture's width")
    ap.add_argument("--show", type=int, default=480, help="each crop is shown this many pixels wide")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--grid", type=Path)
    args = ap.parse_args(argv)
    results, crops = {"photo": args.photo.name, "model": args.model, "cases": []}, []
    with tempfile.TemporaryDirectory() as tmp:
        for label, size, scale in CASES:
            out = Path(tmp) / f"{size}-{scale}.png"
            cmd = ["atelier", "stylize", str(args.photo), "--method", args.model, "--size", str(size),
                   "--stroke-scale", str(scale), "-o", str(out), "-q"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            seconds = time.perf_counter() - t0
            with Image.open(out) as im:
                w, h = im.size
                cw = round(w * args.crop)
                box = (round(w * 0.4), round(h * 0.35), round(w * 0.4) + cw, round(h * 0.35) + cw)
                crop = im.convert("RGB").crop(box).resize((args.show, args.show), Image.Resampling.LANCZOS)
            crops.append((label, crop))
            results["cases"].append({"label": label, "size": [w, h], "stroke_scale": scale, "seconds": seconds,
                                     "fineness_at_shown_size": fineness(crop)})
            print(f"{label:26s} {w}x{h}  {seconds:6.1f} s  fineness {fineness(crop):.4f}", flush=True)
    results.update(machine=platform.processor() or platform.machine(), date=date.today().isoformat())
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.grid:
        grid = Image.new("RGB", (len(crops) * (args.show + 8) - 8, args.show + 28), "white")
        draw = ImageDraw.Draw(grid)
        for i, (label, crop) in enumerate(crops):
            grid.paste(crop, (i * (args.show + 8), 28))
            draw.text((i * (args.show + 8) + 4, 6), label, fill="black")
        grid.save(args.grid, quality=90)
    return 0


if __name__ == "__main__":
    sys.exit(main())
