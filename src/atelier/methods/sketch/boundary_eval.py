"""The BSDS boundary benchmark: ODS and OIS F-measure (Martin et al. 2004; Arbelaez et al. 2011).

A soft boundary map is thinned by non-maximum suppression (:func:`nms`, as Dollar & Zitnick's
``edgesNms`` before the benchmark), thresholded at each of ``thresholds`` and thinned to
one-pixel lines (``bwmorph thin``, :func:`skimage.morphology.thin`). At each threshold the
predicted boundary pixels are matched to each human boundary map: a predicted pixel and a human
pixel may be paired when they lie within ``max_dist`` = 0.0075 of the image diagonal (4.3 px
on a 481x321 photo), each pixel at most once. BSDS's ``correspondPixels`` solves this as a
minimum-cost assignment whose outlier cost exceeds any pairing, so it first maximizes the number
of pairs; that number is all the F-measure counts, and here it is found exactly as a
maximum-cardinality bipartite matching on the sparse graph of close pairs (Hopcroft-Karp,
:func:`scipy.sparse.csgraph.maximum_bipartite_matching`).

Counts as in the BSDS code: a predicted pixel is correct when some annotator's map matches it
(precision = correct / predicted); recall = matched human pixels / human pixels, summed over
the annotators. ODS: counts summed over the photos at each threshold, F of the best threshold.
OIS: each photo at its own best threshold, counts summed, F of the sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

__all__ = ["TOLERANCE", "nms", "thin", "match_counts", "image_counts", "summarize", "BoundaryScores",
           "evaluate_soft", "evaluate_levels", "DEFAULT_THRESHOLDS"]

#: Matching tolerance as a fraction of the image diagonal (the BSDS benchmark's maxDist).
TOLERANCE = 0.0075
#: Thresholds of a soft map in [0, 1] (BSDS uses 99; 49 halve the time, ODS moves < 0.002).
DEFAULT_THRESHOLDS = tuple(np.round(np.linspace(0.02, 0.98, 49), 4))


def nms(edges: np.ndarray, radius: float = 1.0, smooth: float = 2.0, border: int = 5) -> np.ndarray:
    """Non-maximum suppression across the boundary direction.

    The normal of a ridge is the Hessian eigenvector of the curvature largest in magnitude of
    the smoothed map (across the ridge and across its flanks); a pixel is kept when it is not below the map (interpolated bilinearly) at
    ``radius`` px on either side along it.

    Args:
        edges: float (H, W) boundary strength (any range, >= 0).
        radius: distance of the two compared points (px).
        smooth: Gaussian sigma (px) of the map the normals are computed on.
        border: the result fades linearly to 0 over this many px at the image border, where
            the encoder's zero padding makes spurious responses (as Dollar's ``edgesNms``, s = 5).

    Returns:
        float32 (H, W): ``edges`` where kept, 0 elsewhere.
    """
    import cv2

    e = np.ascontiguousarray(edges, dtype=np.float32)
    s = cv2.GaussianBlur(e, (0, 0), smooth) if smooth > 0 else e
    hxx = cv2.Sobel(s, cv2.CV_32F, 2, 0, ksize=3)
    hyy = cv2.Sobel(s, cv2.CV_32F, 0, 2, ksize=3)
    hxy = cv2.Sobel(s, cv2.CV_32F, 1, 1, ksize=3)
    # the eigenvector of the Hessian eigenvalue largest in magnitude: across a ridge (strongly
    # negative curvature) and across the convex flanks beside it (positive curvature)
    theta = 0.5 * np.arctan2(2 * hxy, hxx - hyy) + np.where(hxx + hyy <= 0, np.pi / 2, 0.0)
    dx, dy = (radius * np.cos(theta)).astype(np.float32), (radius * np.sin(theta)).astype(np.float32)
    h, w = e.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    keep = np.ones_like(e, dtype=bool)
    for sign in (1.0, -1.0):
        nb = cv2.remap(e, gx + sign * dx, gy + sign * dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        keep &= e >= nb
    out = np.where(keep, e, 0.0).astype(np.float32)
    if border > 0:
        ramp_y = np.minimum(np.arange(h), np.arange(h)[::-1]).astype(np.float32)
        ramp_x = np.minimum(np.arange(w), np.arange(w)[::-1]).astype(np.float32)
        out *= np.clip(np.minimum(ramp_y[:, None], ramp_x[None, :]) / border, 0, 1)
    return out


def thin(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide lines (morphological thinning, MATLAB's ``bwmorph(.., 'thin', inf)``)."""
    from skimage.morphology import thin as _thin

    return _thin(np.asarray(mask, dtype=bool))


