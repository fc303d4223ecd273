"""The run service: train a config into a run directory, resume it, and load a trained run
(or an exported package) for evaluation and inference.

A run directory ``output_dir/experiment`` holds ``config.yaml``, ``checkpoints/``,
``metrics.jsonl``, ``train.log``, ``tensorboard/``, ``figures/`` and ``report.html``. The
command line, federated training, deployment and applications (e.g. the synthesis
experiment) all go through these functions.

What protects a run:

- ``experiment`` is a plain name (checked when the config is loaded), so a run stays inside
  ``output_dir``;
- everything that can be checked before training is (the config, the trainer, its data, one
  training batch, the inferer, on resume the checkpoint), before anything is created: a
  failed start leaves no trace, and a failed resume leaves ``config.yaml`` as it was;
- the training process holds the run's lock (:mod:`mrilearn.io.lock`) for the whole run, so
  a second train, resume or overwrite of a live run is an error;
- ``overwrite`` empties a directory only if it holds an mrilearn run: ``config.yaml`` and one
  of :data:`RUN_MARKERS`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from mrilearn import components, plugins
from mrilearn.config import Config, from_dict, parse_yaml
from mrilearn.deploy.package import is_package, load_package
from mrilearn.deploy.runtime import ALIASES, use_runtime
from mrilearn.engine.checkpoint import check_world_size, load_checkpoint
from mrilearn.engine.device import requested_device, resolve_device
from mrilearn.engine.distributed import DistInfo, launch
from mrilearn.engine.logger import METRICS_FILE, read_records
from mrilearn.engine.precision import resolve_precision
from mrilearn.engine.trainer import CHECKPOINTS, Trainer, inference_trainer, trainer_of
from mrilearn.errors import CheckpointError, ConfigError, DataError
from mrilearn.io.atomic import write_text_atomic
from mrilearn.io.lock import LOCK_FILE, folder_lock, holder
from mrilearn.io.outputs import check_location

CONFIG_FILE = "config.yaml"
# with config.yaml, any of these makes a folder an mrilearn run that --overwrite may empty
RUN_MARKERS = (CHECKPOINTS, METRICS_FILE, "train.log")
BUSY = "a training process is using this run; wait for it to finish or stop it first"


def train_run(cfg: Config, resume: bool, overwrite: bool, devices: int) -> Path:
    """Check everything, then prepare the run directory, train (in ``devices`` processes,
    holding the run's lock) and write the report."""
    plugins.load()
    device = resolve_device(requested_device(cfg.train.device))
    resolve_precision(cfg.train.precision, device)  # a bad device or precision changes nothing
    run_dir = Path(cfg.output_dir) / cfg.experiment
    cuda = device.type == "cuda"
    if int(os.environ.get("RANK", "0")) > 0:  # torchrun: rank 0 prepares the run directory
        launch(_train_worker, devices, cfg.to_dict(), str(run_dir), resume, cuda=cuda)
        return run_dir
    from mrilearn.report.html import write_report  # matplotlib: inference needs none of it

    check_run_target(cfg, resume, overwrite)
    trainer = _checked_trainer(cfg, run_dir, resume, devices)
    with claim_run(cfg, resume, overwrite):
        if devices <= 1 and "WORLD_SIZE" not in os.environ:
            trainer.fit(resume=resume)
        else:
            del trainer  # each process builds its own
            launch(_train_worker, devices, cfg.to_dict(), str(run_dir), resume, cuda=cuda)
        write_report(run_dir)
    return run_dir


@contextlib.contextmanager
def claim_run(cfg: Config, resume: bool = False, overwrite: bool = False) -> Iterator[Path]:
    """Inside the block this process holds the run directory's lock; on entry the directory
    is created (or emptied, with ``overwrite``) and ``config.yaml`` written. Call
    :func:`check_run_target` and every other check first: this is the first write."""
    run_dir = Path(cfg.output_dir) / cfg.experiment
    run_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(run_dir, BUSY):
        _check_contents(run_dir, cfg, resume, overwrite)  # again: it may have changed
        if overwrite and not resume:
            _empty(run_dir)
        write_text_atomic(run_dir / CONFIG_FILE, cfg.dump())
        yield run_dir


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


# ------------------------------------------------------------- before anything is written
def is_run(folder: Path) -> bool:
    """Whether ``folder`` holds an mrilearn run (config.yaml and one of RUN_MARKERS)."""
    folder = Path(folder)
    return (folder / CONFIG_FILE).is_file() and any((folder / m).exists() for m in RUN_MARKERS)


def run_in(path: str | Path) -> Path | None:
    """The run directory ``path`` names, if it names one: the directory itself, or the
    ``config.yaml`` inside it (a run that was moved or copied is resumed where it is)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent if path.name == CONFIG_FILE else None
    if folder is None or not (folder / CHECKPOINTS).is_dir() or not is_run(folder):
        return None
    return folder.resolve()


def relocated(cfg: Config, run_dir: Path) -> Config:
    """``cfg`` with ``output_dir``/``experiment`` pointing at ``run_dir`` (a moved run)."""
    if (Path(cfg.output_dir) / cfg.experiment).resolve() == run_dir.resolve():
        return cfg
    return dataclasses.replace(cfg, output_dir=str(run_dir.parent), experiment=run_dir.name)


def check_run_target(cfg: Config, resume: bool = False, overwrite: bool = False) -> None:
    """The config's run directory may be used as asked: not live, holding nothing or (with
    ``overwrite``) a run, or (``resume``) a run to continue with this config. Reads only."""
    run_dir = Path(cfg.output_dir) / cfg.experiment
    if os.path.lexists(run_dir) and not run_dir.is_dir():
        raise DataError(f"{run_dir}: is a file; set experiment=<another name>")
    check_location(run_dir / CONFIG_FILE)
    pid = holder(run_dir)
    if pid is not None:
        raise DataError(f"{run_dir}: {BUSY} (pid {pid})")
    _check_contents(run_dir, cfg, resume, overwrite)


def _check_contents(run_dir: Path, cfg: Config, resume: bool, overwrite: bool) -> None:
    if resume:
        _check_resumable(run_dir, cfg)
        return
    if not _entries(run_dir):
        return
    if not is_run(run_dir):
        raise DataError(
            f"{run_dir}: holds files but no mrilearn run (config.yaml with {', '.join(RUN_MARKERS)}"
            "); --overwrite replaces only runs: set experiment=<new name> or output_dir=..."
        )
    if not overwrite:
        raise ConfigError(
            f"{run_dir} already holds a run; use --resume to continue it, --overwrite to "
            "replace it, or set experiment=<new name>"
        )


def _checked_trainer(cfg: Config, run_dir: Path, resume: bool, devices: int) -> Trainer:
    """The trainer, after building everything training needs and drawing one batch (with its
    own random streams, so training draws what it would have drawn)."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    trainer = build_trainer(cfg, run_dir)
    data = trainer.data  # built here as it would be at the first step
    with torch.random.fork_rng(devices=[]):
        data.train_batch(1, torch.Generator().manual_seed(0))
    components.build("inference", cfg.inference)  # e.g. roi_size must exceed 2 · margin
    if resume:
        path = run_dir / CHECKPOINTS / "latest.pt"
        state = load_checkpoint(path)
        trainer.load_state(state, str(path), weights_only=True)
        check_world_size(state, devices, str(path))
    return trainer


