"""Sampling from a trained DCGAN generator: seeded latents, the truncation trick and latent
walks (spherical interpolation).

A trained generator is a float16 safetensors file with a JSON model card of format
:data:`GAN_CARD_FORMAT` (written by :class:`~atelier.methods.gan.train.GANTrainer`), loaded
with sha256 verification by :func:`load_generator`.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Union

import torch

from ...core.errors import InputError
from ...networks.generators import DCGANGenerator
from ...training.cards import read_verified
from ...training.zoo import shipped_dir

__all__ = ["GAN_CARD_FORMAT", "SHIPPED_DIR", "generator_path", "image_grid", "interpolate", "latents", "load_generator",
           "sample", "shipped_generators"]

GAN_CARD_FORMAT = "atelier-dcgan-generator"
#: Where shipped generators live (``<name>.safetensors`` + ``<name>.json``).
SHIPPED_DIR = shipped_dir("gan")
PathLike = Union[str, os.PathLike]


def load_generator(path: PathLike, device: str | torch.device = "cpu") -> DCGANGenerator:
    """Load a trained DCGAN generator, verified against its model card.

    Args:
        path: a run folder, the ``.safetensors`` file (or its ``.json`` card, or the common
            stem), or a shipped generator's name (see :func:`generator_path`).
        device: where to put the network.

    Returns:
        A float32 :class:`~atelier.networks.generators.DCGANGenerator` in eval mode (batch
        norm uses the stored statistics) with the attribute ``card``.

    Raises:
        InputError: naming the file: missing or unreadable weights or card, a sha256 mismatch,
            not a DCGAN generator, or weights that do not fit the card's architecture.
    """
    card, state, weights, arch = read_verified(generator_path(path), lambda c: (int(c["architecture"]["z_dim"]),
                                                                int(c["architecture"]["base"]),
                                                                int(c["architecture"]["size"]),
                                                                str(c["architecture"].get("upsample", "deconv"))))
    if card.get("format") != GAN_CARD_FORMAT:
        raise InputError(f"not a DCGAN generator (model card format {card.get('format')!r})", weights)
    try:
        g = DCGANGenerator(*arch)
        g.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (RuntimeError, ValueError) as e:
        raise InputError(f"the weights do not fit the generator the model card describes ({e})", weights) from None
    g.card = card
    return g.to(device).eval()


def latents(n: int, z_dim: int, seed: int = 0, truncation: float | None = None) -> torch.Tensor:
    """``n`` latent vectors from N(0, I), float32 (n, z_dim), CPU; a pure function of the arguments.

    Args:
        truncation: None for none, else > 0: every coordinate with ``|z| > truncation`` is drawn
            again until it is not (the truncation trick of Brock et al. 2019: less variety,
            more typical images).

    Raises:
        ValueError: ``n`` < 1 or ``truncation`` <= 0.
    """
    if n < 1:
        raise ValueError(f"the number of samples must be >= 1, got {n}")
    if truncation is not None and not truncation > 0:
        raise ValueError(f"truncation must be > 0, got {truncation}")
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, z_dim, generator=g)
    if truncation is not None:
        for _ in range(1000):
            bad = z.abs() > truncation
            if not bool(bad.any()):
                break
            z = torch.where(bad, torch.randn(n, z_dim, generator=g), z)
        z = z.clamp(-truncation, truncation)
    return z


@torch.no_grad()
def sample(generator: DCGANGenerator, n: int, seed: int = 0, truncation: float | None = None,
           batch: int = 64) -> torch.Tensor:
    """``n`` images from ``generator``: float32 (n, 3, size, size) in [0, 1], CPU.
    The same (generator, n, seed, truncation) gives the same images."""
    z = latents(n, generator.z_dim, seed, truncation)
    dev = next(generator.parameters()).device
    return torch.cat([generator(z[i:i + batch].to(dev)).float().cpu() for i in range(0, n, batch)])


def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    an, bn = a / a.norm(), b / b.norm()
    omega = torch.arccos((an * bn).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    if float(so) < 1e-6:
        return (1 - t)[:, None] * a + t[:, None] * b
    return (torch.sin((1 - t) * omega) / so)[:, None] * a + (torch.sin(t * omega) / so)[:, None] * b


@torch.no_grad()
def interpolate(generator: DCGANGenerator, keys: int = 4, steps: int = 8, seed: int = 0,
                truncation: float | None = None, loop: bool = False) -> torch.Tensor:
    """A latent walk: ``keys`` seeded latent vectors joined by spherical interpolation with
    ``steps`` images per segment (the last key included; with ``loop`` the walk returns to the
    first key, for a looping GIF).

    Returns:
        float32 (frames, 3, size, size) in [0, 1], CPU; frames = ``(keys - 1) * steps + 1``, or
        ``keys * steps`` with ``loop``.

    Raises:
        ValueError: ``keys`` < 2 or ``steps`` < 1.
    """
    if keys < 2 or steps < 1:
        raise ValueError(f"a latent walk needs at least 2 keys and 1 step, got {keys} and {steps}")
    z = latents(keys, generator.z_dim, seed, truncation)
    if loop:
        z = torch.cat([z, z[:1]])
    t = torch.arange(steps, dtype=torch.float32) / steps
    path = [_slerp(z[i], z[i + 1], t) for i in range(len(z) - 1)]
    if not loop:
        path.append(z[-1:])
    zs = torch.cat(path)
    dev = next(generator.parameters()).device
    return torch.cat([generator(zs[i:i + 64].to(dev)).float().cpu() for i in range(0, len(zs), 64)])


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2, value: float = 1.0) -> torch.Tensor:
    """Tile ``images`` (float32 (N, 3, H, W)) row by row, ``nrow`` per row (default: about
    sqrt(N)), with ``pad`` pixels of ``value`` between them: float32 (1, 3, H', W')."""
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    out = torch.full((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), value, dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, nrow)
        out[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = images[i]
    return out.unsqueeze(0)


def generator_path(name_or_path: PathLike) -> pathlib.Path:
    """The weights file of a generator given as a run folder (its ``generator.safetensors``), a
    ``.safetensors``/``.json`` file, or the name of a shipped generator
    (:func:`shipped_generators`).

    Raises:
        InputError: nothing of that name.
    """
    p = pathlib.Path(os.fspath(name_or_path)).expanduser()
    if p.is_dir():
        p = p / "generator.safetensors"
        if not p.is_file():
            raise InputError("no generator.safetensors in this folder; train one with 'atelier gan train' or "
                             "wait for the run to export", p.parent)
        return p
    if p.exists() or p.suffix.lower() in (".safetensors", ".json") or os.sep in os.fspath(name_or_path):
        return p
    shipped = SHIPPED_DIR / f"{os.fspath(name_or_path)}.safetensors"
    if shipped.is_file():
        return shipped
    names = ", ".join(shipped_generators()) or "none"
    raise InputError(f"no generator run folder, file or shipped generator of this name (shipped: {names})", p)


def shipped_generators() -> list[str]:
    """Names of the generators shipped in ``atelier/models/gan``."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.safetensors")) if SHIPPED_DIR.is_dir() else []
