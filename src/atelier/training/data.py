"""Training photos for feed-forward style networks: random square crops of a folder of images.

Johnson et al. (2016) trained on 256 x 256 crops of MS-COCO photos; here any folder of
photos (recursively) or list of files serves, with random rescaling and horizontal flips
as augmentation. Every item is a pure function of (seed, epoch, index), so a run that is
stopped and resumed sees exactly the same crops.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import warnings
from typing import Iterable, Sequence, Union

import torch
from PIL import Image

from ..errors import InputError
from ..image import open_image, pil_to_tensor

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataset", "list_images", "item_seed"]

#: File name endings (lower case) that are read as training images.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

PathLike = Union[str, os.PathLike]


def list_images(root_or_files: PathLike | Iterable[PathLike]) -> list[pathlib.Path]:
    """Image files under a folder (recursively), a single file, or a list of files/folders.

    Hidden files and folders (names starting with ``.``) are left out. Files are
    returned sorted (folders walked in sorted order), so the list, and hence the
    training order, does not depend on the file system.

    Args:
        root_or_files: a folder, an image file, or an iterable of folders and files.
            Explicitly named files are kept whatever their extension; files found in
            folders are kept when their name ends in one of :data:`IMAGE_EXTENSIONS`
            (any case).

    Returns:
        Paths of the image files, without duplicates, in a deterministic order.

    Raises:
        InputError: a named path does not exist, or no image file is found (the
            message names the folder and the accepted extensions).
    """
    if isinstance(root_or_files, (str, os.PathLike)):
        sources = [root_or_files]
    else:
        sources = list(root_or_files)
    if not sources:
        raise InputError("no training images given; pass a folder of photos or a list of image files")
    out: list[pathlib.Path] = []
    seen: set[pathlib.Path] = set()
    for src in sources:
        p = pathlib.Path(os.fspath(src)).expanduser()
        if p.is_dir():
            found = []
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found += [pathlib.Path(dirpath) / f for f in sorted(filenames)
                          if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
            if not found:
                raise InputError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder", p)
        elif p.is_file():
            found = [p]
        else:
            raise InputError("training image folder or file not found", p)
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one item, mixed from (seed, epoch, index) with BLAKE2b.

    The same triple gives the same seed on every machine and Python version.
    """
    digest = hashlib.blake2b(f"atelier:{int(seed)}:{int(epoch)}:{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class ImageFolderDataset(torch.utils.data.Dataset):
    """Random square crops of training photos, as float32 (3, size, size) RGB tensors in [0, 1].

    Each item is made from one file by

    1. reading it with :func:`atelier.image.open_image` (EXIF orientation applied,
       alpha over white, all the checks of the rest of atelier);
    2. drawing a scale ``s`` uniformly from ``scale_jitter = (lo, hi)`` and cropping a
       random square of side ``min(H, W) * lo / s`` (so ``s = lo`` takes the whole
       shorter side and ``s = hi`` zooms in by ``hi / lo``), resized to ``size`` x
       ``size`` (bicubic, antialiased);
    3. flipping it left-right with probability 1/2.

    The random numbers come from a ``torch.Generator`` seeded by
    :func:`item_seed` ``(seed, epoch, index)``: the same triple always gives the same
    tensor. ``dataset[i]`` uses :attr:`epoch` (set it with :meth:`set_epoch`);
    :meth:`get` takes the epoch explicitly.

    Unreadable files (corrupt, truncated, not an image, too small, ...) never stop
    training: the first time one is met a :class:`UserWarning` naming the file and
    the reason is issued, the file is recorded in :attr:`skipped_files`, and the next
    readable file (in list order, wrapping around) is used instead, with the same
    random numbers.

    Args:
        root_or_files: a folder (searched recursively for files ending in
            :data:`IMAGE_EXTENSIONS`), an image file, or a list of folders/files.
        size: side of the square crops in pixels (>= 16).
        scale_jitter: ``(lo, hi)`` with ``0 < lo <= hi``; ``None`` means ``(1, 1)``
            (always the whole shorter side, centre at a random position).
        seed: base seed of the crops and flips.

    Attributes:
        files: the listed image files (list of ``pathlib.Path``).
        skipped: number of distinct files found unreadable so far.
        skipped_files: those files, with the reason, as ``(path, message)`` pairs.
        epoch: epoch used by ``dataset[i]``.

    Raises:
        InputError: a named path does not exist or no image file is found; from
            :meth:`get`, when no file at all can be read.
        ValueError: ``size`` or ``scale_jitter`` out of range.
    """

    def __init__(self, root_or_files: PathLike | Sequence[PathLike], size: int = 256,
                 scale_jitter: tuple[float, float] | None = (0.8, 1.2), seed: int = 0):
        if isinstance(size, bool) or not isinstance(size, int) or size < 16:
            raise ValueError(f"crop size must be an integer of at least 16 pixels, got {size!r}")
        lo, hi = (1.0, 1.0) if scale_jitter is None else (float(scale_jitter[0]), float(scale_jitter[1]))
        if not (0 < lo <= hi) or hi == float("inf"):
            raise ValueError(f"scale_jitter must be (lo, hi) with 0 < lo <= hi, got {scale_jitter!r}")
        self.files = list_images(root_or_files)
        self.size, self.scale_jitter, self.seed = size, (lo, hi), int(seed)
        self.epoch = 0
        self.skipped_files: list[tuple[pathlib.Path, str]] = []
        self._bad: set[int] = set()

    @property
    def skipped(self) -> int:
        """Number of distinct unreadable files met so far."""
        return len(self._bad)

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops ``dataset[i]`` returns."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.get(index, self.epoch)

    def _open(self, index: int) -> Image.Image | None:
        """The image of file ``index``, or None (after a warning, once per file) if unreadable."""
        if index in self._bad:
            return None
        path = self.files[index]
        try:
            return open_image(path)
        except InputError as e:
            reason = e.message
        except Exception as e:  # noqa: BLE001 - a training run must not die on one bad file
            reason = f"{type(e).__name__}: {e}"
        self._bad.add(index)
        self.skipped_files.append((path, reason))
        warnings.warn(f"skipping unreadable training image {path}: {reason}", UserWarning, stacklevel=3)
        return None

    def _readable(self, index: int) -> tuple[int, Image.Image]:
        n = len(self.files)
        for k in range(n):
            i = (index + k) % n
            im = self._open(i)
            if im is not None:
                return i, im
        raise InputError(f"none of the {n} training image(s) could be read; see the warnings above",
                         self.files[0].parent if n else None)

    def get(self, index: int, epoch: int = 0) -> torch.Tensor:
        """The random crop of item ``index`` in ``epoch``.

        Args:
            index: 0 <= index < len(self) (negative indices count from the end).
            epoch: any integer; each epoch gives other crops and flips.

        Returns:
            float32 (3, size, size), RGB in [0, 1], on the CPU.

        Raises:
            IndexError: ``index`` out of range.
            InputError: no file at all is readable.
        """
        n = len(self.files)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} image(s)")
        index %= n
        g = torch.Generator().manual_seed(item_seed(self.seed, epoch, index))
        u = torch.rand(4, generator=g, dtype=torch.float64).tolist()
        _, im = self._readable(index)
        lo, hi = self.scale_jitter
        s = lo + (hi - lo) * u[0]
        w, h = im.size
        side = min(w, h) * lo / s
        x0, y0 = (w - side) * u[1], (h - side) * u[2]
        out = im.resize((self.size, self.size), Image.Resampling.BICUBIC, box=(x0, y0, x0 + side, y0 + side))
        if u[3] < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return pil_to_tensor(out)[0]

    def center_crop(self, index: int = 0) -> torch.Tensor:
        """The centred square crop of the whole shorter side of the first readable file at or
        after ``index``, resized to ``size`` (no randomness): float32 (3, size, size) in [0, 1].
        Used for training previews."""
        _, im = self._readable(index % len(self.files))
        w, h = im.size
        side = min(w, h)
        x0, y0 = (w - side) / 2, (h - side) / 2
        out = im.resize((self.size, self.size), Image.Resampling.BICUBIC, box=(x0, y0, x0 + side, y0 + side))
        return pil_to_tensor(out)[0]
