"""When a rigid registration counts as failed: its own module, so that building the
``mrilearn register`` parser (its defaults in the help) imports no numerical library."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """When a registration counts as failed."""

    max_metric: float = -0.2  # Mattes mutual information of the result (lower is better)
    max_shift_mm: float = 20.0  # displacement of the HR centre
    max_rotation_deg: float = 15.0  # total rotation angle
