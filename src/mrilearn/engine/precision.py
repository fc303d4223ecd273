"""Mixed precision: ``auto | fp32 | bf16 | fp16`` through :func:`torch.autocast`, with a
GradScaler for fp16 on CUDA.

``auto`` never makes a run slower: it picks bf16 on CUDA GPUs that support it and fp32
everywhere else, the CPU included. Even with native bf16 kernels (AMX or AVX512-BF16) bf16
training on the CPU was measured slower than fp32 for the WGAN-GP and ALAMO quick configs
(``bench/precision.py``, docs/benchmarks.md), and bf16 inference does not reproduce fp32
results; an explicit ``bf16`` is honoured there (it pays for plain SR training and for
inference). Without native kernels bf16 autocast is emulated and far slower, so an explicit
``bf16`` there logs a warning with the measured cost; ``fp16`` on the CPU is an error. The
command line's ``--precision`` wins over ``train.precision`` (kept in ``MRILEARN_PRECISION``
like ``--device``).

Forward passes and losses run under autocast; backward passes outside it, scaled by the
GradScaler where there is one, whose state is checkpointed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mrilearn.engine.device import env_override
from mrilearn.errors import ConfigError

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRECISION_ENV = "MRILEARN_PRECISION"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# the SR demo network's forward pass on a 24³ patch, bf16 autocast vs fp32 (docs/benchmarks.md)
EMULATED_BF16_COST = "74× slower than fp32 for the SR demo network on an AVX2-only AMD EPYC"


@functools.cache
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU's native bf16 instruction sets (``/proc/cpuinfo`` flags); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return tuple(f for f in NATIVE_BF16_FLAGS if f in flags)


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 runs on native kernels on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(cpu_bf16_flags())
    return False


def cpu_bf16_summary() -> str:
    """One line for benchmark tables and ``mrilearn info``."""
    flags = cpu_bf16_flags()
    return f"native ({', '.join(flags)})" if flags else "not native (no AMX or AVX512-BF16)"


def resolve_precision(spec: str | None, device: torch.device, inherited: bool = False) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``spec`` on ``device``.

    ``inherited``: the precision a loaded run was trained with; where it has no native
    kernels here (a GPU run inferring on a CPU) inference falls back to fp32 instead."""
    override = os.environ.get(PRECISION_ENV)
    spec = override or spec or "auto"
    inherited = inherited and not override
    if spec not in PRECISIONS:
        raise ConfigError(f"precision {spec!r}: expected one of {', '.join(PRECISIONS)}")
    if spec == "auto":
        return "bf16" if device.type == "cuda" and native_bf16(device) else "fp32"
    if spec == "fp32" or (inherited and not _native(spec, device)):
        return "fp32"
    if spec == "fp16" and device.type == "cpu":
        raise ConfigError("precision fp16 needs a GPU (on the CPU use bf16 or fp32)")
    if spec == "bf16" and not native_bf16(device) and device.type != "mps":
        _warn_once(
            f"precision bf16 on {device} without native bf16 kernels: emulated, e.g. "
            f"{EMULATED_BF16_COST}; use precision auto or fp32"
        )
    return spec


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


def _native(spec: str, device: torch.device) -> bool:
    return native_bf16(device) if spec == "bf16" else device.type in ("cuda", "mps")


def precision_override(spec: str | None) -> contextlib.AbstractContextManager:
    """``--precision`` for the block and the processes started inside it."""
    if spec is not None and spec not in PRECISIONS:
        raise ConfigError(f"--precision {spec}: expected one of {', '.join(PRECISIONS)}")
    return env_override(PRECISION_ENV, spec)


class MixedPrecision:
    """Autocast and loss scaling for one process's training and inference."""

    def __init__(self, name: str, device: torch.device) -> None:
        self.name, self.device = name, device
        self.dtype = DTYPES.get(name)
        scaled = name == "fp16" and device.type == "cuda"
        self.scaler = torch.amp.GradScaler(device.type, enabled=scaled)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Forward passes and losses in ``self.dtype`` (no-op in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @property
    def loss_scale(self) -> float:
        """The factor losses are multiplied by before a backward pass (1 without scaling);
        a gradient penalty scales its ``autograd.grad`` by it and divides it out."""
        return float(self.scaler.get_scale()) if self.scaler.is_enabled() else 1.0

    def backward(self, loss: torch.Tensor) -> None:
        with torch.autocast(self.device.type, enabled=False):
            self.scaler.scale(loss).backward()

    def step(
        self, optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter], clip: float | None
    ) -> None:
        """Unscale, clip and step; a step with non-finite scaled gradients is skipped."""
        if clip:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, clip)
        self.scaler.step(optimizer)

    def update(self) -> None:
        """Once per iteration, after every optimiser stepped."""
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """A run may resume with another precision: a missing scaler state starts afresh."""
        if self.scaler.is_enabled() and state:
            self.scaler.load_state_dict(state)
