"""The ``mrilearn`` command: train, evaluate, infer, export, demo, info, and the commands of
every installed application.

This module parses arguments and calls the run service (:mod:`mrilearn.runs`); nothing
imports it. User errors (a bad file, config or checkpoint) print one line and exit with
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from mrilearn import __version__, plugins
from mrilearn.arguments import add_global_options, add_output_argument, add_overwrite_argument
from mrilearn.errors import ConfigError, MrilearnError, Reported
from mrilearn.federated.cli import add_commands as federated_commands
from mrilearn.node.cli import add_commands as node_commands
from mrilearn.progress import QUIET_ENV
from mrilearn.registry import applications

log = logging.getLogger("mrilearn")

DEMO_CONFIG = "sr/demo_mni152"


class Terminated(BaseException):
    """``kill -TERM`` (or a closed terminal) as an exception, so that temporary files are
    removed on the way out as for Ctrl-C (training handles SIGTERM itself: it pauses)."""


def _terminate(signum: int, _: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` inside the block (main thread only; a
    signal the caller ignores, e.g. SIGHUP under ``nohup``, stays ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) != signal.SIG_IGN]
    previous = {sig: signal.signal(sig, _terminate) for sig in caught}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # the terminal; train.log takes INFO anyway
        if type(handler) is logging.StreamHandler:
            handler.setLevel(level)
    logging.getLogger("mrilearn").setLevel(logging.DEBUG if args.debug else logging.INFO)
    if args.quiet:
        os.environ[QUIET_ENV] = "1"
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with _signals_as_exceptions():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command, with user errors and signals turned into one line and an exit status."""
    try:
        from mrilearn.engine.device import device_override
        from mrilearn.engine.precision import precision_override

        with device_override(args.device), precision_override(args.precision):
            return int(args.func(args) or 0)
    except Terminated as sig:
        print(f"mrilearn: stopped by {signal.Signals(sig.args[0]).name}", file=sys.stderr)
        return 128 + sig.args[0]
    except Reported:
        return 2
    except MrilearnError as err:
        if args.debug:
            raise
        print(f"mrilearn: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mrilearn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output was piped into e.g. `head`, which has closed it
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (Python flushes it at exit)
        return 0


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, taking ``key=value`` words anywhere after the config as overrides."""
    args, extra = parser.parse_known_args(argv)
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    if extra != overrides or (overrides and "overrides" not in vars(args)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mrilearn",
        description="Deep learning for MRI: super-resolution, Multitasking MRI, segmentation",
    )
    p.add_argument("--version", action="version", version=f"mrilearn {__version__}")
    add_global_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    federated_commands(sub)
    node_commands(sub)
    for app in applications():
        if app.commands:
            importlib.import_module(app.commands).add_commands(sub)
    for command in _all_parsers(sub):
        add_global_options(command, suppress=True)
    return p


def _all_parsers(sub: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """Every command's parser, nested ones (``federated server``) included."""
    found = []
    for parser in dict.fromkeys(sub.choices.values()):
        found.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += _all_parsers(action)
    return found


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The framework's own commands: train, evaluate, infer, demo, export, info, configs."""
    t = sub.add_parser("train", help="train from a YAML config")
    t.add_argument(
        "config",
        help="YAML experiment config, or a packaged name (sr/demo_mni152); with --resume also "
        "a run directory (or its config.yaml), resumed where it is",
    )
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.iterations=100")
    t.add_argument("--resume", action="store_true", help="continue from checkpoints/latest.pt")
    add_overwrite_argument(t, "replace an existing run (only a folder holding an mrilearn run)")
    t.add_argument(
        "--devices", type=int, default=1,
        help="data-parallel processes (DDP): one per GPU on CUDA (NCCL), else CPU processes",
    )  # fmt: skip
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a run's best checkpoint")
    e.add_argument("--run", required=True, type=Path, help="run directory (runs/<experiment>)")
    e.add_argument("--split", help="data split to evaluate (default: evaluation.split)")
    e.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    e.set_defaults(func=cmd_evaluate)

    i = sub.add_parser(
        "infer", help="apply a trained model to a NIfTI file, a DICOM series or a folder of them"
    )
    i.add_argument("--run", required=True, type=Path, help="run directory or exported package")
    i.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    i.add_argument(
        "--runtime",
        choices=["auto", "eager", "compile", "onnx", "torch"],
        default="auto",
        help="eager (or torch) PyTorch, compile: torch.compile, onnx: a package's model.onnx "
        "with onnxruntime; auto (default): onnx on the CPU where the package has it, else eager",
    )
    i.add_argument(
        "--samples",
        type=int,
        default=0,
        help="N > 0: mean of N MC-dropout passes plus uncertainty maps (NIfTI, PNG) beside it",
    )
    i.add_argument(
        "-i", "--input", type=Path,
        help="NIfTI file, DICOM series folder, or a folder of NIfTI files and DICOM series "
        "sub-folders",
    )  # fmt: skip
    add_output_argument(
        i, "output .nii/.nii.gz, a folder for a derived DICOM series, or (segmentation of a "
        "DICOM series) a .dcm file for a DICOM Segmentation; for a folder of scans, the folder "
        "that receives one output per scan under the same name", required=False,
    )  # fmt: skip
    i.add_argument("input_path", nargs="?", type=Path, help="the input, given without -i")
    i.add_argument("output_path", nargs="?", type=Path, help="the output, given without -o")
    i.add_argument("--series-uid", metavar="UID", help="the series of a folder holding several")
    i.add_argument("--attention", metavar="X,Y,Z", help="also write this voxel's attention map")
    i.add_argument(
        "--reduced", action="store_true",
        help="super-resolution: the scan is on its own reduced matrix; zero-fill its k-space "
        "onto the model's grid with the run's truncation factors",
    )  # fmt: skip
    i.add_argument(
        "--target-shape", type=int, nargs=3, metavar=("X", "Y", "Z"),
        help="like --reduced, onto this matrix (an odd HR matrix, or a run without factors)",
    )  # fmt: skip
    i.set_defaults(func=cmd_infer)

    d = sub.add_parser("demo", help="train and evaluate on the embedded MNI152 data")
    add_output_argument(
        d, "where the run goes (default: runs; an earlier demo run there is replaced)",
        required=False, default=Path("runs"), overwrite=False,
    )  # fmt: skip
    d.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.iterations=50")
    d.set_defaults(func=cmd_demo)

    x = sub.add_parser(
        "export", help="write a self-contained model package (safetensors, config, ONNX)"
    )
    x.add_argument("--run", required=True, type=Path, help="run directory (runs/<experiment>)")
    add_output_argument(x, "package folder")
    x.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    x.add_argument("--onnx", action="store_true", help="also export model.onnx and check parity")
    x.set_defaults(func=cmd_export)

    n = sub.add_parser("info", help="versions, threads, embedded data, components")
    n.add_argument("--component", metavar="NAME", help="a component's arguments and defaults")
    n.set_defaults(func=cmd_info)

    c = sub.add_parser("configs", help="list, show or copy the packaged configs")
    c.add_argument("action", nargs="?", choices=("list", "show", "copy"), default="list")
    c.add_argument("name", nargs="?", help="a packaged config, e.g. sr/demo_mni152")
    c.add_argument("dest", nargs="?", type=Path, help="copy: the file to write")
    c.set_defaults(func=cmd_configs)


# ---------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from mrilearn.config import load_config
    from mrilearn.runs import CONFIG_FILE, relocated, run_in, train_run

    plugins.load()
    moved = run_in(args.config) if args.resume else None
    if moved is None and Path(args.config).is_dir():
        problem = (
            "holds no run to resume (config.yaml and checkpoints/)"
            if args.resume
            else "is a folder; pass a config file (or a run directory with --resume)"
        )
        raise ConfigError(f"{args.config}: {problem}")
    cfg = load_config(moved / CONFIG_FILE if moved else args.config, args.overrides)
    cfg = relocated(cfg, moved) if moved else cfg
    run_dir = train_run(cfg, resume=args.resume, overwrite=args.overwrite, devices=args.devices)
    print(f"run: {run_dir}\nreport: {run_dir / 'report.html'}")
    return 0 if _finished(run_dir, cfg) else 3


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mrilearn.io.outputs import check_outputs
    from mrilearn.runs import load_run

    # the evaluation files are the run's own: a new evaluation replaces the previous one
    check_outputs([args.run / "evaluation.json"], overwrite=True)
    trainer = load_run(args.run, args.checkpoint)
    split = args.split or trainer.cfg.evaluation.split
    result = trainer.evaluate(split, args.run)
    print((args.run / "results.md").read_text() if (args.run / "results.md").is_file() else result)
    print(f"evaluation: {args.run / 'evaluation.json'}\nreport: {args.run / 'report.html'}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from mrilearn.deploy.infer import Inference, InferOptions, check_item_outputs, infer_items
    from mrilearn.io.batch import run_batch
    from mrilearn.progress import inner_bars
    from mrilearn.runs import load_run

    source, target = (
        _one_of(args.input, args.input_path, "-i"),
        _one_of(args.out, args.output_path, "-o"),
    )
    items, batch = infer_items(source, target)
    if batch and args.series_uid:
        raise ConfigError(f"--series-uid chooses the series of one DICOM folder; {source} is "
                          "a folder of scans")  # fmt: skip
    check_item_outputs(items, [source], args.overwrite)
    runtime = args.runtime
    if runtime == "auto" and (args.samples or args.attention):  # these need the PyTorch net
        runtime = "eager"
    trainer = load_run(args.run, args.checkpoint, runtime)
    options = InferOptions(
        args.samples, args.attention, args.series_uid, args.reduced, args.target_shape
    )
    infer = Inference(trainer, options, items, [source], args.overwrite)
    with inner_bars():
        if not batch:
            for path in infer(items[0]):
                print(f"wrote {path}")
            return 0
        result = run_batch(items, infer)
    print(f"mrilearn: {result.summary()}", file=sys.stderr)
    return result.exit_status


def cmd_demo(args: argparse.Namespace) -> int:
    from mrilearn.config import load_config
    from mrilearn.runs import load_run, train_run

    plugins.load()
    cfg = load_config(DEMO_CONFIG, [f"output_dir={args.out}", *args.overrides])
    run_dir = train_run(cfg, resume=False, overwrite=True, devices=1)
    if not _finished(run_dir, cfg):
        return 3
    trainer = load_run(run_dir, "best")
    trainer.evaluate(cfg.evaluation.split, run_dir)
    print((run_dir / "results.md").read_text())
    print(f"report: {(run_dir / 'report.html').resolve()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mrilearn.deploy.package import PACKAGE_FILES, export_package, is_package
    from mrilearn.io.outputs import Output, check_outputs
    from mrilearn.runs import load_run

    if is_package(args.run):
        raise ConfigError(f"{args.run} is already a package; pass a run directory to --run")
    package = Output.folder(args.out, *PACKAGE_FILES)
    check_outputs([package], [args.run / "config.yaml", args.run / "checkpoints"], args.overwrite)
    info = export_package(load_run(args.run, args.checkpoint), args.out, args.checkpoint, args.onnx)
    print(f"package: {args.out} ({info['version_stamp']})")
    if info["onnx"]:
        onnx = info["onnx"]
        print(
            f"onnx: dynamic axes {onnx['dynamic_axes']}, parity max |diff| "
            f"{onnx['parity_max_abs_diff']:.3g}"
        )
    return 0


CORE_PACKAGES = (
    "mrilearn", "torch", "numpy", "scipy", "monai", "nibabel", "pydicom", "nilearn", "finufft",
    "onnxruntime",
)  # fmt: skip


def _version(package: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return "not installed"


def _optional_packages() -> dict[str, list[str]]:
    """The packages each optional extra of mrilearn's metadata adds (not the test tools, nor
    the upper bounds that only pin a dependency's dependency)."""
    import importlib.metadata as md
    import re

    extras: dict[str, list[str]] = {}
    for requirement in md.requires("mrilearn") or []:
        spec, _, marker = requirement.partition(";")
        extra = re.search(r"extra\s*==\s*[\"'](\w+)[\"']", marker)
        name = re.match(r"[A-Za-z0-9_.-]+", spec.strip())
        if extra is None or name is None or extra[1] == "test" or re.search(r"^[^>=~]*<", spec):
            continue
        extras.setdefault(extra[1], []).append(name[0])
    return extras


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from mrilearn import components
    from mrilearn.engine.device import available_devices
    from mrilearn.engine.precision import cpu_bf16_summary
    from mrilearn.io.embedded import embedded_datasets

    plugins.load()
    if args.component:
        print(components.describe(args.component))
        return 0
    print("versions:")
    for pkg in CORE_PACKAGES:
        print(f"  {pkg:11s} {_version(pkg)}")
    for extra, packages in _optional_packages().items():
        listed = ", ".join(f"{pkg} {_version(pkg)}" for pkg in packages)
        print(f"  [{extra}] {listed}")
    print(f"threads: torch {torch.get_num_threads()}, cpus {os.cpu_count()}")
    print(f"devices: {', '.join(available_devices())}")
    print(f"cpu bf16: {cpu_bf16_summary()}")
    print("embedded data:")
    for name, where in embedded_datasets().items():
        print(f"  {name}: {where}")
    print("components:")
    for kind, names in components.registered().items():
        print(f"  {kind}: {', '.join(names)}")
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    from mrilearn.config import packaged_config, packaged_configs, with_base_by_name
    from mrilearn.io.atomic import write_text_atomic

    if args.action == "list":
        for name, path in packaged_configs().items():
            print(f"{name:40s} {_first_comment(path)}")
        return 0
    if args.name is None:
        raise ConfigError(f"configs {args.action}: name a config, e.g. sr/demo_mni152")
    path = packaged_config(args.name)
    if path is None:
        raise ConfigError(f"{args.name}: no such packaged config; `mrilearn configs` lists them")
    if args.action == "show":
        print(path.read_text(), end="")
        return 0
    if args.dest is None:
        raise ConfigError("configs copy: name the file to write, e.g. my.yaml")
    if args.dest.exists():
        raise ConfigError(f"{args.dest}: exists; choose another name")
    write_text_atomic(args.dest, with_base_by_name(path))
    print(f"wrote {args.dest} (from {args.name})")
    return 0


# ----------------------------------------------------------------- helpers
def _one_of(option: Path | None, positional: Path | None, flag: str) -> Path:
    if (option is None) == (positional is None):
        raise ConfigError(f"give the {'input' if flag == '-i' else 'output'} once: {flag} PATH "
                          "or as a positional argument")  # fmt: skip
    return option or positional


def _first_comment(path: Path) -> str:
    """A config's one-line description: its ``description`` or first comment line."""
    import yaml

    text = path.read_text()
    description = (yaml.safe_load(text) or {}).get("description")
    if description:
        return str(description).splitlines()[0]
    comment = next((line for line in text.splitlines() if line.startswith("#")), "")
    return comment.lstrip("# ").strip()


def _finished(run_dir: Path, cfg: object) -> bool:
    from mrilearn.runs import finished

    done = finished(run_dir, cfg)
    if not done:
        print("training paused before the last iteration; continue with --resume", file=sys.stderr)
    return done
