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

from ..core.errors import InputError
from ..io.images import open_image, pil_to_tensor

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataset", "InMemoryImageDataset", "make_dataset", "list_images", "item_seed"]

#: File name endings (lower case) that are read as training images.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")

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

    1. reading it with :func:`atelier.io.images.open_image` (EXIF orientation applied,
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


class InMemoryImageDataset(ImageFolderDataset):
    """:class:`ImageFolderDataset` with every image decoded once and kept in memory, cropped on
    ``device`` (a GPU's training step then never waits for JPEG decoding).

    The crops follow the same recipe and the same random numbers as
    :class:`ImageFolderDataset` (scale ``s`` from ``scale_jitter``, a square of side
    ``min(H, W) * lo / s`` at a random place, resized to ``size``, flipped with probability
    1/2), but the box is rounded to whole pixels and resized with antialiased bilinear
    interpolation on the tensor, so the pixels differ slightly from the file-based dataset's.
    Memory: 3 bytes per pixel of every image (the compact pack, 1,942 images of 256 x 256:
    about 380 MB).

    Args:
        root_or_files, size, scale_jitter, seed: as for :class:`ImageFolderDataset`.
        device: where the decoded images are kept and the crops are made.
        workers: threads decoding the files at construction.

    Attributes:
        images: the decoded images, uint8 (3, H, W) tensors on ``device`` (None for an
            unreadable file, which is skipped as in :class:`ImageFolderDataset`).

    Raises:
        InputError, ValueError: as for :class:`ImageFolderDataset`; InputError also when no
            file at all is readable.
    """

    def __init__(self, root_or_files: PathLike | Sequence[PathLike], size: int = 256,
                 scale_jitter: tuple[float, float] | None = (0.8, 1.2), seed: int = 0,
                 device: torch.device | str = "cpu", workers: int = 8):
        super().__init__(root_or_files, size, scale_jitter, seed)
        from concurrent.futures import ThreadPoolExecutor

        self.device = torch.device(device)

        def decode(i: int) -> torch.Tensor | None:
            im = self._open(i)
            return None if im is None else pil_to_tensor(im)[0].mul(255).round().to(torch.uint8)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with ThreadPoolExecutor(max(1, workers)) as ex:
                decoded = list(ex.map(decode, range(len(self.files))))
        for w in caught:  # re-issued here, in the caller's thread
            warnings.warn(str(w.message), UserWarning, stacklevel=2)
        if all(t is None for t in decoded):
            raise InputError(f"none of the {len(self.files)} training image(s) could be read; see the warnings above",
                             self.files[0].parent if self.files else None)
        self.images = [None if t is None else t.to(self.device) for t in decoded]

    def _image(self, index: int) -> torch.Tensor:
        n = len(self.images)
        for k in range(n):
            t = self.images[(index + k) % n]
            if t is not None:
                return t
        raise InputError("no readable training image")  # unreachable: checked in __init__

    def _resize(self, crop: torch.Tensor) -> torch.Tensor:
        x = crop.unsqueeze(0).float().div_(255)
        if x.shape[-2:] != (self.size, self.size):
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                                align_corners=False, antialias=True)
        return x[0].clamp_(0, 1)

    def get(self, index: int, epoch: int = 0) -> torch.Tensor:
        """The random crop of item ``index`` in ``epoch``: float32 (3, size, size) in [0, 1] on
        ``device``; a pure function of (seed, epoch, index).

        Raises:
            IndexError: ``index`` out of range.
        """
        n = len(self.files)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} image(s)")
        index %= n
        g = torch.Generator().manual_seed(item_seed(self.seed, epoch, index))
        u = torch.rand(4, generator=g, dtype=torch.float64).tolist()
        im = self._image(index)
        lo, hi = self.scale_jitter
        s = lo + (hi - lo) * u[0]
        h, w = im.shape[-2:]
        side = max(1, min(h, w, round(min(w, h) * lo / s)))
        x0, y0 = round((w - side) * u[1]), round((h - side) * u[2])
        out = self._resize(im[:, y0:y0 + side, x0:x0 + side])
        return out.flip(-1) if u[3] < 0.5 else out

    def center_crop(self, index: int = 0) -> torch.Tensor:
        """The centred square crop of the first readable image at or after ``index``, resized to
        ``size``: float32 (3, size, size) in [0, 1], on the CPU."""
        im = self._image(index % len(self.files))
        h, w = im.shape[-2:]
        side = min(h, w)
        x0, y0 = (w - side) // 2, (h - side) // 2
        return self._resize(im[:, y0:y0 + side, x0:x0 + side]).cpu()


def make_dataset(root_or_files: PathLike | Sequence[PathLike], size: int, scale_jitter, seed: int,
                 in_memory: bool = False, device: torch.device | str = "cpu") -> ImageFolderDataset:
    """An :class:`InMemoryImageDataset` on ``device`` when ``in_memory``, else an
    :class:`ImageFolderDataset` (files read at every step); arguments as for those classes."""
    if in_memory:
        return InMemoryImageDataset(root_or_files, size, scale_jitter, seed, device=device)
    return ImageFolderDataset(root_or_files, size, scale_jitter, seed)
