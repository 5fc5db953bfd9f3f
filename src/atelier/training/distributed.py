"""Data-parallel training with torch.distributed (issue 26): what the shared loop
(:class:`atelier.training.loop.BaseTrainer`) needs to train one network on several processes,
on one machine or several, launched by ``torchrun`` (``atelier train --nproc N`` runs it).

The arithmetic is DistributedDataParallel's (Li et al. 2020, "PyTorch Distributed:
Experiences on Accelerating Data Parallel Training"): every rank holds the same network and
optimizer, computes the gradient of the mean loss over its share of the step's batch, and the
gradients are averaged with one ``all_reduce`` per step before the identical optimizer steps.
With equal shares the averaged gradient is the gradient of the mean loss over the global
batch, so N processes at global batch B follow one process at batch B (up to float
summation order). The ``DistributedDataParallel`` wrapper itself is not used because the
trainers call their network several times per step (temporal loss, previews), which its
hooks do not allow without ``static_graph``; its bucketing would save little on CPUs.

* Data: each step's global batch of ``batch_size`` crops is drawn from the epoch's
  permutation (seeded by (seed, epoch), the same on every rank, so reshuffled each epoch as
  ``DistributedSampler.set_epoch`` does); rank r takes the r-th contiguous share
  (:func:`shard`). The global batch is what ``batch_size`` says, whatever the world size.
* Backend: gloo on CPUs, NCCL on CUDA (one GPU per rank, ``cuda:LOCAL_RANK``).
* Rank 0 alone writes checkpoints, previews, weights and the model card; every rank can
  resume from them exactly (the random states are the same on all ranks).
* Batch norm (the DCGAN's): :class:`SyncBatchNorm2d` normalizes with the statistics of the
  global batch, as ``torch.nn.SyncBatchNorm`` does (which runs on CUDA only, not on gloo CPUs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["DistInfo", "from_env", "setup", "shard", "share_rows", "broadcast_parameters", "average_gradients",
           "average_values", "any_rank", "is_main", "global_mean", "SyncBatchNorm2d", "sync_batchnorm"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a distributed run: ``rank`` (global), ``world_size``,
    ``local_rank`` (on this node) and the ``backend`` ("gloo" or "nccl")."""

    rank: int
    world_size: int
    local_rank: int
    backend: str


