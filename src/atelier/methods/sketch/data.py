"""BSDS500 reading and the cache of per-pixel encoder features for training contour heads.

BSDS500 (Arbelaez et al. 2011): ``images/{train,val}/*.jpg`` and ``groundTruth/{train,val}/*.mat``,
one MATLAB file per photo with a 1xK cell ``groundTruth`` of K (usually 5-6) human
annotations, each with a uint8 0/1 ``Boundaries`` map of the photo's size.

The cache (:func:`build_feature_cache`) holds, for every training photo (and its mirror
image), the frozen VGG19 features of :data:`~atelier.networks.contours.CONTOUR_LAYERS`
interpolated at a stratified sample of pixels (:func:`sample_pixels`): every pixel that some
annotator marked (subsampled above a cap), pixels near those, and pixels far from them, each
with the number of image pixels it stands for, so that sums over the samples estimate sums over
the whole image without bias. :class:`~atelier.networks.contours.ContourNet` computes exactly
the same logits from these as from the full maps, so training its heads needs no encoder pass.
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
import torch

from ...core.errors import InputError
from ...core.files import atomic_write
from ...networks.contours import CONTOUR_LAYERS, bilinear_points

__all__ = ["BSDSItem", "bsds_split", "load_boundaries", "sample_pixels", "build_feature_cache", "FeatureCache"]

PathLike = Union[str, os.PathLike]
CACHE_FORMAT = "atelier-contour-feature-cache"
#: Samples per image: at most EDGE_CAP marked pixels, NEAR near them, FAR elsewhere.
EDGE_CAP, NEAR, FAR = 2400, 800, 800
#: Pixels within this distance (px) of a marked pixel, unmarked, form the "near" stratum.
NEAR_RADIUS = 3


@dataclass(frozen=True)
class BSDSItem:
    """One BSDS500 photo: ``name`` (file stem), ``image`` and ``ground_truth`` (.mat) paths."""

    name: str
    image: pathlib.Path
    ground_truth: pathlib.Path


def bsds_split(root: PathLike, split: str) -> list[BSDSItem]:
    """The photos of a BSDS500 split that have a ground-truth file, sorted by name.

    Args:
        root: the ``bsds500`` folder (``images/`` and ``groundTruth/`` inside).
        split: ``"train"``, ``"val"`` or ``"test"``.

    Raises:
        InputError: the split's folders are missing or hold no photo with ground truth.
    """
    root = pathlib.Path(os.fspath(root)).expanduser()
    images, gts = root / "images" / split, root / "groundTruth" / split
    if not images.is_dir() or not gts.is_dir():
        raise InputError(f"not a BSDS500 folder with a {split!r} split (images/{split} and groundTruth/{split})", root)
    items = [BSDSItem(p.stem, p, gts / (p.stem + ".mat")) for p in sorted(images.glob("*.jpg"))
             if (gts / (p.stem + ".mat")).is_file()]
    if not items:
        raise InputError(f"no photo with a ground-truth file in the {split!r} split", root)
    return items


def load_boundaries(path: PathLike) -> np.ndarray:
    """The human boundary maps of one BSDS500 photo.

    Returns:
        bool (K, H, W): K annotations, True on a drawn boundary.

    Raises:
        InputError: unreadable file or no ``groundTruth`` cell with ``Boundaries``.
    """
    import scipy.io

    try:
        cell = scipy.io.loadmat(os.fspath(path))["groundTruth"]
        maps = [np.asarray(cell[0, k]["Boundaries"][0, 0]) > 0 for k in range(cell.shape[1])]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise InputError(f"cannot read BSDS500 ground truth ({type(e).__name__}: {e})", path) from None
    if not maps:
        raise InputError("the ground-truth file holds no annotation", path)
    return np.stack(maps)


def sample_pixels(consensus: np.ndarray, rng: np.random.Generator, edge_cap: int = EDGE_CAP, near: int = NEAR,
                  far: int = FAR) -> tuple[np.ndarray, np.ndarray]:
    """A stratified sample of pixels for the class-balanced loss.

    Args:
        consensus: float (H, W), the fraction of annotators who marked each pixel.
        rng: the random generator (the sample is a function of its state).

    Returns:
        ``(index, weight)``: int64 (P,) flat pixel indices and float32 (P,) how many image
        pixels each sample stands for (stratum size / samples drawn from it).
    """
    import cv2

    marked = consensus > 0
    near_mask = cv2.dilate(marked.astype(np.uint8), np.ones((2 * NEAR_RADIUS + 1,) * 2, np.uint8)) > 0
    strata = (np.flatnonzero(marked), np.flatnonzero(near_mask & ~marked), np.flatnonzero(~near_mask))
    idx, wts = [], []
    for pool, cap in zip(strata, (edge_cap, near, far)):
        if len(pool) == 0:
            continue
        take = pool if len(pool) <= cap else rng.choice(pool, cap, replace=False)
        idx.append(np.sort(take))
        wts.append(np.full(len(take), len(pool) / len(take), np.float32))
    return np.concatenate(idx).astype(np.int64), np.concatenate(wts)


class FeatureCache:
    """A feature cache on disk (see :func:`build_feature_cache`), memory-mapped.

    Attributes:
        features: float16 (rows, D) memmap, D = the channels of the layers, concatenated.
        consensus: float32 (rows,) fraction of annotators marking the pixel.
        weight: float32 (rows,) image pixels the sample stands for.
        offsets: int64 (entries + 1,) row ranges of the entries.
        pixels: int64 (entries,) pixels of each entry's image.
        names: entry names (``<photo>`` or ``<photo>-flip``).
        channels: channels per layer.
    """

    def __init__(self, folder: PathLike):
        self.folder = pathlib.Path(os.fspath(folder))
        meta_path = self.folder / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != CACHE_FORMAT:
                raise ValueError("not a contour feature cache")
            arrays = np.load(self.folder / "samples.npz")
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"cannot read the feature cache ({e}); delete the folder to rebuild it", self.folder) from None
        self.meta = meta
        n = int(meta["entries_done"])
        self.offsets = arrays["offsets"][: n + 1]
        rows = int(self.offsets[-1])
        self.consensus = arrays["consensus"][:rows]
        self.weight = arrays["weight"][:rows]
        self.pixels = arrays["pixels"][:n]
        self.names = list(meta["names"][:n])
        self.channels = list(meta["channels"])
        self.features = np.lib.format.open_memmap(self.folder / "features.npy", mode="r")

    def __len__(self) -> int:
        return len(self.names)

    def entry(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Entry ``i``: (features float32 (P, D), consensus float32 (P,), weight float32 (P,), pixels)."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return (torch.from_numpy(np.asarray(self.features[a:b], dtype=np.float32)),
                torch.from_numpy(self.consensus[a:b].copy()), torch.from_numpy(self.weight[a:b].copy()),
                int(self.pixels[i]))

    def split(self, feats: torch.Tensor) -> list[torch.Tensor]:
        """(P, D) -> one (P, C_l) view per layer."""
        return list(torch.split(feats, self.channels, dim=1))


def build_feature_cache(root: PathLike, folder: PathLike, encoder, split: str = "train", flips: bool = True,
                        seed: int = 0, layers=CONTOUR_LAYERS, precision: str = "fp32",
                        progress: Optional[Callable[[int, int], None]] = None) -> FeatureCache:
    """Encode the photos of a BSDS500 split once and keep their features at sampled pixels.

    Resumable: the metadata is rewritten (atomically) after every entry, and a second call
    continues after the last complete entry. Ctrl-C loses at most the running entry.

    Args:
        root: the ``bsds500`` folder.
        folder: the cache folder (created).
        encoder: a frozen :class:`~atelier.encoders.vgg.VGGEncoder`.
        split: the split to encode.
        flips: also encode each photo mirrored left-right (augmentation as in HED).
        seed: seed of the pixel sample of entry i (``seed * 100003 + i``).
        layers: the encoder layers.
        precision: the encoder's precision (``fp32`` or ``bf16``).
        progress: called as ``progress(done, total)`` after every entry.

    Returns:
        The :class:`FeatureCache`.
    """
    from ...io import images as img

    items = bsds_split(root, split)
    folder = pathlib.Path(os.fspath(folder))
    folder.mkdir(parents=True, exist_ok=True)
    entries = [(it, flip) for it in items for flip in ((False, True) if flips else (False,))]
    channels = [int(encoder(torch.zeros(1, 3, 32, 32), [n])[n].shape[1]) for n in layers]
    depth = sum(channels)
    max_rows = len(entries) * (EDGE_CAP + NEAR + FAR)
    meta_path, feat_path = folder / "meta.json", folder / "features.npy"
    config = {"root": str(root), "split": split, "flips": flips, "seed": seed, "layers": list(layers),
              "precision": precision, "caps": [EDGE_CAP, NEAR, FAR], "near_radius": NEAR_RADIUS}
    done, offsets, cons, wts, pixels, names = 0, [0], [], [], [], []
    if meta_path.is_file() and feat_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("config") != config:
            raise InputError("the feature cache was built with other settings; delete it or use another folder",
                             folder)
        done = int(meta["entries_done"])
        arrays = np.load(folder / "samples.npz")
        offsets = list(arrays["offsets"][: done + 1])
        cons = [arrays["consensus"][: offsets[-1]]]
        wts = [arrays["weight"][: offsets[-1]]]
        pixels = list(arrays["pixels"][:done])
        names = list(meta["names"][:done])
        feats = np.lib.format.open_memmap(feat_path, mode="r+")
    else:
        feats = np.lib.format.open_memmap(feat_path, mode="w+", dtype=np.float16, shape=(max_rows, depth))

    def save_meta():
        with atomic_write(folder / "samples.npz") as f:
            np.savez(f, offsets=np.asarray(offsets, np.int64),
                     consensus=np.concatenate(cons).astype(np.float32) if cons else np.zeros(0, np.float32),
                     weight=np.concatenate(wts).astype(np.float32) if wts else np.zeros(0, np.float32),
                     pixels=np.asarray(pixels, np.int64))
        with atomic_write(meta_path, "w") as f:
            json.dump({"format": CACHE_FORMAT, "config": config, "entries_done": len(names), "entries": len(entries),
                       "names": names, "channels": channels}, f)

    for i in range(done, len(entries)):
        item, flip = entries[i]
        image = img.load_image(item.image)
        consensus = load_boundaries(item.ground_truth).mean(0, dtype=np.float32)
        if flip:
            image, consensus = image.flip(-1), np.ascontiguousarray(consensus[:, ::-1])
        h, w = consensus.shape
        if tuple(image.shape[-2:]) != (h, w):
            raise InputError(f"photo is {image.shape[-1]}x{image.shape[-2]} but its ground truth {w}x{h}", item.image)
        idx, weight = sample_pixels(consensus, np.random.default_rng(seed * 100003 + i))
        ys, xs = torch.from_numpy(idx // w), torch.from_numpy(idx % w)
        with torch.no_grad():
            fmap = encoder(image, layers, precision)
            cols = [bilinear_points(fmap[n][0], ys, xs, h, w) for n in layers]
        rows = torch.cat(cols, 1).numpy().astype(np.float16)
        a = offsets[-1]
        feats[a:a + len(rows)] = rows
        feats.flush()
        offsets.append(a + len(rows))
        cons.append(consensus.reshape(-1)[idx])
        wts.append(weight)
        pixels.append(h * w)
        names.append(item.name + ("-flip" if flip else ""))
        save_meta()
        if progress is not None:
            progress(i + 1, len(entries))
    if not names:
        save_meta()
    del feats
    return FeatureCache(folder)
