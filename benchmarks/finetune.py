"""Fine-tuning VGG19's last block for the style classifier, against the linear probe (issue 15).

Van Gogh against other painters (labels from the pack's ``sources.csv``, as
``benchmarks/classify.py``), ``--limit`` paintings per label (sorted by file name), stratified
k-fold: :func:`atelier.analysis.finetune.finetune_cross_validate` trains conv5_1 with a linear
head on each fold and scores the linear probe on the same folds and the same frozen statistics.
Small and time-boxed (``--budget`` seconds) so that it fits a shared CPU.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/finetune.py --limit 60 --json docs/results/finetune.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from classify import DATA, labels_from_sources  # noqa: E402
from feedforward import environment  # noqa: E402

from atelier.analysis.finetune import finetune_cross_validate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--budget", type=float, default=1200)
    ap.add_argument("--json", type=pathlib.Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    env = environment()
    env["uptime_at_start"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    count, files, labels = {"vangogh": 0, "other": 0}, [], []
    for f, lab in sorted(labels_from_sources(DATA / "train" / "sources.csv").items()):
        if count[lab] < args.limit:
            files.append(DATA / "train" / f)
            labels.append(lab)
            count[lab] += 1
    r = finetune_cross_validate(files, labels, folds=args.folds, epochs=args.epochs, time_budget=args.budget,
                                progress=lambda s, d, t: print(f"{s} {d}/{t}", flush=True) if d == t else None)
    r["environment"] = env
    r["counts"] = count
    args.json.write_text(json.dumps(r, indent=1) + "\n")
    print(json.dumps({k: r[k] for k in ("fine_tuned", "linear_probe", "head_only", "seconds", "stopped_early")}, indent=1))


if __name__ == "__main__":
    main()
