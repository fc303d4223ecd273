"""Commands of the Multitasking application: ``mrilearn simulate KIND CONFIG --out PATH`` and
``mrilearn recon CONFIG --data FILE --out DIR``.

``SIMULATIONS`` maps a ``simulate`` kind to what it writes; other applications add kinds
(the MALIBU application adds ``mtmri-dataset``, a folder of simulated and reconstructed
subjects).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from mrilearn.apps.mtmri.config import MtmriConfig
from mrilearn.arguments import add_output_argument
from mrilearn.errors import ConfigError
from mrilearn.io.outputs import check_outputs


def simulate_scan(args: argparse.Namespace, cfg: MtmriConfig) -> str:
    """``simulate mtmri``: one raw data file."""
    from mrilearn.apps.mtmri.raw import write_raw
    from mrilearn.apps.mtmri.simulate import simulate

    check_outputs([args.out], overwrite=args.overwrite)
    raw = simulate(cfg.simulate)
    path = write_raw(args.out, raw)
    coils, readouts, samples = raw.kspace.shape
    return (
        f"wrote {path}: {coils} coils × {readouts} readouts × {samples} samples "
        f"({int(raw.navigator.sum())} navigators)"
    )


# kind → writer of ``args.out`` from the config; returns the line to print
SIMULATIONS: dict[str, Callable[[argparse.Namespace, MtmriConfig], str]] = {"mtmri": simulate_scan}


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` and ``recon`` commands to the ``mrilearn`` parser."""
    s = sub.add_parser("simulate", help="simulate raw MRI data from a YAML config")
    s.add_argument("kind", choices=SIMULATIONS, help="what to simulate")
    s.add_argument("config", help="YAML config or packaged name (e.g. mtmri/default)")
    s.add_argument("overrides", nargs="*", help="dotted overrides, e.g. simulate.seed=3")
    add_output_argument(
        s, "raw data file (.npz); mtmri-dataset: a folder (an unfinished data set there is "
        "completed; --overwrite starts it over)",
    )  # fmt: skip
    s.add_argument("--subjects", type=int, default=32, help="mtmri-dataset: number of subjects")
    s.add_argument("--workers", type=int, default=1, help="mtmri-dataset: parallel processes")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("recon", help="reconstruct a Multitasking MRI raw data file")
    r.add_argument("config", help="YAML config with a recon section")
    r.add_argument("overrides", nargs="*", help="dotted overrides, e.g. recon.rank=8")
    r.add_argument("--data", required=True, type=Path, help="raw data file (.npz)")
    add_output_argument(r, "output folder")
    r.add_argument(
        "--method",
        choices=("iterative", "malibu"),
        default="iterative",
        help="spatial factor estimate: ADMM, or a trained MALIBU network (--run)",
    )
    r.add_argument("--run", type=Path, help="--method malibu: the training run directory")
    r.set_defaults(func=cmd_recon)


def cmd_simulate(args: argparse.Namespace) -> int:
    from mrilearn.apps.mtmri.config import load_config

    cfg = load_config(args.config, args.overrides)
    start = time.perf_counter()
    line = SIMULATIONS[args.kind](args, cfg)
    print(f"{line} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_recon(args: argparse.Namespace) -> int:
    from mrilearn.apps.mtmri.config import load_config
    from mrilearn.apps.mtmri.evaluation import RESULT_ENTRIES, evaluate, save_result
    from mrilearn.apps.mtmri.raw import read_raw
    from mrilearn.apps.mtmri.recon import SpatialFactorModel, reconstruct
    from mrilearn.io.outputs import Output

    cfg = load_config(args.config, args.overrides)
    inputs = [args.data, *([args.run] if args.run else [])]
    check_outputs([Output.folder(args.out, *RESULT_ENTRIES)], inputs, args.overwrite)
    raw = read_raw(args.data)
    spatial = None
    if args.method == "malibu":
        from mrilearn.runs import load_run

        if args.run is None:
            raise ConfigError("--method malibu needs --run RUN_DIR (a trained MALIBU run)")
        model = load_run(args.run)
        if not isinstance(model, SpatialFactorModel):
            raise ConfigError(f"--run {args.run}: not a MALIBU run (its trainer is "
                              f"{type(model).__name__})")  # fmt: skip
        spatial = model.spatial_factor
    result = reconstruct(raw, cfg.recon, spatial=spatial)
    if "simulation" in raw.metadata:
        result.metrics = evaluate(raw, result)
    out = save_result(args.out, cfg, raw, result)
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
