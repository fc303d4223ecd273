"""Commands ``mrilearn simulate KIND CONFIG --out FILE`` and
``mrilearn recon CONFIG --data FILE --out DIR`` (issue 5)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mrilearn.errors import ConfigError

SIMULATE_KINDS = ("mtmri", "mtmri-dataset")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` and ``recon`` commands to the ``mrilearn`` parser."""
    s = sub.add_parser("simulate", help="simulate raw MRI data from a YAML config")
    s.add_argument("kind", choices=SIMULATE_KINDS, help="what to simulate")
    s.add_argument("config", help="YAML config (e.g. configs/mtmri/default.yaml)")
    s.add_argument("overrides", nargs="*", help="dotted overrides, e.g. simulate.seed=3")
    s.add_argument(
        "--out", required=True, type=Path, help="raw data file (.npz); mtmri-dataset: a folder"
    )
    s.add_argument("--subjects", type=int, default=32, help="mtmri-dataset: number of subjects")
    s.add_argument("--workers", type=int, default=1, help="mtmri-dataset: parallel processes")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("recon", help="reconstruct a Multitasking MRI raw data file")
    r.add_argument("config", help="YAML config with a recon section")
    r.add_argument("overrides", nargs="*", help="dotted overrides, e.g. recon.rank=8")
    r.add_argument("--data", required=True, type=Path, help="raw data file (.npz)")
    r.add_argument("--out", required=True, type=Path, help="output folder")
    r.add_argument(
        "--method",
        choices=("iterative", "malibu"),
        default="iterative",
        help="spatial factor estimate: ADMM, or a trained MALIBU network (--run)",
    )
    r.add_argument("--run", type=Path, help="--method malibu: the training run directory")
    r.set_defaults(func=cmd_recon)


def cmd_simulate(args: argparse.Namespace) -> int:
    from mrilearn.physics import mtmri

    cfg = mtmri.load_config(args.config, args.overrides)
    start = time.perf_counter()
    if args.kind == "mtmri-dataset":
        from mrilearn.data.malibu import generate_dataset

        manifest = generate_dataset(cfg, args.out, args.subjects, args.workers)
        print(f"wrote {manifest} ({args.subjects} subjects) in {time.perf_counter() - start:.0f} s")
        return 0
    raw = mtmri.simulate(cfg.simulate)
    path = mtmri.write_raw(args.out, raw)
    coils, readouts, samples = raw.kspace.shape
    print(
        f"wrote {path}: {coils} coils × {readouts} readouts × {samples} samples "
        f"({int(raw.navigator.sum())} navigators) in {time.perf_counter() - start:.1f} s"
    )
    return 0


def cmd_recon(args: argparse.Namespace) -> int:
    from mrilearn.physics import mtmri

    cfg = mtmri.load_config(args.config, args.overrides)
    raw = mtmri.read_raw(args.data)
    spatial = None
    if args.method == "malibu":
        from mrilearn.cli import load_run

        if args.run is None:
            raise ConfigError("--method malibu needs --run RUN_DIR (a trained MALIBU run)")
        spatial = load_run(args.run).spatial_factor
    result = mtmri.reconstruct(raw, cfg.recon, spatial=spatial)
    if "simulation" in raw.metadata:
        result.metrics = mtmri.evaluate(raw, result)
    out = mtmri.save_result(args.out, cfg, raw, result)
    total = sum(result.timings.values())
    print(
        f"reconstructed in {total:.1f} s ("
        + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items())
        + ")"
    )
    for row in result.metrics.get("t1", []):
        interior = (
            f"  interior {row['interior_mean_ms']:6.0f} ± {row['interior_sd_ms']:4.0f} ms"
            f" ({row['interior_bias_pct']:+.1f}%, median {row['interior_median_bias_pct']:+.1f}%,"
            f" {row['interior_voxels']} voxels)"
            if row["interior_voxels"]
            else "  interior: no voxels"
        )
        print(
            f"  T1 {row['tissue']:10s} true {row['true_ms']:6.0f}  recon {row['mean_ms']:6.0f}"
            f" ± {row['sd_ms']:4.0f} ms ({row['bias_pct']:+.1f}%,"
            f" median {row['median_bias_pct']:+.1f}%, {row['voxels']} voxels){interior}"
        )
    if "image_nrmse" in result.metrics:
        print(
            "  image NRMSE "
            + ", ".join(f"{k} {v:.3f}" for k, v in result.metrics["image_nrmse"].items())
        )
    print(f"results: {out}\nreport: {out / 'report.html'}")
    return 0
