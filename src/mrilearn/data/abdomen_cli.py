"""``mrilearn synth-abdomen``: write synthetic abdominal MRI subjects with organ labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from mrilearn.data import abdomen


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth-abdomen",
        help="write synthetic abdominal MRI + 10-organ label maps (NIfTI) and a manifest",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced if present)")
    p.add_argument("--subjects", type=int, default=20, help="number of subjects")
    p.add_argument(
        "--seed", type=int, default=0, help="data set seed (different seeds: new subjects)"
    )
    p.add_argument("--shape", type=int, nargs=3, default=list(abdomen.DEFAULT_SHAPE), help="voxels")
    p.add_argument(
        "--spacing", type=float, nargs=3, default=list(abdomen.DEFAULT_SPACING), help="mm"
    )
    p.set_defaults(func=cmd_synth_abdomen)


def cmd_synth_abdomen(args: argparse.Namespace) -> int:
    manifest = abdomen.write_abdomen_dataset(
        args.out, args.subjects, args.seed, args.shape, args.spacing
    )
    print(f"wrote {args.subjects} subjects; manifest: {manifest}")
    print(f"train on them: mrilearn train <config> data.source={manifest}")
    return 0
