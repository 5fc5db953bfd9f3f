"""Train the AdaIN decoder shipped in ``src/atelier/models/adain`` (issue 4), on the CPU or a GPU.

Content: the training photos of ``scripts/prepare_training_photos.py`` (no skimage photo: astronaut
and coffee are the held-out content of ``benchmarks/adain.py``).

Styles (written to ``--styles-dir`` by this script, with ``SOURCES.json``):

* 7 of the 10 paintings in ``../shared/data/styles``; ``the_scream``, ``water_lilies`` and
  ``composition_vii`` are held out for the generalization benchmark;
* colour augmentation: each of those 7 paintings twice more with its hue rotated by 1/3 and 2/3
  of a turn (the decoder must not learn one palette per brushwork);
* textures and photos used as styles, from ``skimage.data`` (BSD-3 licensed data): brick, grass,
  gravel (grey, used as RGB), hubble_deep_field, immunohistochemistry, retina, rocket, colorwheel.

The run checkpoints every 50 steps; run the script again to resume after a stop. Ctrl-C (or
SIGINT) saves the checkpoint; ``--steps N`` with N at or below the current step finishes the run
and writes the decoder and its model card from the checkpoint.

    python scripts/prepare_training_photos.py --out training-photos
    python scripts/train_adain_decoder.py                # train (resumes when a checkpoint exists)
    python scripts/train_adain_decoder.py --install      # copy the result into the package
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
import time

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
STYLES = ROOT.parent / "shared" / "data" / "styles"
PACKAGE_DIR = ROOT / "src" / "atelier" / "models" / "adain"
HELD_OUT = ("the_scream", "water_lilies", "composition_vii")
SKIMAGE_STYLES = ("brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "retina", "rocket",
                  "colorwheel")


def _hue_rotate(im: Image.Image, turn: float) -> Image.Image:
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + round(256 * turn)) % 256).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB")


def prepare_styles(out: pathlib.Path, max_side: int = 768) -> list[dict]:
    """Write the style images and SOURCES.json; returns the sources (one dict per file)."""
    from skimage import data

    out.mkdir(parents=True, exist_ok=True)
    sources = []
    shared_readme = "../shared/data/README.md (public-domain paintings)"
    for p in sorted(STYLES.glob("*.jpg")):
        if p.stem in HELD_OUT:
            continue
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((max_side, max_side), Image.LANCZOS)
            for k, turn in enumerate((0.0, 1 / 3, 2 / 3)):
                name = f"{p.stem}.jpg" if k == 0 else f"{p.stem}_hue{k}.jpg"
                (_hue_rotate(im, turn) if turn else im).save(out / name, quality=95)
                sources.append({"file": name, "from": f"shared/data/styles/{p.name}"
                                + (f", hue rotated by {turn:.3f} turn" if turn else ""), "licence": shared_readme})
    for n in SKIMAGE_STYLES:
        a = getattr(data, n)()
        im = Image.fromarray(a).convert("RGB")
        im.thumbnail((max_side, max_side), Image.LANCZOS)
        im.save(out / f"skimage_{n}.jpg", quality=95)
        sources.append({"file": f"skimage_{n}.jpg", "from": f"skimage.data.{n}",
                        "licence": "scikit-image data (see skimage/data/README.txt; CC0/public domain or BSD-3)"})
    (out / "SOURCES.json").write_text(json.dumps(sources, indent=1) + "\n")
    return sources


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=pathlib.Path, default=ROOT / "training-photos")
    ap.add_argument("--styles-dir", type=pathlib.Path, default=ROOT / "adain-styles")
    ap.add_argument("--work", type=pathlib.Path, default=ROOT / "model-training")
    ap.add_argument("--size", type=int, default=128, help="crop side in pixels")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--width", type=float, default=1.0, help="decoder width (1.0: the paper's)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--steps", type=int, default=4500)
    ap.add_argument("--precision", default="bf16",
                    help="bf16 trained 2x faster than fp32 on the AVX512-BF16 CPU here (no AMX)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--install", action="store_true", help="copy the finished decoder into the package and stop")
    args = ap.parse_args()
    from atelier.methods.arbitrary.train import AdaINTrainConfig, AdaINTrainer
    from atelier.training.cards import output_paths

    paths = output_paths(args.work / "adain")
    if args.install:
        PACKAGE_DIR.mkdir(parents=True, exist_ok=True)
        card = json.loads(paths["card"].read_text())
        card["training_images"]["files"] = json.loads((args.photos / "SOURCES.json").read_text())
        card["style_images"]["files"] = json.loads((args.styles_dir / "SOURCES.json").read_text())
        card["style_images"]["held_out"] = [f"{s}.jpg" for s in HELD_OUT]
        hp = card["hyperparameters"]
        hp["content"] = "training-photos (scripts/prepare_training_photos.py)"
        hp["styles"] = "adain-styles (scripts/train_adain_decoder.py)"
        hp["out"] = "decoder.safetensors"
        card["weights_file"] = "decoder.safetensors"
        shutil.copyfile(paths["weights"], PACKAGE_DIR / "decoder.safetensors")
        (PACKAGE_DIR / "decoder.json").write_text(json.dumps(card, indent=2) + "\n")
        print("installed", PACKAGE_DIR / "decoder.safetensors")
        return 0
    if not (args.styles_dir / "SOURCES.json").is_file():
        prepare_styles(args.styles_dir)
    args.work.mkdir(parents=True, exist_ok=True)
    cfg = AdaINTrainConfig(content=str(args.photos), styles=str(args.styles_dir), out=str(paths["weights"]),
                           image_size=args.size, batch_size=args.batch, steps=args.steps, lr=args.lr,
                           width=args.width, precision=args.precision, device=args.device, seed=0,
                           checkpoint_every=50, preview_every=200)
    trainer = AdaINTrainer(cfg)
    t0 = time.time()

    def report(step, losses, ips):
        if step % 10 == 0:
            print(f"adain {step}/{args.steps} total {losses['total']:.4g} content {losses['content']:.4g} "
                  f"style {losses['style']:.4g} {ips:.2f} img/s {time.time() - t0:.0f}s", flush=True)

    card = trainer.train(callback=report, resume=paths["checkpoint"].exists())
    print(f"adain: finished at step {card['steps']}, final losses {card['final_losses']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
