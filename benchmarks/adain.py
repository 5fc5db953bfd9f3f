"""Benchmarks of arbitrary style transfer with AdaIN (issue 4): generalization against Gatys, and speed.

Generalization (``--quality``): the shipped decoder on paintings and photos it was NOT trained
on (the three paintings held out of the first AdaIN training run and scikit-image's
astronaut and coffee), at alpha = 1 and ``--size`` px (style images at the same size), scored
with the project's normalized content and style losses (:func:`atelier.evaluate`, fp32, default
layers and weights), against the Gatys path from the content image at the same size and weights
after 50, 100 and 300 L-BFGS iterations (one run of 300, scored at 50 and 100 on the way).
Writes a JSON of all numbers and a grid figure (photo, painting, AdaIN, Gatys 50/100/300).

Speed (``--speed``): images/s at 512 x 512 with the style cached (:class:`StyleFeatures`), the
encoder to relu4_1 plus the decoder, for decoder widths 1.0 (the paper's, shipped) and 0.5, fp32
and bf16 autocast; the multiply-adds per image are counted from the convolutions.

    python benchmarks/adain.py --quality --speed --json docs/results/adain.json \
        --figure docs/images/adain-grid.png
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import torch
from PIL import Image, ImageDraw

import atelier
from atelier.io import images as img
from atelier.methods.arbitrary.adain import adain_tensor, load_adain
from atelier.encoders.vgg import get_encoder
from atelier.networks.decoders import AdaINDecoder
from atelier.methods.arbitrary.model import AdaINModel
from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import _rate, count_conv_macs, environment, parser  # noqa: E402  (same timing, counting, header)

ROOT = pathlib.Path(__file__).resolve().parents[1]
STYLES = ROOT.parent / "shared" / "data" / "styles"
CHECKPOINTS = (50, 100, 300)


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def quality(args) -> tuple[list[dict], list]:
    from skimage import data

    model = load_adain(precision="fp32")
    style_files = {s["from"].split("/")[-1].split(",")[0] for s in model.card["style_images"].get("files", [])}
    # decoders trained on the training pack saw none of the evaluation paintings (tests check the pack)
    held_out = [p for p in model.card["style_images"].get("held_out", [])] or \
        ["the_scream.jpg", "water_lilies.jpg", "composition_vii.jpg"]
    assert held_out and not set(held_out) & style_files, "the held-out paintings must not be training styles"
    photos = {name: img.load_image(getattr(data, name)(), size=args.size) for name in _names(args.photos)}
    train_photos = {f["file"] for f in model.card["training_images"].get("files", [])}
    assert not any(p in f for f in train_photos for p in photos), "a benchmark photo was in the training set"
    scorer = GatysStyleTransfer(GatysConfig(precision="fp32"))
    rows, cells = [], []
    for painting in held_out:
        style = img.load_image(STYLES / painting, size=args.size)
        for pname, content in photos.items():
            t0 = time.perf_counter()
            y = adain_tensor(model, content, [style], style_size=None)
            seconds = time.perf_counter() - t0
            ours = atelier.evaluate(y, content, [style], st=scorer)
            snaps = {}

            def keep(p):
                if p.iteration in CHECKPOINTS:
                    snaps[p.iteration] = p.image.detach().clamp(0, 1).float().cpu().clone()

            st = GatysStyleTransfer(GatysConfig(iterations=max(CHECKPOINTS), precision="fp32", seed=0),
                                    encoder=scorer.encoder)
            t0 = time.perf_counter()
            final = st.run(content, [style], callback=keep)
            g_seconds = time.perf_counter() - t0
            snaps[max(CHECKPOINTS)] = final
            row = {"painting": painting, "photo": pname, "size": list(content.shape[-2:]),
                   "adain_content": ours["content_loss"], "adain_style": ours["style_loss"], "adain_ssim": ours["ssim"],
                   "adain_seconds": seconds, "gatys_seconds_300": g_seconds}
            for k in CHECKPOINTS:
                g = atelier.evaluate(snaps[k], content, [style], st=scorer)
                row[f"gatys{k}_content"], row[f"gatys{k}_style"] = g["content_loss"], g["style_loss"]
            better = [k for k in CHECKPOINTS if row["adain_style"] <= row[f"gatys{k}_style"]]
            row["adain_style_at_least_as_low_as"] = f"gatys-{max(better)}" if better else "none"
            rows.append(row)
            cells.append((f"{painting.rsplit('.', 1)[0]} / {pname}", [content, style, y] + [snaps[k] for k in CHECKPOINTS]))
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return rows, cells


def figure(path: pathlib.Path, cells: list) -> None:
    tile, head = 180, 18
    titles = ["photo", "painting", "AdaIN (1 pass)"] + [f"Gatys {k} it." for k in CHECKPOINTS]
    sheet = Image.new("RGB", (tile * len(titles), head + tile * len(cells)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, t in enumerate(titles):
        draw.text((c * tile + 4, 3), t, fill="black")
    for r, (_, images) in enumerate(cells):
        for c, t in enumerate(images):
            im = img.tensor_to_pil(t)
            im.thumbnail((tile, tile))
            sheet.paste(im, (c * tile + (tile - im.width) // 2, head + r * tile + (tile - im.height) // 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    print("wrote", path)


def speed(args) -> list[dict]:
    from skimage import data

    photo = img.resize_to(img.load_image(data.astronaut()), 512, 512)
    encoder = get_encoder(None, "max", "cpu")
    out = []
    for width in (1.0, 0.5):
        torch.manual_seed(0)
        model = AdaINModel(encoder, AdaINDecoder(width)).eval()
        model.calibrate(photo)
        style = model.encode_style(img.load_image(STYLES / "the_scream.jpg", size=512))
        enc_macs = count_conv_macs(model.encoder, lambda: model.encode_content(photo, "fp32"))
        dec_macs = count_conv_macs(model.decoder, lambda: model.decoder(torch.rand(1, 512, 64, 64)))
        row = {"decoder_width": width, "size": [512, 512], "gmacs_per_image": (enc_macs + dec_macs) / 1e9,
               "encoder_gmacs": enc_macs / 1e9, "threads": torch.get_num_threads()}
        for precision in ("fp32", "bf16"):
            def run():
                with torch.inference_mode():
                    model(photo, style, precision=precision)
            row[f"{precision}_images_per_s"] = _rate(run, 1, args.seconds)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--photos", default="astronaut,coffee",
                    help="quality: held-out scikit-image photos, comma-separated (each pair costs a 300-iteration "
                         "Gatys run, about 3 min at 256 px on 2 cores)")
    args = ap.parse_args()
    result = environment()
    if args.quality:
        rows, cells = quality(args)
        result["quality"] = {"size": args.size, "rows": rows}
        if args.figure:
            figure(args.figure, cells)
    if args.speed:
        result["speed"] = speed(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print("wrote", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
