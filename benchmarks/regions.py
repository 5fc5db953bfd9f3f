"""Regions with their own style (issue 28 item 1): does each region take its own style, and does
the region no mask covers keep the photo?

Masks split each photo into thirds: the left third gets style A (The Starry Night), the middle
third style B (Composition VII), the right third no mask (the photo is kept); the edges are
feathered by ``--feather`` px. For Gatys (guided Gram matrices) and AdaIN (one pass per style,
placed in its region) the script reports, per region, the style loss of the output inside the
region (a guided Gram matrix, :class:`atelier.losses.GuidedStyleTarget`) against its own style and
against the other style, and the SSIM of the kept third to the photo. With ``--image`` it writes
photo | masks | Gatys | AdaIN for the first photo.

    python benchmarks/regions.py --json docs/results/regions.json --image docs/images/regions.jpg
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import environment  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def thirds(h: int, w: int, feather: float) -> list:
    from atelier.imaging.regions import feather_mask

    a, b = torch.zeros(1, 1, h, w), torch.zeros(1, 1, h, w)
    a[..., : w // 3] = 1
    b[..., w // 3: 2 * w // 3] = 1
    return [feather_mask(a, feather), feather_mask(b, feather)]


def score(out, photo, styles, masks, st) -> dict:
    from skimage.metrics import structural_similarity

    from atelier.losses import GuidedStyleTarget

    grams = st.style_grams(styles, max(out.shape[-2:]))
    feats = st.encoder(out, st.config.style_layers)
    res = {}
    for k, name in enumerate(("A", "B")):
        own = float(GuidedStyleTarget([grams[k]], masks[k]).per_style(feats)[0])
        other = float(GuidedStyleTarget([grams[1 - k]], masks[k]).per_style(feats)[0])
        res[f"region_{name}"] = {"own_style_loss": own, "other_style_loss": other, "own_lower": own < other}
    w = out.shape[-1]
    x, y = out[0, :, :, 2 * w // 3 + 4:], photo[0, :, :, 2 * w // 3 + 4:]
    res["kept_ssim"] = float(structural_similarity(x.permute(1, 2, 0).numpy(), y.permute(1, 2, 0).numpy(),
                                                   channel_axis=2, data_range=1.0))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=150)
    ap.add_argument("--feather", type=float, default=4.0)
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--image", type=pathlib.Path)
    a = ap.parse_args()
    from atelier.io import images as img
    from atelier.methods.gatys.optimize import GatysConfig, GatysStyleTransfer
    from atelier.methods.registry import get_method

    styles_p = [DATA / "styles" / "starry_night.jpg", DATA / "styles" / "composition_vii.jpg"]
    photos = sorted((DATA / "content").glob("*.jpg"))[: a.photos]
    st = GatysStyleTransfer(GatysConfig(iterations=a.iterations, seed=0, precision="fp32"))
    adain = get_method("adain")
    model = adain.build(device="cpu", precision="fp32")
    t0 = time.time()
    rows, first = [], None
    for p in photos:
        c = img.load_image(p, size=a.size)
        styles = [img.load_image(s, size=a.size) for s in styles_p]
        masks = thirds(*c.shape[-2:], a.feather)
        g = st.run(c, styles, masks=masks)
        ad = adain.stylize(model, c, [img.load_image(s, size=512) for s in styles_p], mask=masks)
        rows.append({"photo": p.name, "gatys": score(g, c, styles, masks, st), "adain": score(ad, c, styles, masks, st)})
        r = rows[-1]
        print(p.name, " ".join(f"{m}: A {r[m]['region_A']['own_style_loss']:.3f}/{r[m]['region_A']['other_style_loss']:.3f}"
                                f" B {r[m]['region_B']['own_style_loss']:.3f}/{r[m]['region_B']['other_style_loss']:.3f}"
                                f" kept SSIM {r[m]['kept_ssim']:.3f}" for m in ("gatys", "adain")), flush=True)
        if first is None:
            first = (c, masks, g, ad)
    res = {"environment": environment(), "date": time.strftime("%Y-%m-%d"), "size": a.size,
           "iterations": a.iterations, "feather": a.feather, "styles": [s.name for s in styles_p], "rows": rows,
           "seconds": round(time.time() - t0, 1)}
    for m in ("gatys", "adain"):
        res[m] = {"own_lower_in_every_region": all(r[m][k]["own_lower"] for r in rows for k in ("region_A", "region_B")),
                  "min_kept_ssim": min(r[m]["kept_ssim"] for r in rows)}
    print(json.dumps({m: res[m] for m in ("gatys", "adain")}))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    if a.image:
        from PIL import Image, ImageDraw

        c, masks, g, ad = first
        h, w = c.shape[-2:]
        legend = Image.new("RGB", (w, h))
        d = ImageDraw.Draw(legend)
        d.rectangle([0, 0, w // 3, h], fill=(255, 255, 255))
        d.rectangle([w // 3, 0, 2 * w // 3, h], fill=(128, 128, 128))
        for x, text, colour in ((8, "mask 1:\nThe Starry Night", 0), (w // 3 + 8, "mask 2:\nComposition VII", 255),
                                (2 * w // 3 + 8, "no mask:\nthe photo", 255)):
            d.text((x, 8), text, fill=(colour,) * 3)
        tiles = [img.tensor_to_pil(c), legend, img.tensor_to_pil(g), img.tensor_to_pil(ad)]
        sheet = Image.new("RGB", (4 * w + 30, h), "white")
        for i, t in enumerate(tiles):
            sheet.paste(t, (i * (w + 10), 0))
        sheet.save(a.image, quality=90)


if __name__ == "__main__":
    main()
