"""Command-line options that commands of several applications share, so that they are
spelt and documented the same everywhere."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_generator_arguments(
    p: argparse.ArgumentParser, what: str, subjects: int, shape: tuple[int, ...]
) -> None:
    """``--out``, ``--subjects``, ``--seed``, ``--shape``: the options every synthetic data
    generator command shares (``what`` names one generated item, e.g. "subjects")."""
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced if present)")
    p.add_argument("--subjects", type=int, default=subjects, help=f"number of {what}")
    p.add_argument(
        "--seed", type=int, default=0, help=f"data set seed (different seeds: new {what})"
    )
    p.add_argument("--shape", type=int, nargs=3, default=list(shape), help="voxels")
