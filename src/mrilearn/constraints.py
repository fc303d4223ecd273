"""Value constraints a config setting carries in its type hint, so ranges are declared where
the setting is, and checked when the config is loaded (before anything runs or is written).

A constraint is ``typing.Annotated`` metadata with a ``problem(value) -> str | None`` method::

    batch_size: PositiveInt = 2                  # train.batch_size: must be ≥ 1, got 0
    overlap: Annotated[float, Range(ge=0, lt=1)] = 0.5
    patch_size: list[PositiveInt] = [32, 32, 32]  # data.patch_size[1]: must be ≥ 1, got 0

The registry (constructor arguments) and the config reader (dataclass fields) check them with
:func:`mrilearn.registry.check_value`; settings of classes mrilearn does not own (the PyTorch
optimisers) get theirs when registered (``Registry.register(cls, ranges=...)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any


@dataclass(frozen=True)
class Range:
    """A numeric interval: ``ge``/``gt`` bound it below, ``le``/``lt`` above (None: open)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None  # the type check reports it
        ok = (
            math.isfinite(value)
            and (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )
        return None if ok else f"must be {self.describe()}, got {value!r}"

    def describe(self) -> str:
        lo, lo_open = (self.ge, False) if self.ge is not None else (self.gt, True)
        hi, hi_open = (self.le, False) if self.le is not None else (self.lt, True)
        if lo is not None and hi is not None:
            return f"in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
        if lo is not None:
            return f"{'>' if lo_open else '≥'} {_num(lo)}"
        if hi is not None:
            return f"{'<' if hi_open else '≤'} {_num(hi)}"
        return "finite"


@dataclass(frozen=True)
class PlainName:
    """A single file name: not empty, no path separator, not ``.`` or ``..``, so a name joined
    to a folder stays inside it (``experiment`` under ``output_dir``)."""

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if value.strip() in ("", ".", "..") or any(c in value for c in "/\\\0"):
            return f"must be a plain name (no '/', '\\', '..', not empty), got {value!r}"
        return None


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def constraints_of(metadata: tuple[Any, ...]) -> list[Any]:
    """The constraints among ``Annotated`` metadata (other metadata, e.g. a registry, is not)."""
    return [m for m in metadata if callable(getattr(m, "problem", None))]


PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
Probability = Annotated[float, Range(ge=0, le=1)]
SpatialAxis = Annotated[int, Range(ge=0, le=2)]  # an axis of a 3-D volume
Name = Annotated[str, PlainName()]
