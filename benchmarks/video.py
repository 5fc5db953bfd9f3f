"""Video style transfer benchmark (issue 13): flicker, style and speed, per frame against temporally
consistent, for every method.

On ``shared/data/video/sintel_mountain_2`` (50 frames of Sintel, 1024 x 436), for each method
(feed-forward shipped ``starry_night`` and its temporally trained ``starry_night_temporal``,
AdaIN, WCT, Gatys), the clip is stylized twice with :func:`atelier.api.video.stylize_video`:
``--temporal none`` (per frame) and the consistent mode (flow-guided blending; for Gatys the
warped start and the temporal loss). Each output is scored by :func:`atelier.api.video.evaluate_video`
(short-term warping error with DIS medium flow on the source frames, mean style loss against the
painting, luminance drift). Gate (issue 13): warping error at least 40 % lower with the consistent
version, at a style loss no more than 15 % higher.

Throughput (``--speed``): end to end (decode, stylize, flow, blend, encode an mp4) at 854 x 480
(the Sintel frames resized and centre-cropped) with the shipped feed-forward model and blending.
Target: >= 3 frames/s on the CPU. A side-by-side GIF (input | per frame | consistent) is written
with ``--gif``.

    python benchmarks/video.py --json docs/results/video.json --gif docs/images/video-side-by-side.gif --speed
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import sys
import tempfile
import time

from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import environment  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CLIP = DATA / "video" / "sintel_mountain_2"
STYLE = DATA / "styles" / "starry_night.jpg"
#: method name -> (stylize_video kwargs, consistent temporal mode)
METHODS = {
    "feedforward": dict(method="starry_night"),
    "feedforward_temporal": dict(method="starry_night_temporal"),
    "adain": dict(method="adain", styles=[STYLE]),
    "wct": dict(method="wct", styles=[STYLE]),
    "gatys": dict(method="gatys", styles=[STYLE], iterations=30),
}


def run_method(name: str, args, work: pathlib.Path) -> dict:
    from atelier.api.video import evaluate_video, stylize_video

    kwargs = dict(METHODS[name])
    frames = args.gatys_frames if name == "gatys" else args.frames
    size = args.gatys_size if name == "gatys" else args.size
    src = work / f"src-{frames}-{size}"
    if not src.exists():  # the clip's first frames, at the benchmark size, as a frame folder
        src.mkdir()
        for f in sorted(CLIP.glob("*.png"))[:frames]:
            with Image.open(f) as im:
                im = im.convert("RGB")
                im.thumbnail((size, size), Image.Resampling.LANCZOS)
                im.save(src / f.name)
    row = {"method": name, "frames": frames, "size": size}
    for mode in ("none", "auto"):
        out = work / f"{name}-{mode}"
        t0 = time.perf_counter()
        res = stylize_video(src, out, temporal=mode, **kwargs)
        seconds = time.perf_counter() - t0
        rep = evaluate_video(out, src, styles=[STYLE], flow_preset="medium")
        key = "per_frame" if mode == "none" else "consistent"
        row[key] = {"seconds": round(seconds, 2), "fps": round(res.new_frames / seconds, 3),
                    "warping_error": rep["short_term"]["mean"], "long_term_warping_error": rep["long_term"]["mean"]
                    if rep["long_term"] else None, "style_loss": rep["style_loss"]["mean"],
                    "content_loss": rep["content_loss"]["mean"], "luminance_drift": rep["luminance_drift"],
                    "source_floor": rep["source_short_term"]["mean"], "reliable": res.stats.get("reliable")}
        print(f"{name} {key}: warping {row[key]['warping_error']:.5f} style {row[key]['style_loss']:.4f} "
              f"{row[key]['fps']:.2f} fps", flush=True)
    a, b = row["per_frame"], row["consistent"]
    row["warping_reduction"] = 1 - b["warping_error"] / a["warping_error"]
    row["style_increase"] = b["style_loss"] / a["style_loss"] - 1
    row["gates"] = {"warping>=40%lower": row["warping_reduction"] >= 0.4, "style<=15%higher": row["style_increase"] <= 0.15}
    return row


def speed(args, work: pathlib.Path) -> dict:
    """End-to-end frames/s at 854 x 480 into an mp4 with the shipped feed-forward model."""
    from atelier.api.video import stylize_video

    src = work / "src-854x480"
    src.mkdir(exist_ok=True)
    for f in sorted(CLIP.glob("*.png"))[: args.speed_frames]:
        with Image.open(f) as im:
            im = im.convert("RGB").resize((1127, 480), Image.Resampling.LANCZOS)
            x0 = (1127 - 854) // 2
            im.crop((x0, 0, x0 + 854, 480)).save(src / f.name)
    out = {}
    for label, kw in (("feedforward_blend", dict(method="starry_night")),
                      ("feedforward_per_frame", dict(method="starry_night", temporal="none")),
                      ("adain_blend", dict(method="adain", styles=[STYLE]))):
        t0 = time.perf_counter()
        res = stylize_video(src, work / f"speed-{label}.mp4", **kw)
        seconds = time.perf_counter() - t0
        out[label] = {"frames": res.frames, "seconds": round(seconds, 2), "fps": round(res.frames / seconds, 3),
                      "stylize_seconds": round(res.stats["stylize_seconds"], 2),
                      "flow_seconds": round(res.stats["flow_seconds"], 2)}
        print(f"speed {label}: {out[label]}", flush=True)
    return out


def side_by_side_gif(work: pathlib.Path, name: str, path: pathlib.Path, frames: int, width: int = 200,
                     limit: int = 30) -> None:
    """input | per frame | consistent, ``width`` px each, as an animated GIF (Pillow)."""
    from atelier.io.video import read_frames

    src = work / f"src-{frames}-{METHODS_SIZE[0]}"
    streams = [read_frames(src), read_frames(work / f"{name}-none"), read_frames(work / f"{name}-auto")]
    tiles = []
    for items in itertools.islice(zip(*streams), limit):
        panels = []
        for _, a in items:
            im = Image.fromarray(a)
            im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
            panels.append(im)
        canvas = Image.new("RGB", (width * 3 + 8, panels[0].height), "white")
        for i, p in enumerate(panels):
            canvas.paste(p, (i * (width + 4), 0))
        tiles.append(canvas.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    path.parent.mkdir(parents=True, exist_ok=True)
    tiles[0].save(path, save_all=True, append_images=tiles[1:], duration=1000 // 24, loop=0, optimize=True)


METHODS_SIZE = [512]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--size", type=int, default=512, help="longest side of the quality runs")
    ap.add_argument("--gatys-frames", type=int, default=12)
    ap.add_argument("--gatys-size", type=int, default=256)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--speed-frames", type=int, default=50)
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--gif", type=pathlib.Path)
    ap.add_argument("--gif-method", default="feedforward")
    args = ap.parse_args(argv)
    METHODS_SIZE[0] = args.size
    result = {"environment": environment(), "clip": "sintel_mountain_2", "style": STYLE.name, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for name in [m for m in args.methods.split(",") if m]:
            result["rows"].append(run_method(name, args, work))
        if args.gif:
            side_by_side_gif(work, args.gif_method, args.gif, args.frames)
        if args.speed:
            result["speed_854x480"] = speed(args, work)
    print("| method | frames | warping error per frame | consistent | reduction | style per frame | consistent | "
          "change | gates |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        a, b = r["per_frame"], r["consistent"]
        print(f"| {r['method']} | {r['frames']} @ {r['size']} px | {a['warping_error']:.5f} | {b['warping_error']:.5f} | "
              f"{100 * r['warping_reduction']:.0f} % | {a['style_loss']:.4f} | {b['style_loss']:.4f} | "
              f"{100 * r['style_increase']:+.0f} % | {'met' if all(r['gates'].values()) else 'missed'} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
