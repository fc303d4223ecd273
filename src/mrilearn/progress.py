"""Progress bars for long work: tqdm on a terminal, off with ``mrilearn -q`` (the environment
variable ``MRILEARN_QUIET=1``, inherited by worker processes) and when stderr is not a
terminal."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

QUIET_ENV = "MRILEARN_QUIET"


def quiet() -> bool:
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def progress_bar(
    iterable: Iterable[Any] | None = None, *, enabled: bool | None = None, **kwargs: Any
) -> tqdm:
    """A tqdm bar; ``enabled`` True/False forces it on or off (unless quiet), ``None``
    shows it on a terminal only."""
    disable = True if quiet() else (None if enabled is None else not enabled)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(iterable, disable=disable, **kwargs)