def _pairs(pred_yx: np.ndarray, gt_yx: np.ndarray, max_dist: float):
    """Sparse 0/1 matrix (pred x gt) of pairs within max_dist, CSR, each row's columns ordered by
    distance (nearest first: the augmenting paths of :func:`_sweep` then prefer near partners,
    as BSDS's minimum-cost matching does)."""
    from scipy.sparse import csr_matrix
    from scipy.spatial import cKDTree

    if len(pred_yx) == 0 or len(gt_yx) == 0:
        return csr_matrix((len(pred_yx), len(gt_yx)), dtype=np.int8)
    close = cKDTree(pred_yx).sparse_distance_matrix(cKDTree(gt_yx), max_dist, output_type="ndarray")
    order = np.lexsort((close["j"], close["v"], close["i"]))
    rows, cols = close["i"][order], close["j"][order]
    indptr = np.zeros(len(pred_yx) + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=len(pred_yx)), out=indptr[1:])
    return csr_matrix((np.ones(len(rows), np.int8), cols.astype(np.int64), indptr), shape=(len(pred_yx), len(gt_yx)))


def _matched_rows(graph) -> np.ndarray:
    """Rows matched in a maximum-cardinality matching of a bipartite 0/1 CSR graph, bool (rows,),
    by SciPy's Hopcroft-Karp (the reference :func:`_sweep` is checked against in the tests)."""
    from scipy.sparse.csgraph import maximum_bipartite_matching

    if graph.shape[0] == 0 or graph.shape[1] == 0 or graph.nnz == 0:
        return np.zeros(graph.shape[0], bool)
    return maximum_bipartite_matching(graph, perm_type="column") >= 0


def _sweep(active: Sequence[np.ndarray], indptr: np.ndarray, indices: np.ndarray, n_cols: int) -> list[np.ndarray]:
    """Maximum-cardinality matchings of a growing row set, by Kuhn's augmenting paths.

    ``active[t]`` (bool (rows,)) are the rows present at level t; levels are processed from the
    last to the first (a threshold sweep from high to low, so rows are mostly added). The matching
    of one level is kept for the next: an added row is tried once for an augmenting path (depth
    first, alternating, columns marked visited until an augmentation succeeds); a row that found
    none never will (Kuhn's lemma, which holds as rows are added: an added row is free, so no
    alternating path from an older row passes through it). When rows disappear (rare: thinning
    is not monotone in the threshold), their pairs are undone and every free row is tried again.
    SciPy's Hopcroft-Karp gives the same cardinalities but takes up to seconds per level on the
    long chains of a contour graph; this sweep visits each row about once in all.

    Returns:
        One bool (rows,) per level: the rows matched at that level.
    """
    n_rows = len(indptr) - 1
    ptr, idx = indptr.tolist(), indices.tolist()
    match_row, match_col = [-1] * n_rows, [-1] * n_cols
    prev = np.zeros(n_rows, bool)
    out: list = [None] * len(active)

    def augment(root: int, seen: bytearray) -> bool:
        stack, cols = [root], []
        pos = {root: ptr[root]}
        while stack:
            u = stack[-1]
            p, end = pos[u], ptr[u + 1]
            advanced = False
            while p < end:
                c = idx[p]
                p += 1
                if seen[c]:
                    continue
                seen[c] = 1
                v = match_col[c]
                if v < 0:  # free column: flip the path
                    pos[u] = p
                    cols.append(c)
                    for r, cc in zip(stack, cols):
                        match_row[r], match_col[cc] = cc, r
                    return True
                pos[u] = p
                cols.append(c)
                stack.append(v)
                pos[v] = ptr[v]
                advanced = True
                break
            if not advanced:
                pos[u] = p
                stack.pop()
                if cols:
                    cols.pop()
        return False

    for t in range(len(active) - 1, -1, -1):
        cur = np.asarray(active[t], bool)
        removed = prev & ~cur
        if removed.any():
            for r in np.flatnonzero(removed).tolist():
                if match_row[r] >= 0:
                    match_col[match_row[r]] = -1
                    match_row[r] = -1
            mr = np.asarray(match_row)
            todo = np.flatnonzero(cur & (mr < 0)).tolist()
        else:
            todo = np.flatnonzero(cur & ~prev).tolist()
        seen = bytearray(n_cols)
        for r in todo:
            if ptr[r] == ptr[r + 1]:
                continue
            if augment(r, seen):
                seen = bytearray(n_cols)
        out[t] = np.asarray(match_row) >= 0
        prev = cur
    return out


