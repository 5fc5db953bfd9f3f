"""``--precision auto`` against the faster of fp32 and bf16, measured in the same run (issue 25, item 1).

* Gatys at 512 px, one scale, ``--iterations`` L-BFGS iterations (the content image of
  scikit-image's astronaut, the bundled Starry Night): seconds per iteration for ``fp32``,
  ``bf16`` and ``auto`` (and the precision ``auto`` chose).
* Feed-forward inference: the shipped ``starry_night`` model at 512 x 512, batch 1, PyTorch
  engine: images/s for the three settings.

``auto`` is met when its time is within 5 % of the faster of the two. The calibration record is
made in a fresh cache folder first, and its cost is reported.

    python benchmarks/precision_auto.py --json docs/results/precision_auto.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import tempfile
import time

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=6.0, help="feed-forward: seconds timed per setting")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()
    os.environ.setdefault("ATELIER_CACHE_DIR", tempfile.mkdtemp())
    from skimage import data

    from atelier.encoders.precision import resolve_precision
    from atelier.io import images as img
    from atelier.methods.feedforward.apply import load_model, stylize_tensor
    from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer

    flags = open("/proc/cpuinfo").read() if pathlib.Path("/proc/cpuinfo").exists() else ""
    res: dict = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
                 "cpu_flags": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags],
                 "threads": torch.get_num_threads(), "torch": torch.__version__}
    t = time.perf_counter()
    res["auto_resolves_to"] = resolve_precision("auto", torch.device("cpu"))
    res["calibration_s"] = time.perf_counter() - t
    content = img.resize_to(img.load_image(data.astronaut()), args.size, args.size)
    style = img.load_image(pathlib.Path(__file__).resolve().parents[1] / "src/atelier/assets/starry_night.jpg")
    gatys = {}
    GatysStyleTransfer(GatysConfig(size=args.size, iterations=1, scales=1, precision="fp32")).run(content, [style])
    for p in ("fp32", "bf16", "auto"):
        st = GatysStyleTransfer(GatysConfig(size=args.size, iterations=args.iterations, scales=1, precision=p,
                                            seed=0))
        st.run(content, [style])
        gatys[p] = {"seconds_per_iteration": st.stats["seconds_per_iteration"], "precision": st.precision}
        print(p, gatys[p], flush=True)
    best = min(gatys["fp32"]["seconds_per_iteration"], gatys["bf16"]["seconds_per_iteration"])
    gatys["auto_over_best"] = gatys["auto"]["seconds_per_iteration"] / best
    res["gatys"] = gatys

    net = load_model("starry_night")
    ff = {}
    for p in ("fp32", "bf16", "auto"):
        stylize_tensor(net, content, precision=p, engine="torch")
        t, k = time.perf_counter(), 0
        while time.perf_counter() - t < args.seconds or k < 2:
            stylize_tensor(net, content, precision=p, engine="torch")
            k += 1
        ff[p] = {"images_per_s": k / (time.perf_counter() - t)}
        print(p, ff[p], flush=True)
    best = max(ff["fp32"]["images_per_s"], ff["bf16"]["images_per_s"])
    ff["best_over_auto"] = best / ff["auto"]["images_per_s"]
    res["feedforward"] = ff
    res["met"] = gatys["auto_over_best"] <= 1.05 and ff["best_over_auto"] <= 1.05
    print(json.dumps(res), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
