"""Robustness benchmark (issue 15): how far does each method's result move when the photo is
JPEG-compressed, noisy or blurred, with and without the pre-filter?

For every method (a shipped feed-forward model, AdaIN, WCT, Gatys) and every held-out photo
(``../shared/data/content``, never used for training), :func:`atelier.analysis.robustness.robustness`
stylizes the photo clean and under the 9 corruptions of :data:`atelier.imaging.corrupt.STANDARD`,
once without a pre-filter and once with ``--prefilter auto``; each result is compared with the
clean photo's result (luminance SSIM, VGG perceptual distance) and scored (content loss against
the clean photo, style loss against the style image). All methods use The Starry Night.

Gatys runs at 128 px with 40 L-BFGS iterations (it stays affordable on a shared CPU); the
one-pass methods at 256 px. Results are merged into the JSON file as each (method, photo)
finishes, so a stopped run goes on where it stopped when started again.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/robustness.py --json docs/results/robustness.json
    # feed-forward models trained with and without --augment-corruptions (issue 15):
    python benchmarks/robustness.py --json docs/results/robustness-augment.json --methods A.safetensors,B.safetensors
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import environment  # noqa: E402

from atelier.analysis.robustness import grid_image, robustness, summarize  # noqa: E402
from atelier.analysis.cluster import save_png  # noqa: E402
from atelier.io import images as img  # noqa: E402
from atelier.core.files import atomic_write  # noqa: E402
from atelier.analysis.metrics import Scorer, ScoreConfig  # noqa: E402
from atelier.api.video import build_stylizer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
STYLE = DATA / "styles" / "starry_night.jpg"
PHOTOS = ("000000000030.jpg", "000000000194.jpg", "000000000459.jpg")
SIZES = {"gatys": 128}
GATYS_ITERATIONS = 40


def stylizer_for(method: str):
    styles = [STYLE] if method in ("gatys", "adain", "wct") else []
    kind, fn = build_stylizer(method, styles, iterations=GATYS_ITERATIONS, device="cpu", precision="fp32")
    return (lambda x: fn(x, None, [])) if kind == "optimizer" else fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=pathlib.Path, required=True)
    ap.add_argument("--methods", default="starry_night,adain,wct,gatys")
    ap.add_argument("--photos", default=",".join(PHOTOS))
    ap.add_argument("--prefilters", default="none,auto")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--grid", type=pathlib.Path, default=None, help="grid PNG of the first method and photo")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = json.loads(args.json.read_text()) if args.json.exists() else {}
    data.setdefault("environment", environment())
    data["environment"]["uptime_at_start"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    data.setdefault("runs", {})
    style = img.load_image(STYLE, size=256)
    scorer = Scorer(ScoreConfig(device="cpu"))
    for method in args.methods.split(","):
        stylizer = None
        for photo in args.photos.split(","):
            for pf in args.prefilters.split(","):
                key = f"{method}|{photo}|{pf}"
                if key in data["runs"]:
                    continue
                stylizer = stylizer or stylizer_for(method)
                size = SIZES.get(method, args.size)
                content = img.load_image(DATA / "content" / photo, size=size)
                t0 = time.perf_counter()
                rows, images = robustness(stylizer, content, style, prefilter=pf, scorer=scorer,
                                          keep_images=args.grid is not None)
                data["runs"][key] = {"method": method, "photo": photo, "prefilter": pf, "size": list(content.shape[-2:]),
                                     "rows": [r.to_dict() for r in rows], "summary": summarize(rows),
                                     "seconds": time.perf_counter() - t0}
                if args.grid is not None and images:
                    save_png(grid_image(rows, images, title=f"{method} on {photo}, prefilter {pf}: "
                                                            "input above, result below"),
                             args.grid.with_name(f"{args.grid.stem}-{pathlib.Path(method).stem}-{pf}.png"))
                    args.grid = None
                with atomic_write(args.json, "w") as f:
                    json.dump(data, f, indent=1)
                s = data["runs"][key]["summary"]
                print(f"{key}: SSIM {s['ssim']:.3f} perceptual {s['perceptual']:.4f} content {s['content_loss']:.3f} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    data["table"] = table(data["runs"])
    with atomic_write(args.json, "w") as f:
        json.dump(data, f, indent=1)
    for line in data["table"]:
        print(line)


def table(runs: dict) -> list[str]:
    """Markdown rows: per method and pre-filter, mean over photos of each corruption's SSIM / perceptual."""
    groups: dict = {}
    for r in runs.values():
        groups.setdefault((r["method"], r["prefilter"]), []).append(r)
    names = [row["corruption"] for row in next(iter(runs.values()))["rows"]][1:]
    lines = ["| method | prefilter | " + " | ".join(names) + " | mean SSIM | mean perceptual | content loss clean -> corrupted |",
             "|" + "---|" * (len(names) + 5)]
    for (method, pf), rs in groups.items():
        cells = []
        for i, n in enumerate(names, start=1):
            ss = np.mean([r["rows"][i]["ssim"] for r in rs])
            pp = np.mean([r["rows"][i]["perceptual"] for r in rs])
            cells.append(f"{ss:.3f} / {pp:.3f}")
        ms = np.mean([r["summary"]["ssim"] for r in rs])
        mp = np.mean([r["summary"]["perceptual"] for r in rs])
        c0 = np.mean([r["rows"][0]["content_loss"] for r in rs])
        c1 = np.mean([r["summary"]["content_loss"] for r in rs])
        lines.append(f"| {pathlib.Path(method).stem} | {pf} | " + " | ".join(cells)
                     + f" | {ms:.3f} | {mp:.3f} | {c0:.3f} -> {c1:.3f} |")
    return lines


if __name__ == "__main__":
    main()
