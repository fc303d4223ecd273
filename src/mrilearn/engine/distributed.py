"""Data-parallel training on PyTorch DDP (gloo on CPU).

Semantics: each of the N processes draws its own batch of ``train.batch_size``
samples from its own random stream (seed, rank) and DDP averages the gradients, so
one iteration equals a single-process step on the N batches concatenated (for
losses averaged over the batch and networks without batch-coupled layers; BatchNorm
statistics stay per process). Checkpoints, logs and reports are written by rank 0.

Single machine: ``mrilearn train CONFIG --devices 2`` spawns the processes itself.
Several machines: start one process per device with ``torchrun`` (which sets
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) and ``python -m mrilearn
train CONFIG``; the environment is detected and used as is.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launch(fn: Callable[..., Any], devices: int, *args: Any) -> None:
    """Run ``fn(dist_info, *args)`` on ``devices`` local processes (or under torchrun)."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        _run(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), fn, args)
    elif devices <= 1:
        fn(DistInfo(), *args)
    else:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        mp.start_processes(_run, args=(devices, fn, args), nprocs=devices, start_method="spawn")


def _run(rank: int, world_size: int, fn: Callable[..., Any], args: tuple) -> None:
    threads = max(1, (os.cpu_count() or 1) // world_size)
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world_size)
    fn(DistInfo(rank, world_size), *args)
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
