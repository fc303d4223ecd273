"""Commands of the segmentation application: ``mrilearn synth-abdomen`` writes synthetic
abdominal MRI subjects with organ labels."""

from __future__ import annotations

import argparse

from mrilearn.apps.seg import synthetic
from mrilearn.arguments import add_generator_arguments


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth-abdomen",
        help="write synthetic abdominal MRI + 10-organ label maps (NIfTI) and a manifest",
    )
    add_generator_arguments(p, "subjects", 20, synthetic.DEFAULT_SHAPE)
    p.add_argument(
        "--spacing", type=float, nargs=3, default=list(synthetic.DEFAULT_SPACING), help="mm"
    )
    p.set_defaults(func=cmd_synth_abdomen)


def cmd_synth_abdomen(args: argparse.Namespace) -> int:
    from mrilearn.apps.seg import abdomen
    from mrilearn.io.outputs import Output, check_outputs

    check_outputs([Output.folder(args.out, *synthetic.DATASET_ENTRIES)], overwrite=args.overwrite)
    manifest = abdomen.write_abdomen_dataset(
        args.out, args.subjects, args.seed, args.shape, args.spacing
    )
    print(f"wrote {args.subjects} subjects; manifest: {manifest}")
    print(f"train on them: mrilearn train <config> data.source={manifest}")
    return 0
