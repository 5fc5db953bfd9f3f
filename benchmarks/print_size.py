"""Print sizes (issue 24): peak RSS, wall time, the tile plan and a seam measure of each method at 4K / 8K.

Each case runs ``atelier stylize`` in a fresh process on the bundled cat photo (chelsea, 451x300,
enlarged: the size asked is the output's longest side) with the bundled Starry Night, and reads
its peak RSS (``RUSAGE_CHILDREN`` of a one-case wrapper), its wall time, the plan it printed and
the tiles recorded in its metadata.

Seams: the mean luminance step across the tile borders (Gatys: the last iteration's grid;
one-pass methods: the centre of every overlap) divided by the mean step across the lines 2-8 px
beside them (:func:`seam_ratio`); 1.0 is no seam, the target at most 1.05. The same measure on
lines moved 32-144 px off the borders (``seam_control``) shows its spread on this picture. A 1:1
crop around a border crossing is saved to ``--crops`` (default docs/images/) to be looked at.

    python benchmarks/print_size.py --case gatys:3840:8G:200/60/20/6 --json docs/results/print_size.json
    python benchmarks/print_size.py --case starry_night:3840 --case adain:7680:12G

A case is ``METHOD:SIZE[:MAX_MEMORY[:ITERATIONS]]`` (METHOD: gatys, adain, wct, a feed-forward model
such as starry_night, or sketch for ``atelier sketch``) (Gatys: ITERATIONS at every scale, default 10,
or one count per scale, coarse to fine, as ``200/60/20/6``).
Results are appended to the JSON (one record per case, with date and machine).
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
PHOTO = ROOT / "src" / "atelier" / "assets" / "chelsea.jpg"
STYLE = ROOT / "src" / "atelier" / "assets" / "starry_night.jpg"
PROBE = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
         "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
         "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, "
         "time.perf_counter() - t); sys.stderr.write(r.stderr)")


def seam_ratio(image: np.ndarray, rows: list[int], cols: list[int], near: int = 8) -> float:
    """Mean |luminance step| across the given row and column borders over the mean step across
    the lines 2 to ``near`` px on either side of each border (the same picture content, so a
    photo's own edges count less); 1.0: no seam."""
    y = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    dy, dx = np.abs(np.diff(y, axis=0)), np.abs(np.diff(y, axis=1)).T  # dy[r - 1]: between rows r - 1 and r
    on, off = [], []
    for steps, borders in ((dy, rows), (dx, cols)):
        for b in borders:
            if 0 < b <= len(steps):
                on.append(steps[b - 1])
                off += [steps[b - 1 + k] for k in range(-near, near + 1) if abs(k) >= 2 and 0 <= b - 1 + k < len(steps)]
    return float(np.concatenate(on).mean() / np.concatenate(off).mean()) if on else float("nan")


def seam_control(image: np.ndarray, rows: list[int], cols: list[int]) -> list[float]:
    """:func:`seam_ratio` of the same borders moved by 32 to 144 px (lines where no tile ended): the
    spread of the measure on this picture without a seam, to read the real ratio against."""
    h, w = image.shape[:2]
    return [seam_ratio(image, [r + d for r in rows if 0 < r + d < h], [c + d for c in cols if 0 < c + d < w])
            for d in range(32, 160, 16)]


def one_pass_borders(n: int, tile: int, overlap: int) -> list[int]:
    """Centres of the feathered overlaps of :func:`atelier.imaging.tiles.blend_tiles` along n px."""
    return [k * tile for k in range(1, -(-n // tile))]


def run_case(case: str, tmp: pathlib.Path, crops: pathlib.Path | None) -> dict:
    parts = case.split(":")
    method, size = parts[0], int(parts[1])
    max_memory = parts[2] if len(parts) > 2 and parts[2] else None
    iterations = parts[3] if len(parts) > 3 else "10"
    out, metrics = tmp / f"{method}-{size}.png", tmp / f"{method}-{size}.json"
    exe = str(pathlib.Path(sys.executable).with_name("atelier"))
    if method == "sketch":
        cmd = [exe, "sketch", str(PHOTO), "-o", str(out), "--size", str(size), "--precision", "fp32"]
    else:
        cmd = [exe, "stylize", str(PHOTO), "-o", str(out), "--size", str(size), "--method", method, "--precision",
               "fp32"]
    if max_memory:
        cmd += ["--max-memory", max_memory]
    if method not in ("starry_night", "sketch") and not method.endswith(".safetensors"):
        cmd += ["-s", str(STYLE)]
    if method == "gatys":
        cmd += (["--scale-iterations", iterations.replace("/", ",")] if "/" in iterations else ["-n", iterations])
        cmd += ["--seed", "0", "--metrics", str(metrics)]
    t, started = time.perf_counter(), datetime.datetime.now().isoformat(timespec="seconds")
    r = subprocess.run([sys.executable, "-c", PROBE, *cmd], capture_output=True, text=True)
    rc, peak, wall = r.stdout.split()
    plan = [ln.removeprefix("print size: ") for ln in re.sub(r"\n(?!print size|stylizing|wrote)", " ",
                                                              r.stderr).splitlines() if ln.startswith("print size")]
    rec = {"case": case, "method": method, "size": size, "max_memory": max_memory, "rc": int(rc),
           "peak_rss_gb": int(peak) / 1e9, "wall_s": float(wall), "plan": plan,
           "planned_peak_gib": [float(m) for m in re.findall(r"about ([\d.]+) GiB\s+at the peak", " ".join(plan))],
           "started": started, "total_s": None}
    if int(rc) != 0:
        rec["error"] = r.stderr.strip().splitlines()[-1:]
        return rec
    with Image.open(out) as im:
        meta = json.loads(im.info.get("atelier", "{}"))
        arr = np.asarray(im.convert("RGB"))
    h, w = arr.shape[:2]
    rec["output"] = [w, h]
    if method == "gatys":
        m = json.loads(metrics.read_text())
        rec.update(iterations=iterations, scales=m["scales"], tiles=m["tiles"], final_losses=m["final_losses"],
                   seconds_per_iteration=m["seconds_per_iteration"])
        rows, cols = m["last_grid"] or ([0, h], [0, w])
    else:
        tiles = meta.get("tiles")
        rec["tiles"] = tiles
        rows = one_pass_borders(h, tiles["tile"], tiles["overlap"]) if tiles else []
        cols = one_pass_borders(w, tiles["tile"], tiles["overlap"]) if tiles else []
    inner = [r for r in rows if 0 < r < h] + [c for c in cols if 0 < c < w]
    rec["seam_ratio"] = seam_ratio(arr, rows, cols) if inner else None  # untiled: no border to measure
    control = seam_control(arr, rows, cols) if inner else []
    rec["seam_control"] = {"mean": float(np.mean(control)), "min": float(np.min(control)),
                           "max": float(np.max(control))} if control else None
    rec["borders"] = {"rows": rows, "cols": cols}
    inner_r, inner_c = [r for r in rows if 0 < r < h], [c for c in cols if 0 < c < w]
    if crops is not None and inner_r and inner_c:
        cy, cx = inner_r[0], inner_c[0]
        y0, x0 = max(0, cy - 256), max(0, cx - 256)
        crops.mkdir(parents=True, exist_ok=True)
        name = crops / f"print-size-{method}-{size}-border-crop.jpg"
        Image.fromarray(arr[y0:y0 + 512, x0:x0 + 512]).save(name, quality=90)
        rec["crop"] = str(name.relative_to(ROOT)) if name.is_relative_to(ROOT) else str(name)
    rec["total_s"] = time.perf_counter() - t
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", required=True, help="METHOD:SIZE[:MAX_MEMORY[:ITERATIONS]]")
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--crops", type=pathlib.Path, default=ROOT / "docs" / "images")
    args = ap.parse_args()
    import torch

    flags = open("/proc/cpuinfo").read() if pathlib.Path("/proc/cpuinfo").exists() else ""
    machine = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
               "cpu_flags": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags],
               "threads": torch.get_num_threads(), "torch": torch.__version__}
    records = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    with tempfile.TemporaryDirectory() as d:
        for case in args.case:
            rec = {**machine, **run_case(case, pathlib.Path(d), args.crops)}
            print(json.dumps(rec), flush=True)
            records.append(rec)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
