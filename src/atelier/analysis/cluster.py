"""Clusters, maps and contact sheets of a collection's style embeddings.

* :func:`cluster_vectors`: scikit-learn k-means (k-means++, 10 starts, seeded) on the unit
  embeddings, or agglomerative clustering (average linkage on cosine distances), or HDBSCAN
  (Campello et al. 2013; scikit-learn >= 1.3, cosine distances, ``min_cluster_size`` 3 by
  default: it finds the number of clusters itself and leaves outliers unclustered, label -1);
  with ``k="auto"`` the k in 2..10 with the highest silhouette score (cosine) is taken.
* :func:`pca_map` / :func:`tsne_map`: a 2-D PCA or t-SNE (van der Maaten & Hinton 2008;
  scikit-learn, cosine distances, seeded) projection of the embeddings, and :func:`map_image`:
  that map drawn with a thumbnail of every image, framed in its cluster's colour.
* :func:`contact_sheet`: a grid of thumbnails with captions (the files of a cluster, or the
  matches of a search with their distances).

Images are written atomically (:func:`atelier.core.files.atomic_write`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..io.decode import open_image
from ..core.errors import InputError
from ..core.files import atomic_write

__all__ = ["ALGORITHMS", "cluster_vectors", "choose_k", "pca_map", "tsne_map", "contact_sheet", "map_image",
           "save_png", "PALETTE"]

#: The clustering algorithms of :func:`cluster_vectors` (``atelier cluster --algorithm``).
ALGORITHMS = ("kmeans", "agglomerative", "hdbscan")

#: Cluster colours (Okabe-Ito and Tableau), repeated past the end.
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
           (204, 121, 167), (120, 120, 120), (148, 103, 189), (140, 86, 75), (23, 190, 207), (188, 189, 34)]


def choose_k(vectors: np.ndarray, k_min: int = 2, k_max: int = 10, seed: int = 0,
             algorithm: str = "kmeans") -> tuple[int, dict]:
    """The number of clusters with the highest mean silhouette (cosine) among ``k_min..k_max``.

    Returns:
        (best k, {k: silhouette}).

    Raises:
        InputError: fewer than 3 vectors.
    """
    from sklearn.metrics import silhouette_score

    n = len(vectors)
    if n < 3:
        raise InputError(f"choosing k needs at least 3 images, the collection has {n}")
    scores = {}
    for k in range(max(2, k_min), min(k_max, n - 1) + 1):
        labels = _fit(vectors, k, seed, algorithm)
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(vectors, labels, metric="cosine"))
    if not scores:
        return 1, {}
    return max(scores, key=lambda k: (scores[k], -k)), scores


def _kmeans(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(np.asarray(vectors, np.float64))


def _agglomerative(vectors: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(
        np.asarray(vectors, np.float64))


def _fit(vectors: np.ndarray, k: int, seed: int, algorithm: str) -> np.ndarray:
    return _agglomerative(vectors, k) if algorithm == "agglomerative" else _kmeans(vectors, k, seed)


def _hdbscan(vectors: np.ndarray, min_cluster_size: int) -> np.ndarray:
    try:
        from sklearn.cluster import HDBSCAN
    except ImportError:  # scikit-learn < 1.3
        raise InputError("--algorithm hdbscan needs scikit-learn 1.3 or newer") from None
    if len(vectors) < max(2, min_cluster_size):
        raise InputError(f"HDBSCAN needs at least {max(2, min_cluster_size)} images, the collection has {len(vectors)}")
    return HDBSCAN(min_cluster_size=min_cluster_size, metric="cosine", copy=True).fit_predict(np.asarray(vectors, np.float64))


def cluster_vectors(vectors: np.ndarray, k: int | str = "auto", seed: int = 0, algorithm: str = "kmeans",
                    min_cluster_size: int = 3) -> tuple[np.ndarray, int, dict]:
    """Clusters of unit embeddings: k-means, agglomerative or HDBSCAN (see the module docstring).

    Args:
        vectors: (N, dim).
        k: a whole number in 1..N, or ``"auto"`` (silhouette over 2..10); ignored by HDBSCAN.
        seed: k-means seed (the result is deterministic for a seed; agglomerative and HDBSCAN
            have no randomness).
        algorithm: ``kmeans``, ``agglomerative`` or ``hdbscan``.
        min_cluster_size: HDBSCAN's smallest cluster.

    Returns:
        (labels (N,) int, in 0..k-1, numbered by decreasing cluster size, -1 for the images
        HDBSCAN leaves unclustered; k; {k: silhouette} for auto).

    Raises:
        InputError: a bad k or algorithm, or too few images.
    """
    if algorithm not in ALGORITHMS:
        raise InputError(f"--algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    n = len(vectors)
    scores: dict = {}
    if algorithm == "hdbscan":
        raw = _hdbscan(vectors, min_cluster_size)
        found = sorted(set(raw.tolist()) - {-1})
        sizes = {c: int((raw == c).sum()) for c in found}
        order = sorted(found, key=lambda c: (-sizes[c], c))
        remap = {c: i for i, c in enumerate(order)}
        return np.array([remap.get(int(c), -1) for c in raw], int), len(found), scores
    if k == "auto":
        k, scores = choose_k(vectors, seed=seed, algorithm=algorithm)
    elif isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a whole number >= 1 or 'auto', got {k!r}")
    if k > n:
        raise InputError(f"k={k} is more than the {n} images in the collection")
    labels = np.zeros(n, int) if k == 1 else _fit(vectors, int(k), seed, algorithm)
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], c))
    remap = np.empty(k, int)
    remap[order] = np.arange(k)
    return remap[labels], int(k), scores


def pca_map(vectors: np.ndarray) -> np.ndarray:
    """2-D PCA coordinates (N, 2) of the embeddings (zeros for fewer than 2 images)."""
    from sklearn.decomposition import PCA

    if len(vectors) < 2:
        return np.zeros((len(vectors), 2))
    n_comp = min(2, len(vectors), vectors.shape[1])
    xy = PCA(n_components=n_comp, random_state=0).fit_transform(np.asarray(vectors, np.float64))
    if xy.shape[1] < 2:
        xy = np.concatenate([xy, np.zeros((len(xy), 1))], 1)
    return xy


def tsne_map(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates (N, 2) of the embeddings (cosine distances, PCA start, perplexity
    min(30, (N - 1) / 3), seeded; zeros for fewer than 3 images). Neighbourhoods are kept,
    distances between far groups are not (unlike PCA)."""
    from sklearn.manifold import TSNE

    n = len(vectors)
    if n < 3:
        return np.zeros((n, 2))
    return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3.0), metric="cosine", init="pca",
                random_state=seed).fit_transform(np.asarray(vectors, np.float64))


