"""``mrilearn uncertainty``: does MC-dropout uncertainty track the error on held-out data?"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "uncertainty",
        help="Spearman correlation and reliability curve of MC-dropout std vs SR error",
    )
    p.add_argument("--run", required=True, type=Path, help="SR run directory or package")
    p.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    p.add_argument("--split", default="test", help="held-out split to measure on")
    p.add_argument("--samples", type=int, default=8, help="MC-dropout passes")
    p.add_argument("--out", type=Path, help="where uncertainty.json goes (default: the run)")
    p.set_defaults(func=cmd_uncertainty)


def cmd_uncertainty(args: argparse.Namespace) -> int:
    from mrilearn.cli import load_run
    from mrilearn.engine.sr import SRTrainer
    from mrilearn.errors import ConfigError
    from mrilearn.inference.uncertainty import evaluate_sr_uncertainty

    trainer = load_run(args.run, args.checkpoint)
    if not isinstance(trainer, SRTrainer):
        raise ConfigError("mrilearn uncertainty measures super-resolution runs only")
    out = args.out or args.run
    r = evaluate_sr_uncertainty(trainer, args.split, args.samples, out)
    print(
        f"{args.split}: Spearman rho(std, |error|) = {r['spearman']:.3f} over {r['voxels']} "
        f"voxels of {r['subjects']} subject(s), {args.samples} samples"
    )
    print(f"wrote {out / 'uncertainty.json'} and {out / 'figures' / 'reliability.png'}")
    return 0
