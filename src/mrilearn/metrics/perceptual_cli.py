"""``mrilearn niqe-fit``: fit a NIQE pristine model on HR MRI slices (§4.4.1, §5.2.4);
``mrilearn sr-compare``: one distortion–perception table and plot for several runs (§5.4.3)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("niqe-fit", help="fit a NIQE model on HR slices of a data set")
    p.add_argument(
        "--data", required=True, help="HR folder of NIfTI files, CSV manifest, or 'mni152'"
    )
    p.add_argument("--out", required=True, type=Path, help="model file to write (.npz)")
    p.add_argument("--axis", type=int, default=0, help="slice axis (default 0)")
    p.add_argument("--patch-size", type=int, default=32, help="NIQE patch size (default 32)")
    p.add_argument(
        "--threshold", type=float, default=0.05, help="foreground: > threshold × max (0.05)"
    )
    p.set_defaults(func=cmd_niqe_fit)
    p = subparsers.add_parser(
        "sr-compare", help="table and PSNR-vs-NIQE plot of several evaluated SR runs"
    )
    p.add_argument("runs", nargs="+", type=Path, help="run directories, each evaluated")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=cmd_sr_compare)


def cmd_niqe_fit(args: argparse.Namespace) -> int:
    from mrilearn.data.sr import SRVolumes
    from mrilearn.metrics.perceptual import fit_niqe_model, foreground_slices, to_unit255

    data = SRVolumes(source=args.data)
    slices = []
    for subject in data.subjects():
        hr = data.load_hr(subject).data.astype(np.float32)
        if hr.ndim != 3:
            continue
        scaled = to_unit255(hr, float(np.percentile(hr, 99.5)) or 1.0)
        for i in foreground_slices(hr > args.threshold * hr.max(), args.axis):
            slices.append(np.take(scaled, i, axis=args.axis))
    model = fit_niqe_model(slices, args.patch_size)
    path = model.save(args.out)
    print(f"fitted NIQE on {len(slices)} slices; wrote {path}")
    return 0


def cmd_sr_compare(args: argparse.Namespace) -> int:
    from mrilearn.engine.sr import compare_runs
    from mrilearn.metrics.image import to_markdown

    args.out.mkdir(parents=True, exist_ok=True)
    rows = compare_runs(args.runs, args.out)
    print(to_markdown([r for r in rows if r["metric"] in ("psnr", "ssim", "niqe", "piqe")]))
    print(f"wrote {args.out / 'comparison.md'} and {args.out / 'distortion_perception.png'}")
    return 0