def _entries(run_dir: Path) -> list[Path]:
    """What the run directory holds besides its lock file."""
    if not run_dir.is_dir():
        return []
    return [p for p in run_dir.iterdir() if p.name != LOCK_FILE]


def _empty(run_dir: Path) -> None:
    """Delete what the run (checked by :func:`is_run`) holds, keeping the held lock file."""
    for entry in _entries(run_dir):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _check_resumable(run_dir: Path, cfg: Config) -> None:
    saved_path = run_dir / CONFIG_FILE
    if not (run_dir / CHECKPOINTS / "latest.pt").is_file():
        raise ConfigError(
            f"{run_dir}: nothing to resume (no checkpoints/latest.pt); train without --resume"
        )
    saved = parse_yaml(saved_path.read_text()) if saved_path.is_file() else {}
    current = cfg.to_dict()
    where = ("train", "output_dir", "experiment", "description")  # not what is trained
    changed = [k for k in current if k not in where and current[k] != saved.get(k)]
    if changed:
        raise ConfigError(
            f"{run_dir}: the config differs from the run's config.yaml in {', '.join(changed)}; "
            "only train.* may change when resuming"
        )


# ------------------------------------------------------------------------ trained runs
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
    if not (run_dir / CONFIG_FILE).is_file():
        raise ConfigError(
            f"{run_dir}: not a run directory (no config.yaml); pass --run runs/<experiment>"
        )
    path = run_dir / CHECKPOINTS / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.is_file():
        path = run_dir / CHECKPOINTS / "latest.pt"  # runs without validation keep no best
    state = load_checkpoint(path)
    _check_same_model(state, path, run_dir / CONFIG_FILE)
    cfg = from_dict(state["config"])
    trainer = inference_trainer(cfg, run_dir)
    trainer.load_state(state, str(path), weights_only=True)
    trainer.iteration = int(state["iteration"])
    for net in trainer.nets.values():
        net.eval()
    use_runtime(trainer, runtime)
    return trainer


def _check_same_model(state: dict[str, Any], path: Path, config_path: Path) -> None:
    """The checkpoint must hold the model the run's config.yaml describes."""
    saved = parse_yaml(config_path.read_text()) or {}
    for section in ("model", "trainer"):
        ours, theirs = state["config"].get(section) or {}, saved.get(section) or {}
        keys = sorted(k for k in {*ours, *theirs} if ours.get(k) != theirs.get(k))
        if keys:
            detail = ", ".join(f"{section}.{k} {ours.get(k)!r} vs {theirs.get(k)!r}" for k in keys)
            raise CheckpointError(
                f"{path}: holds another model than {config_path} ({detail[:300]}); the "
                "checkpoint belongs to another run: use this run's own checkpoints, or the "
                "config.yaml of the run that wrote it"
            )


def finished(run_dir: Path, cfg: Config) -> bool:
    """Whether the run's log reaches ``train.iterations`` (False: paused, resume it)."""
    records = read_records(run_dir / METRICS_FILE)
    return bool(records) and records[-1].get("iteration", 0) >= cfg.train.iterations
