"""Commands of the super-resolution application.

``niqe-fit``: fit a NIQE pristine model on HR MRI slices (§4.4.1, §5.2.4); ``sr-compare``: one
distortion–perception table and plot for several runs (§5.4.3); ``synth-angio``: synthetic
angiography-like volumes for cross-domain training (§5.2); ``uncertainty``: does MC-dropout
uncertainty track the SR error (§8.4.2)?"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mrilearn.apps.sr import synthetic
from mrilearn.arguments import add_generator_arguments, add_output_argument

log = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    add_perceptual_commands(subparsers)
    add_angio_command(subparsers)
    add_uncertainty_command(subparsers)
    add_register_command(subparsers)


def add_perceptual_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("niqe-fit", help="fit a NIQE model on HR slices of a data set")
    p.add_argument(
        "--data", required=True, help="HR folder of NIfTI files, CSV manifest, or 'mni152'"
    )
    add_output_argument(p, "model file to write (.npz)")
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
    add_output_argument(p, "output folder")
    p.set_defaults(func=cmd_sr_compare)


def cmd_niqe_fit(args: argparse.Namespace) -> int:
    import numpy as np

    from mrilearn.apps.sr.data import SRVolumes
    from mrilearn.io.outputs import check_outputs
    from mrilearn.metrics.perceptual import fit_niqe_model, foreground_slices, to_unit255

    check_outputs([args.out], [args.data] if Path(args.data).exists() else [], args.overwrite)
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
    from mrilearn.apps.sr.evaluation import COMPARISON_FILES, compare_runs
    from mrilearn.io.outputs import Output, check_outputs
    from mrilearn.report.evaluation import to_markdown

    check_outputs([Output.folder(args.out, *COMPARISON_FILES)], args.runs, args.overwrite)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = compare_runs(args.runs, args.out)
    print(to_markdown([r for r in rows if r["metric"] in ("psnr", "ssim", "niqe", "piqe")]))
    print(f"wrote {args.out / 'comparison.md'} and {args.out / 'distortion_perception.png'}")
    return 0


def add_angio_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth-angio",
        help="write synthetic angiography-like volumes (HR, k-space-truncated LR) and a manifest",
    )
    add_generator_arguments(p, "volumes", 8, synthetic.DEFAULT_SHAPE)
    p.add_argument(
        "--factors",
        type=float,
        nargs=2,
        default=list(synthetic.DEFAULT_FACTORS),
        help="k-space truncation of the LR along axes 1 and 2 (default 4 4)",
    )
    p.add_argument("--domain", default=synthetic.ANGIO_DOMAIN, help="domain tag in the manifest")
    p.set_defaults(func=cmd_synth_angio)


def cmd_synth_angio(args: argparse.Namespace) -> int:
    from mrilearn.apps.sr import angio
    from mrilearn.io.outputs import Output, check_outputs

    check_outputs([Output.folder(args.out, *synthetic.DATASET_ENTRIES)], overwrite=args.overwrite)
    manifest = angio.write_angio_dataset(
        args.out,
        args.subjects,
        args.seed,
        args.shape,
        args.factors,
        synthetic.DEFAULT_AXES,
        args.domain,
    )
    print(f"wrote {args.subjects} volumes; manifest: {manifest}")
    print(
        "add your domain-A rows (subject,image,lr,domain) to it and train: "
        f"mrilearn train sr/dragan data.source={manifest}"
    )
    return 0


def add_uncertainty_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "uncertainty",
        help="Spearman correlation and reliability curve of MC-dropout std vs SR error",
    )
    p.add_argument("--run", required=True, type=Path, help="SR run directory or package")
    p.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    p.add_argument("--split", default="test", help="held-out split to measure on")
    p.add_argument("--samples", type=int, default=8, help="MC-dropout passes")
    add_output_argument(p, "where uncertainty.json goes (default: the run)", required=False)
    p.set_defaults(func=cmd_uncertainty)


def cmd_uncertainty(args: argparse.Namespace) -> int:
    from mrilearn.apps.sr.trainer import SRTrainer
    from mrilearn.apps.sr.uncertainty import evaluate_sr_uncertainty
    from mrilearn.errors import ConfigError
    from mrilearn.io.outputs import check_outputs
    from mrilearn.runs import load_run

    out = args.out or args.run
    # in the run directory they are the run's own (replaced like evaluate's); elsewhere guarded
    check_outputs(
        [out / "uncertainty.json", out / "figures" / "reliability.png"],
        [] if args.out is None else [args.run], args.overwrite or args.out is None,
    )  # fmt: skip
    trainer = load_run(args.run, args.checkpoint)
    if not isinstance(trainer, SRTrainer):
        raise ConfigError("mrilearn uncertainty measures super-resolution runs only")
    r = evaluate_sr_uncertainty(trainer, args.split, args.samples, out)
    print(
        f"{args.split}: Spearman rho(std, |error|) = {r['spearman']:.3f} over {r['voxels']} "
        f"voxels of {r['subjects']} subject(s), {args.samples} samples"
    )
    print(f"wrote {out / 'uncertainty.json'} and {out / 'figures' / 'reliability.png'}")
    return 0


def add_register_command(subparsers: argparse._SubParsersAction) -> None:
    from mrilearn.apps.sr.registration_limits import Limits

    p = subparsers.add_parser(
        "register", help="rigidly align a separately acquired LR scan to its HR scan"
    )
    p.add_argument("lr", type=Path, help="the LR scan: NIfTI file or DICOM series folder")
    p.add_argument("hr", type=Path, help="the HR scan whose grid the result takes")
    add_output_argument(
        p, "the LR resampled onto the HR grid (.nii.gz); <stem>.tfm and <stem>.json beside it"
    )
    p.add_argument(
        "--max-metric", type=float, default=Limits.max_metric,
        help=f"fail above this Mattes mutual information (default {Limits.max_metric})",
    )  # fmt: skip
    p.add_argument(
        "--max-shift", type=float, default=Limits.max_shift_mm, metavar="MM",
        help=f"fail when the HR centre moves further (default {Limits.max_shift_mm})",
    )  # fmt: skip
    p.add_argument(
        "--max-rotation", type=float, default=Limits.max_rotation_deg, metavar="DEG",
        help=f"fail when the rotation is larger (default {Limits.max_rotation_deg})",
    )  # fmt: skip
    p.set_defaults(func=cmd_register)


def cmd_register(args: argparse.Namespace) -> int:
    from mrilearn.apps.sr.registration import (
        Limits,
        register_rigid,
        resample_onto,
        sidecars,
        write_registration,
    )
    from mrilearn.errors import DataError
    from mrilearn.io import read_volume, write_nifti
    from mrilearn.io.nifti import is_nifti_path
    from mrilearn.io.outputs import check_outputs

    if not is_nifti_path(args.out):
        raise DataError(f"{args.out}: name a NIfTI output (.nii.gz) for the registered LR")
    check_outputs([args.out, *sidecars(args.out)], [args.lr, args.hr], args.overwrite)
    lr, hr = read_volume(args.lr), read_volume(args.hr)
    registration = register_rigid(lr, hr)
    write_nifti(resample_onto(lr, hr, registration), args.out)
    tfm, js = write_registration(registration, args.out, {"lr": str(args.lr), "hr": str(args.hr)})
    print(
        f"metric {registration.metric:.4f}, shift {registration.shift_mm:.2f} mm, rotation "
        f"{registration.rotation_deg:.2f}° ({registration.seconds:.1f} s); wrote {args.out}, "
        f"{tfm} and {js}"
    )
    problem = registration.problem(Limits(args.max_metric, args.max_shift, args.max_rotation))
    if problem is not None:
        print(f"mrilearn: registration failed: {problem}; check the result", file=sys.stderr)
        return 1
    return 0
