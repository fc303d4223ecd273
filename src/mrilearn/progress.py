"""Progress bars for long work: tqdm on a terminal, off with ``mrilearn -q`` (the environment
variable ``MRILEARN_QUIET=1``, inherited by worker processes) and when stderr is not a
terminal.

Inner bars (the patches of one volume) are off by default, since training and evaluation
run inference many times over; a command that works on one volume at a time (``infer``)
turns them on inside :func:`inner_bars`, and a component's own ``progress: true`` always
does.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

QUIET_ENV = "MRILEARN_QUIET"
_INNER = ContextVar("mrilearn_inner_bars", default=False)


def quiet() -> bool:
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def progress_bar(
    iterable: Iterable[Any] | None = None, *, enabled: bool | None = None, **kwargs: Any
) -> tqdm:
    """A tqdm bar; ``enabled`` True/False forces it on or off (unless quiet), ``None``
    shows it on a terminal only."""
    from tqdm.auto import tqdm  # here: the command line starts without it

    disable = True if quiet() else (None if enabled is None else not enabled)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(iterable, disable=disable, **kwargs)


@contextlib.contextmanager
def inner_bars() -> Iterator[None]:
    """Inside the block, inner bars show on a terminal (see the module notes)."""
    token = _INNER.set(True)
    try:
        yield
    finally:
        _INNER.reset(token)


def inner_enabled(requested: bool) -> bool | None:
    """``enabled`` of an inner bar whose component has ``progress=requested``: on if
    requested, on a terminal inside :func:`inner_bars`, else off."""
    return True if requested else None if _INNER.get() else False


def shown(enabled: bool | None) -> bool:
    """Whether a bar with this ``enabled`` shows (for libraries that take a bool)."""
    if quiet():
        return False
    return sys.stderr.isatty() if enabled is None else enabled
