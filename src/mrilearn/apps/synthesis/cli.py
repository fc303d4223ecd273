"""``mrilearn synthesize`` (label maps → images with a trained SPADE run) and
``mrilearn synthesize-experiment`` (ALAMO with and without SPADE-synthesised pairs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mrilearn.arguments import add_output_argument


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser(
        "synthesize", help="SPADE: turn label maps (NIfTI file or folder) into images"
    )
    s.add_argument("--run", required=True, type=Path, help="a SPADE run directory")
    s.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    s.add_argument("labels", type=Path, help="label map .nii/.nii.gz, or a folder of them")
    add_output_argument(s, "output .nii/.nii.gz (for a file) or folder (for a folder)",
                        aliases=("--output",))  # fmt: skip
    s.add_argument("--seed", type=int, help="draw the noise z from this seed (default z = 0)")
    s.add_argument("--min-foreground", type=float,
                   help="slices with fewer labelled pixels (fraction) are left as background "
                        "(default: the run's data.min_foreground)")  # fmt: skip
    s.set_defaults(func=cmd_synthesize)

    e = subparsers.add_parser(
        "synthesize-experiment",
        help="train SPADE, synthesise extra pairs, train ALAMO with and without them, compare DSC",
    )
    e.add_argument("--spade", type=Path, required=True, help="SPADE config (configs/synth/)")
    e.add_argument("--seg", type=Path, required=True, help="segmentation config")
    add_output_argument(e, "experiment folder")
    e.add_argument("--extra-subjects", type=int, default=8,
                   help="new synthetic-abdomen label maps to synthesise images for")  # fmt: skip
    e.add_argument("--extra-labels", type=Path, help="or: a folder of extra label maps")
    e.add_argument("--oracle", action="store_true",
                   help="also train with the extra label maps' real images (upper bound)")  # fmt: skip
    e.add_argument("--seed", type=int, help="noise seed of the synthesis (default z = 0)")
    e.add_argument("--spade-set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides of the SPADE config")  # fmt: skip
    e.add_argument("--seg-set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides of the segmentation config")  # fmt: skip
    e.set_defaults(func=cmd_experiment)


def cmd_synthesize(args: argparse.Namespace) -> int:
    import sys

    from mrilearn.apps.synthesis.synthesize import synthesize_paths

    records, batch = synthesize_paths(
        args.run, args.labels, args.out, args.seed, args.min_foreground, args.checkpoint,
        args.overwrite,
    )  # fmt: skip
    if batch is not None:
        print(f"mrilearn: {batch.summary()}", file=sys.stderr)
        return batch.exit_status
    for r in records:
        skipped = len(r["skipped_slices"])
        note = f" ({skipped} of {r['slices']} slices nearly empty, left as background)"
        print(f"wrote {r['image']}{note if skipped else ''}")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from mrilearn.apps.synthesis.experiment import run_experiment

    md = run_experiment(
        args.spade, args.seg, args.out, args.extra_subjects, args.extra_labels, args.oracle,
        args.seed, args.spade_set, args.seg_set, args.overwrite,
    )  # fmt: skip
    print(md)
    print(f"comparison: {args.out / 'comparison.md'}")
    return 0
