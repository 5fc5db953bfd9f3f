"""Train the contour heads on the cached BSDS500 features (resumable), then export.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/train_contours.py CACHE_DIR OUT [--steps N]
        [--budget SECONDS] [--label-threshold T] [--hidden H] [--batch-size B]

Resumes from OUT's checkpoint when it exists. Build the cache first with
scripts/build_contour_cache.py.
"""

import argparse
import time

import torch

from atelier.methods.sketch.train import ContourTrainConfig, ContourTrainer
from atelier.training.cards import output_paths

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cache")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--budget", type=float, default=None)
    ap.add_argument("--label-threshold", type=float, default=0.5)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = ContourTrainConfig(cache=args.cache, out=args.out, steps=args.steps, hidden=args.hidden,
                             batch_size=args.batch_size, label_threshold=args.label_threshold, lr=args.lr)
    trainer = ContourTrainer(cfg)
    resume = output_paths(args.out)["checkpoint"].is_file()
    t0 = time.time()

    def log(step, losses, ips):
        if step % 50 == 0 or step == cfg.steps:
            print(f"step {step} " + " ".join(f"{k} {v:.4f}" for k, v in losses.items())
                  + f" {time.time() - t0:.0f} s", flush=True)

    card = trainer.train(callback=log, resume=resume, time_budget=args.budget)
    print("final", card["final_losses"], card["wall_seconds"], "s", card["stopped_by"])
