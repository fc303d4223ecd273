"""Data-parallel training on PyTorch DDP: NCCL between GPUs, gloo on the CPU.

Semantics: each of the N processes draws its own batch of ``train.batch_size``
samples from its own random stream (seed, rank) and DDP averages the gradients, so
one iteration equals a single-process step on the N batches concatenated (for
losses averaged over the batch and networks without batch-coupled layers; BatchNorm
statistics stay per process unless ``train.sync_bn``). Checkpoints, logs and reports are
written by rank 0. On CUDA each process takes the GPU of its local rank.

Single machine: ``mrilearn train CONFIG --devices 2`` spawns the processes itself.
Several machines: start one process per device with ``torchrun`` (which sets
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) and ``python -m mrilearn
train CONFIG``; the environment is detected and used as is.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mrilearn.errors import MrilearnError, Reported


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # the process's index on its machine (its GPU)
    local_size: int = 1  # processes on this machine

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


USER_ERROR = 2  # the exit status of a spawned process that stopped on a MrilearnError


def launch(fn: Callable[..., Any], devices: int, *args: Any, cuda: bool = False) -> None:
    """Run ``fn(dist_info, *args)`` on ``devices`` local processes (or under torchrun);
    ``cuda``: the processes train on GPUs (NCCL for tensors, gloo for Python objects)."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        world = int(os.environ["WORLD_SIZE"])
        local = (int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        _run(int(os.environ["RANK"]), world, fn, args, cuda, local)
    elif devices <= 1:
        fn(DistInfo(), *args)
    else:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        try:
            mp.start_processes(
                _run, args=(devices, fn, args, cuda), nprocs=devices, start_method="spawn"
            )
        except mp.ProcessExitedException as err:
            if err.exit_code != USER_ERROR:
                raise
            raise Reported(f"training process {err.error_index} stopped") from None


def _run(
    rank: int,
    world_size: int,
    fn: Callable[..., Any],
    args: tuple,
    cuda: bool = False,
    local: tuple[int, int] | None = None,
) -> None:
    local_rank, local_size = local or (rank, world_size)
    threads = max(1, (os.cpu_count() or 1) // local_size)
    torch.set_num_threads(threads)
    backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world_size)
    try:
        fn(DistInfo(rank, world_size, local_rank, local_size), *args)
    except MrilearnError as err:
        if local is not None:  # under torchrun: the process's own CLI prints it
            raise
        # one line, as the CLI prints it; the parent then stops the other processes
        print(f"mrilearn: error: {err}", file=sys.stderr, flush=True)
        sys.exit(USER_ERROR)
    dist.barrier()  # leave together: a rank tearing down gloo while its peer works aborts
    dist.destroy_process_group()


def all_reduce_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank if it is true on any (e.g. a stop request seen by one)."""
    if not info.enabled:
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
