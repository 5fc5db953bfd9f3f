"""How often atelier's invisible watermark (DWT-DCT, invisible-watermark 0.2.0, issue 28) survives
what happens to an image on the web, on 20 held-out stylized outputs.

The outputs: AdaIN (the shipped decoder, alpha 1) of the first 20 photos of shared/data/content
(MS-COCO photos, none of them in the training pack), longest side 512 px, the styles of
shared/data/styles in turn. Each is watermarked (:func:`atelier.io.watermark.embed_watermark`)
and then:

* ``clean``: as written (PNG, lossless);
* ``jpeg80``: JPEG quality 80, Pillow's default 4:2:0 chroma subsampling (what most sites do);
* ``jpeg80_444``: JPEG quality 80 without chroma subsampling;
* ``resize50``: resized to 50 % (bicubic), read at that size;
* ``resize50_back``: resized to 50 % and back up to the original size;
* ``crop10_centre``: 10 % cut off each dimension, half on each side (90 % x 90 % kept);
* ``crop10_corner``: 10 % cut off the right and bottom (the block grid keeps its origin).

A watermark counts as detected when at least 42 of its 48 bits match
(:data:`atelier.io.watermark.MIN_MATCHING_BITS`). The same 20 outputs without a watermark give
the false-positive rate. Also reported: the PSNR of the watermarked output against the
unmarked one.

    python benchmarks/watermark.py --json docs/results/watermark.json
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import platform

import numpy as np
import torch
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

ATTACKS = ("clean", "jpeg80", "jpeg80_444", "resize50", "resize50_back", "crop10_centre", "crop10_corner")


def attack(rgb: np.ndarray, name: str) -> np.ndarray:
    im = Image.fromarray(rgb)
    w, h = im.size
    if name == "clean":
        buf = io.BytesIO()
        im.save(buf, "PNG")
        return np.asarray(Image.open(buf).convert("RGB"))
    if name in ("jpeg80", "jpeg80_444"):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80, **({"subsampling": 0} if name == "jpeg80_444" else {}))
        return np.asarray(Image.open(buf).convert("RGB"))
    if name.startswith("resize50"):
        small = im.resize((w // 2, h // 2), Image.BICUBIC)
        return np.asarray(small.resize((w, h), Image.BICUBIC) if name == "resize50_back" else small)
    if name == "crop10_centre":
        dx, dy = round(w * 0.05), round(h * 0.05)
        return np.asarray(im.crop((dx, dy, w - dx, h - dy)))
    if name == "crop10_corner":
        return np.asarray(im.crop((0, 0, w - round(w * 0.1), h - round(h * 0.1))))
    raise ValueError(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=pathlib.Path, default=ROOT / "docs" / "results" / "watermark.json")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()

    import imwatermark

    from atelier.io import images as img
    from atelier.io.watermark import MIN_MATCHING_BITS, detect_watermark, embed_watermark
    from atelier.methods.arbitrary.adain import load_adain

    torch.manual_seed(0)
    photos = sorted((DATA / "content").glob("*.jpg"))[:args.count]
    styles = sorted((DATA / "styles").glob("*.jpg"))
    model = load_adain(device="cpu")
    feats = {}
    rows = []
    for i, photo in enumerate(photos):
        style = styles[i % len(styles)]
        if style not in feats:
            feats[style] = model.encode_style(img.load_image(style, size=args.size))
        with torch.no_grad():
            out = model(img.load_image(photo, size=args.size), feats[style], alpha=1.0).clamp(0, 1)
        plain = np.asarray(img.tensor_to_pil(out))
        marked = embed_watermark(plain)
        psnr = float(10 * np.log10(255 ** 2 / max(1e-12, ((marked.astype(np.float64) - plain) ** 2).mean())))
        row = {"photo": photo.name, "style": style.name, "size": [plain.shape[1], plain.shape[0]],
               "psnr_db": round(psnr, 2), "bits": {}, "unmarked_bits": {}}
        for a in ATTACKS:
            row["bits"][a] = detect_watermark(attack(marked, a)).matching_bits
            row["unmarked_bits"][a] = detect_watermark(attack(plain, a)).matching_bits
        rows.append(row)
        print(photo.name, style.name, row["psnr_db"], row["bits"], flush=True)
    n = len(rows)
    summary = {a: {"detected": sum(r["bits"][a] >= MIN_MATCHING_BITS for r in rows),
                   "of": n,
                   "rate": round(sum(r["bits"][a] >= MIN_MATCHING_BITS for r in rows) / n, 3),
                   "mean_matching_bits": round(float(np.mean([r["bits"][a] for r in rows])), 2),
                   "false_positives_on_unmarked": sum(r["unmarked_bits"][a] >= MIN_MATCHING_BITS for r in rows)}
               for a in ATTACKS}
    result = {
        "what": "invisible watermark survival (issue 28): AdaIN outputs of held-out photos, watermark "
                "dwtDct 48 bits, detected at >= %d/48 matching bits" % MIN_MATCHING_BITS,
        "library": {"invisible-watermark": getattr(imwatermark, "__version__", "0.2.0"), "method": "dwtDct",
                    "payload_bits": 48, "threshold_bits": MIN_MATCHING_BITS},
        "outputs": n, "size": args.size,
        "psnr_db": {"mean": round(float(np.mean([r["psnr_db"] for r in rows])), 2),
                    "min": round(float(np.min([r["psnr_db"] for r in rows])), 2)},
        "summary": summary, "per_image": rows,
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for a in ATTACKS:
        s = summary[a]
        print(f"{a:15s} {s['detected']:2d}/{n}  mean bits {s['mean_matching_bits']:.1f}/48  "
              f"false positives {s['false_positives_on_unmarked']}")


if __name__ == "__main__":
    main()
