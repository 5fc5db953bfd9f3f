"""Style embeddings: one short, L2-normalized vector per image from the frozen VGG encoder's
feature statistics, so that "which of my paintings look alike" is a nearest-neighbour query.

The recipe (measured with the crop-retrieval benchmark, ``benchmarks/analysis.py``;
numbers in ``docs/benchmarks.md``):

1. The image is resized so that its longest side is :attr:`EmbeddingConfig.size` pixels
   (256 by default), which makes the vector nearly independent of the file's resolution.
2. The encoder (the bundled Caffe VGG19, or a torchvision VGG16/VGG19 file) gives
   ``relu1_1 .. relu5_1``. For each layer, the per-channel mean and standard deviation over
   all positions (the statistics AdaIN transfers, Huang & Belongie 2017; the diagonal of the
   Gram matrix's information without its O(C^2) size): 2 x (64 + 128 + 256 + 512 + 512)
   = 2,944 numbers.
3. Each value is square-rooted (a power normalization that keeps a few strong channels from
   dominating), and each layer's block (means, stds) is L2-normalized on its own, so the five
   layers weigh the same whatever their channel count and activation scale.
4. A fixed Gaussian random projection, seeded (:attr:`EmbeddingConfig.seed`), maps the
   2,944 numbers to :attr:`EmbeddingConfig.dim` (256 by default; Johnson-Lindenstrauss: the
   distances are kept to a few per cent), and the result is L2-normalized. A fixed projection
   rather than PCA fitted on a collection: a vector never changes when the collection grows,
   so an index can be updated incrementally and two collections can be compared.
5. A fixed PCA whitening of those 256 numbers, shipped with atelier
   (``models/analysis/style_whitening.safetensors`` and its model card; fitted once by
   ``scripts/fit_style_whitening.py`` on 360 photos of the training pack, never on the
   paintings the benchmark uses), then L2 normalization. Without it all vectors sit in a
   narrow cone (unrelated paintings at cosine distance 0.02-0.05) whose widest directions are
   mostly colour; whitened, crop-retrieval top-1 goes from about 95-96 % to about 98 %. It
   applies to the default size, dim, seed, layers and encoder only (``whiten``).

On normalized vectors cosine similarity and euclidean distance rank neighbours the same way
(``|a - b|^2 = 2 - 2 cos``); both are offered.

Everything is deterministic on the CPU (fixed seed, fp32, no randomness in the encoder).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch

from ..io import images as img
from ..core.errors import InputError
from ..encoders.vgg import get_encoder
from ..training.zoo import shipped_dir

__all__ = ["EmbeddingConfig", "StyleEmbedder", "style_statistics", "embed_statistics", "projection_matrix",
           "fit_whitening", "load_whitening"]

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

#: The shipped whitening (mean and matrix in the projected space) and its model card.
WHITENING_FILE = shipped_dir("analysis") / "style_whitening.safetensors"
WHITENING_CARD_FORMAT = "atelier-style-whitening"


@dataclass(frozen=True)
class EmbeddingConfig:
    """How an embedding is made; stored with every collection so that queries match it.

    Attributes:
        size: longest side in pixels the image is resized to before encoding.
        dim: length of the embedding (the random projection's output); ``0`` keeps the
            full 2,944 statistics (still power- and block-normalized).
        seed: seed of the random projection.
        layers: encoder layers whose statistics are used.
        weights: ``None`` for the bundled Caffe VGG19, or the path of a torchvision-format
            VGG16/VGG19 state dict.
        whiten: apply the shipped whitening after the projection (see the module docstring);
            ``None`` (the default) means: where it applies, i.e. with the default size, dim,
            seed, layers and encoder, which it was fitted for. :meth:`validate` resolves it.
    """

    size: int = 256
    dim: int = 256
    seed: int = 0
    layers: tuple = STYLE_LAYERS
    weights: Optional[str] = None
    whiten: Optional[bool] = None

    def whitening_applies(self) -> bool:
        """True when this is the configuration the shipped whitening was fitted for."""
        return ((self.size, self.dim, self.seed, tuple(self.layers)) == (256, 256, 0, STYLE_LAYERS)
                and self.weights in (None, "vgg19"))

    def validate(self) -> "EmbeddingConfig":
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 32 <= self.size <= 4096:
            raise InputError(f"embedding size must be a whole number of pixels in 32..4096, got {self.size!r}")
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 0:
            raise InputError(f"embedding dim must be a whole number >= 0, got {self.dim!r}")
        if not self.layers:
            raise InputError("embedding layers must name at least one layer")
        bad = [n for n in self.layers if n not in _CHANNELS]
        if bad:
            raise InputError(f"embedding layers must be among {sorted(_CHANNELS)}, got {bad}")
        if self.whiten is None:
            return replace(self, whiten=self.whitening_applies() and WHITENING_FILE.is_file())
        if self.whiten and not self.whitening_applies():
            raise InputError("the shipped whitening was fitted for 256 px, dim 256, seed 0 and the bundled VGG19; "
                             "leave out the whitening (--no-whiten) with other settings")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EmbeddingConfig":
        return cls(size=int(d["size"]), dim=int(d["dim"]), seed=int(d["seed"]), layers=tuple(d["layers"]),
                   weights=d.get("weights"), whiten=bool(d.get("whiten", False)))


def style_statistics(encoder, images: torch.Tensor, layers: Sequence[str] = STYLE_LAYERS) -> np.ndarray:
    """Per-channel mean and standard deviation of each layer, for a batch of same-size images.

    Args:
        encoder: a :class:`~atelier.encoders.vgg.VGGEncoder`.
        images: float32 (N, 3, H, W), RGB in [0, 1].
        layers: layer names.

    Returns:
        float32 (N, sum over layers of 2 x channels): for each layer in order, the C means
        then the C standard deviations (population, over all H' x W' positions).
    """
    with torch.no_grad():
        feats = encoder(images, layers)
    parts = []
    for name in layers:
        f = feats[name].flatten(2)  # (N, C, P)
        parts += [f.mean(2), f.std(2, unbiased=False)]
    return torch.cat(parts, 1).cpu().numpy().astype(np.float32)


def _blocks(layers: Sequence[str], arch_channels: dict) -> list[int]:
    return [2 * arch_channels[name] for name in layers]


_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512,
             "relu1_2": 64, "relu2_2": 128, "relu3_2": 256, "relu4_2": 512, "relu5_2": 512}


def projection_matrix(in_dim: int, dim: int, seed: int) -> np.ndarray:
    """The fixed Gaussian random projection (in_dim, dim), entries N(0, 1/dim), from a seeded
    numpy generator (PCG64): the same matrix on every machine and numpy version."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return (rng.standard_normal((in_dim, dim)) / np.sqrt(dim)).astype(np.float32)


def embed_statistics(stats: np.ndarray, config: EmbeddingConfig) -> np.ndarray:
    """Statistics from :func:`style_statistics` (N, D) -> embeddings (N, dim), float32, unit length."""
    x = np.sqrt(np.maximum(stats.astype(np.float64), 0.0))
    out, start = [], 0
    for width in _blocks(config.layers, _CHANNELS):
        block = x[:, start:start + width]
        out.append(block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12))
        start += width
    if start != x.shape[1]:
        raise ValueError(f"statistics have {x.shape[1]} columns, expected {start} for layers {config.layers}")
    x = np.concatenate(out, 1) / np.sqrt(len(out))
    if config.dim:
        x = x @ projection_matrix(x.shape[1], config.dim, config.seed).astype(np.float64)
    if config.whiten:
        mean, matrix = load_whitening()
        x = (x - mean) @ matrix
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x.astype(np.float32)


