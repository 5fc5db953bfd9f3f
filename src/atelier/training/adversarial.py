"""What adversarial training shares (the adversarial style networks of
:mod:`atelier.methods.feedforward.adversarial` and the DCGAN of :mod:`atelier.methods.gan`):
the GAN losses, the R1 penalty, differentiable augmentation, discriminator accuracy, a
finiteness check and the exponential moving average of generator weights.

* Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D minimizes ``E[relu(1 - D(x))] +
  E[relu(1 + D(G(z)))]``, G minimizes ``-E[D(G(z))]``.
* Non-saturating BCE (Goodfellow et al. 2014): D minimizes ``softplus(-D(x)) +
  softplus(D(G(z)))``, G minimizes ``softplus(-D(G(z)))``.
* R1 (Mescheder, Geiger & Nowozin 2018): ``gamma / 2 * E[||grad_x D(x)||^2]`` on real images.
* DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"): the same random, differentiable colour / translation / cutout transforms on
  real and fake images before the discriminator, so that a few hundred images suffice.

Logits may have any shape (one per image or one per patch); means are over all elements.
Every random draw comes from a caller-supplied ``torch.Generator`` so that a trainer that
checkpoints the generator's state resumes exactly.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import share_rows

__all__ = ["GAN_LOSSES", "DIFF_AUGMENT_OPS", "d_loss", "g_loss", "r1_penalty", "diff_augment", "parse_policy",
           "d_accuracy", "check_finite", "discriminator_update", "ema_update", "random_patches"]

GAN_LOSSES = ("hinge", "bce")
DIFF_AUGMENT_OPS = ("color", "translation", "cutout")


def _check_kind(kind: str) -> None:
    if kind not in GAN_LOSSES:
        raise ValueError(f"GAN loss must be one of {GAN_LOSSES}, got {kind!r}")


def _flat(logits: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [logits] if isinstance(logits, torch.Tensor) else list(logits)


def d_loss(real: torch.Tensor | Sequence[torch.Tensor], fake: torch.Tensor | Sequence[torch.Tensor],
           kind: str = "hinge") -> torch.Tensor:
    """Discriminator loss: float32 scalar (mean over all logits; averaged over the scales
    when lists of logit maps are given, one per scale of a multi-scale discriminator).

    Args:
        real, fake: logits (any shape) of real and generated images (or lists of them).
        kind: ``"hinge"`` or ``"bce"`` (non-saturating).

    Raises:
        ValueError: an unknown ``kind``.
    """
    _check_kind(kind)
    rs, fs = _flat(real), _flat(fake)
    total = 0.0
    for r, f in zip(rs, fs):
        r, f = r.float(), f.float()
        if kind == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        else:
            total = total + F.softplus(-r).mean() + F.softplus(f).mean()
    return total / len(rs)


def g_loss(fake: torch.Tensor | Sequence[torch.Tensor], kind: str = "hinge") -> torch.Tensor:
    """Generator loss on the logits of generated images: float32 scalar (``-mean(D)`` for hinge,
    ``mean(softplus(-D))`` for BCE), averaged over scales for a list.

    Raises:
        ValueError: an unknown ``kind``.
    """
    _check_kind(kind)
    fs = _flat(fake)
    total = 0.0
    for f in fs:
        total = total + (-f.float().mean() if kind == "hinge" else F.softplus(-f.float()).mean())
    return total / len(fs)


def r1_penalty(real_logits: torch.Tensor | Sequence[torch.Tensor], real_images: torch.Tensor) -> torch.Tensor:
    """``E[||grad_x sum D(x)||^2]`` over the batch (Mescheder et al. 2018), float32 scalar; multiply
    by ``gamma / 2``. ``real_images`` must have ``requires_grad=True`` and be the (augmented)
    input that produced ``real_logits``; the result is differentiable (create_graph)."""
    out = sum(r.float().sum() for r in _flat(real_logits))
    (grad,) = torch.autograd.grad(out, real_images, create_graph=True)
    return grad.float().pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def d_accuracy(real: torch.Tensor | Sequence[torch.Tensor], fake: torch.Tensor | Sequence[torch.Tensor]
               ) -> tuple[float, float]:
    """Share of real logits > 0 and of fake logits < 0 (over all elements and scales), in [0, 1]."""
    rs, fs = _flat(real), _flat(fake)
    r = torch.cat([t.detach().flatten() for t in rs])
    f = torch.cat([t.detach().flatten() for t in fs])
    return float((r > 0).float().mean()), float((f < 0).float().mean())


def check_finite(values: dict[str, float | torch.Tensor], step: int, what: str) -> None:
    """Raise FloatingPointError naming the first non-finite value (``what`` says which network's
    update was refused) and the 1-based ``step``; nothing has been updated when it is raised."""
    for name, v in values.items():
        v = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
        if not math.isfinite(v):
            raise FloatingPointError(
                f"the {name} loss became {v} at step {step}; the {what} was not updated and the last checkpoint "
                "is kept: lower the learning rates or the adversarial weight, raise --r1, or use precision fp32, "
                "then --resume")


def discriminator_update(judge, real: torch.Tensor, fake: torch.Tensor, optimizer: torch.optim.Optimizer,
                         kind: str, r1: float, step: int, before_update=None,
                         reduce_gradients=None, reduce_values=None) -> dict[str, torch.Tensor]:
    """One discriminator step, shared by every adversarial trainer: ``judge`` (a callable giving
    the logits, one tensor or one per scale) on the (already augmented) ``real`` and ``fake``
    batches (float32 (B, 3, H, W) in [0, 1]; ``fake`` detached), the :func:`d_loss` of ``kind``
    plus ``r1 / 2`` times :func:`r1_penalty` when ``r1`` > 0, a :func:`check_finite` that raises
    FloatingPointError before anything changes (``step``: the 1-based step it names), then
    ``before_update()`` (a trainer marks its state as mid-update there), the backward pass,
    ``reduce_gradients()`` (data-parallel: average the gradients over the ranks, as PyTorch DDP
    does, :func:`atelier.training.distributed.average_gradients`) and the optimizer step.
    ``reduce_values`` (data-parallel): maps the losses as ``{name: float}`` to the global batch's
    (:func:`atelier.training.distributed.average_values`) before the finiteness check, so every
    rank raises together when any rank's share is not finite.

    Returns:
        detached float32 scalars ``d`` (and ``r1``), ``d_real_acc`` and ``d_fake_acc`` (:func:`d_accuracy`).
    """
    if r1 > 0:
        real = real.detach().requires_grad_(True)
    lr_, lf = judge(real), judge(fake)
    loss = d_loss(lr_, lf, kind)
    out = {"d": loss}
    if r1 > 0:
        out["r1"] = r1_penalty(lr_, real)
        loss = loss + 0.5 * r1 * out["r1"]
    check_finite(out if reduce_values is None else reduce_values({k: float(v.detach()) for k, v in out.items()}),
                 step, "discriminator")
    acc = d_accuracy(lr_, lf)
    if before_update is not None:
        before_update()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if reduce_gradients is not None:
        reduce_gradients()
    optimizer.step()
    out = {k: v.detach() for k, v in out.items()}
    out["d_real_acc"], out["d_fake_acc"] = torch.tensor(acc[0]), torch.tensor(acc[1])
    return out


def parse_policy(policy: str | Iterable[str] | None) -> tuple[str, ...]:
    """DiffAugment policy from ``"color,translation,cutout"`` (any subset, in any order; "" or None:
    none). Returns the ops in canonical order.

    Raises:
        ValueError: an unknown op name.
    """
    if policy is None:
        return ()
    names = [p.strip() for p in (policy.split(",") if isinstance(policy, str) else policy) if p and p.strip()]
    bad = [n for n in names if n not in DIFF_AUGMENT_OPS]
    if bad:
        raise ValueError(f"unknown DiffAugment op(s) {bad}; use some of {', '.join(DIFF_AUGMENT_OPS)}")
    return tuple(op for op in DIFF_AUGMENT_OPS if op in names)


def diff_augment(x: torch.Tensor, policy: str | Iterable[str] | None, generator: torch.Generator,
                 translation: float = 0.125, cutout: float = 0.5, rows: range | None = None,
                 global_batch: int | None = None) -> torch.Tensor:
    """Differentiable augmentation (Zhao et al. 2020), each op with its own random draw per image.

    * ``color``: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5) (on the
      [-1, 1] scale of the paper, i.e. brightness +-0.25 here).
    * ``translation``: shift by up to ``translation`` of the side (integer pixels), zero padding.
    * ``cutout``: one zeroed square of side ``cutout * side`` centred at a random pixel (clipped
      at the border).

    Args:
        x: float32 (N, 3, H, W) in [0, 1] (colour ops may leave the range; that is intended).
        policy: ops as for :func:`parse_policy`.
        generator: CPU ``torch.Generator`` for every random number (exact resume).
        rows, global_batch: ``x`` holds rows ``rows`` (a range) of a batch of ``global_batch``
            images (data-parallel: one rank's share). The random numbers are drawn for the whole
            global batch and ``x`` gets those of its rows, so the shares' outputs are the rows of
            the global batch's output and ``generator`` ends in the same state on every rank.
            Default: ``x`` is the whole batch.

    Returns:
        float32 (N, 3, H, W), differentiable with respect to ``x``.

    Raises:
        ValueError: ``rows`` without ``global_batch`` (or the reverse), or not N rows within it.
    """
    ops = parse_policy(policy)
    n, _, h, w = x.shape
    dev = x.device
    rows, total = share_rows(n, rows, global_batch)
    a, b = rows.start, rows.stop

    def draw(values: torch.Tensor) -> torch.Tensor:  # drawn for the global batch; this tensor's rows
        return values[a:b]

    def rand() -> torch.Tensor:
        return draw(torch.rand((total, 1, 1, 1), generator=generator)).to(dev)

    if "color" in ops:
        x = x + (rand() - 0.5) * 0.5
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (rand() * 2) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (rand() + 0.5) + mean
    if "translation" in ops:
        sh, sw = int(h * translation + 0.5), int(w * translation + 0.5)
        ty = draw(torch.randint(-sh, sh + 1, (total,), generator=generator)).tolist()
        tx = draw(torch.randint(-sw, sw + 1, (total,), generator=generator)).tolist()
        padded = F.pad(x, (sw, sw, sh, sh))
        x = torch.stack([padded[i, :, sh - ty[i]:sh - ty[i] + h, sw - tx[i]:sw - tx[i] + w] for i in range(n)])
    if "cutout" in ops:
        ch, cw = int(h * cutout + 0.5), int(w * cutout + 0.5)
        y0 = (draw(torch.randint(0, h, (total,), generator=generator)) - ch // 2).view(n, 1, 1)
        x0 = (draw(torch.randint(0, w, (total,), generator=generator)) - cw // 2).view(n, 1, 1)
        yy, xx = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        keep = ~((yy >= y0) & (yy < y0 + ch) & (xx >= x0) & (xx < x0 + cw))  # the square may leave the frame
        x = x * keep.unsqueeze(1).to(device=dev, dtype=x.dtype)
    return x


def random_patches(images: torch.Tensor, size: int, count: int, generator: torch.Generator,
                   index: Sequence[int] | None = None, rows: range | None = None,
                   global_batch: int | None = None) -> torch.Tensor:
    """``count`` random ``size`` x ``size`` crops (with random left-right flips) of ``images``.

    Args:
        images: float32 (N, 3, H, W) with H, W >= size.
        size: patch side in pixels.
        count: patches to draw.
        generator: CPU ``torch.Generator`` for the positions and flips.
        index: which image each patch comes from (length ``count``); default: patch i from
            image ``i % N`` (``i % global_batch`` with ``rows``).
        rows, global_batch: data-parallel, as for :func:`diff_augment`: ``images`` holds images
            ``rows`` (a range) of a batch of ``global_batch``; the positions and flips are drawn
            for all ``count`` patches of the global batch and only patches ``rows`` are made, each
            from its image (which must be one of ``rows``), so a share's patches are those rows
            of the global batch's and ``generator`` ends in the same state on every rank.

    Returns:
        float32 (count, 3, size, size) (``len(rows)`` patches with ``rows``), differentiable with
        respect to ``images``.

    Raises:
        ValueError: an image smaller than ``size``; ``rows`` without ``global_batch`` (or the
            reverse), not N rows within it or beyond ``count``, or a patch of an image not held.
    """
    n, _, h, w = images.shape
    if h < size or w < size:
        raise ValueError(f"patches of {size} px need images of at least that size, got {h} x {w}")
    sharing = rows is not None
    held, total = share_rows(n, rows, global_batch, f"images ({count} patches)", limit=count)
    first = held.start
    idx = list(index) if index is not None else [i % total for i in range(count)]
    ys = torch.randint(0, h - size + 1, (count,), generator=generator).tolist()
    xs = torch.randint(0, w - size + 1, (count,), generator=generator).tolist()
    flips = (torch.rand(count, generator=generator) < 0.5).tolist()
    out = []
    for k in (held if sharing else range(count)):
        i, y, x, f = idx[k] - first, ys[k], xs[k], flips[k]
        if sharing and not 0 <= i < n:
            raise ValueError(f"patch {k} comes from image {idx[k]}, which is not among the rows {held} held")
        p = images[i, :, y:y + size, x:x + size]
        out.append(p.flip(-1) if f else p)
    return torch.stack(out)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for parameters; buffers (batch-norm
    statistics) are copied. Both modules must have the same architecture."""
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)