def _thumb(path: str, size: int) -> Image.Image:
    try:
        im = open_image(path)
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        return im
    except (InputError, OSError):
        tile = Image.new("RGB", (size, size), (200, 200, 200))
        ImageDraw.Draw(tile).text((4, size // 2 - 6), "unreadable", fill=(80, 80, 80))
        return tile


def _font():
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def contact_sheet(paths: Sequence[str], captions: Optional[Sequence[str]] = None, thumb: int = 160,
                  columns: Optional[int] = None, title: Optional[str] = None,
                  highlight_first: bool = False) -> Image.Image:
    """A grid of thumbnails (longest side ``thumb``) with a caption under each.

    Args:
        paths: image files (unreadable ones become grey tiles).
        captions: one line per image (default: the file name), shortened to fit.
        columns: images per row (default: about square, at most 8).
        title: a line of text on top.
        highlight_first: frame the first image (the query of a search).
    """
    n = len(paths)
    captions = list(captions) if captions is not None else [Path(p).name for p in paths]
    cols = columns or max(1, min(8, int(np.ceil(np.sqrt(max(n, 1))))))
    rows = max(1, int(np.ceil(n / cols)))
    pad, cap_h = 8, 30
    top = 24 if title else 0
    sheet = Image.new("RGB", (pad + cols * (thumb + pad), top + pad + rows * (thumb + cap_h + pad)), "white")
    draw, font = ImageDraw.Draw(sheet), _font()
    if title:
        draw.text((pad, 6), title, fill="black", font=font)
    max_chars = max(4, thumb // 7)
    for i, (p, cap) in enumerate(zip(paths, captions)):
        r, c = divmod(i, cols)
        x0, y0 = pad + c * (thumb + pad), top + pad + r * (thumb + cap_h + pad)
        t = _thumb(p, thumb)
        sheet.paste(t, (x0 + (thumb - t.width) // 2, y0 + (thumb - t.height) // 2))
        if highlight_first and i == 0:
            draw.rectangle([x0 - 3, y0 - 3, x0 + thumb + 2, y0 + thumb + 2], outline=(213, 94, 0), width=3)
        for j, line in enumerate(str(cap).split("\n")[:2]):
            if len(line) > max_chars:
                line = line[: max_chars - 1] + "…"
            draw.text((x0, y0 + thumb + 2 + 13 * j), line, fill="black", font=font)
    return sheet


def map_image(paths: Sequence[str], coords: np.ndarray, labels: Optional[np.ndarray] = None,
              size: int = 1600, thumb: Optional[int] = None, title: Optional[str] = None) -> Image.Image:
    """The collection drawn at its 2-D coordinates: a thumbnail per image framed in its cluster's colour
    (``thumb``: thumbnail side, default from the number of images, 48..128 px)."""
    if thumb is None:
        thumb = int(np.clip(size / (2 * np.sqrt(max(len(paths), 1))), 48, 128))
    margin = thumb // 2 + 16
    canvas = Image.new("RGB", (size, size), "white")
    draw, font = ImageDraw.Draw(canvas), _font()
    xy = np.asarray(coords, np.float64)
    if len(xy):
        lo, hi = xy.min(0), xy.max(0)
        span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
        pix = margin + (xy - lo) / span * (size - 2 * margin)
        pix[:, 1] = size - pix[:, 1]  # y up
        for i, (p, (x, y)) in enumerate(zip(paths, pix)):
            t = _thumb(p, thumb)
            x0, y0 = int(x - t.width / 2), int(y - t.height / 2)
            if labels is not None:
                colour = PALETTE[int(labels[i]) % len(PALETTE)] if labels[i] >= 0 else (0, 0, 0)
                draw.rectangle([x0 - 3, y0 - 3, x0 + t.width + 2, y0 + t.height + 2], fill=colour)
            canvas.paste(t, (x0, y0))
    if title:
        draw.text((10, 8), title, fill="black", font=font)
    if labels is not None and len(xy):
        for c in range(int(np.max(labels)) + 1):
            y = 28 + 16 * c
            draw.rectangle([10, y, 22, y + 12], fill=PALETTE[c % len(PALETTE)])
            draw.text((28, y), f"cluster {c} ({int(np.sum(labels == c))})", fill="black", font=font)
        if np.any(labels < 0):
            y = 28 + 16 * (int(np.max(labels)) + 1)
            draw.rectangle([10, y, 22, y + 12], fill=(0, 0, 0))
            draw.text((28, y), f"unclustered ({int(np.sum(labels < 0))})", fill="black", font=font)
    return canvas


def save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write a Pillow image as PNG atomically. Raises InputError when it cannot be written."""
    p = Path(path)
    with atomic_write(p, "wb") as f:
        image.save(f, format="PNG")
    return p
