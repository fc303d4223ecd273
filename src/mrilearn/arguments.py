"""Command-line options that commands of several applications share, so that they are
spelt and documented the same everywhere.

Conventions: outputs are ``-o/--out``, and an existing output is replaced only with
``--overwrite`` (:mod:`mrilearn.io.outputs` says what it may replace); the global options
(:func:`add_global_options`) are accepted before or after the command; ``key=value``
overrides anywhere after the config.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_global_options(p: argparse.ArgumentParser, suppress: bool) -> None:
    """``--debug``, ``-v``, ``-q``, ``--threads``, ``--device``, ``--precision``. On a command's
    own parser (``suppress``) they leave the value given before the command alone unless given
    again after it."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    p.add_argument(
        "--debug", action="store_true", default=default(False), help="tracebacks and debug logs"
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", default=default(False),
        help="log progress to the terminal",
    )  # fmt: skip
    p.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="no progress bars"
    )
    p.add_argument(
        "--threads", type=int, default=default(None),
        help="CPU threads for PyTorch (default: all cores)",
    )  # fmt: skip
    p.add_argument(
        "--device", default=default(None), metavar="DEVICE",
        help="auto (default: CUDA, else MPS, else the CPU), cpu, cuda, cuda:N or mps; "
        "wins over the config's train.device",
    )  # fmt: skip
    p.add_argument(
        "--precision", default=default(None), choices=("auto", "fp32", "bf16", "fp16"),
        help="wins over train.precision (training) and the run's precision (inference)",
    )  # fmt: skip


def add_output_argument(
    p: argparse.ArgumentParser, help: str, required: bool = True, default: Path | None = None,
    aliases: tuple[str, ...] = (), overwrite: bool = True,
) -> None:  # fmt: skip
    """``-o/--out PATH`` (``aliases``: older spellings that keep working) and, unless
    ``overwrite`` is False, ``--overwrite``."""
    p.add_argument(
        "-o", "--out", *aliases, dest="out", type=Path, required=required, default=default,
        help=help,
    )  # fmt: skip
    if overwrite:
        add_overwrite_argument(p)


def add_overwrite_argument(
    p: argparse.ArgumentParser,
    help: str = "replace an existing output (a folder only if it holds nothing but what this "
    "command writes)",
) -> None:
    """``--overwrite``: without it, a command refuses an output that exists."""
    p.add_argument("--overwrite", action="store_true", help=help)


def add_generator_arguments(
    p: argparse.ArgumentParser, what: str, subjects: int, shape: tuple[int, ...]
) -> None:
    """``-o/--out``, ``--subjects``, ``--seed``, ``--shape``: the options every synthetic data
    generator command shares (``what`` names one generated item, e.g. "subjects")."""
    add_output_argument(p, "output folder (new, empty, or with --overwrite an earlier one)")
    p.add_argument("--subjects", type=int, default=subjects, help=f"number of {what}")
    p.add_argument(
        "--seed", type=int, default=0, help=f"data set seed (different seeds: new {what})"
    )
    p.add_argument("--shape", type=int, nargs=3, default=list(shape), help="voxels")
