"""Maps config sections to registries, with the arguments the framework supplies itself.

The registries are filled by :func:`mrilearn.plugins.load`; this module only looks them up."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import torch

from mrilearn.constraints import Range
from mrilearn.errors import ConfigError
from mrilearn.registry import (
    DATASETS,
    DEGRADATIONS,
    INFERERS,
    LOSSES,
    MODELS,
    TRAINERS,
    Registry,
    constructor_parameters,
    type_name,
)

# PyTorch's classes cannot carry mrilearn's range hints, so their ranges are given here
_POSITIVE, _NON_NEGATIVE, _AT_LEAST_ONE = Range(gt=0), Range(ge=0), Range(ge=1)
OPTIMIZERS: Registry[torch.optim.Optimizer] = Registry("optimizer")
for _opt in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop):
    OPTIMIZERS.register(_opt, ranges={
        "lr": _POSITIVE, "weight_decay": _NON_NEGATIVE, "momentum": _NON_NEGATIVE,
        "eps": _NON_NEGATIVE,
    })  # fmt: skip

SCHEDULERS: Registry[Any] = Registry("scheduler")
for _sched in (
    torch.optim.lr_scheduler.StepLR,
    torch.optim.lr_scheduler.MultiStepLR,
    torch.optim.lr_scheduler.ExponentialLR,
    torch.optim.lr_scheduler.CosineAnnealingLR,
):
    SCHEDULERS.register(_sched, ranges={
        "step_size": _AT_LEAST_ONE, "gamma": _POSITIVE, "T_max": _AT_LEAST_ONE,
        "eta_min": _NON_NEGATIVE,
    })  # fmt: skip

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


def describe(name: str) -> str:
    """A component's kind, summary and the arguments a config section may give it (type and
    default), for ``mrilearn info --component NAME``."""
    kinds = [*SECTIONS.values(), (DEGRADATIONS, set())]
    found = [(reg, supplied) for reg, supplied in kinds if name in reg]
    if not found:
        known = sorted({n for reg, _ in kinds for n in reg.names()})
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown component {name!r}{hint} (`mrilearn info` lists them)")
    registry, supplied = found[0]
    factory = registry.get(name)
    params, hints, _ = constructor_parameters(factory)
    summary = (inspect.getdoc(factory) or "").split("\n\n")[0].replace("\n", " ")
    lines = [f"{name} ({registry.kind})", f"  {summary}" if summary else "", "arguments:"]
    for key, p in params.items():
        if key in supplied:
            continue
        kind = type_name(hints.get(key, p.annotation))
        default = "required" if p.default is inspect.Parameter.empty else f"default {p.default!r}"
        lines.append(f"  {key}: {kind} ({default})")
    return "\n".join(line for line in lines if line)


def registered() -> dict[str, list[str]]:
    """Every registered name by kind, for ``mrilearn info``."""
    return {
        reg.kind: reg.names()
        for reg in (DATASETS, MODELS, LOSSES, TRAINERS, INFERERS, OPTIMIZERS, SCHEDULERS)
    }
