"""Video on Ray (issue 26 item 2): do the chunk boundaries flicker?

The first ``--frames`` frames of ``shared/data/video/sintel_mountain_2`` at ``--size`` px are
stylized with the shipped feed-forward ``starry_night`` (fp32, CPU, flow-guided blending) once on
one machine (:func:`atelier.api.video.stylize_video`) and then on a local Ray cluster in chunks of
``--chunk-frames`` (:func:`atelier.api.ray_video.stylize_video_on_ray`) for each ``--overlaps``
(0: no warm-up, the naive split). Each output is scored by
:func:`atelier.api.video.evaluate_video` (short-term warping error per frame pair, DIS medium
flow on the source frames, no losses).

A *boundary* pair is (b - 1, b) with b the first frame of a chunk (8, 16, ...); the others are
*inside*. Gate (issue 26): mean boundary error <= 1.2 x mean inside error. As the clip's motion
varies from frame to frame, the same ratio of the single-machine run (which has no chunks) at
the same positions is given as the baseline, and the boundary errors are also compared with
the single-machine run's at the same pairs. Also: the mean absolute difference (8-bit levels)
of each frame to the single-machine run's, at boundary frames and elsewhere.

    python benchmarks/ray_video.py --json docs/results/ray_video.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import environment  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "video" / "sintel_mountain_2"


def boundary_stats(per_frame: list, chunk: int, reference: list | None = None) -> dict:
    """Split per-pair errors (entry i: pair (i, i + 1)) into boundary and inside pairs."""
    n = len(per_frame) + 1
    starts = list(range(chunk, n, chunk))
    b_idx = [b - 1 for b in starts]
    inside = [v for i, v in enumerate(per_frame) if i not in b_idx]
    boundary = [per_frame[i] for i in b_idx]
    out = {"boundary_frames": starts, "boundary": boundary, "boundary_mean": float(np.mean(boundary)),
           "inside_mean": float(np.mean(inside)), "ratio": float(np.mean(boundary) / np.mean(inside))}
    if reference is not None:
        out["boundary_vs_single"] = float(np.mean(boundary) / np.mean([reference[i] for i in b_idx]))
        out["inside_vs_single"] = float(np.mean(inside) / np.mean([reference[i] for i, _ in enumerate(per_frame)
                                                                   if i not in b_idx]))
    return out


def frame_diffs(a: pathlib.Path, b: pathlib.Path, chunk: int) -> dict:
    fa, fb = sorted(a.glob("*.png")), sorted(b.glob("*.png"))
    assert len(fa) == len(fb), (len(fa), len(fb))
    d = [float(np.abs(np.asarray(Image.open(x), dtype=np.int16) - np.asarray(Image.open(y), dtype=np.int16)).mean())
         for x, y in zip(fa, fb)]
    at = [v for i, v in enumerate(d) if i and i % chunk == 0]  # the first frame of each chunk after the first
    away = [v for i, v in enumerate(d) if i >= chunk and i % chunk >= min(4, chunk - 1)]  # 4+ frames after it
    return {"per_frame": d, "at_boundary_mean": float(np.mean(at)) if at else 0.0,
            "away_mean": float(np.mean(away)) if away else 0.0, "max_frame_mean": float(max(d)),
            "first_chunk_max": float(max(d[:chunk]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--chunk-frames", type=int, default=8)
    ap.add_argument("--overlaps", default="0,2,4,8")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--method", default="starry_night")
    args = ap.parse_args()

    import ray

    from atelier.api.ray_video import stylize_video_on_ray
    from atelier.api.video import evaluate_video, stylize_video

    work = pathlib.Path(tempfile.mkdtemp(prefix="ray-video-"))
    src = work / "clip"
    src.mkdir()
    for p in sorted(CLIP.glob("frame_*.png"))[:args.frames]:
        shutil.copy(p, src / p.name)
    common = dict(method=args.method, size=args.size, precision="fp32", device="cpu")
    t = time.perf_counter()
    single = stylize_video(src, work / "single", **common)
    seconds = {"single": time.perf_counter() - t}
    ev = {"single": evaluate_video(work / "single", src, losses=False)}
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    runs = {}
    try:
        for k in [int(v) for v in args.overlaps.split(",")]:
            name = f"ray_overlap_{k}"
            t = time.perf_counter()
            r = stylize_video_on_ray(src, work / name, workers=args.workers, chunk_frames=args.chunk_frames,
                                     overlap=k, **common)
            seconds[name] = time.perf_counter() - t
            assert r.frames == single.frames, (r.frames, single.frames)
            ev[name] = evaluate_video(work / name, src, losses=False)
            runs[name] = {"overlap": k, "frames": r.frames, "chunks": r.stats["chunks"],
                          "workers": r.stats["workers"], "warmup_frames": r.stats["warmup_frames"],
                          "reliable": r.stats["reliable"], "single_reliable": single.stats["reliable"]}
    finally:
        ray.shutdown()
    ref = ev["single"]["short_term"]["per_frame"]
    rows = {"single": {"short_term_mean": ev["single"]["short_term"]["mean"],
                       **boundary_stats(ref, args.chunk_frames)}}
    for name, info in runs.items():
        per = ev[name]["short_term"]["per_frame"]
        rows[name] = {**info, "short_term_mean": ev[name]["short_term"]["mean"],
                      **boundary_stats(per, args.chunk_frames, ref),
                      "pixels_vs_single": frame_diffs(work / "single", work / name, args.chunk_frames)}
    for name, row in rows.items():
        extra = (f"  boundary/single {row['boundary_vs_single']:.3f}  inside/single {row['inside_vs_single']:.3f}"
                 f"  |diff| at boundary {row['pixels_vs_single']['at_boundary_mean']:.2f}"
                 f" away {row['pixels_vs_single']['away_mean']:.3f}" if name != "single" else "")
        print(f"{name:16s} mean {row['short_term_mean']:.5f}  boundary {row['boundary_mean']:.5f}  inside "
              f"{row['inside_mean']:.5f}  ratio {row['ratio']:.3f}{extra}")
    result = {"environment": environment(), "clip": "sintel_mountain_2", "frames": args.frames, "size": args.size,
              "method": args.method, "chunk_frames": args.chunk_frames, "workers": args.workers,
              "flow_eval": "dis medium", "target_ratio": 1.2, "rows": rows,
              "seconds_indicative_only": {k: round(v, 1) for k, v in seconds.items()}}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
