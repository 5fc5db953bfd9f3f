"""Benchmark of the optical flow for video (issue 13): accuracy on Sintel and speed.

For every Sintel clip in ``../shared/data/video/sintel_flow`` (render pass x difficulty; four
frames each, ground truth from frame_0002 to frame_0003) and every estimator (DIS ultrafast /
fast / medium, Farneback), at full size (1024 x 436):

- EPE (px) over all valid pixels (``gt/invalid`` excluded) and over the non-occluded ones
  (``gt/occlusions`` excluded too);
- the consistency mask (:func:`atelier.imaging.flow.consistency_mask`, from the flows 2->3 and
  3->2): the share of truly occluded pixels it marks 0, the share of non-occluded pixels it
  keeps, and the EPE over the pixels it keeps;
- the EPE again with every pixel value of both frames moved by -1, 0 or +1 grey level at
  random (``--jitter-runs`` times): how much the number means (large motions make DIS jump);
- ms per flow at 1024 x 436 and at 854 x 480 (the frames resized, for timing only): the
  median of ``--repeats`` calls after two warm-up calls.

Also at 854 x 480 on one thread (what a video pipeline gets while the network uses the
others; and steadier on a shared machine), and the cost of the other steps of a video frame
there (one consistency mask, one warp of a (1, 3, H, W) frame). Writes a JSON and prints
markdown tables.

    python benchmarks/flow.py --json docs/results/flow.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import environment as base_environment  # noqa: E402

from atelier.imaging.flow import FlowEstimator, consistency_mask, endpoint_error, read_flo, warp

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "video" / "sintel_flow"
SETTINGS = [("dis", "ultrafast"), ("dis", "fast"), ("dis", "medium"), ("farneback", "-")]
VIDEO_SIZE = (854, 480)  # (W, H)


def _rgb(path: pathlib.Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _mask(path: pathlib.Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) >= 128


def _ms(fn, repeats: int) -> float:
    fn()
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _single_thread(fn):
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return fn()
    finally:
        cv2.setNumThreads(threads)


def environment() -> dict:
    """The shared benchmark header (feedforward.environment) plus OpenCV's version and threads and
    the load average at the start (the machine is often shared)."""
    return {**base_environment(), "opencv": cv2.__version__, "opencv_threads": cv2.getNumThreads(),
            "torch_threads": torch.get_num_threads(), "load_average_at_start": list(os.getloadavg())}


def clips() -> list[str]:
    return [f"{p}/{d}" for p in ("clean", "final") for d in ("easy", "medium", "hard")
            if (DATA / p / d / "gt" / "frame_0002.flo").is_file()]


def _jitter(x: np.ndarray, rng) -> np.ndarray:
    """``x`` with every value moved by -1, 0 or +1 grey level (uniformly): an invisible change."""
    return np.clip(x.astype(np.int16) + rng.integers(-1, 2, x.shape), 0, 255).astype(np.uint8)


def bench_clip(clip: str, repeats: int, noise_runs: int) -> list[dict]:
    d = DATA / clip
    a, b = _rgb(d / "frame_0002.png"), _rgb(d / "frame_0003.png")
    gt = read_flo(d / "gt" / "frame_0002.flo")
    valid = ~_mask(d / "gt" / "invalid" / "frame_0002.png")
    occluded = _mask(d / "gt" / "occlusions" / "frame_0002.png") & valid
    visible = valid & ~occluded
    small = [cv2.resize(x, VIDEO_SIZE, interpolation=cv2.INTER_AREA) for x in (a, b)]
    rows = [{"clip": clip, "method": "zero flow", "epe_all": endpoint_error(np.zeros_like(gt), gt, valid),
             "epe_noc": endpoint_error(np.zeros_like(gt), gt, visible)}]
    for method, preset in SETTINGS:
        est = FlowEstimator(method, preset if method == "dis" else "medium")
        fwd, bwd = est(a, b), est(b, a)
        keep = consistency_mask(fwd, bwd).astype(bool)
        rng = np.random.default_rng(0)
        noisy = [endpoint_error(est(*(_jitter(x, rng) for x in (a, b))), gt, valid) for _ in range(noise_runs)]
        rows.append({
            "clip": clip, "method": method if method != "dis" else f"dis {preset}",
            "epe_all": endpoint_error(fwd, gt, valid), "epe_noc": endpoint_error(fwd, gt, visible),
            "epe_all_jitter": noisy,
            "mask_occluded_marked": float((~keep[occluded]).mean()) if occluded.any() else None,
            "mask_visible_kept": float(keep[visible].mean()),
            "epe_mask_kept": endpoint_error(fwd, gt, valid & keep),
            "ms_1024x436": _ms(lambda: est(a, b), repeats),
            "ms_854x480": _ms(lambda: est(*small), repeats),
            "ms_854x480_1_thread": _single_thread(lambda: _ms(lambda: est(*small), repeats)),
        })
        print(f"  {clip:13s} {rows[-1]['method']:14s} EPE {rows[-1]['epe_all']:6.2f} "
              f"{rows[-1]['ms_854x480']:6.1f} ms", flush=True)
    return rows


def other_steps(repeats: int) -> dict:
    d = DATA / clips()[0]
    a, b = (cv2.resize(_rgb(d / f), VIDEO_SIZE, interpolation=cv2.INTER_AREA)
            for f in ("frame_0002.png", "frame_0003.png"))
    est = FlowEstimator()
    fwd, bwd = est(a, b), est(b, a)
    frame = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
    out = {"size": list(VIDEO_SIZE), "ms_consistency_mask": _ms(lambda: consistency_mask(fwd, bwd), repeats),
           "ms_warp": _ms(lambda: warp(frame, fwd), repeats)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out["ms_consistency_mask_1_thread"] = _single_thread(lambda: _ms(lambda: consistency_mask(fwd, bwd), repeats))
        out["ms_warp_1_thread"] = _ms(lambda: warp(frame, fwd), repeats)
    finally:
        torch.set_num_threads(threads)
    return out


def markdown(rows: list[dict]) -> str:
    def f(v, fmt):
        return "—" if v is None else format(v, fmt)

    head = ["clip", "method", "EPE all", "EPE all, +-1 level jitter (min-max)", "EPE non-occluded",
            "mask: occluded marked 0", "mask: visible kept", "EPE where kept", "ms 1024x436", "ms 854x480"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        jit = r.get("epe_all_jitter")
        jit = f"{min(jit):.2f}-{max(jit):.2f}" if jit else "—"
        lines.append(f"| {r['clip']} | {r['method']} | {r['epe_all']:.2f} | {jit} | {r['epe_noc']:.2f} | "
                     f"{f(r.get('mask_occluded_marked'), '.0%')} | {f(r.get('mask_visible_kept'), '.0%')} | "
                     f"{f(r.get('epe_mask_kept'), '.2f')} | {f(r.get('ms_1024x436'), '.1f')} | "
                     f"{f(r.get('ms_854x480'), '.1f')} |")
    return "\n".join(lines)


def summary(rows: list[dict], steps: dict) -> str:
    """One row per method: EPE (all valid pixels) on each clip, ms per flow, and the flow work
    of one video frame at 854 x 480 (two flows, one mask, one warp), 1 thread."""
    clip_names = list(dict.fromkeys(r["clip"] for r in rows))
    lines = ["| method | " + " | ".join(f"EPE {c}" for c in clip_names) + " | ms 1024x436 | ms 854x480 "
             "| ms 854x480, 1 thread | per video frame at 854x480, 1 thread |",
             "|" + "---|" * (len(clip_names) + 5)]
    other = steps["ms_consistency_mask_1_thread"] + steps["ms_warp_1_thread"]
    for m in dict.fromkeys(r["method"] for r in rows):
        rs = {r["clip"]: r for r in rows if r["method"] == m}
        cells = [f"{rs[c]['epe_all']:.2f}" for c in clip_names]
        if "ms_854x480" in rs[clip_names[0]]:
            med = {k: statistics.median(r[k] for r in rs.values())
                   for k in ("ms_1024x436", "ms_854x480", "ms_854x480_1_thread")}
            cells += [f"{med['ms_1024x436']:.1f}", f"{med['ms_854x480']:.1f}", f"{med['ms_854x480_1_thread']:.1f}",
                      f"{2 * med['ms_854x480_1_thread'] + other:.0f} ms"]
        else:
            cells += ["—"] * 4
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", type=pathlib.Path, help="write all numbers here")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per cell (median reported)")
    p.add_argument("--jitter-runs", type=int, default=4,
                   help="EPE again on frames with +-1 grey level of random noise, this many times")
    p.add_argument("--threads", type=int, help="OpenCV and torch threads (default: theirs)")
    args = p.parse_args(argv)
    if args.threads:
        cv2.setNumThreads(args.threads)
        torch.set_num_threads(args.threads)
    env = environment()
    found = clips()
    missing = [f"{p}/{d}" for p in ("clean", "final") for d in ("easy", "medium", "hard") if f"{p}/{d}" not in found]
    print(f"{env['machine']}, {env['cpu_count']} cores, OpenCV {env['opencv']} ({env['opencv_threads']} threads); "
          f"clips: {', '.join(found)}; not in the data: {', '.join(missing) or 'none'}", flush=True)
    rows = [r for c in found for r in bench_clip(c, args.repeats, args.jitter_runs)]
    steps = other_steps(args.repeats)
    print()
    print(markdown(rows))
    print()
    print(summary(rows, steps))
    print(f"\nat {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}: consistency_mask {steps['ms_consistency_mask']:.1f} ms "
          f"({steps['ms_consistency_mask_1_thread']:.1f} ms on 1 thread), warp of a (1, 3, H, W) frame "
          f"{steps['ms_warp']:.1f} ms ({steps['ms_warp_1_thread']:.1f} ms on 1 thread)")
    if args.json:
        args.json.write_text(json.dumps({**env, "clips": found, "clips_missing": missing, "rows": rows,
                                         "other_steps": steps}, indent=1) + "\n")


if __name__ == "__main__":
    main()
