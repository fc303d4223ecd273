"""Commands of the MALIBU application: ``mrilearn simulate mtmri-dataset CONFIG --out FOLDER``
writes a training set of simulated, iteratively reconstructed Multitasking subjects."""

from __future__ import annotations

import argparse

from mrilearn.apps.mtmri.cli import SIMULATIONS
from mrilearn.apps.mtmri.config import MtmriConfig


def simulate_dataset(args: argparse.Namespace, cfg: MtmriConfig) -> str:
    """``simulate mtmri-dataset``: ``--subjects`` subjects in ``--workers`` processes."""
    from mrilearn.apps.malibu.dataset import generate_dataset

    manifest = generate_dataset(cfg, args.out, args.subjects, args.workers)
    return f"wrote {manifest} ({args.subjects} subjects)"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """MALIBU adds a kind to the Multitasking application's ``simulate`` command."""
    SIMULATIONS["mtmri-dataset"] = simulate_dataset
