"""Training batches, in the training process or from background worker processes.

The batch of iteration ``i`` on rank ``r`` is drawn with its own random generator seeded by
(seed, r, i) (:func:`batch_generator`), so the sample stream is a function of the seed, the
rank and the iteration alone: workers share no state, a resumed run draws exactly what an
uninterrupted one draws, and any number of workers yields the same batches in the same order
(worker ``w`` of ``W`` draws iterations ``start + w``, ``start + w + W``, ... and the
``DataLoader`` returns them round-robin). ``train.workers: 0`` draws in the training process.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Generator, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from mrilearn.engine.contract import Batch, TrainingData
from mrilearn.engine.device import to_device

log = logging.getLogger(__name__)

PREFETCH = 2  # batches each worker keeps ready


def batch_seed(seed: int, rank: int, iteration: int) -> int:
    """A well-mixed 63-bit seed for (seed, rank, iteration)."""
    state = np.random.SeedSequence([seed, rank, iteration]).generate_state(2, np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def batch_generator(seed: int, rank: int, iteration: int) -> torch.Generator:
    """The random generator that draws rank ``rank``'s batch of 0-based ``iteration``."""
    return torch.Generator().manual_seed(batch_seed(seed, rank, iteration))


class BatchStream(IterableDataset):
    """Endless batches from iteration ``start`` on (each worker takes every W-th)."""

    def __init__(
        self, data: TrainingData, batch_size: int, seed: int, rank: int, start: int
    ) -> None:
        self.data, self.batch_size = data, batch_size
        self.seed, self.rank, self.start = seed, rank, start

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        iteration = self.start + worker
        while True:
            gen = batch_generator(self.seed, self.rank, iteration)
            yield self.data.train_batch(self.batch_size, gen)
            iteration += workers


def _ignore_interrupts(_: int) -> None:
    """Ctrl+C pauses the run in the training process (which then stops the workers); a
    worker interrupted mid-batch would instead break the batch it was drawing."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers(device: torch.device) -> int:
    """``train.workers`` unset: none on the CPU (the cores train), up to 4 beside a GPU."""
    if device.type == "cpu":
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def batch_stream(
    data: TrainingData,
    batch_size: int,
    seed: int,
    rank: int,
    start: int,
    workers: int,
    device: torch.device,
) -> Generator[Batch, None, None]:
    """Batches for iterations ``start``, ``start + 1``, ... on ``device``."""
    stream = BatchStream(data, batch_size, seed, rank, start)
    if workers == 0:
        return (to_device(b, device) for b in stream)
    cores = os.cpu_count() or 1
    if workers > cores:
        log.warning("train.workers %d is more than the %d CPU cores", workers, cores)
    # one batch drawn here fills the data set's caches, which forked workers then share
    data.train_batch(1, torch.Generator().manual_seed(0))
    loader = DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=PREFETCH,
        pin_memory=device.type == "cuda",
        worker_init_fn=_ignore_interrupts,
        # the workers' base seed comes from here, not from the global random stream
        generator=torch.Generator().manual_seed(batch_seed(seed, rank, start)),
    )
    return (to_device(b, device) for b in loader)
