"""Train the feed-forward models shipped in ``src/atelier/models`` (issue 3), on the CPU or a GPU.

1. ``multi10``: one conditional-instance-norm network (Dumoulin et al. 2017) for all ten
   paintings in ``../shared/data/styles``, from random weights.
2. Four single-style networks (Johnson et al. 2016), each started from ``multi10`` with that
   painting's instance-norm parameters (``TrainConfig.init_from``) and fine-tuned on it alone.

Every stage checkpoints and resumes (run the script again after a stop: finished stages are
skipped, an interrupted one continues from its checkpoint). Photos come from
``scripts/prepare_training_photos.py`` (the skimage photos are left out: they are the
held-out set of ``benchmarks/feedforward_quality.py``).

    python scripts/prepare_training_photos.py --out training-photos
    python scripts/train_shipped_models.py --photos training-photos --work model-training
    python scripts/train_shipped_models.py --install     # copy the results into the package
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
STYLES = ROOT.parent / "shared" / "data" / "styles"
PACKAGE_MODELS = ROOT / "src" / "atelier" / "models"
SINGLE = ("starry_night", "great_wave", "the_scream", "udnie")


def stages(args) -> list[dict]:
    common = dict(image_size=args.size, batch_size=args.batch, width=args.width, lr=args.lr,
                  scale_jitter=(1.0, 2.0), precision=args.precision, device=args.device, seed=0,
                  checkpoint_every=50, preview_every=200, content=args.photos)
    out = [dict(common, name="multi10", styles=sorted(str(p) for p in STYLES.glob("*.jpg")), steps=args.multi_steps)]
    for s in SINGLE:
        out.append(dict(common, name=s, styles=[str(STYLES / f"{s}.jpg")], steps=args.single_steps,
                        init_from=str(args.work / "multi10.safetensors")))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=pathlib.Path, default=ROOT / "training-photos")
    ap.add_argument("--work", type=pathlib.Path, default=ROOT / "model-training")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--multi-steps", type=int, default=1800)
    ap.add_argument("--single-steps", type=int, default=300)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only", nargs="*", help="stage names to run (default: all)")
    ap.add_argument("--install", action="store_true", help="copy finished models into the package and stop")
    args = ap.parse_args()
    from atelier.methods.feedforward.train import FeedForwardTrainer, TrainConfig
    from atelier.training.cards import output_paths

    if args.install:
        PACKAGE_MODELS.mkdir(parents=True, exist_ok=True)
        sources = json.loads((args.photos / "SOURCES.json").read_text())
        for st in stages(args):
            paths = output_paths(args.work / st["name"])
            card = json.loads(paths["card"].read_text())
            card["training_images"]["files"] = sources  # each photo's origin and licence
            card["hyperparameters"]["content"] = "training-photos (scripts/prepare_training_photos.py)"
            card["hyperparameters"]["out"] = paths["weights"].name
            card["training_images"]["sources"] = sorted({s["licence"] for s in sources})
            if card["hyperparameters"].get("init_from"):
                card["hyperparameters"]["init_from"] = pathlib.Path(card["hyperparameters"]["init_from"]).name
            card["hyperparameters"]["styles"] = [pathlib.Path(s).name for s in card["hyperparameters"]["styles"]]
            shutil.copyfile(paths["weights"], PACKAGE_MODELS / paths["weights"].name)
            (PACKAGE_MODELS / paths["card"].name).write_text(json.dumps(card, indent=2) + "\n")
            print("installed", st["name"])
        return 0
    for st in stages(args):
        name = st.pop("name")
        if args.only and name not in args.only:
            continue
        paths = output_paths(args.work / name)
        if paths["card"].exists() and json.loads(paths["card"].read_text()).get("steps", 0) >= st["steps"]:
            print(f"{name}: done")
            continue
        trainer = FeedForwardTrainer(TrainConfig(out=str(args.work / name), **st))
        t0 = time.time()

        def report(step, losses, ips, name=name):
            if step % 10 == 0:
                print(f"{name} {step}/{st['steps']} total {losses['total']:.4f} content {losses['content']:.4f} "
                      f"style {losses['style']:.4f} tv {losses['tv']:.4f} {ips:.2f} img/s "
                      f"{time.time() - t0:.0f}s", flush=True)

        trainer.train(callback=report, resume=paths["checkpoint"].exists())
        print(f"{name}: finished, final losses {trainer.final_losses()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
