"""Commands of the MALIBU application: ``mrilearn simulate mtmri-dataset CONFIG --out FOLDER``
writes a training set of simulated, iteratively reconstructed Multitasking subjects."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mrilearn.apps.mtmri.cli import SIMULATIONS

if TYPE_CHECKING:
    from mrilearn.apps.mtmri.config import MtmriConfig


def simulate_dataset(args: argparse.Namespace, cfg: MtmriConfig) -> str:
    """``simulate mtmri-dataset``: ``--subjects`` subjects in ``--workers`` processes; an
    earlier data set in ``--out`` is completed (``--overwrite``: started over)."""
    import shutil

    from mrilearn.apps.malibu.dataset import DATASET_ENTRIES, generate_dataset
    from mrilearn.io.outputs import Output, check_outputs

    check_outputs([Output.folder(args.out, *DATASET_ENTRIES)], overwrite=True)  # its own files
    if args.overwrite and args.out.is_dir():
        shutil.rmtree(args.out)
    manifest = generate_dataset(cfg, args.out, args.subjects, args.workers)
    return f"wrote {manifest} ({args.subjects} subjects)"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """MALIBU adds a kind to the Multitasking application's ``simulate`` command."""
    SIMULATIONS["mtmri-dataset"] = simulate_dataset
