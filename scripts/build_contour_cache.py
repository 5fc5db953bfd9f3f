"""Build the per-pixel VGG19 feature cache of the BSDS500 train split (resumable).

    OMP_NUM_THREADS=1 nice -n 10 python scripts/build_contour_cache.py [CACHE_DIR]

Then train the heads with scripts/train_contours.py.
"""

import sys
import time

import torch

from atelier.encoders.vgg import get_encoder
from atelier.methods.sketch.data import build_feature_cache

DATA = "/work/shared/data/bsds500"

if __name__ == "__main__":
    torch.set_num_threads(1)
    folder = sys.argv[1] if len(sys.argv) > 1 else "/tmp/atelier-sketch-cache/train"
    t0 = time.time()

    def progress(done, total):
        print(f"{done}/{total} {time.time() - t0:.0f} s", flush=True)

    cache = build_feature_cache(DATA, folder, get_encoder(), "train", flips=True, progress=progress)
    print(f"done: {len(cache)} entries, {int(cache.offsets[-1])} rows, {time.time() - t0:.0f} s")
