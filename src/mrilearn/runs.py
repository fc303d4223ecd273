"""The run service: train a config into a run directory, resume it, and load a trained run
(or an exported package) for evaluation and inference.

A run directory ``output_dir/experiment`` holds ``config.yaml``, ``checkpoints/``,
``metrics.jsonl``, ``train.log``, ``tensorboard/``, ``figures/`` and ``report.html``. The
command line, federated training, deployment and applications (e.g. the synthesis
experiment) all go through these functions.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

from mrilearn import plugins
from mrilearn.config import Config, from_dict
from mrilearn.deploy.package import is_package, load_package
from mrilearn.deploy.runtime import ALIASES, use_runtime
from mrilearn.engine.checkpoint import load_checkpoint
from mrilearn.engine.device import requested_device, resolve_device
from mrilearn.engine.distributed import DistInfo, launch
from mrilearn.engine.logger import METRICS_FILE, read_records
from mrilearn.engine.precision import resolve_precision
from mrilearn.engine.trainer import Trainer, inference_trainer, trainer_of
from mrilearn.errors import ConfigError
from mrilearn.io.atomic import write_text_atomic
from mrilearn.report.html import write_report


def train_run(cfg: Config, resume: bool, overwrite: bool, devices: int) -> Path:
    """Prepare the run directory, train (in ``devices`` processes) and write the report."""
    plugins.load()
    device = resolve_device(requested_device(cfg.train.device))
    resolve_precision(cfg.train.precision, device)  # a bad device or precision changes nothing
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
    launch(_train_worker, devices, cfg.to_dict(), str(run_dir), resume, cuda=device.type == "cuda")
    write_report(run_dir)
    return run_dir


def _train_worker(dist: DistInfo, cfg_dict: dict[str, Any], run_dir: str, resume: bool) -> None:
    plugins.load()  # a spawned process starts with empty registries
    cfg = from_dict(cfg_dict)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    build_trainer(cfg, Path(run_dir), dist).fit(resume=resume)


def build_trainer(cfg: Config, run_dir: Path, dist: DistInfo | None = None) -> Trainer:
    """The config's trainer for ``run_dir`` (nets built, nothing loaded)."""
    plugins.load()
    return trainer_of(cfg, run_dir, dist or DistInfo())


def load_run(run_dir: Path, checkpoint: str = "best", runtime: str = "torch") -> Trainer:
    """Rebuild a run's trainer from its config and load the checkpoint's weights; a folder
    holding package.json is loaded as an exported package. ``runtime``: eager (``torch``),
    compile, onnx (packages) or auto (:mod:`mrilearn.deploy.runtime`)."""
    plugins.load()
    run_dir = Path(run_dir)
    if is_package(run_dir):
        return load_package(run_dir, runtime)
    if ALIASES.get(runtime, runtime) == "onnx":
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
    trainer = inference_trainer(cfg, run_dir)
    trainer.load_state(state, str(path), weights_only=True)
    trainer.iteration = int(state["iteration"])
    for net in trainer.nets.values():
        net.eval()
    use_runtime(trainer, runtime)
    return trainer


def finished(run_dir: Path, cfg: Config) -> bool:
    """Whether the run's log reaches ``train.iterations`` (False: paused, resume it)."""
    records = read_records(run_dir / METRICS_FILE)
    return bool(records) and records[-1].get("iteration", 0) >= cfg.train.iterations


def _check_resumable(run_dir: Path, cfg: Config) -> None:
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