def image_counts(levels: Sequence[np.ndarray], gts: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """Match counts of one photo at every level.

    Args:
        levels: T binary maps bool (H, W), the prediction at each threshold (low to high for
            speed: mostly shrinking pixel sets), already thin.
        gts: bool (K, H, W) human boundary maps.
        tolerance: matching distance as a fraction of the diagonal.

    Returns:
        int64 (T, 4): ``correct`` predicted pixels (matched by some annotator), ``predicted``
        pixels, ``matched`` human pixels (summed over annotators), ``human`` pixels (summed).
    """
    gts = np.asarray(gts, dtype=bool)
    if gts.ndim == 2:
        gts = gts[None]
    h, w = gts.shape[-2:]
    max_dist = tolerance * float(np.hypot(h, w))
    out = np.zeros((len(levels), 4), np.int64)
    if not len(levels):
        return out
    levels = [np.asarray(m, bool) for m in levels]
    union = np.logical_or.reduce(levels)
    cand = np.argwhere(union)
    index = -np.ones((h, w), np.int64)
    index[cand[:, 0], cand[:, 1]] = np.arange(len(cand))
    active = []
    for m in levels:
        a = np.zeros(len(cand), bool)
        a[index[m]] = True
        active.append(a)
    any_match = [np.zeros(len(cand), bool) for _ in levels]
    matched_h = np.zeros(len(levels), np.int64)
    human = 0
    for g in gts:
        gt_yx = np.argwhere(g)
        human += len(gt_yx)
        graph = _pairs(cand, gt_yx, max_dist)
        for t, rows in enumerate(_sweep(active, graph.indptr, graph.indices, graph.shape[1])):
            any_match[t] |= rows
            matched_h[t] += int(rows.sum())  # one human pixel per matched predicted pixel
    for t, a in enumerate(active):
        out[t] = (int((any_match[t] & a).sum()), int(a.sum()), int(matched_h[t]), human)
    return out


def match_counts(pred: np.ndarray, gts: np.ndarray, tolerance: float = TOLERANCE) -> tuple[int, int, int, int]:
    """(correct, predicted, matched, human) of one binary prediction bool (H, W) against human
    maps bool (K, H, W) or (H, W); see :func:`image_counts`."""
    return tuple(int(v) for v in image_counts([np.asarray(pred, bool)], gts, tolerance)[0])


def _f(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)


def _pr(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = counts.astype(np.float64)
    p = np.where(c[..., 1] > 0, c[..., 0] / np.maximum(c[..., 1], 1), 0.0)
    r = np.where(c[..., 3] > 0, c[..., 2] / np.maximum(c[..., 3], 1), 0.0)
    return p, r


@dataclass
class BoundaryScores:
    """ODS/OIS results. ``ods``, ``ods_precision``, ``ods_recall``, ``ods_threshold`` (the level's
    value), ``ois``, ``ois_precision``, ``ois_recall``, ``ap`` (area under the dataset PR curve,
    by the trapezoid rule over the levels), ``curve`` (per level: threshold, P, R, F) and
    ``per_image`` (per photo: best F and its threshold)."""

    ods: float
    ods_precision: float
    ods_recall: float
    ods_threshold: float
    ois: float
    ois_precision: float
    ois_recall: float
    ap: float
    curve: list = field(default_factory=list)
    per_image: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def summarize(counts: np.ndarray, thresholds: Sequence[float]) -> BoundaryScores:
    """ODS, OIS and AP from per-photo counts int (N, T, 4) (as from :func:`image_counts`) at
    levels ``thresholds`` (T values, any labels for binary sweeps); (T, 4) is one photo.

    An empty prediction has precision 0 (and recall 0), so F = 0.
    """
    counts = np.asarray(counts, np.int64)
    if counts.ndim == 2:  # one photo
        counts = counts[None]
    total = counts.sum(0)
    p, r = _pr(total)
    f = _f(p, r)
    best = int(np.argmax(f))
    pi, ri = _pr(counts)
    fi = _f(pi, ri)
    choice = fi.argmax(1)
    chosen = counts[np.arange(len(counts)), choice].sum(0)
    op, orr = _pr(chosen)
    order = np.argsort(r)
    ap = float(np.trapezoid(p[order], r[order])) if hasattr(np, "trapezoid") else float(np.trapz(p[order], r[order]))
    return BoundaryScores(
        ods=float(f[best]), ods_precision=float(p[best]), ods_recall=float(r[best]),
        ods_threshold=float(thresholds[best]), ois=float(_f(op, orr)), ois_precision=float(op), ois_recall=float(orr),
        ap=ap, curve=[[float(t), float(a), float(b), float(c)] for t, a, b, c in zip(thresholds, p, r, f)],
        per_image=[[float(fi[i, choice[i]]), float(thresholds[choice[i]])] for i in range(len(counts))])


def soft_levels(boundary: np.ndarray, thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
                apply_nms: bool = True) -> list[np.ndarray]:
    """The thin binary maps of a soft boundary map float (H, W) in [0, 1] at each threshold
    (NMS first, then threshold, then thinning), low to high."""
    e = nms(boundary) if apply_nms else np.asarray(boundary, np.float32)
    return [thin(e >= t) if (e >= t).any() else np.zeros(e.shape, bool) for t in thresholds]


def evaluate_soft(boundaries: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                  thresholds: Sequence[float] = DEFAULT_THRESHOLDS, apply_nms: bool = True,
                  tolerance: float = TOLERANCE) -> BoundaryScores:
    """ODS/OIS of soft boundary maps float (H, W) in [0, 1] against human maps bool (K, H, W)."""
    counts = np.stack([image_counts(soft_levels(b, thresholds, apply_nms), g, tolerance)
                       for b, g in zip(boundaries, gts)])
    return summarize(counts, thresholds)


def evaluate_levels(levels: Sequence[Sequence[np.ndarray]], gts: Sequence[np.ndarray], labels: Sequence,
                    tolerance: float = TOLERANCE) -> BoundaryScores:
    """ODS/OIS of binary detectors run at several settings (e.g. Canny thresholds): ``levels[i][t]``
    is photo i's thin bool (H, W) map at setting t; ``labels`` name the settings."""
    counts = np.stack([image_counts(list(lv), g, tolerance) for lv, g in zip(levels, gts)])
    return summarize(counts, labels)
