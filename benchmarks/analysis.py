"""Benchmark of the style embedding and the collection index (issue 15).

1. Crop retrieval, a label-free test of a style embedding: two random crops of every painting
   of the training pack (``../shared/data/train/paintings``, 393 images), each covering a
   random 50-80 % of the painting's width and height (drawn separately) at a random position,
   so the two differ in position and scale. Each crop queries all the other crops; top-1 /
   top-5: the share of queries whose nearest / five nearest include the other crop of the
   same painting. Compared:

   * the shipped embedding (:class:`atelier.analysis.StyleEmbedder`, 256 px, dim 256, the
     shipped whitening fitted on photos) and variants computed from the same VGG statistics:
     without the whitening, other projection sizes and seeds, all 2,944 statistics, and PCA
     whitening fitted on the crops themselves (transductive, an upper reference, not something
     an incremental index can use);
   * a colour-histogram baseline: a joint RGB histogram, 8 x 8 x 8 bins, of the crop at the
     same 256 px, compared by the Hellinger distance (cosine of the square-rooted histograms).

   Then the same pairs with the second crop changed like another photograph of the painting
   (gamma 0.8-1.25, saturation 0.8-1.2, JPEG quality 50): shipped, unwhitened, histogram.

2. Indexing speed: ``Collection.update`` on ``--index-images`` paintings into a new file
   (decode at 256 px, sha256, VGG19 statistics, SQLite writes): images per second.

3. Search latency over 10,000 unit vectors of dimension 256 (the real crop embeddings plus
   seeded noise around them, re-normalized): one query, exact search (faiss IndexFlatIP /
   IndexFlatL2, and scikit-learn brute force), median of ``--repeats`` calls; and the whole
   ``Collection.search`` call on a 10,000-row collection file.

    python benchmarks/analysis.py --json docs/results/analysis.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import random
import statistics
import tempfile
import time

import numpy as np
import torch

from atelier.analysis.embeddings import EmbeddingConfig, StyleEmbedder, embed_statistics
from atelier.analysis.index import Collection, list_images, nearest
from atelier.io.images import load_image, resize_longest
from atelier.core.runtime import cpu_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAINTINGS = ROOT.parent / "shared" / "data" / "train" / "paintings"
SHIPPED = "embedding (shipped: 256 px, dim 256, seed 0, whitened)"
HIST = "colour histogram RGB 8x8x8, Hellinger (baseline)"


def random_crops(image: torch.Tensor, rng: random.Random, n: int = 2) -> list[torch.Tensor]:
    h, w = image.shape[-2:]
    out = []
    for _ in range(n):
        ch, cw = int(h * rng.uniform(0.5, 0.8)), int(w * rng.uniform(0.5, 0.8))
        y, x = rng.randint(0, h - ch), rng.randint(0, w - cw)
        out.append(image[..., y:y + ch, x:x + cw])
    return out


def reproduction(image: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """The image as another photograph of the painting might give it: gamma 0.8-1.25,
    saturation 0.8-1.2, then JPEG quality 50."""
    import io

    from PIL import Image

    from atelier.io.decode import pil_to_tensor, tensor_to_pil

    x = image.clamp(0, 1) ** rng.uniform(0.8, 1.25)
    grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand_as(x)
    x = (grey + rng.uniform(0.8, 1.2) * (x - grey)).clamp(0, 1)
    buf = io.BytesIO()
    tensor_to_pil(x).save(buf, format="JPEG", quality=50)
    buf.seek(0)
    return pil_to_tensor(Image.open(buf).convert("RGB"))


def colour_histogram(image: torch.Tensor, bins: int = 8) -> np.ndarray:
    """Joint RGB histogram (bins^3), square-rooted and L2-normalized (Hellinger by cosine)."""
    q = (image[0].clamp(0, 1) * (bins - 1e-6)).long().flatten(1)  # (3, P)
    idx = (q[0] * bins + q[1]) * bins + q[2]
    h = torch.bincount(idx, minlength=bins ** 3).double().numpy()
    h = np.sqrt(h / h.sum())
    return (h / np.linalg.norm(h)).astype(np.float32)


def retrieval(vectors: np.ndarray, labels: np.ndarray) -> dict:
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    top = np.argsort(-sim, axis=1)[:, :5]
    hit = labels[top] == labels[:, None]
    return {"top1": float(hit[:, 0].mean()), "top5": float(hit.any(1).mean())}


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paintings", type=pathlib.Path, default=PAINTINGS)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N paintings (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index-images", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--cache", type=pathlib.Path,
                    help="save the crops' VGG statistics and histograms here, or read them if the file exists "
                         "(they depend only on --seed, --limit and the encoder)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()  # read now: the search section sets one OpenMP thread

    files = list_images(args.paintings, recursive=False)
    if args.limit:
        files = files[: args.limit]
    rng = random.Random(args.seed)
    emb = StyleEmbedder()  # the shipped configuration
    size = emb.config.size

    # ---------------------------------------------------------------- 1. crop retrieval
    stats, hists, labels = [], [], []
    t0 = time.perf_counter()
    cached = None
    if args.cache and args.cache.is_file():
        cached = np.load(args.cache)
        if int(cached["seed"]) != args.seed or int(cached["paintings"]) != len(files):
            raise SystemExit(f"{args.cache} was made with another --seed or --limit; delete it")
    for i, f in enumerate([] if cached is not None else files):
        image = load_image(f)
        crops = [resize_longest(c, size) for c in random_crops(image, rng)]
        stats.append(emb.statistics(crops))
        hists += [colour_histogram(c) for c in crops]
        labels += [i, i]
        if i % 50 == 0:
            print(f"  {i}/{len(files)} paintings, {time.perf_counter() - t0:.0f} s", flush=True)
    if cached is not None:
        stats, hists, labels = cached["stats"], list(cached["hists"]), cached["labels"]
        print(f"  statistics of {len(labels)} crops read from {args.cache}")
    else:
        stats, labels = np.concatenate(stats), np.array(labels)
        if args.cache:
            np.savez(args.cache, stats=stats, hists=np.stack(hists), labels=labels, seed=args.seed,
                     paintings=len(files))
    results = {}
    shipped = embed_statistics(stats, emb.config)
    results[SHIPPED] = retrieval(shipped, labels)
    results["embedding without the whitening (dim 256)"] = retrieval(
        embed_statistics(stats, EmbeddingConfig(whiten=False)), labels)
    for dim in (64, 128, 512, 0):
        name = f"embedding without whitening, dim {dim}" if dim else "embedding without whitening, all 2,944 statistics"
        results[name] = retrieval(embed_statistics(stats, EmbeddingConfig(dim=dim, whiten=False)), labels)
    seeds = [retrieval(embed_statistics(stats, EmbeddingConfig(dim=256, seed=s, whiten=False)), labels)["top1"]
             for s in range(10)]
    results["embedding without whitening, dim 256, seeds 0-9 (top1 mean)"] = {
        "top1": float(np.mean(seeds)), "top1_min": min(seeds), "top1_max": max(seeds)}
    from sklearn.decomposition import PCA

    full = embed_statistics(stats, EmbeddingConfig(dim=0, whiten=False))
    results["PCA-whitened 256, fitted on these crops (reference)"] = retrieval(
        PCA(min(256, len(full) - 1), whiten=True, random_state=0).fit_transform(full), labels)
    results[HIST] = retrieval(np.stack(hists), labels)
    for name, r in results.items():
        print(f"{name:55s} " + "  ".join(f"{k} {v:.3f}" for k, v in r.items()))

    # ---------------------------------------------------------------- 1b. crops of another reproduction
    # The same crop pairs; the second crop of each pair is changed like another photograph of the
    # painting: gamma 0.8-1.25, saturation 0.8-1.2, JPEG quality 50.
    repro_cache = args.cache.with_suffix(".repro.npz") if args.cache else None
    if repro_cache is not None and repro_cache.is_file():
        rc = np.load(repro_cache)
        stats_b, hists_b = rc["stats"], list(rc["hists"])
    else:
        rng, rng2 = random.Random(args.seed), random.Random(args.seed + 1)
        stats_b, hists_b = [], []
        for i, f in enumerate(files):
            second = reproduction(resize_longest(random_crops(load_image(f), rng)[1], size), rng2)
            stats_b.append(emb.statistics([second]))
            hists_b.append(colour_histogram(second))
            if i % 100 == 0:
                print(f"  reproduction {i}/{len(files)}, {time.perf_counter() - t0:.0f} s", flush=True)
        stats_b = np.concatenate(stats_b)
        if repro_cache is not None:
            np.savez(repro_cache, stats=stats_b, hists=np.stack(hists_b))
    stats_r = stats.copy()
    stats_r[1::2] = stats_b
    hists_r = np.stack(hists)
    hists_r[1::2] = np.stack(hists_b)
    repro = {SHIPPED: retrieval(embed_statistics(stats_r, emb.config), labels),
             "embedding without the whitening (dim 256)": retrieval(
                 embed_statistics(stats_r, EmbeddingConfig(whiten=False)), labels),
             HIST: retrieval(hists_r, labels)}
    for name, r in repro.items():
        print(f"reproduction: {name:41s} " + "  ".join(f"{k} {v:.3f}" for k, v in r.items()))

    # ---------------------------------------------------------------- 2. indexing speed
    with tempfile.TemporaryDirectory() as tmp:
        subset = files[: args.index_images]
        t0 = time.perf_counter()
        with Collection.create(os.path.join(tmp, "c.db"), embedder=emb) as col:
            col.update(subset)
            first = time.perf_counter() - t0
            t1 = time.perf_counter()
            again = col.update(subset)
            rerun = time.perf_counter() - t1
        speed = {"images": len(subset), "seconds": first, "images_per_s": len(subset) / first,
                 "rerun_seconds_all_unchanged": rerun, "rerun_unchanged": again.unchanged}
    print(f"indexing: {speed['images_per_s']:.2f} images/s ({len(subset)} images, {first:.1f} s); "
          f"re-run with nothing changed {rerun * 1000:.0f} ms")

    # ---------------------------------------------------------------- 3. search latency
    g = np.random.default_rng(args.seed)
    base = shipped[g.integers(0, len(shipped), 10_000)]
    mat = base + g.normal(0, 0.02, base.shape).astype(np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    q = shipped[:1]
    import faiss
    from sklearn.neighbors import NearestNeighbors

    lat = {}
    faiss.omp_set_num_threads(1)  # as atelier.analysis.index.nearest does for a few queries
    for metric, index in (("cosine", faiss.IndexFlatIP(256)), ("euclidean", faiss.IndexFlatL2(256))):
        index.add(mat)
        lat[f"faiss {metric}, k=8, index built"] = _median_ms(lambda: index.search(q, 8), args.repeats)
        lat[f"faiss {metric}, k=8, build + search"] = _median_ms(lambda: nearest(mat, q, 8, metric), args.repeats)
        nn = NearestNeighbors(n_neighbors=8, metric=metric, algorithm="brute").fit(mat)
        lat[f"scikit-learn {metric}, k=8, fitted"] = _median_ms(lambda: nn.kneighbors(q), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        with Collection.create(os.path.join(tmp, "big.db"), embedder=emb) as col:
            with col._conn:
                col._conn.executemany("INSERT INTO images VALUES (?, ?, 0, 0, ?)",
                                      [(f"/x/{i:05d}.jpg", f"{i:064x}", mat[i].astype("<f4").tobytes())
                                       for i in range(len(mat))])
            t0 = time.perf_counter()
            col.items()
            lat["Collection: load 10,000 vectors from SQLite (once per process)"] = 1000 * (time.perf_counter() - t0)
            lat["Collection.search (loaded), cosine, k=8"] = _median_ms(lambda: col.search(q[0], 8), args.repeats)
    for name, ms in lat.items():
        print(f"{name:60s} {ms:8.2f} ms")

    report = {
        "date": datetime.date.today().isoformat(),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "threads": threads, "python": platform.python_version(),
                    "faiss": faiss.__version__},
        "paintings": len(files), "crops": len(labels), "seed": args.seed,
        "embedding": emb.identity(),
        "retrieval": results, "retrieval_other_reproduction": repro, "indexing": speed, "search_ms": lat,
        "gate": {"top1_min": 0.90,
                 "top1": results[SHIPPED]["top1"], "baseline_top1": results[HIST]["top1"]},
    }
    report["gate"]["passed"] = bool(report["gate"]["top1"] >= 0.90
                                    and report["gate"]["top1"] >= report["gate"]["baseline_top1"] + 0.10)
    print("gate:", report["gate"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
