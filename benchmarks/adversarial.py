"""Benchmark of the adversarial term of ``atelier train --adversarial`` (issue 14).

The shipped ``starry_night`` network (width 0.5) is fine-tuned for ``--steps`` steps on the
training photos, once with the plain perceptual losses and once (per ``--adv-weights``) with a
PatchGAN discriminator and the adversarial term added; everything else is equal: seed, crops
(``--image-size`` px, batch ``--batch-size``), learning rate, weights, and the painting at the
same scale as in the shipped model's training (``style_scale`` = 256 / image size). Then each
network (and the shipped one, untouched) stylizes the evaluation photos (``shared/data/content``,
not in the training pack) at ``--size`` px, scored against the painting at the same size:

* ``style``: the normalized Gram style loss (relu1_1..relu5_1; :mod:`atelier.losses`);
* ``content``: the normalized content loss at relu4_2 against the photo;
* ``swd``: the sliced Wasserstein-2 distance between the VGG19 feature vectors at every position
  of relu2_1, relu3_1 and relu4_1 of output and painting, each layer scaled by the painting's
  RMS feature, averaged over layers (:func:`atelier.analysis.distribution.sliced_wasserstein`):
  a patch-texture distance that Gram matrices do not see (they keep only second moments).

Runs are resumable (checkpoints under ``--work``); each run's wall time is recorded (on a shared
machine it measures the load as much as the method: the per-step cost ratio is the number to
read). Writes a JSON and a grid (photo | shipped | plain fine-tune | adversarial fine-tune(s)).

    python benchmarks/adversarial.py --work /tmp/adv-bench --json docs/results/adversarial.json \
        --figure docs/images/adversarial-grid.png
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch

from atelier.analysis.distribution import local_features, sliced_wasserstein
from atelier.io import images as img
from atelier.encoders.vgg import get_encoder
from atelier.losses import StyleTarget, content_loss, gram_matrix
from atelier.methods.feedforward.adversarial import AdversarialTrainConfig, AdversarialTrainer
from atelier.methods.feedforward.train import FeedForwardTrainer, TrainConfig
from atelier.methods.gan.sample import image_grid
from atelier.training.cards import load_trained
from atelier.training.zoo import model_path

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from feedforward import environment  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SWD_LAYERS = ("relu2_1", "relu3_1", "relu4_1")


def train_run(name: str, args, adv_weight: float | None) -> dict:
    """Fine-tune (or resume) one run; returns its card and wall time."""
    common = dict(styles=[DATA / "styles" / "starry_night.jpg"], content=DATA / "train" / "photos",
                  out=args.work / name, image_size=args.image_size, batch_size=args.batch_size, steps=args.steps,
                  lr=args.lr, width=0.5, style_scale=256 / args.image_size, precision="fp32", device="cpu",
                  seed=0, checkpoint_every=25, preview_every=0, init_from="starry_night", scale_jitter=(1.0, 1.25))
    card_path = args.work / f"{name}.json"
    if card_path.is_file() and json.loads(card_path.read_text()).get("steps", 0) >= args.steps:
        return json.loads(card_path.read_text())
    if adv_weight is None:
        trainer = FeedForwardTrainer(TrainConfig(**common))
    else:
        trainer = AdversarialTrainer(AdversarialTrainConfig(**common, adv_weight=adv_weight, adv_warmup=0,
                                                            d_lr=args.d_lr, d_width=32, patch_size=64, r1=args.r1,
                                                            diff_augment="cutout"))
    resume = (args.work / f"{name}.ckpt").is_file()

    def cb(step, losses, ips):
        if step % 25 == 0:
            print(f"{time.strftime('%H:%M:%S')} {name} {step} " + " ".join(f"{k} {v:.3f}" for k, v in losses.items()),
                  flush=True)

    return trainer.train(callback=cb, resume=resume)


@torch.no_grad()
def score(net, photos: dict, style: torch.Tensor, enc) -> tuple[dict, dict]:
    """Mean style loss, content loss and SWD of ``net`` over the photos, and the outputs."""
    s_feats = enc(style, STYLE_LAYERS)
    target = StyleTarget([{n: gram_matrix(s_feats[n]) for n in STYLE_LAYERS}])
    s_local = {n: local_features(style, n, enc, max_count=8192) for n in SWD_LAYERS}
    rms = {n: float(s_local[n].pow(2).mean().sqrt()) for n in SWD_LAYERS}
    rows, outs = [], {}
    for name, x in photos.items():
        y = net(x, 0).clamp(0, 1)
        outs[name] = y
        f = enc(y, set(STYLE_LAYERS) | {"relu4_2"})
        c = enc(x, ["relu4_2"])
        swd = sum(sliced_wasserstein(local_features(y, n, enc, max_count=8192) / rms[n], s_local[n] / rms[n])
                  for n in SWD_LAYERS) / len(SWD_LAYERS)
        rows.append({"photo": name, "style": float(target(f)), "content": float(content_loss(f["relu4_2"], c["relu4_2"])),
                     "swd": swd})
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("style", "content", "swd")}
    return {"mean": mean, "per_photo": rows}, outs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/adv-bench"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--d-lr", type=float, default=2e-4)
    ap.add_argument("--r1", type=float, default=1.0)
    ap.add_argument("--adv-weights", default="0.1,0.5")
    ap.add_argument("--size", type=int, default=256, help="evaluation: longest side of photos and painting")
    ap.add_argument("--photos", type=int, default=6, help="evaluation photos (the first of shared/data/content)")
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--figure", type=pathlib.Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    weights = [float(w) for w in args.adv_weights.split(",") if w.strip()]
    runs = {"plain": None, **{f"adversarial-{w:g}": w for w in weights}}
    cards = {name: train_run(name, args, w) for name, w in runs.items()}
    enc = get_encoder()
    files = sorted((DATA / "content").glob("*.jpg"))[: args.photos]
    photos = {p.name: img.load_image(p, size=args.size) for p in files}
    style = img.load_image(DATA / "styles" / "starry_night.jpg", size=args.size)
    nets = {"shipped": load_trained(model_path("starry_night")),
            **{name: load_trained(args.work / f"{name}.safetensors") for name in runs}}
    result = {**environment(), "style": "starry_night.jpg", "steps": args.steps, "image_size": args.image_size,
              "batch_size": args.batch_size, "lr": args.lr, "d_lr": args.d_lr, "r1": args.r1, "eval_size": args.size,
              "photos": list(photos), "runs": {}}
    outputs = {}
    for name, net in nets.items():
        scores, outputs[name] = score(net, photos, style, enc)
        card = cards.get(name, {})
        result["runs"][name] = {**scores, "wall_seconds": card.get("wall_seconds"),
                                "seconds_per_step": card["wall_seconds"] / card["steps"] if card else None,
                                "final_losses": card.get("final_losses")}
        print(name, json.dumps(scores["mean"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print("wrote", args.json)
    if args.figure:
        side = 192
        tiles = []
        for name, x in photos.items():
            for t in [x] + [outputs[k][name] for k in nets]:
                tiles.append(img.resize_to(t, side, side)[0])
        img.save_image(image_grid(torch.stack(tiles), nrow=1 + len(nets), pad=4), args.figure,
                       metadata={"columns": ["photo", *nets], "benchmark": "benchmarks/adversarial.py"})
        print("wrote", args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
