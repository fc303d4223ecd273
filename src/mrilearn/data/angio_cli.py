"""``mrilearn synth-angio``: write synthetic angiography-like HR/LR volumes and a manifest."""

from __future__ import annotations

import argparse

from mrilearn.cli import add_generator_arguments
from mrilearn.data import angio


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth-angio",
        help="write synthetic angiography-like volumes (HR, k-space-truncated LR) and a manifest",
    )
    add_generator_arguments(p, "volumes", 8, angio.DEFAULT_SHAPE)
    p.add_argument(
        "--factors",
        type=float,
        nargs=2,
        default=list(angio.DEFAULT_FACTORS),
        help="k-space truncation of the LR along axes 1 and 2 (default 4 4)",
    )
    p.add_argument("--domain", default=angio.ANGIO_DOMAIN, help="domain tag in the manifest")
    p.set_defaults(func=cmd_synth_angio)


def cmd_synth_angio(args: argparse.Namespace) -> int:
    manifest = angio.write_angio_dataset(
        args.out,
        args.subjects,
        args.seed,
        args.shape,
        args.factors,
        angio.DEFAULT_AXES,
        args.domain,
    )
    print(f"wrote {args.subjects} volumes; manifest: {manifest}")
    print(
        "add your domain-A rows (subject,image,lr,domain) to it and train: "
        f"mrilearn train configs/sr/dragan.yaml data.source={manifest}"
    )
    return 0
