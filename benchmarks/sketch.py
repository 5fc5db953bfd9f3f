"""Boundary benchmark of the sketch contours (issue 17): ODS/OIS/AP on BSDS500 val.

Methods, each thinned and matched the same way (:mod:`atelier.methods.sketch.boundary_eval`:
NMS, 49 thresholds, thinning, matching tolerance 0.0075 of the diagonal):

* ``contours``: the shipped contour network (HED-style heads on the frozen VGG19, trained on
  BSDS500 train; never saw val);
* ``vgg-gradient``: no learning, gradient magnitude of VGG19 relu1_2/relu2_2/relu3_4 features;
* ``canny-s<sigma>``: OpenCV Canny after a Gaussian blur of sigma px, at 24 high thresholds
  (low = 0.4 high), each a level of the sweep (no NMS: Canny is thin already).

Per-photo counts are kept in ``--work`` so an interrupted run continues. Speed (``--speed``):
seconds per photo for ``atelier.methods.sketch.draw.sketch_tensor`` at 512 px, median of runs.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/sketch.py --json docs/results/sketch.json [--limit N]
    python benchmarks/sketch.py --speed --json docs/results/sketch.json   # on a quiet machine
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import time

import numpy as np
import torch

from atelier.io import images as img
from atelier.encoders.vgg import get_encoder
from atelier.methods.sketch import boundary_eval as be
from atelier.methods.sketch.contours import CANNY_HIGH, boundary_map, canny_levels, load_contour_net, vgg_gradient_map
from atelier.methods.sketch.data import bsds_split, load_boundaries

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "bsds500"


def _counts(method: str, item, image, gts, net, enc, work: pathlib.Path) -> np.ndarray:
    path = work / f"{method}-{item.name}.npy"
    if path.is_file():
        return np.load(path)
    if method == "contours":
        c = be.image_counts(be.soft_levels(boundary_map(image, net, enc)[0, 0].numpy()), gts)
    elif method == "vgg-gradient":
        c = be.image_counts(be.soft_levels(vgg_gradient_map(image, enc)[0, 0].numpy()), gts)
    else:
        sigma = float(method.split("-s")[1])
        c = be.image_counts(canny_levels(image, CANNY_HIGH, sigma), gts)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, c)
    os.replace(tmp, path)
    return c


def evaluate(methods, limit, work, model=None) -> dict:
    items = bsds_split(DATA, "val")
    if limit:
        items = items[::max(1, len(items) // limit)][:limit]  # an evenly spaced, fixed subset
    net, enc = load_contour_net(model), get_encoder()
    work.mkdir(parents=True, exist_ok=True)
    counts = {m: [] for m in methods}
    t0 = time.time()
    for i, item in enumerate(items):
        image, gts = img.load_image(item.image), load_boundaries(item.ground_truth)
        for m in methods:
            counts[m].append(_counts(m, item, image, gts, net, enc, work))
        print(f"{i + 1}/{len(items)} {item.name} {time.time() - t0:.0f} s", flush=True)
    out = {}
    for m in methods:
        labels = list(be.DEFAULT_THRESHOLDS) if m in ("contours", "vgg-gradient") else list(CANNY_HIGH)
        s = be.summarize(np.stack(counts[m]), labels).as_dict()
        out[m] = s
        print(f"{m:14s} ODS {s['ods']:.4f} OIS {s['ois']:.4f} AP {s['ap']:.4f} (at {s['ods_threshold']})")
    return {"photos": [it.name for it in items], "results": out, "model_card_sha256": net.card["sha256"]}


def speed(runs: int, size: int, precision: str) -> dict:
    from atelier.methods.sketch.draw import sketch_tensor

    photo = sorted((ROOT.parent / "shared" / "data" / "content").glob("*.jpg"))[0]
    image = img.load_image(photo, size=size)
    net, enc = load_contour_net(), get_encoder()
    out = {}
    for style, lines in (("pencil", False), ("pencil", True), ("ink", False), ("charcoal", False)):
        sketch_tensor(image, style, lines, net=net, encoder=enc, precision=precision)  # warm-up
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            sketch_tensor(image, style, lines, net=net, encoder=enc, precision=precision)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        boundary_map(image, net, enc, precision)
        out[f"{style}{'-lines' if lines else ''}"] = {"median_s": float(np.median(times)), "runs": runs}
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        boundary_map(image, net, enc, precision)
        t.append(time.perf_counter() - t0)
    out["boundary_map_only"] = {"median_s": float(np.median(t)), "runs": runs}
    return {"photo": photo.name, "size": [int(image.shape[-1]), int(image.shape[-2])], "precision": precision,
            "threads": torch.get_num_threads(), "loadavg_before": os.getloadavg(), "times": out}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=pathlib.Path, default=ROOT / "docs" / "results" / "sketch.json")
    ap.add_argument("--limit", type=int, default=0, help="evaluate an evenly spaced subset of this many val photos")
    ap.add_argument("--methods", default="contours,vgg-gradient,canny-s2,canny-s1,canny-s3")
    ap.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/atelier-sketch-bench"))
    ap.add_argument("--model", default=None, help="contour weights (default: the shipped ones)")
    ap.add_argument("--speed", action="store_true", help="measure speed at 512 px instead")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--precision", default="bf16")
    args = ap.parse_args()
    report = json.loads(args.json.read_text()) if args.json.is_file() else {}
    stamp = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
             "torch": torch.__version__}
    if args.speed:
        report["speed"] = {**stamp, **speed(args.runs, 512, args.precision)}
        print(json.dumps(report["speed"], indent=1))
    else:
        t0 = time.time()
        res = evaluate(args.methods.split(","), args.limit, args.work, args.model)
        report["boundary"] = {**stamp, "split": "BSDS500 val", "tolerance": be.TOLERANCE,
                              "thresholds": len(be.DEFAULT_THRESHOLDS), "canny_high": list(CANNY_HIGH),
                              "seconds": round(time.time() - t0, 1), "loadavg_after": os.getloadavg(), **res}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, args.json)
