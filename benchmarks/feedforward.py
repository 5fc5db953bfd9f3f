"""Benchmarks of the feed-forward models (issue 3): quality against Gatys, and speed.

Quality (``--quality``): for every shipped model and each of its styles, on photos that were
not in its training set (scikit-image's astronaut and coffee; the training photos are listed in
each model card), the model's output at ``--size`` px is scored with the project's normalized
content and style losses (:func:`atelier.evaluate`, fp32, default layers and weights) and
compared with the Gatys path after ``--iterations`` L-BFGS iterations from the content image at
the same size and weights. Writes a JSON of all numbers and a grid figure per photo.

Speed (``--speed``): images/s at 512 x 512 for widths 1.0 and 0.5 (the weights do not change
the time), PyTorch fp32 and bf16 autocast, and onnxruntime (CPU provider) on the exported graph;
the multiply-adds per image are counted from the convolutions.

    python benchmarks/feedforward.py --quality --speed --json docs/results/feedforward.json \
        --figure docs/images/feedforward-grid.png
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import torch
from PIL import Image

import atelier
from atelier.io import images as img
from atelier.training.zoo import list_models
from atelier.methods.feedforward.apply import load_model, stylize_tensor
from atelier.networks import TransformerNet
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer

ROOT = pathlib.Path(__file__).resolve().parents[1]
STYLES = ROOT.parent / "shared" / "data" / "styles"


def held_out_photos(size: int) -> dict[str, torch.Tensor]:
    from skimage import data

    return {name: img.load_image(getattr(data, name)(), size=size) for name in ("astronaut", "coffee")}


def quality(args) -> tuple[list[dict], dict]:
    st = GatysStyleTransfer(GatysConfig(iterations=args.iterations, precision="fp32", seed=0))
    photos = held_out_photos(args.size)
    rows, gatys, outputs = [], {}, {}
    for name in list_models():
        net = load_model(name)
        train_files = {f["file"] for f in net.card["training_images"].get("files", [])}
        assert not any(p in f for f in train_files for p in photos), "a benchmark photo was in the training set"
        for index, style_file in enumerate(net.style_names):
            style = img.load_image(STYLES / style_file)
            for pname, content in photos.items():
                if net.num_styles > 1 and pname != "astronaut" and not args.all_pairs:
                    continue
                t0 = time.perf_counter()
                y = stylize_tensor(net, content, index, precision="fp32")
                ff_seconds = time.perf_counter() - t0
                ff = atelier.evaluate(y, content, [style], st=st)
                key = (pname, style_file)
                if key not in gatys:
                    t0 = time.perf_counter()
                    g = st.run(content, [style])
                    gatys[key] = (g, atelier.evaluate(g, content, [style], st=st), time.perf_counter() - t0)
                    print(f"gatys {pname} {style_file}: content {gatys[key][1]['content_loss']:.3f} "
                          f"style {gatys[key][1]['style_loss']:.4f} ({gatys[key][2]:.0f} s)", flush=True)
                g_img, gm, g_seconds = gatys[key]
                outputs[(name, index, pname)] = y
                row = {"model": name, "style": style_file, "photo": pname, "size": list(content.shape[-2:]),
                       "model_content": ff["content_loss"], "model_style": ff["style_loss"],
                       "model_ssim": ff["ssim"], "model_seconds": ff_seconds,
                       "gatys_content": gm["content_loss"], "gatys_style": gm["style_loss"], "gatys_ssim": gm["ssim"],
                       "gatys_seconds": g_seconds}
                row["meets_target"] = row["model_content"] <= row["gatys_content"] and \
                    row["model_style"] <= row["gatys_style"]
                rows.append(row)
                print(f"{name}[{index}] {pname}: model content {row['model_content']:.3f} style "
                      f"{row['model_style']:.4f} | gatys-{args.iterations} content {row['gatys_content']:.3f} "
                      f"style {row['gatys_style']:.4f}", flush=True)
    return rows, {"photos": photos, "gatys": gatys, "outputs": outputs}


def figure(path: pathlib.Path, extra: dict, iterations: int) -> None:
    """One row per photo: the photo, then each single-style model; a last row of multi10's styles."""
    tile = 200

    def t2p(t):
        im = img.tensor_to_pil(t)
        im.thumbnail((tile, tile))
        canvas = Image.new("RGB", (tile, tile), "white")
        canvas.paste(im, ((tile - im.width) // 2, (tile - im.height) // 2))
        return canvas

    singles = [n for n in list_models() if load_model(n).num_styles == 1]
    rows = []
    for pname, content in extra["photos"].items():
        cells = [t2p(content)]
        for n in singles:
            if (n, 0, pname) in extra["outputs"]:
                cells.append(t2p(extra["outputs"][(n, 0, pname)]))
        rows.append(cells)
    multi = [k for k in extra["outputs"] if k[0] not in singles and k[2] == "astronaut"]
    for start in range(0, len(multi), len(singles) + 1):
        rows.append([t2p(extra["outputs"][k]) for k in sorted(multi)[start:start + len(singles) + 1]])
    width = max(len(r) for r in rows)
    sheet = Image.new("RGB", (width * tile, len(rows) * tile), "white")
    for r, cells in enumerate(rows):
        for c, cell in enumerate(cells):
            sheet.paste(cell, (c * tile, r * tile))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    print("wrote", path)


def count_conv_macs(module: torch.nn.Module, run) -> int:
    """Multiply-adds of the convolutions inside ``module`` while ``run()`` executes."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        total += out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.inference_mode():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return total


def conv_macs(net: torch.nn.Module, h: int, w: int) -> int:
    """Multiply-adds of all convolutions for one (1, 3, h, w) image."""
    return count_conv_macs(net, lambda: net(torch.rand(1, 3, h, w)))


def environment() -> dict:
    """Date, CPU model, cores, torch version and GPU of this run (the header of a benchmark JSON)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"date": datetime.date.today().isoformat(), "machine": cpu, "cpu_count": os.cpu_count(),
            "amx": bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def _rate(fn, batch: int, seconds: float = 8.0) -> float:
    fn()
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += batch
    return n / (time.perf_counter() - t0)


def speed(args) -> list[dict]:
    from skimage import data

    photo = img.resize_to(img.load_image(data.astronaut()), 512, 512)
    out = []
    for width in (1.0, 0.5):
        torch.manual_seed(0)
        net = TransformerNet(1, width).eval()
        macs = conv_macs(net, 512, 512)
        row = {"width": width, "size": [512, 512], "gmacs_per_image": macs / 1e9, "threads": torch.get_num_threads()}
        for batch in (1, 4):
            x = photo.expand(batch, -1, -1, -1).contiguous()
            for precision in ("fp32", "bf16"):
                row[f"{precision}_batch{batch}_images_per_s"] = _rate(
                    lambda: stylize_tensor(net, x, precision=precision), batch, args.seconds)
            try:
                from atelier.methods.feedforward.export import OnnxStylizer, export_onnx

                with tempfile.TemporaryDirectory() as tmp:
                    path = export_onnx(net, pathlib.Path(tmp) / "net.onnx")
                    sess = OnnxStylizer(path)
                    row[f"onnxruntime_batch{batch}_images_per_s"] = _rate(lambda: sess(x), batch, args.seconds)
            except ImportError as e:
                row[f"onnxruntime_batch{batch}_images_per_s"] = None
                print("onnxruntime skipped:", e)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def parser(description: str) -> argparse.ArgumentParser:
    """The options every model benchmark has: --quality, --speed, --size, --seconds, --json, --figure."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--size", type=int, default=256, help="quality: longest side in pixels")
    ap.add_argument("--seconds", type=float, default=8.0, help="speed: seconds timed per setting")
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--figure", type=pathlib.Path)
    return ap


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=100, help="quality: Gatys L-BFGS iterations")
    ap.add_argument("--all-pairs", action="store_true", help="quality: every style of multi-style models on every photo")
    args = ap.parse_args()
    result = environment()
    if args.quality:
        rows, extra = quality(args)
        result["quality"] = {"size": args.size, "gatys_iterations": args.iterations, "rows": rows}
        if args.figure:
            figure(args.figure, extra, args.iterations)
    if args.speed:
        result["speed"] = speed(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print("wrote", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