_WHITENING: dict = {}


def load_whitening(path: str | os.PathLike = WHITENING_FILE) -> tuple[np.ndarray, np.ndarray]:
    """(mean (dim,), matrix (dim, dim)) float64 of a whitening file, verified against its model
    card's sha256 (cached).

    Raises:
        InputError: a missing or modified file.
    """
    key = str(path)
    if key not in _WHITENING:
        from ..training.cards import read_verified

        def parse(card):
            if card.get("format") != WHITENING_CARD_FORMAT:
                raise ValueError(f"format is {card.get('format')!r}, not a style whitening")

        _, state, _, _ = read_verified(path, parse)
        _WHITENING[key] = (state["mean"].double().numpy(), state["matrix"].double().numpy())
    return _WHITENING[key]


def fit_whitening(projected: np.ndarray, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    """PCA whitening of projected statistics (N, dim): ``(x - mean) @ matrix`` has (nearly) unit
    variance along every principal axis. ``shrink`` (a share of the largest eigenvalue) is added to
    every eigenvalue, so that directions with little variance are not blown up into noise."""
    y = np.asarray(projected, np.float64)
    mean = y.mean(0)
    eigval, eigvec = np.linalg.eigh(np.cov((y - mean).T))
    eigval = np.maximum(eigval, 0.0)
    return mean, eigvec / np.sqrt(eigval + shrink * eigval.max())


def encoder_id(weights: Optional[str]) -> str:
    """A short name of the weight source, stored with a collection: ``vgg19-caffe`` or
    ``torchvision:<first 16 hex of the file's sha256>``."""
    if weights is None or (str(weights) == "vgg19" and not Path(weights).exists()):
        return "vgg19-caffe"
    from ..core.files import sha256_file

    try:
        return "torchvision:" + sha256_file(weights)[:16]
    except OSError as e:
        raise InputError(f"cannot read the weights file ({e.strerror or e})", weights) from None


class StyleEmbedder:
    """Maps images to style embeddings (see the module docstring for the recipe).

    Args:
        config: an :class:`EmbeddingConfig` (defaults: 256 px, 256 dimensions, seed 0, VGG19).
        device: ``"cpu"`` (default; deterministic) or a torch device.

    Example::

        emb = StyleEmbedder()
        v = emb.embed_images([load_image("a.jpg"), load_image("b.jpg")])   # (2, 256), unit rows
        float(v[0] @ v[1])                                                  # cosine similarity
    """

    def __init__(self, config: Optional[EmbeddingConfig] = None, device: str | torch.device = "cpu"):
        self.config = (config or EmbeddingConfig()).validate()
        self.device = torch.device(device)
        if self.config.weights is not None and str(self.config.weights) != "vgg19":
            p = Path(self.config.weights)
            if not p.is_file():
                raise InputError("weights file not found", p)
        self.encoder = get_encoder(self.config.weights, device=self.device)
        missing = [n for n in self.config.layers if n not in self.encoder.names]
        if missing:
            raise InputError(f"unknown layer(s) {missing} for {self.encoder.arch}")

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """An image tensor resized so its longest side is ``config.size`` (what gets encoded)."""
        if max(image.shape[-2:]) == self.config.size:
            return image
        return img.resize_longest(image, self.config.size)

    def load(self, path: str | os.PathLike) -> torch.Tensor:
        """Load a file at the embedding size (Lanczos downscale while decoding).

        Raises:
            InputError: the file is not a readable image.
        """
        return img.load_image(path, size=self.config.size)

    def statistics(self, images: Iterable[torch.Tensor]) -> np.ndarray:
        """Raw statistics (N, D) of image tensors, batching those of the same size."""
        images = [self.prepare(t if t.dim() == 4 else t.unsqueeze(0)) for t in images]
        if not images:
            return np.zeros((0, sum(_blocks(self.config.layers, _CHANNELS))), np.float32)
        out: list = [None] * len(images)
        groups: dict = {}
        for i, t in enumerate(images):
            groups.setdefault(tuple(t.shape[-2:]), []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), 8):
                chunk = idx[start:start + 8]
                batch = torch.cat([images[i] for i in chunk]).to(self.device)
                stats = style_statistics(self.encoder, batch, self.config.layers)
                for j, i in enumerate(chunk):
                    out[i] = stats[j]
        return np.stack(out)

    def embed_images(self, images: Iterable[torch.Tensor]) -> np.ndarray:
        """Embeddings (N, dim), float32, unit rows, of image tensors ((1, 3, H, W) or (3, H, W), [0, 1])."""
        return embed_statistics(self.statistics(images), self.config)

    def embed_files(self, paths: Sequence[str | os.PathLike], on_error: Optional[Callable] = None,
                    progress: Optional[Callable[[int], None]] = None, batch: int = 8) -> tuple[list, np.ndarray]:
        """Embed image files; unreadable ones are skipped.

        Args:
            paths: image files.
            on_error: called as ``on_error(path, InputError)`` for a file that cannot be read
                (default: raise).
            progress: called with the number of files done after each chunk.
            batch: files loaded and encoded per chunk.

        Returns:
            (the paths that were embedded, embeddings (len, dim)).
        """
        done, vecs = [], []
        for start in range(0, len(paths), batch):
            chunk, tensors = [], []
            for p in paths[start:start + batch]:
                try:
                    tensors.append(self.load(p))
                    chunk.append(p)
                except InputError as e:
                    if on_error is None:
                        raise
                    on_error(p, e)
            if tensors:
                vecs.append(self.embed_images(tensors))
                done += chunk
            if progress is not None:
                progress(min(start + batch, len(paths)))
        dim = self.config.dim or sum(_blocks(self.config.layers, _CHANNELS))
        return done, (np.concatenate(vecs) if vecs else np.zeros((0, dim), np.float32))

    def embed_file(self, path: str | os.PathLike) -> np.ndarray:
        """The embedding (dim,) of one image file. Raises InputError for an unreadable file."""
        return self.embed_images([self.load(path)])[0]

    def identity(self) -> dict:
        """What a collection stores to check that a query embeds the same way."""
        return {"config": self.config.to_dict(), "encoder": encoder_id(self.config.weights)}


def config_digest(identity: dict) -> str:
    """A short hash of :meth:`StyleEmbedder.identity` (two collections with the same digest are comparable)."""
    import json

    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
