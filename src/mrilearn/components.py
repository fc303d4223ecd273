"""Maps config sections to registries, with the arguments the framework supplies itself.

The registries are filled by :func:`mrilearn.plugins.load`; this module only looks them up."""

from __future__ import annotations

from typing import Any

import torch

from mrilearn.registry import (
    DATASETS,
    INFERERS,
    LOSSES,
    MODELS,
    TRAINERS,
    Registry,
)

OPTIMIZERS: Registry[torch.optim.Optimizer] = Registry("optimizer")
for _opt in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop):
    OPTIMIZERS.register(_opt)

SCHEDULERS: Registry[Any] = Registry("scheduler")
for _sched in (
    torch.optim.lr_scheduler.StepLR,
    torch.optim.lr_scheduler.MultiStepLR,
    torch.optim.lr_scheduler.ExponentialLR,
    torch.optim.lr_scheduler.CosineAnnealingLR,
):
    SCHEDULERS.register(_sched)

# section → (registry, arguments the framework passes itself)
SECTIONS: dict[str, tuple[Registry[Any], set[str]]] = {
    "data": (DATASETS, set()),
    "model": (MODELS, set()),
    "loss": (LOSSES, set()),
    "optim": (OPTIMIZERS, {"params"}),
    "scheduler": (SCHEDULERS, {"optimizer"}),
    "trainer": (TRAINERS, {"cfg", "run_dir", "dist"}),
    "inference": (INFERERS, set()),
}


def check_spec(section: str, spec: dict[str, Any]) -> None:
    """Validate ``{name: X, **kwargs}`` of one section without building it."""
    registry, supplied = SECTIONS[section]
    registry.check(spec, section, supplied)


def build(section: str, spec: dict[str, Any], **supplied: Any) -> Any:
    """Build the component of one config section."""
    registry, _ = SECTIONS[section]
    return registry.build(spec, section, **supplied)


def registered() -> dict[str, list[str]]:
    """Every registered name by kind, for ``mrilearn info``."""
    return {
        reg.kind: reg.names()
        for reg in (DATASETS, MODELS, LOSSES, TRAINERS, INFERERS, OPTIMIZERS, SCHEDULERS)
    }
