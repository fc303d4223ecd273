"""Shared pieces of the benchmarks: the machine line every table records, and timing a few
training iterations of a packaged config through the real training loop."""

from __future__ import annotations

import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from mrilearn import plugins
from mrilearn.config import load_config
from mrilearn.engine.precision import cpu_bf16_summary
from mrilearn.runs import build_trainer

T = TypeVar("T")

# the quick configs of the applications the benchmarks time: (packaged config, overrides)
QUICK = {
    "SR demo": ("sr/demo_mni152", []),
    "SR WGAN-GP quick": ("sr/mdcsrn_gan_quick", ["trainer.warmup_d=0"]),  # D and G steps
    "ALAMO demo": ("seg/demo_mni152_tissue", []),
}


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("Model name")), "")
    return line.split(":", 1)[-1].strip() or platform.processor()


def machine_line() -> str:
    """CPU model, native bf16, threads and torch version (and the GPU if there is one)."""
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"CPU {cpu_model()} (bf16 {cpu_bf16_summary()}), {torch.get_num_threads()} thread(s), "
        f"torch {torch.__version__}{gpu}"
    )


def timed(fn: Callable[[], T], repeats: int, warmup: int = 0) -> tuple[float, T]:
    """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, and the
    last result."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def time_steps(
    config: str, overrides: list[str], iterations: int, warmup: int = 1
) -> dict[str, float]:
    """Seconds per iteration (median) and the fraction of the timed wall time spent waiting
    for batches, over ``iterations`` loop steps after ``warmup`` untimed ones."""
    plugins.load()
    cfg = load_config(config, [*overrides, "train.val_every=0", "train.checkpoint_every=0"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(cfg, Path(tmp))
        for _ in range(warmup):
            trainer.step()
        trainer.data_wait, times = 0.0, []
        t0 = time.perf_counter()
        for _ in range(iterations):
            t = time.perf_counter()
            trainer.step()
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        wall = time.perf_counter() - t0
        trainer.close_stream()
    return {"s_per_it": statistics.median(times), "data_fraction": trainer.data_wait / wall}
