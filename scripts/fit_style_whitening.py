"""Fit the style embedding's whitening (issue 15) and write it where atelier ships it.

The embedding (``atelier.analysis.embeddings``) projects VGG19 feature statistics to 256 numbers;
those vectors all lie in a narrow cone (cosine distances between unrelated paintings of 0.02-0.05),
and the directions with the most variance are not the most telling. PCA whitening, fitted once on
photos that the benchmark never uses (the training pack's photos: every 4th file, 360 in all; the
crop-retrieval benchmark runs on the pack's *paintings*), evens them out. ``--shrink`` (a share of
the largest eigenvalue added to every eigenvalue) keeps low-variance directions from turning into
noise; 0.01 was best among 1e-4..0.1 on an earlier draw of painting crops (top-1 0.966-0.982).

    python scripts/fit_style_whitening.py            # writes src/atelier/models/analysis/style_whitening.*
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import time

import numpy as np
import torch

from atelier.analysis.embeddings import (WHITENING_CARD_FORMAT, WHITENING_FILE, EmbeddingConfig, StyleEmbedder,
                                         fit_whitening, projection_matrix, embed_statistics)

ROOT = pathlib.Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "train" / "photos"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=pathlib.Path, default=PHOTOS)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--count", type=int, default=360)
    ap.add_argument("--shrink", type=float, default=0.01)
    ap.add_argument("--stats", type=pathlib.Path, help="read the photos' statistics from this .npy instead")
    ap.add_argument("--out", type=pathlib.Path, default=WHITENING_FILE)
    args = ap.parse_args()
    files = sorted(args.photos.glob("*.jpg"))[:: args.every][: args.count]
    if args.stats:
        stats = np.load(args.stats)
    else:
        emb = StyleEmbedder(EmbeddingConfig(whiten=False))
        t0 = time.perf_counter()
        stats = np.stack([emb.statistics([emb.load(f)])[0] for f in files])
        print(f"{len(files)} photos in {time.perf_counter() - t0:.0f} s")
    assert len(stats) == len(files), (len(stats), len(files))
    full = embed_statistics(stats, EmbeddingConfig(dim=0, whiten=False))
    projected = full @ projection_matrix(full.shape[1], 256, 0).astype(np.float64)
    mean, matrix = fit_whitening(projected, args.shrink)

    from safetensors.torch import save as st_save
    import hashlib
    import json

    blob = st_save({"mean": torch.from_numpy(mean.astype(np.float32)),
                    "matrix": torch.from_numpy(np.ascontiguousarray(matrix, np.float32))})
    card = {
        "format": WHITENING_CARD_FORMAT, "version": 1,
        "what": "PCA whitening of the style embedding's projected statistics: (x - mean) @ matrix",
        "applies_to": {"size": 256, "dim": 256, "seed": 0, "layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1",
                                                                      "relu5_1"], "encoder": "vgg19-caffe"},
        "fitted_on": {"data": "atelier training pack, photos/ (ImageNet samples, BSDS500, horse/zebra)",
                      "files": f"every {args.every}th of the sorted photos, first {args.count}",
                      "count": len(files), "first": files[0].name, "last": files[-1].name},
        "shrink": args.shrink, "date": datetime.date.today().isoformat(),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)
    args.out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.out} ({len(blob)} bytes) and its card")


if __name__ == "__main__":
    main()
