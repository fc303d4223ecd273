"""Which device computes: ``auto`` (CUDA if present, else MPS, else the CPU), ``cpu``, ``cuda``,
``cuda:N`` or ``mps``. An explicit device that is not there is a one-line error naming the
devices found; ``auto`` falls back with a log line."""

from __future__ import annotations

import logging

import torch

from mrilearn.errors import ConfigError

log = logging.getLogger(__name__)

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def available_devices() -> list[str]:
    """The devices this machine offers, e.g. ``["cpu", "cuda:0", "cuda:1"]``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


def resolve_device(spec: str | None = "auto") -> torch.device:
    """The ``torch.device`` for ``spec`` (None means ``auto``)."""
    spec = (spec or "auto").strip().lower()
    found = available_devices()
    if spec == "auto":
        pick = next((d for d in found if d.startswith("cuda")), "mps" if "mps" in found else "cpu")
        log.info("device: %s (auto; found %s)", pick, ", ".join(found))
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
