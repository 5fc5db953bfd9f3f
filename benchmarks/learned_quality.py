"""Quality gates of the learned models (issue 12): AdaIN, WCT and feed-forward against Gatys-100.

Every learned model is scored with the project's normalized losses (:func:`atelier.evaluate`,
fp32, default layers: content relu4_2, Gram style relu1_1..relu5_1, style image at the output's
longest side) on evaluation photos it never saw (scikit-image photos and ``shared/data/content``),
against the Gatys path after ``--iterations`` (100) L-BFGS iterations from the photo at the same
size and weights. Gatys results are cached (``--cache``), so several models share one run.

Gates (issue 12), per (photo, painting, size) pair:

* AdaIN and WCT, on paintings outside their training set: style loss <= 3x Gatys-100's, content
  loss <= 1.5x; with ``alpha=0`` the output's luminance SSIM to the photo >= 0.6; and the content
  loss of the stylized output against its own photo is under half that against an unrelated
  photo (the subject is kept, not just "a photo").
* Feed-forward models, on their own painting(s): total weighted loss (content + 10 style + TV,
  the training weights) <= 1.3x Gatys-100's, and neither content nor style above 2x.

Speed (``--speed``): images/s at 512 x 512 on this machine, feed-forward fp32/bf16, AdaIN with the
style cached. A contact sheet per method (photo, painting, result, Gatys-100) goes to
``--sheets``.

    python benchmarks/learned_quality.py --json docs/results/learned-quality.json --sheets docs/images \
        --adain shipped=src/atelier/models/adain/decoder.safetensors --wct shipped --ff shipped --speed
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import torch
from PIL import Image, ImageDraw

import atelier
from atelier.io import images as img

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import environment  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
HELD_OUT = ("the_scream", "water_lilies", "composition_vii")
FF_WEIGHTS = {"content": 1.0, "style": 10.0, "tv": 1.0}


def load_photo(key: str, size: int) -> torch.Tensor:
    """``skimage:NAME`` or a file stem of ``shared/data/content``, longest side ``size``."""
    if key.startswith("skimage:"):
        from skimage import data

        return img.load_image(getattr(data, key.split(":", 1)[1])(), size=size)
    return img.load_image(DATA / "content" / f"{key}.jpg", size=size)


def painting(name: str, size: int) -> torch.Tensor:
    return img.load_image(DATA / "styles" / f"{name}.jpg", size=size)


class Gatys:
    """Gatys-N references, cached as JSON + PNG in ``cache``."""

    def __init__(self, cache: pathlib.Path, iterations: int):
        self.dir, self.iterations = cache, iterations
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index_path = cache / "index.json"
        self.index = json.loads(self.index_path.read_text()) if self.index_path.is_file() else {}

    def __call__(self, photo: str, style: str, size: int, scorer) -> tuple[dict, torch.Tensor]:
        key = f"{photo}|{style}|{size}|{self.iterations}"
        png = self.dir / (key.replace("|", "_").replace(":", "-") + ".png")
        if key in self.index and png.is_file():
            return self.index[key], img.load_image(png)
        c, s = load_photo(photo, size), painting(style, size)
        t0 = time.perf_counter()
        out = atelier.GatysStyleTransfer(atelier.GatysConfig(size=size, iterations=self.iterations, seed=0,
                                                             scales=1)).run(c, [s])
        seconds = time.perf_counter() - t0
        img.save_image(out, png)
        out = img.load_image(png)  # score what was saved (8-bit), as for every model
        score = dict(atelier.evaluate(out, c, [s], st=scorer), seconds=round(seconds, 1))
        self.index[key] = score
        self.index_path.write_text(json.dumps(self.index, indent=1))
        print(f"gatys-{self.iterations} {key}: content {score['content_loss']:.3f} style {score['style_loss']:.4f} "
              f"({seconds:.0f} s)", flush=True)
        return score, out


def _q(t: torch.Tensor) -> torch.Tensor:
    """8-bit round trip: score what a user would save."""
    return (t.clamp(0, 1) * 255).round() / 255


def arbitrary_rows(name: str, method: str, run, alpha0, args, gatys, scorer, sheet) -> list[dict]:
    rows = []
    for size in args.sizes:
        photos = args.photos if size <= 256 else args.photos_large
        for pi, photo in enumerate(photos):
            c = load_photo(photo, size)
            other = load_photo(photos[(pi + 1) % len(photos)] if len(photos) > 1 else args.photos[1], size)
            for style in args.paintings:
                s = painting(style, size)
                ref, gout = gatys(photo, style, size, scorer)
                t0 = time.perf_counter()
                with torch.no_grad():
                    out = _q(run(c, s))
                sec = time.perf_counter() - t0
                sc = atelier.evaluate(out, c, [s], st=scorer)
                unrelated = atelier.evaluate(out, other, [s], st=scorer)["content_loss"]
                with torch.no_grad():
                    rec = _q(alpha0(c, s))
                from atelier.analysis.metrics import ssim_luminance

                row = {"method": method, "model": name, "photo": photo, "painting": style, "size": size,
                       "content": sc["content_loss"], "style": sc["style_loss"], "ssim": sc["ssim"],
                       "gatys_content": ref["content_loss"], "gatys_style": ref["style_loss"],
                       "content_ratio": sc["content_loss"] / ref["content_loss"],
                       "style_ratio": sc["style_loss"] / ref["style_loss"],
                       "content_vs_unrelated": unrelated, "alpha0_ssim": ssim_luminance(rec, c), "seconds": sec}
                row["gates"] = {"style<=3x": row["style_ratio"] <= 3.0, "content<=1.5x": row["content_ratio"] <= 1.5,
                                "alpha0_ssim>=0.6": row["alpha0_ssim"] >= 0.6,
                                "own<unrelated/2": row["content"] < 0.5 * unrelated}
                print(f"{name} {photo} {style} {size}: content x{row['content_ratio']:.2f} style x{row['style_ratio']:.2f} "
                      f"a0-ssim {row['alpha0_ssim']:.2f} own/unrelated {row['content'] / unrelated:.2f}", flush=True)
                rows.append(row)
                if size == args.sizes[0]:
                    sheet.append([c, s, out, gout])
    return rows


def ff_rows(name: str, model, args, gatys, scorer, sheet) -> list[dict]:
    from atelier.methods.feedforward.apply import stylize_tensor

    rows = []
    styles = [pathlib.Path(s["file"]).stem for s in model.card["styles"]]
    picks = list(range(len(styles)))[:: max(1, len(styles) // 3)][:3]  # multi-style models: 3 of their styles
    for size in args.sizes:
        photos = args.photos if size <= 256 else args.photos_large
        for photo in photos:
            c = load_photo(photo, size)
            for i in picks:
                style = styles[i]
                s = painting(style, size)
                ref, gout = gatys(photo, style, size, scorer)
                out = _q(stylize_tensor(model, c, i, precision="fp32"))
                sc = atelier.evaluate(out, c, [s], st=scorer)
                tot = FF_WEIGHTS["content"] * sc["content_loss"] + FF_WEIGHTS["style"] * sc["style_loss"] + \
                    FF_WEIGHTS["tv"] * sc["tv_loss"]
                gtot = FF_WEIGHTS["content"] * ref["content_loss"] + FF_WEIGHTS["style"] * ref["style_loss"] + \
                    FF_WEIGHTS["tv"] * ref["tv_loss"]
                row = {"method": "feedforward", "model": name, "photo": photo, "painting": style, "size": size,
                       "content": sc["content_loss"], "style": sc["style_loss"], "tv": sc["tv_loss"], "total": tot,
                       "gatys_total": gtot, "total_ratio": tot / gtot,
                       "content_ratio": sc["content_loss"] / ref["content_loss"],
                       "style_ratio": sc["style_loss"] / ref["style_loss"]}
                row["gates"] = {"total<=1.3x": row["total_ratio"] <= 1.3, "content<=2x": row["content_ratio"] <= 2.0,
                                "style<=2x": row["style_ratio"] <= 2.0}
                print(f"{name} {photo} {style} {size}: total x{row['total_ratio']:.2f} content x{row['content_ratio']:.2f} "
                      f"style x{row['style_ratio']:.2f}", flush=True)
                rows.append(row)
                if size == args.sizes[0]:
                    sheet.append([c, s, out, gout])
    return rows


def contact_sheet(rows: list[list[torch.Tensor]], path: pathlib.Path, title: str, cell: int = 200) -> None:
    """Rows of (photo, painting, result, Gatys) as a JPEG grid."""
    heads = ["photo", "painting", title, "Gatys-100"]
    im = Image.new("RGB", (cell * 4, 18 + cell * len(rows)), "white")
    d = ImageDraw.Draw(im)
    for j, h in enumerate(heads):
        d.text((j * cell + 4, 3), h, fill="black")
    for i, row in enumerate(rows):
        for j, t in enumerate(row):
            p = img.tensor_to_pil(t.cpu())
            p.thumbnail((cell, cell))
            im.paste(p, (j * cell + (cell - p.width) // 2, 18 + i * cell + (cell - p.height) // 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=88)


def speed(args) -> dict:
    from atelier.methods.feedforward.apply import load_model, stylize_tensor

    out = {}
    x = torch.rand(1, 3, 512, 512)

    def rate(fn, seconds=4.0):
        fn()
        fn()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            fn()
            n += 1
        return n / (time.perf_counter() - t0)

    net = load_model(args.ff_models[0][1] if args.ff_models else "starry_night")
    for p in ("fp32", "bf16"):
        out[f"feedforward_{p}_images_per_s"] = rate(lambda: stylize_tensor(net, x, precision=p))
    for name, path in args.adain_models:
        m = atelier.load_adain(path, device="cpu", precision="fp32")
        sf = m.encode_style(painting("the_scream", 512))
        for p in ("fp32", "bf16"):
            with torch.inference_mode():
                out[f"adain_{name}_{p}_images_per_s"] = rate(lambda: m(x, sf, precision=p))
    print(json.dumps(out), flush=True)
    return out


def summarize(rows: list[dict]) -> dict:
    out = {}
    for model in sorted({r["model"] for r in rows}):
        rs = [r for r in rows if r["model"] == model]
        s = {"pairs": len(rs), "gates_met": {g: sum(r["gates"][g] for r in rs) for g in rs[0]["gates"]}}
        for k in ("content_ratio", "style_ratio", "total_ratio", "alpha0_ssim"):
            vals = [r[k] for r in rs if k in r]
            if vals:
                s[k] = {"median": statistics.median(vals), "max": max(vals), "min": min(vals)}
        s["all_gates_met"] = all(all(r["gates"].values()) for r in rs)
        out[model] = s
    return out


def _pairs(text: str) -> list[tuple[str, str]]:
    out = []
    for part in filter(None, (t.strip() for t in text.split(","))):
        name, _, path = part.partition("=")
        out.append((name, path or name))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adain", default="", help="NAME=PATH,... decoders to score ('shipped' for the packaged one)")
    ap.add_argument("--wct", default="", help="NAME=DIR,... folders of WCT decoders ('shipped')")
    ap.add_argument("--ff", default="", help="NAME=PATH,... feed-forward models (names of shipped models or files); "
                                              "'shipped' for all shipped models")
    ap.add_argument("--photos", default="skimage:coffee,skimage:astronaut,000000000071,000000000389")
    ap.add_argument("--photos-large", default="skimage:coffee,000000000071", help="photos for sizes above 256")
    ap.add_argument("--paintings", default=",".join(HELD_OUT))
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--cache", type=pathlib.Path, default=ROOT / "benchmarks" / ".cache" / "gatys")
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--sheets", type=pathlib.Path)
    ap.add_argument("--speed", action="store_true")
    args = ap.parse_args(argv)
    args.photos = [p for p in args.photos.split(",") if p]
    args.photos_large = [p for p in args.photos_large.split(",") if p]
    args.paintings = [p for p in args.paintings.split(",") if p]
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.adain_models = [(n, None if p == "shipped" else p) for n, p in _pairs(args.adain)]
    args.ff_models = _pairs(args.ff)
    if args.ff_models == [("shipped", "shipped")]:
        args.ff_models = [(n, n) for n in atelier.list_models()]
    scorer = atelier.GatysStyleTransfer(atelier.GatysConfig(precision="fp32"))
    gatys = Gatys(args.cache, args.iterations)
    rows, sheets = [], {}
    for name, path in args.adain_models:
        model = atelier.load_adain(path, device="cpu", precision="fp32")
        cache = {}

        def feats(s, model=model, cache=cache):
            key = (s.data_ptr(), tuple(s.shape))
            if key not in cache:
                cache.clear()
                cache[key] = model.encode_style(s)
            return cache[key]

        sheets[f"adain-{name}"] = sheet = []
        rows += arbitrary_rows(name, "adain", lambda c, s: model(c, feats(s)),
                               lambda c, s: model(c, feats(s), alpha=0.0), args, gatys, scorer, sheet)
    for name, path in _pairs(args.wct):
        from atelier.methods.arbitrary.wct import load_wct

        model = load_wct(None if path == "shipped" else path, device="cpu", precision="fp32")
        sheets[f"wct-{name}"] = sheet = []
        rows += arbitrary_rows(f"wct-{name}", "wct", lambda c, s: model(c, model.encode_style(s)),
                               lambda c, s: model(c, model.encode_style(s), alpha=0.0), args, gatys, scorer, sheet)
    ff_sheet = sheets["feedforward"] = [] if args.ff_models else None
    for name, path in args.ff_models:
        rows += ff_rows(name, atelier.load_model(path), args, gatys, scorer, ff_sheet)
    result = {"environment": environment(), "iterations": args.iterations, "sizes": args.sizes,
              "photos": args.photos, "photos_large": args.photos_large, "paintings": args.paintings,
              "summary": summarize(rows) if rows else {}, "rows": rows}
    if args.speed:
        result["speed"] = speed(args)
    print(json.dumps(result["summary"], indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.sheets:
        for name, sheet in sheets.items():
            if sheet:
                contact_sheet(sheet, args.sheets / f"learned-{name}.jpg", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
