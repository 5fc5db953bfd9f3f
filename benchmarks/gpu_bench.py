"""The speed benchmark to run first whenever a GPU is lent (issue 25, item 5): one command, at most
about 4 minutes on an H100/H200, one JSON; Ray-free, and it needs nothing but the package (the
bundled photo and painting, the shipped models), because ``../shared`` does not travel to the
device machine.

Figures (512 px unless said; ``--tiny``: 64 px and a few frames, the CI check that it runs):

- ``gatys``: 500 L-BFGS iterations (Gatys et al. 2016, the default objective) on the bundled photo
  and painting, seconds in all and per iteration (the first run, the warm-up, not counted);
- ``feedforward`` (shipped ``starry_night``), ``adain`` and ``wct`` (shipped decoders): ms per image
  at batch 1 and 8 (WCT: batch 1; its whitening is per image), after 3 warm-up calls, the device
  synchronised around each timed loop;
- ``sketch``: ms per 512 px sketch (``atelier.sketch``; its device is whatever that path uses);
- ``video``: frames per second end to end at 1920 x 1080 (``atelier.api.video.stylize_video``
  with ``starry_night`` and flow blending: decode, flow, stylize, blend, encode H.264) on a clip
  made here by panning over the bundled photo (made first, not timed).

Each section runs on its own: a failure is recorded in the JSON (``error``) and the others go on.

    python benchmarks/gpu_bench.py --json $OUT/gpu_bench.json            # on the device machine
    python benchmarks/gpu_bench.py --tiny --json /tmp/gpu_bench.json     # anywhere, seconds
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import tempfile
import time
import traceback

import numpy as np
import torch

from atelier.core.runtime import resolve_device
from atelier.encoders.precision import resolve_precision
from atelier.io import images as img

ASSETS = pathlib.Path(img.__file__).resolve().parents[1] / "assets"


def _sync(dev: torch.device):
    return (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)


def _ms_per_image(fn, x: torch.Tensor, dev: torch.device, seconds: float) -> float:
    sync = _sync(dev)
    with torch.no_grad():
        for _ in range(3):
            fn(x)
        sync()
        n, t0 = 0, time.perf_counter()
        while n < 2 or time.perf_counter() - t0 < seconds:
            fn(x)
            n += 1
        sync()
    return round((time.perf_counter() - t0) / (n * x.shape[0]) * 1000, 3)


def bench_gatys(dev, prec, size, iters) -> dict:
    from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer

    content = img.load_image(ASSETS / "chelsea.jpg", size=size)
    style = img.load_image(ASSETS / "starry_night.jpg", size=size)
    st = GatysStyleTransfer(GatysConfig(size=size, iterations=max(2, iters // 50), precision=prec,
                                        device=str(dev), seed=0))
    st.run(content, [style])  # warm-up: kernels, caches
    st = GatysStyleTransfer(GatysConfig(size=size, iterations=iters, precision=prec, device=str(dev), seed=0))
    sync = _sync(dev)
    sync()
    t = time.perf_counter()
    st.run(content, [style])
    sync()
    s = time.perf_counter() - t
    return {"iterations": iters, "seconds": round(s, 3), "ms_per_iteration": round(1000 * s / iters, 2),
            "content_size": list(content.shape[-2:])}


def bench_one_pass(dev, prec, size, seconds) -> dict:
    from atelier.api.video import build_stylizer

    out = {}
    photo = img.load_image(ASSETS / "chelsea.jpg").to(dev)
    x1 = torch.nn.functional.interpolate(photo, size=(size, size), mode="bilinear", align_corners=False)
    for name, method, styles, batches in (("feedforward", "starry_night", (), (1, 8)),
                                          ("adain", "adain", (ASSETS / "starry_night.jpg",), (1, 8)),
                                          ("wct", "wct", (ASSETS / "starry_night.jpg",), (1,))):
        try:
            _, fn = build_stylizer(method, styles, device=str(dev), precision=prec)
            out[name] = {f"ms_per_image_batch{b}": _ms_per_image(fn, x1.expand(b, -1, -1, -1).contiguous(), dev,
                                                                 seconds) for b in batches}
        except Exception:  # noqa: BLE001 - recorded, the other figures go on
            out[name] = {"error": traceback.format_exc(limit=3)[-1500:]}
    return out


def bench_sketch(size, seconds) -> dict:
    import atelier

    photo = img.load_image(ASSETS / "chelsea.jpg")
    atelier.sketch(photo, size=size)
    n, t0 = 0, time.perf_counter()
    while n < 1 or time.perf_counter() - t0 < seconds:
        atelier.sketch(photo, size=size)
        n += 1
    return {"ms_per_image": round((time.perf_counter() - t0) / n * 1000, 1), "size": size}


def make_clip(path: pathlib.Path, width: int, height: int, frames: int) -> None:
    """A pan over the bundled photo, ``frames`` frames of ``width`` x ``height`` at 30 fps (H.264)."""
    from PIL import Image

    from atelier.io.video import VideoWriter

    with Image.open(ASSETS / "chelsea.jpg") as im:
        big = im.convert("RGB")
        scale = max(width * 1.25 / big.width, height / big.height)
        big = np.asarray(big.resize((int(big.width * scale) + 1, int(big.height * scale) + 1), Image.BICUBIC))
    span = big.shape[1] - width
    with VideoWriter(path, 30, width, height) as out:
        for i in range(frames):
            x0 = int(round(span * i / max(1, frames - 1)))
            out.write(np.ascontiguousarray(big[:height, x0:x0 + width]))


def bench_video(dev, prec, width, height, frames) -> dict:
    from atelier.api.video import stylize_video

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = pathlib.Path(tmp) / "clip.mp4", pathlib.Path(tmp) / "styled.mp4"
        make_clip(src, width, height, frames)
        stylize_video(src, pathlib.Path(tmp) / "warm.mp4", method="starry_night", duration=3 / 30,
                      device=str(dev), precision=prec)
        t = time.perf_counter()
        r = stylize_video(src, dst, method="starry_night", device=str(dev), precision=prec)
        s = time.perf_counter() - t
    return {"frames": r.frames if hasattr(r, "frames") else frames, "size": [width, height],
            "seconds": round(s, 2), "fps": round(frames / s, 2)}


def run(args) -> dict:
    dev = resolve_device(args.device)
    prec = resolve_precision(args.precision, dev)
    tiny = args.tiny
    size = 64 if tiny else 512
    out = {"device": str(dev) + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""),
           "torch": torch.__version__, "precision": prec, "python": platform.python_version(),
           "cpu": platform.processor() or platform.machine(), "tiny": tiny,
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    sections = {
        "gatys": lambda: bench_gatys(dev, prec, size, 5 if tiny else 500),
        "one_pass": lambda: bench_one_pass(dev, prec, size, 0.2 if tiny else 3.0),
        "sketch": lambda: bench_sketch(size, 0.2 if tiny else 3.0),
        "video": lambda: bench_video(dev, prec, *((128, 72, 6) if tiny else (1920, 1080, 120))),
    }
    for name in args.only.split(",") if args.only else sections:
        t = time.perf_counter()
        try:
            result = sections[name]()
            out.update(result) if name == "one_pass" else out.__setitem__(name, result)
        except Exception:  # noqa: BLE001 - one failed section must not lose the others
            out[name] = {"error": traceback.format_exc(limit=3)[-1500:]}
        print(f"{name}: {time.perf_counter() - t:.1f} s  "
              + json.dumps({k: out[k] for k in (("feedforward", "adain", "wct") if name == "one_pass" else (name,))
                            if k in out}), flush=True)
        if args.json:  # written after every section: a run cut short still leaves its figures
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=1) + "\n")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--tiny", action="store_true", help="64 px, a few frames: checks that it runs (CI)")
    ap.add_argument("--only", default="", help="comma-separated sections: gatys, one_pass, sketch, video")
    args = ap.parse_args(argv)
    out = run(args)
    failed = [k for k, v in out.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
