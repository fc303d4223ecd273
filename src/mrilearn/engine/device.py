"""Which device computes: ``auto`` (CUDA if present, else MPS, else the CPU), ``cpu``, ``cuda``,
``cuda:N`` or ``mps``. An explicit device that is not there is a one-line error naming the
devices found; ``auto`` falls back with a log line.

The command line's ``--device`` wins over a config's ``train.device``: it is kept in the
``MRILEARN_DEVICE`` environment variable for the command's duration (:func:`device_override`),
so processes the command starts (DDP ranks, federated sites, data set generators) use it too.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch

from mrilearn.errors import ConfigError

log = logging.getLogger(__name__)

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"
DEVICE_ENV = "MRILEARN_DEVICE"
_logged: set[str] = set()


def available_devices() -> list[str]:
    """The devices this machine offers, e.g. ``["cpu", "cuda:0", "cuda:1"]``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


def requested_device(configured: str | None = None) -> str:
    """The device asked for: ``--device`` (:data:`DEVICE_ENV`), else ``configured``, else auto."""
    return os.environ.get(DEVICE_ENV) or configured or "auto"


def resolve_device(spec: str | None = None) -> torch.device:
    """The ``torch.device`` for ``spec`` (None: :func:`requested_device`)."""
    spec = (spec or requested_device()).strip().lower()
    found = available_devices()
    if spec == "auto":
        pick = next((d for d in found if d.startswith("cuda")), "mps" if "mps" in found else "cpu")
        line = f"device: {pick} (auto; found {', '.join(found)})"
        if line not in _logged:  # one line per process, however many runs it loads
            _logged.add(line)
            log.info(line)
        return torch.device(pick)
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"device {spec!r}: expected one of {DEVICE_CHOICES}") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {spec!r}: expected one of {DEVICE_CHOICES}")
    wanted = f"cuda:{device.index or 0}" if device.type == "cuda" else device.type
    if wanted not in found:
        raise ConfigError(f"device {spec!r} is not available here (found: {', '.join(found)})")
    return torch.device(wanted)


def process_device(spec: str | None, local_rank: int, local_processes: int) -> torch.device:
    """The device of one training process: with several processes on CUDA, each takes the
    GPU of its local rank (``cuda:<local rank>``)."""
    device = resolve_device(requested_device(spec))
    if device.type != "cuda" or local_processes <= 1:
        return device
    found = [d for d in available_devices() if d.startswith("cuda")]
    if local_processes > len(found):
        raise ConfigError(
            f"--devices {local_processes} needs {local_processes} GPUs on this machine "
            f"(found: {', '.join(found)})"
        )
    return torch.device(f"cuda:{local_rank}")


@contextlib.contextmanager
def env_override(name: str, value: str | None) -> Iterator[None]:
    """Environment variable ``name`` set to ``value`` for the block (None: left as it is)."""
    previous = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def device_override(spec: str | None) -> contextlib.AbstractContextManager:
    """``--device``: checked now (a missing device fails before any work), in force for the
    block and for the processes started inside it."""
    if spec is not None:
        resolve_device(spec)
    return env_override(DEVICE_ENV, spec)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """A batch's tensors on ``device`` (asynchronous copies from pinned memory on CUDA)."""
    if device.type == "cpu":
        return batch
    blocking = device.type != "cuda"
    return {
        k: v.to(device, non_blocking=not blocking) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


def to_host(t: torch.Tensor) -> torch.Tensor:
    """A result on the CPU, half-precision outputs as float32 (NumPy has no bfloat16)."""
    t = t.detach()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.cpu()