def from_env() -> Optional[tuple[int, int, int]]:
    """(rank, world size, local rank) from torchrun's ``RANK``, ``WORLD_SIZE`` and
    ``LOCAL_RANK``, or None outside a run of two or more processes."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return None
    if world < 2:
        return None
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device) -> tuple[Optional[DistInfo], torch.device]:
    """Join the process group of a torchrun launch (once per process) and pick this rank's
    device: ``cuda:LOCAL_RANK`` for CUDA, else ``device``.

    Returns:
        ``(DistInfo or None, device)``; None when not launched as 2+ processes.

    Raises:
        ValueError: a device that cannot be used distributed (MPS).
    """
    env = from_env()
    if env is None:
        return None, device
    rank, world, local = env
    if device.type == "mps":
        raise ValueError("distributed training runs on CPUs (gloo) or CUDA GPUs (NCCL), not on MPS")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local, backend), device


def is_main(info: Optional[DistInfo]) -> bool:
    """Whether this process writes files (rank 0, or not distributed)."""
    return info is None or info.rank == 0


def shard(batch_size: int, info: Optional[DistInfo]) -> range:
    """The positions (0-based, within the global batch) this rank handles.

    Raises:
        ValueError: ``batch_size`` not a multiple of the world size.
    """
    if info is None:
        return range(batch_size)
    if batch_size % info.world_size:
        raise ValueError(f"batch size {batch_size} must be a multiple of the number of processes "
                         f"({info.world_size}): the global batch is split evenly")
    n = batch_size // info.world_size
    return range(info.rank * n, (info.rank + 1) * n)


def share_rows(n: int, rows: Optional[range], global_batch: Optional[int], what: str = "images",
               limit: Optional[int] = None) -> tuple[range, int]:
    """Check that a tensor of ``n`` items is rows ``rows`` of a global batch of ``global_batch``
    (a rank's share, :func:`shard`) and return ``(rows, global batch size)``; without both,
    the tensor is the whole batch: ``(range(n), n)``. Random draws made for the global batch
    and cut to these rows give a rank exactly its rows of the one-process draws.

    Raises:
        ValueError: ``rows`` without ``global_batch`` (or the reverse), or rows that are not
            ``n`` consecutive positions within the batch (and within ``limit`` when given).
    """
    if (rows is None) != (global_batch is None):
        raise ValueError("rows and global_batch go together")
    if rows is None:
        return range(n), n
    total = int(global_batch)
    if len(rows) != n or rows.step != 1 or rows.start < 0 or rows.stop > min(total, limit if limit else total):
        raise ValueError(f"rows {rows} of a batch of {total} do not fit a tensor of {n} {what}")
    return rows, total


def broadcast_parameters(module: torch.nn.Module, info: Optional[DistInfo]) -> None:
    """Make every rank's parameters and buffers rank 0's (as DDP does at construction)."""
    if info is None:
        return
    import torch.distributed as dist

    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(module: torch.nn.Module, info: Optional[DistInfo]) -> None:
    """Average the gradients over the ranks in place: one ``all_reduce`` (sum) of all of them
    flattened into one buffer, divided by the world size. A parameter without a gradient on
    every rank counts as zero."""
    if info is None:
        return
    import torch.distributed as dist

    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world_size
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def average_values(values: dict[str, float], info: Optional[DistInfo], device: torch.device) -> dict[str, float]:
    """The mean of each float over the ranks (the global batch's loss), same keys in the same
    order on every rank."""
    if info is None:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                     device=device if info.backend == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= info.world_size
    mean = dict(zip(keys, t.tolist()))
    return {k: float(mean[k]) for k in values}


def any_rank(flag: bool, info: Optional[DistInfo], device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (a stop decision all ranks take together:
    Ctrl-C, the time budget)."""
    if info is None:
        return bool(flag)
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device if info.backend == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def global_mean(value: torch.Tensor, info: Optional[DistInfo]) -> torch.Tensor:
    """The mean over the ranks of a scalar computed on each rank's share (detached): for
    the parts of a loss that are not a plain mean over the batch, such as the denominator
    ``mean(target**2)`` of the relative MSE, so each rank's loss is its share of the global
    batch's loss. ``value`` itself when not distributed."""
    if info is None:
        return value
    import torch.distributed as dist

    t = value.detach().float().reshape(1).clone()
    if info.backend == "gloo":
        t = t.cpu()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return (t / info.world_size).to(value.device).reshape(())


class _AllReduceSum(torch.autograd.Function):
    """``all_reduce(SUM)`` that autograd can differentiate (any order): the gradient of a sum over
    the ranks with respect to each rank's input is the sum over the ranks of the output gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, backend: str) -> torch.Tensor:
        import torch.distributed as dist

        ctx.backend = backend
        t = x.detach().clone() if backend == "nccl" else x.detach().cpu().clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.to(x.device)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _AllReduceSum.apply(grad.contiguous(), ctx.backend), None


class SyncBatchNorm2d(torch.nn.BatchNorm2d):
    """Batch normalization over the global batch of a data-parallel run (the arithmetic of
    ``torch.nn.SyncBatchNorm``, Li et al. 2020; Ioffe & Szegedy 2015): in training mode the mean
    and the biased variance are taken over every rank's rows (two differentiable all-reduces:
    the sum, then the centred sum of squares), so N ranks with shares of a batch compute what
    one process computes on the whole batch; the running statistics get the global mean and
    the unbiased global variance, the same on every rank. In eval mode, or with ``info`` None,
    it is ``torch.nn.BatchNorm2d``. Same parameters, buffers and state-dict keys.

    Call it on float (N, C, H, W) (N may differ per rank; the global batch needs >= 2 values per
    channel); returns the same shape and dtype. Every rank must make the same calls (collectives).

    Raises:
        ValueError: a global batch of one value per channel in training mode.
    """

    info: Optional[DistInfo] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.info is None:
            return super().forward(x)
        if x.dim() != 4:
            raise ValueError(f"expected a (N, C, H, W) tensor, got {tuple(x.shape)}")
        xf, dims, backend = x.float(), (0, 2, 3), self.info.backend
        count = torch.tensor([float(x.numel() // x.shape[1])], device=x.device)
        total = _AllReduceSum.apply(torch.cat([xf.sum(dims), count]), backend)
        n = total[-1].detach()
        if float(n) < 2:
            raise ValueError("batch norm needs more than one value per channel in the global batch")
        mean = total[:-1] / n
        centred = xf - mean.view(1, -1, 1, 1)
        var = _AllReduceSum.apply(centred.pow(2).sum(dims), backend) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), f)
                self.running_var.lerp_((var.detach() * n / (n - 1)).to(self.running_var.dtype), f)
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y.to(x.dtype)


def sync_batchnorm(module: torch.nn.Module, info: Optional[DistInfo]) -> torch.nn.Module:
    """``module`` with every ``torch.nn.BatchNorm2d`` made a :class:`SyncBatchNorm2d` of ``info``
    in place (the same parameter and buffer tensors; as ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``);
    unchanged when ``info`` is None. Returns ``module``."""
    if info is None:
        return module
    for m in module.modules():
        if type(m) is torch.nn.BatchNorm2d or isinstance(m, SyncBatchNorm2d):
            m.__class__ = SyncBatchNorm2d
            m.info = info
    return module
