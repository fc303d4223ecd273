"""The ``mrilearn`` command: train, evaluate, infer, demo, info.

User errors (a bad file, config or checkpoint) print one line and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from mrilearn.errors import ConfigError, MrilearnError

log = logging.getLogger("mrilearn")

DEMO_CONFIG = "sr/demo_mni152.yaml"

# Modules that add application commands: each has ``add_commands(subparsers)``.
COMMAND_MODULES: tuple[str, ...] = (
    "mrilearn.metrics.perceptual_cli",
    "mrilearn.data.abdomen_cli",
    "mrilearn.data.angio_cli",
    "mrilearn.physics.cli",
    "mrilearn.deploy.cli",
    "mrilearn.inference.uncertainty_cli",
    "mrilearn.federated.cli",
    "mrilearn.synthesis.cli",
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("mrilearn").setLevel(logging.DEBUG if args.debug else logging.INFO)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except MrilearnError as err:
        if args.debug:
            raise
        print(f"mrilearn: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mrilearn: interrupted", file=sys.stderr)
        return 130


def add_generator_arguments(
    p: argparse.ArgumentParser, what: str, subjects: int, shape: tuple[int, ...]
) -> None:
    """``--out``, ``--subjects``, ``--seed``, ``--shape``: the options every synthetic data
    generator command shares (``what`` names one generated item, e.g. "subjects")."""
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced if present)")
    p.add_argument("--subjects", type=int, default=subjects, help=f"number of {what}")
    p.add_argument(
        "--seed", type=int, default=0, help=f"data set seed (different seeds: new {what})"
    )
    p.add_argument("--shape", type=int, nargs=3, default=list(shape), help="voxels")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mrilearn", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to the terminal")
    p.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: all cores)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train from a YAML config")
    t.add_argument("config", help="YAML experiment config")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.iterations=100")
    t.add_argument("--resume", action="store_true", help="continue from checkpoints/latest.pt")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--devices", type=int, default=1, help="data-parallel CPU processes (DDP)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a run's best checkpoint")
    e.add_argument("--run", required=True, type=Path, help="run directory (runs/<experiment>)")
    e.add_argument("--split", help="data split to evaluate (default: evaluation.split)")
    e.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    e.set_defaults(func=cmd_evaluate)

    i = sub.add_parser("infer", help="apply a trained model to a NIfTI file or DICOM folder")
    i.add_argument("--run", required=True, type=Path, help="run directory or exported package")
    i.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    i.add_argument(
        "--runtime",
        choices=["torch", "onnx"],
        default="torch",
        help="onnx: run a package's model.onnx with onnxruntime",
    )
    i.add_argument(
        "--samples",
        type=int,
        default=0,
        help="N > 0: mean of N MC-dropout passes plus uncertainty maps (NIfTI, PNG) beside it",
    )
    i.add_argument("input", type=Path, help="NIfTI file (.nii/.nii.gz) or DICOM series folder")
    i.add_argument("output", type=Path, help="output .nii/.nii.gz, or a folder for DICOM")
    i.add_argument("--attention", metavar="X,Y,Z", help="also write this voxel's attention map")
    i.set_defaults(func=cmd_infer)

    d = sub.add_parser("demo", help="train and evaluate on the embedded MNI152 data")
    d.add_argument("--out", type=Path, default=Path("runs"), help="where the run goes")
    d.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.iterations=50")
    d.set_defaults(func=cmd_demo)

    n = sub.add_parser("info", help="versions, threads, embedded data, components")
    n.set_defaults(func=cmd_info)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return p


# ---------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from mrilearn.config import load_config

    cfg = load_config(args.config, args.overrides)
    run_dir = train_run(cfg, resume=args.resume, overwrite=args.overwrite, devices=args.devices)
    print(f"run: {run_dir}\nreport: {run_dir / 'report.html'}")
    return 0 if _finished(run_dir, cfg) else 3


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mrilearn.report.html import write_report

    trainer = load_run(args.run, args.checkpoint)
    split = args.split or trainer.cfg.evaluation.split
    result = trainer.evaluate(split, args.run)
    write_report(args.run)
    print((args.run / "results.md").read_text() if (args.run / "results.md").is_file() else result)
    print(f"evaluation: {args.run / 'evaluation.json'}\nreport: {args.run / 'report.html'}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from mrilearn.deploy.package import dicom_description
    from mrilearn.io import read_volume, write_volume

    trainer = load_run(args.run, args.checkpoint, args.runtime)
    volume = read_volume(args.input)
    if args.samples:
        from mrilearn.inference.uncertainty import infer_with_uncertainty

        out, extra = infer_with_uncertainty(trainer, volume, args.samples, args.output)
    else:
        out, extra = trainer.infer_volume(volume), []
    written = write_volume(out, args.output, **dicom_description(trainer, args.output))
    print(f"wrote {written}")
    for path in extra:
        print(f"wrote {path}")
    if args.attention:
        from mrilearn.engine.sr import write_attention_map

        for path in write_attention_map(trainer, volume, args.attention, args.output):
            print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mrilearn.config import load_config
    from mrilearn.report.html import write_report

    config = resources.files("mrilearn") / "configs" / DEMO_CONFIG
    cfg = load_config(str(config), [f"output_dir={args.out}", *args.overrides])
    run_dir = train_run(cfg, resume=False, overwrite=True, devices=1)
    if not _finished(run_dir, cfg):
        return 3
    trainer = load_run(run_dir, "best")
    trainer.evaluate(cfg.evaluation.split, run_dir)
    write_report(run_dir)
    print((run_dir / "results.md").read_text())
    print(f"report: {(run_dir / 'report.html').resolve()}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import importlib.metadata as md

    import torch

    from mrilearn import components
    from mrilearn.io.embedded import embedded_datasets

    print("versions:")
    for pkg in ("mrilearn", "torch", "numpy", "scipy", "monai", "nibabel", "pydicom", "nilearn"):
        try:
            print(f"  {pkg:9s} {md.version(pkg)}")
        except md.PackageNotFoundError:
            print(f"  {pkg:9s} not installed")
    print(f"threads: torch {torch.get_num_threads()}, cpus {os.cpu_count()}")
    print("embedded data:")
    for name, where in embedded_datasets().items():
        print(f"  {name}: {where}")
    print("components:")
    for kind, names in components.registered().items():
        print(f"  {kind}: {', '.join(names)}")
    return 0


# ----------------------------------------------------------------- helpers
def train_run(cfg: Any, resume: bool, overwrite: bool, devices: int) -> Path:
    """Prepare the run directory, train (in ``devices`` processes) and write the report."""
    from mrilearn.engine.distributed import launch
    from mrilearn.io.atomic import write_text_atomic
    from mrilearn.report.html import write_report

    run_dir = Path(cfg.output_dir) / cfg.experiment
    if resume:
        _check_resumable(run_dir, cfg)
    elif run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{run_dir} already holds a run; use --resume to continue it, --overwrite to "
                "replace it, or set experiment=<new name>"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", cfg.dump())
    launch(_train_worker, devices, cfg.to_dict(), str(run_dir), resume)
    write_report(run_dir)
    return run_dir


def _train_worker(dist: Any, cfg_dict: dict[str, Any], run_dir: str, resume: bool) -> None:
    import torch

    from mrilearn.config import from_dict

    cfg = from_dict(cfg_dict)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    build_trainer(cfg, Path(run_dir), dist).fit(resume=resume)


def build_trainer(cfg: Any, run_dir: Path, dist: Any = None) -> Any:
    from mrilearn import components
    from mrilearn.engine.distributed import DistInfo

    return components.build(
        "trainer", cfg.trainer, cfg=cfg, run_dir=run_dir, dist=dist or DistInfo()
    )


def load_run(run_dir: Path, checkpoint: str = "best", runtime: str = "torch") -> Any:
    """Rebuild a run's trainer from its config and load the checkpoint's weights; a folder
    holding package.json is loaded as an exported package (``runtime`` torch or onnx)."""
    from mrilearn.config import from_dict
    from mrilearn.deploy.package import is_package, load_package
    from mrilearn.engine.checkpoint import load_checkpoint

    if is_package(run_dir):
        return load_package(run_dir, runtime)
    if runtime != "torch":
        raise ConfigError(f"--runtime {runtime} needs an exported package (mrilearn export)")

    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(
            f"{run_dir}: not a run directory (no config.yaml); pass --run runs/<experiment>"
        )
    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.is_file():
        path = run_dir / "checkpoints" / "latest.pt"  # runs without validation keep no best
    state = load_checkpoint(path)
    cfg = from_dict(state["config"])
    trainer = build_trainer(cfg, run_dir)
    trainer.load_state(state, str(path), weights_only=True)
    trainer.iteration = int(state["iteration"])
    for net in trainer.nets.values():
        net.eval()
    return trainer


def _check_resumable(run_dir: Path, cfg: Any) -> None:
    import yaml

    saved_path = run_dir / "config.yaml"
    if not (run_dir / "checkpoints" / "latest.pt").is_file():
        raise ConfigError(
            f"{run_dir}: nothing to resume (no checkpoints/latest.pt); train without --resume"
        )
    saved = yaml.safe_load(saved_path.read_text()) if saved_path.is_file() else {}
    current = cfg.to_dict()
    changed = [k for k in current if k != "train" and current[k] != saved.get(k)]
    if changed:
        raise ConfigError(
            f"{run_dir}: the config differs from the run's config.yaml in {', '.join(changed)}; "
            "only train.* may change when resuming"
        )


def _finished(run_dir: Path, cfg: Any) -> bool:
    from mrilearn.engine.logger import METRICS_FILE, read_records

    records = read_records(run_dir / METRICS_FILE)
    done = bool(records) and records[-1].get("iteration", 0) >= cfg.train.iterations
    if not done:
        print("training paused before the last iteration; continue with --resume", file=sys.stderr)
    return done
