"""Scale-out benchmark (issue 26): feed-forward apply on one process vs on Ray Data, 1 vs 2 Ray
workers, and a 2-node cluster simulated on this machine (ray.cluster_utils.Cluster) showing
the tasks spread over the nodes. Writes docs/results/scale_out.json.

    python benchmarks/scale_out.py [--images 48] [--size 512] [--out docs/results/scale_out.json]

The images are the 26 photos of ../shared/data/content (and the bundled cat), repeated under
other names up to --images. Single process: torch with as many threads as cores, and with one
thread (on a loaded machine torch's threads wait on each other); Ray: that many workers with
one thread each (the same cores). Start-up (Ray cluster start, model load)
is reported apart from the run. The machine's load average is recorded: timings taken while
other jobs run are labelled "measured under load".
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _images(n: int, folder: pathlib.Path) -> list[pathlib.Path]:
    data = pathlib.Path(os.environ.get("ATELIER_TEST_DATA", ROOT.parent / "shared" / "data")) / "content"
    src = sorted(data.glob("*.jpg")) + [ROOT / "src" / "atelier" / "assets" / "chelsea.jpg"]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{i:04d}_{src[i % len(src)].name}"
        shutil.copy(src[i % len(src)], p)
        out.append(p)
    return out


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def single(files, out, size, threads):
    import torch

    from atelier.methods.feedforward.apply import apply_model, load_model

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    net = load_model("starry_night", device="cpu")
    startup = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = apply_model(net, files, out, size=size, precision="fp32", batch_size=1)
    run = time.perf_counter() - t1
    assert len(res.written) == len(files), res.failed
    return {"startup_s": round(startup, 2), "run_s": round(run, 2), "total_s": round(startup + run, 2),
            "images_per_s": round(len(files) / run, 3)}


def on_ray(files, out, size, workers, address=None):
    from atelier.api.batch import ApplyJob
    from atelier.api.ray_batch import run_batch
    from atelier.methods.feedforward.apply import load_model

    net = load_model("starry_night", device="cpu")
    meta = {"method": "feedforward", "model": "starry_night", "model_sha256": net.card["sha256"]}
    job = ApplyJob(model="starry_night", metadata=meta, device="cpu", size=size, precision="fp32", batch_size=1)
    times = []

    def cb(src, status, reason):
        times.append(time.perf_counter())

    t0 = time.perf_counter()
    s = run_batch(job, [(str(f), str(out / f.name)) for f in files], address=address, workers=workers,
                  batch_size=1, callback=cb)
    assert len(s.done) == len(files), s.failed[:3]
    steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
    return {"workers": s.workers, "startup_s": round(s.startup_seconds, 2),
            "first_result_s": round(times[0] - t0, 2), "total_s": round(s.seconds, 2),
            "run_s": round(s.seconds - s.startup_seconds, 2),
            "images_per_s_after_startup": round(len(files) / (s.seconds - s.startup_seconds), 3),
            "images_per_s_steady": round(steady, 3) if steady else None,
            "pairs_per_node": list(s.nodes.values()), "pairs_per_worker": sorted(s.pids.values())}


def simulated_cluster(files, out, size):
    """A head node and a worker node of 1 CPU each, on this machine: the pairs land on both."""
    from ray.cluster_utils import Cluster
    import ray

    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        started = time.perf_counter() - t0
        nodes = len([n for n in ray.nodes() if n["Alive"]])
        r = on_ray(files, out, size, workers=2)
        r["nodes_in_cluster"] = nodes
        r["cluster_startup_s"] = round(started, 2)
    finally:
        ray.shutdown()
        cluster.shutdown()
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cluster-images", type=int, default=12)
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "scale_out.json"))
    a = ap.parse_args()
    import ray

    cores = os.cpu_count() or 1
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="atelier-scale-"))
    os.environ.setdefault("ATELIER_CACHE_DIR", str(tmp / "cache"))
    try:
        files = _images(a.images, tmp / "in")
        results = {"images": a.images, "size": a.size, "cores": cores, "model": "starry_night (feed-forward)",
                   "ray_version": ray.__version__, "load_average_start": _load()}
        for th in sorted({1, cores}):  # under load, torch's threads wait on each other: 1 thread is measured too
            results[f"single_process_{th}_threads"] = r = single(files, tmp / f"single{th}", a.size, th)
            print(f"single {th} threads", r, flush=True)
        results["single_process"] = results[f"single_process_{cores}_threads"]
        for w in sorted({1, cores}):
            results[f"ray_{w}_workers"] = r = on_ray(files, tmp / f"ray{w}", a.size, workers=w)
            print(f"ray {w}", r, flush=True)
        results["simulated_2_node_cluster"] = c = simulated_cluster(files[:a.cluster_images], tmp / "cluster", a.size)
        print("cluster", c, flush=True)
        results["load_average_end"] = _load()
        # the 1-minute load before the run: the 5/15-minute ones remember earlier jobs, and the end's
        # includes this benchmark's own load
        busy = (results["load_average_start"] or [0])[0] > cores * 0.75
        results["label"] = ("measured under load (other jobs running): load average above the core count; "
                            "ratios are indicative only") if busy else "quiet machine"
        r2 = results[f"ray_{cores}_workers"]
        for th in sorted({1, cores}):
            sp = results[f"single_process_{th}_threads"]
            results[f"ray_{cores}_workers_vs_single_{th}_threads_total"] = round(r2["total_s"] / sp["total_s"], 3)
            results[f"ray_{cores}_workers_vs_single_{th}_threads_after_startup"] = round(r2["run_s"] / sp["run_s"], 3)
        pathlib.Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.out).write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
