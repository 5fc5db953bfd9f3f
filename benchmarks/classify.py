"""Benchmark of the transfer-learned style classifier (issue 15): van Gogh against other painters.

The only artist that the training pack's ``sources.csv`` labels in numbers is Vincent van
Gogh: the 200 paintings from CycleGAN's ``vangogh2photo/trainA`` (via DaisyLiu1996/style_transfer_85)
and the ``vg_*`` files of gordicaleksa/pytorch-neural-style-transfer. Every other painting of
the pack (many painters, from the other repositories) is labelled ``other``. The script links
them into ``<tmp>/vangogh`` and ``<tmp>/other`` and runs :func:`train_classifier` (stratified
5-fold cross-validation of the linear probe, then a fit on all), then predicts the ten paintings
of ``../shared/data/styles`` (two by van Gogh: starry_night, bedroom_in_arles), which the probe
never saw. Writes the model card JSON, the confusion matrix PNG, and a JSON of the results.

Caveat: the van Gogh images all come from one data set (square 256 px crops), the others from
many; the probe may learn the source as well as the painter. The held-out styles give a check.

    python benchmarks/classify.py --json docs/results/classify.json --confusion docs/images/classify-vangogh.png
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import pathlib
import tempfile
import time

import numpy as np
import torch

from atelier.analysis.classify import confusion_png, train_classifier
from atelier.core.runtime import cpu_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VAN_GOGH_STYLES = {"starry_night", "bedroom_in_arles"}


def labels_from_sources(sources: pathlib.Path) -> dict[str, str]:
    out = {}
    for r in csv.DictReader(open(sources)):
        if r["set"] != "paintings":
            continue
        name = os.path.basename(r["path_in_repo"]).lower()
        vg = "vangogh2photo" in r["path_in_repo"] or name.startswith("vg_")
        out[r["file"]] = "vangogh" if vg else "other"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="at most N paintings per label (0: all)")
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--confusion", type=pathlib.Path)
    args = ap.parse_args()
    labels = labels_from_sources(DATA / "train" / "sources.csv")
    with tempfile.TemporaryDirectory() as tmp:
        count = {"vangogh": 0, "other": 0}
        for f, lab in sorted(labels.items()):
            if args.limit and count[lab] >= args.limit:
                continue
            (pathlib.Path(tmp) / lab).mkdir(exist_ok=True)
            os.symlink(DATA / "train" / f, pathlib.Path(tmp) / lab / os.path.basename(f))
            count[lab] += 1
        t0 = time.perf_counter()
        clf, card = train_classifier(tmp, folds=args.folds)
        seconds = time.perf_counter() - t0
    cv = card["cross_validation"]
    styles = sorted((DATA / "styles").glob("*.jpg"))
    done, probs = clf.predict_files(styles)
    vg = clf.classes.index("vangogh")
    held_out = [{"file": p.name, "truth": "vangogh" if p.stem in VAN_GOGH_STYLES else "other",
                 "p_vangogh": round(float(row[vg]), 4)} for p, row in zip(done, probs)]
    held_acc = float(np.mean([(h["p_vangogh"] >= 0.5) == (h["truth"] == "vangogh") for h in held_out]))
    print(f"{count} images, {args.folds}-fold accuracy {cv['accuracy']:.3f} ± {cv['accuracy_std']:.3f}, "
          f"balanced {cv['balanced_accuracy']:.3f}, chance {cv['chance']:.3f}; confusion {cv['confusion']} "
          f"(rows/cols {cv['classes']}); {seconds:.0f} s")
    for h in held_out:
        print(f"  {h['file']:28s} truth {h['truth']:8s} p(vangogh) {h['p_vangogh']:.3f}")
    print(f"held-out styles accuracy {held_acc:.2f}")
    if args.confusion:
        confusion_png(cv, args.confusion, f"van Gogh vs other: {cv['folds']}-fold accuracy {cv['accuracy']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({
            "date": datetime.date.today().isoformat(),
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__},
            "counts": count, "seconds": seconds, "card": card, "held_out_styles": held_out,
            "held_out_accuracy": held_acc}, indent=2) + "\n")


if __name__ == "__main__":
    main()
