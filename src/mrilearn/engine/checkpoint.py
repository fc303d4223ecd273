"""Checkpoints: everything needed to resume bit-for-bit and to rebuild the model.

A checkpoint is a dict of tensors and plain Python values, saved with ``torch.save``
and read back with ``weights_only=True``, so loading never runs pickled code.
Writes go to a temporary file that replaces the old one only when complete.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from mrilearn.errors import CheckpointError
from mrilearn.io.atomic import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
REQUIRED = ("format", "trainer", "iteration", "config", "nets")


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    state = {"format": FORMAT_VERSION, **state}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    log.debug("saved checkpoint %s (iteration %s)", path, state.get("iteration"))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely; errors say which file and why (and, for a damaged one, which
    periodic checkpoint beside it is intact)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (train first, or check --run)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated, or holding code objects
        msg = str(err).splitlines()[0][:200]
        raise CheckpointError(
            f"{path}: cannot read checkpoint safely ({msg}){_intact_alternative(path)}"
        ) from None
    missing = [k for k in REQUIRED if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path}: not an mrilearn checkpoint (missing {', '.join(missing)})")
    if state["format"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state['format']} is not {FORMAT_VERSION}; "
            "retrain or use the mrilearn version that wrote it"
        )
    return state


def _intact_alternative(damaged: Path) -> str:
    """A hint naming the newest periodic checkpoint beside ``damaged`` that loads, if any."""
    for other in sorted(damaged.parent.glob("iter_*.pt"), reverse=True):
        if other.name == damaged.name:
            continue
        try:
            torch.load(other, map_location="cpu", weights_only=True)
        except Exception:
            continue
        return (
            f"; {other.name} is intact: use --checkpoint {other.stem} (to resume from it, "
            f"copy it over {damaged.name})"
        )
    return ""


def check_world_size(state: dict[str, Any], world_size: int, where: str) -> None:
    """Resuming needs the process count the checkpoint was written with (its random streams)."""
    if state["world_size"] != world_size:
        raise CheckpointError(
            f"{where}: written with {state['world_size']} process(es); resume with "
            f"--devices {state['world_size']} to continue the same random streams"
        )


def load_state_dict(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load weights strictly, turning shape/key mismatches into one readable error."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) or first[0]
        raise CheckpointError(
            f"{where}: weights do not fit the configured model ({detail[:300]}); "
            "the config's model section must match the one used in training"
        ) from None
