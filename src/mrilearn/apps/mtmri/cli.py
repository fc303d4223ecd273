"""Commands of the Multitasking application: ``mrilearn simulate KIND CONFIG --out PATH`` and
``mrilearn recon CONFIG --data FILE_OR_FOLDER --out DIR`` (a folder of raw files: one result
folder per file inside ``DIR``).

``SIMULATIONS`` maps a ``simulate`` kind to what it writes; other applications add kinds
(the MALIBU application adds ``mtmri-dataset``, a folder of simulated and reconstructed
subjects).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrilearn.arguments import add_output_argument
from mrilearn.errors import ConfigError

if TYPE_CHECKING:  # the command line starts without importing what commands need
    import numpy as np
    import torch

    from mrilearn.apps.mtmri.config import MtmriConfig
    from mrilearn.io.batch import Item

    SpatialFactor = Callable[[np.ndarray, np.ndarray], np.ndarray] | None


def simulate_scan(args: argparse.Namespace, cfg: MtmriConfig) -> str:
    """``simulate mtmri``: one raw data file."""
    from mrilearn.apps.mtmri.raw import write_raw
    from mrilearn.apps.mtmri.simulate import simulate
    from mrilearn.io.outputs import check_outputs

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

    r = sub.add_parser(
        "recon", help="reconstruct a Multitasking MRI raw data file, or a folder of them"
    )
    r.add_argument("config", help="YAML config with a recon section")
    r.add_argument("overrides", nargs="*", help="dotted overrides, e.g. recon.rank=8")
    r.add_argument(
        "--data", required=True, type=Path, help="raw data file (.npz), or a folder of them"
    )
    add_output_argument(
        r, "output folder; for a folder of raw files, the folder that receives one result "
        "folder per file (named after it)",
    )  # fmt: skip
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
    from mrilearn.apps.mtmri.evaluation import RESULT_ENTRIES
    from mrilearn.engine.device import resolve_device
    from mrilearn.io.batch import Item, file_items, run_batch
    from mrilearn.io.outputs import Output, check_outputs

    device = resolve_device(args.device)
    cfg = load_config(args.config, args.overrides)
    batch = args.data.is_dir()
    items = (
        file_items(args.data, args.out, (".npz",), lambda p: p.name[: -len(".npz")])
        if batch
        else [Item(args.data, args.out)]
    )
    inputs = [args.data, *([args.run] if args.run else [])]
    check_outputs([Output.folder(i.output, *RESULT_ENTRIES) for i in items], inputs, args.overwrite)
    spatial = _malibu_spatial_factor(args)
    if not batch:
        out, lines = recon_file(cfg, items[0], spatial, device)
        print("\n".join(lines))
        print(f"results: {out}\nreport: {out / 'report.html'}")
        return 0
    result = run_batch(
        items, lambda item: [recon_file(cfg, item, spatial, device)[0]], desc="raw files"
    )
    print(f"mrilearn: {result.summary()}", file=sys.stderr)
    return result.exit_status


def _malibu_spatial_factor(args: argparse.Namespace) -> SpatialFactor:
    """``--method malibu``: the trained network's spatial-factor estimate (loaded once)."""
    if args.method != "malibu":
        return None
    from mrilearn.apps.mtmri.recon import SpatialFactorModel
    from mrilearn.runs import load_run

    if args.run is None:
        raise ConfigError("--method malibu needs --run RUN_DIR (a trained MALIBU run)")
    model = load_run(args.run)
    if not isinstance(model, SpatialFactorModel):
        raise ConfigError(f"--run {args.run}: not a MALIBU run (its trainer is "
                          f"{type(model).__name__})")  # fmt: skip
    return model.spatial_factor


def recon_file(
    cfg: MtmriConfig, item: Item, spatial: SpatialFactor, device: torch.device
) -> tuple[Path, list[str]]:
    """Reconstruct one raw file into its result folder (the iterations on ``device``); returns
    the folder and the lines that summarise the result (timings, T1 per tissue, image NRMSE)."""
    from mrilearn.apps.mtmri.evaluation import evaluate, save_result
    from mrilearn.apps.mtmri.raw import read_raw
    from mrilearn.apps.mtmri.recon import reconstruct

    raw = read_raw(item.source)
    result = reconstruct(raw, cfg.recon, spatial=spatial, device=device)
    if "simulation" in raw.metadata:
        result.metrics = evaluate(raw, result)
    out = save_result(item.output, cfg, raw, result)
    total = sum(result.timings.values())
    lines = [
        f"reconstructed in {total:.1f} s ("
        + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items())
        + ")"
    ]
    lines += [_t1_line(row) for row in result.metrics.get("t1", [])]
    if "image_nrmse" in result.metrics:
        nrmse = result.metrics["image_nrmse"]
        lines.append("  image NRMSE " + ", ".join(f"{k} {v:.3f}" for k, v in nrmse.items()))
    return out, lines


def _t1_line(row: dict[str, Any]) -> str:
    interior = (
        f"  interior {row['interior_mean_ms']:6.0f} ± {row['interior_sd_ms']:4.0f} ms"
        f" ({row['interior_bias_pct']:+.1f}%, median {row['interior_median_bias_pct']:+.1f}%,"
        f" {row['interior_voxels']} voxels)"
        if row["interior_voxels"]
        else "  interior: no voxels"
    )
    return (
        f"  T1 {row['tissue']:10s} true {row['true_ms']:6.0f}  recon {row['mean_ms']:6.0f}"
        f" ± {row['sd_ms']:4.0f} ms ({row['bias_pct']:+.1f}%,"
        f" median {row['median_bias_pct']:+.1f}%, {row['voxels']} voxels){interior}"
    )
