"""Launchers of data-parallel training (issue 26): the same training command run as N ranks,
by ``torchrun`` (``--nproc``, ``--nnodes``, ``--rdzv-endpoint``) or by Ray Train's
``TorchTrainer`` on a Ray cluster (``--ray-workers``, ``--ray-address``).

Both run the command again without its launch options in each rank, with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set and the process group formed (gloo on CPUs, NCCL on
GPUs), so the arithmetic is :mod:`atelier.training.distributed`'s whichever launcher started
it: the global batch split evenly, gradients averaged, rank 0 alone writes. Under Ray the ranks
are Ray Train workers (actors) on any node of the cluster; the training data, the output and
its checkpoint must then be on storage every node sees (docs/scale-out.md).
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import typer

from .common import _fail, _refuse_unused

__all__ = ["launch_options", "ray_launch_options", "run_torchrun", "run_ray_train", "rdzv_ok", "strip_options"]

# The launch options of every data-parallel training command (the same help everywhere).
NPROC = typer.Option(None, "--nproc", help="Train data-parallel on N processes per node (torchrun; gloo on CPUs, "
                     "NCCL with one GPU each); --batch-size stays the global batch (batch norm sees all of it).")
NPROC_CPU = typer.Option(None, "--nproc", help="Train data-parallel on N processes per node (torchrun, gloo; "
                         "this trainer runs on CPUs); --batch-size stays the global batch.")
NNODES = typer.Option(1, "--nnodes", help="With --nproc: nodes in all (run the same command on each).")
NODE_RANK = typer.Option(0, "--node-rank", help="With --nproc and --nnodes > 1: this node's rank (0 = the first).")
RDZV_ENDPOINT = typer.Option(None, "--rdzv-endpoint", help="With --nnodes > 1: HOST:PORT of the rendezvous (node 0).")
RAY_WORKERS = typer.Option(None, "--ray-workers", help="Train data-parallel on N Ray Train workers (TorchTrainer; "
                           "one CPU or one GPU each); --batch-size stays the global batch.")
RAY_ADDRESS = typer.Option(None, "--ray-address", help="With --ray-workers: an existing Ray cluster (auto, "
                           "ray://HOST:10001) [default: a local one on this machine].")

#: The launch options every data-parallel trainer takes (dropped from the ranks' command line).
LAUNCH_FLAGS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint", "--ray-workers", "--ray-address")


def _is_rank() -> bool:
    """True inside a rank started by either launcher (torchrun or Ray Train)."""
    return bool(os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("WORLD_SIZE"))


def launch_options(ctx, nproc, nnodes, node_rank, endpoint, batch_size) -> Optional[list]:
    """``--nproc``, ``--nnodes``, ``--node-rank``, ``--rdzv-endpoint``: checked; the torchrun
    arguments, or None to train in this process (no --nproc, or already a rank)."""
    if nproc is None:
        _refuse_unused(ctx, ("nnodes", "node_rank", "rdzv_endpoint"), reason="applies only with --nproc")
        return None
    if _is_rank():
        return None  # a rank of the launch below
    if nproc < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise _fail(f"--nproc and --nnodes must be >= 1 and --node-rank in [0, --nnodes), got {nproc}, {nnodes}, "
                    f"{node_rank}")
    if nnodes > 1 and not rdzv_ok(endpoint):
        raise _fail("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the first node's address and a free port)")
    if batch_size % (nproc * nnodes):
        raise _fail(f"--batch-size {batch_size} must be a multiple of the number of processes ({nproc * nnodes}): "
                    "it is the global batch, split evenly")
    args = [f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if nnodes == 1:
        args.append("--standalone")
    else:
        args += ["--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", f"--node-rank={node_rank}"]
    return args


def rdzv_ok(endpoint: Optional[str]) -> bool:
    host, _, port = (endpoint or "").rpartition(":")
    return bool(host) and port.isdigit()


def strip_options(argv: Sequence[str], drop: Sequence[str] = LAUNCH_FLAGS) -> list:
    """``argv`` without the options named in ``drop`` (``--opt VALUE`` and ``--opt=VALUE``)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a.split("=", 1)[0] in drop:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def run_torchrun(launch: list) -> int:
    """Run this command again under ``torch.distributed.run`` (torchrun) without the launch
    options; returns its exit code (rank failures show their own one-line errors)."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", *launch, "-m", "atelier.cli", *strip_options(sys.argv[1:])]
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130


def ray_launch_options(ctx, workers: Optional[int], address: Optional[str], nproc: Optional[int],
                       batch_size: int, device: str) -> Optional[dict]:
    """``--ray-workers N`` and ``--ray-address``: checked before any work (exit 2, one line);
    the launch, or None to train in this process (no --ray-workers, or already a rank)."""
    if workers is None:
        _refuse_unused(ctx, ("ray_address",), reason="applies only with --ray-workers")
        return None
    if _is_rank():
        return None
    if nproc is not None:
        raise _fail("--ray-workers and --nproc are two launchers of the same ranks; give one")
    if workers < 1:
        raise _fail(f"--ray-workers must be >= 1, got {workers}")
    if batch_size % workers:
        raise _fail(f"--batch-size {batch_size} must be a multiple of --ray-workers ({workers}): it is the global "
                    "batch, split evenly")
    if device not in ("auto", "cpu", "cuda"):
        raise _fail(f"--ray-workers trains on CPUs (gloo) or CUDA GPUs (NCCL), not --device {device}")
    from ..api.ray_batch import RAY_HINT, ray_available

    if not ray_available():
        raise _fail(RAY_HINT)
    try:
        import ray.train.torch  # noqa: F401  (ray[train]: the TorchTrainer)
    except ImportError:
        raise _fail("Ray Train is not installed; install the extra: pip install 'atelier[ray]'") from None
    return {"workers": workers, "address": address, "device": device}


def _rank_main(config: dict) -> None:
    """One Ray Train worker: the training command in this process, as rank ``RANK`` of
    ``WORLD_SIZE`` (set by Ray Train, which has already formed the process group)."""
    import runpy

    if os.path.isdir(config["cwd"]):  # relative paths as on the command line (this node has that folder)
        os.chdir(config["cwd"])
    sys.argv = ["atelier", *config["argv"]]
    try:  # the program's entry point, as torchrun's ranks run it (python -m atelier.cli ...)
        runpy.run_module("atelier.cli", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code
    if code not in (None, 0):
        raise RuntimeError(f"rank {os.environ.get('RANK')}: the training command exited with code {code}")


def run_ray_train(launch: dict, name: str) -> int:
    """Run this command again on ``launch["workers"]`` Ray Train workers (``TorchTrainer``, one
    CPU each, or one GPU each where the device is CUDA) without the launch options, on the Ray
    cluster at ``launch["address"]`` (``auto``, ``ray://HOST:10001``) or on a local one started
    here (as many CPUs as this machine has, at least one per worker). Returns the exit code:
    0, or 1 with the failed rank's error in one line.

    Follows Ray Train's ``TorchTrainer`` (``ScalingConfig(num_workers, use_gpu)``): it sets
    ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, forms the process group, and each worker runs the
    same training function; checkpoints are Atelier's own (rank 0 writes them at ``--output``).
    """
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from ..api.ray_batch import _connect

    workers, address = launch["workers"], launch["address"]
    started = _connect(address, None if address else max(os.cpu_count() or 1, workers), log_to_driver=True)
    try:
        use_gpu = launch["device"] == "cuda" or (launch["device"] == "auto" and ray.cluster_resources().get("GPU", 0) > 0)
        if launch["device"] == "cuda" and not ray.cluster_resources().get("GPU", 0):
            return _fail("--device cuda: this Ray cluster has no GPUs").exit_code
        trainer = TorchTrainer(_rank_main, train_loop_config={"argv": strip_options(sys.argv[1:]), "cwd": os.getcwd()},
                               scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                                            resources_per_worker=None if use_gpu else {"CPU": 1}),
                               run_config=RunConfig(name=name))
        result = trainer.fit()
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a rank failed: Ray's error wraps the rank's own
        return _fail(f"training on Ray failed: {_last_line(e)}", 1).exit_code
    finally:
        if started:
            ray.shutdown()
    if getattr(result, "error", None) is not None:
        return _fail(f"training on Ray failed: {_last_line(result.error)}", 1).exit_code
    return 0


def _last_line(error) -> str:
    lines = [x for x in str(error).strip().splitlines() if x.strip()]
    return (lines[-1] if lines else type(error).__name__)[:300]
