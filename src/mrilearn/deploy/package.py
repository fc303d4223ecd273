"""Self-contained model packages for inference on an ordinary CPU computer (§8.2.3, §8.4.1).

A package folder holds::

    model.safetensors  weights of every net, keys ``<net>.<parameter>`` (no pickle)
    config.yaml        the run's config (the model, inferer and normalisation settings)
    package.json       conventions, versions, version stamp, sha256 of every file
    model.onnx         optional: the inference network for onnxruntime

Loading checks the format, that every listed file is present and that its sha256 matches,
and reads weights with safetensors and the config with ``yaml.safe_load``: no code is ever
unpickled.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata as md
import json
import logging
from pathlib import Path
from typing import Any, Literal

import yaml
from torch import nn

from mrilearn.errors import CheckpointError, ConfigError
from mrilearn.io.atomic import atomic_dir

log = logging.getLogger(__name__)

PACKAGE_FILE = "package.json"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
ONNX_FILE = "model.onnx"
FORMAT, FORMAT_VERSION = "mrilearn-package", 1
Runtime = Literal["torch", "onnx"]


def is_package(folder: Path) -> bool:
    return (Path(folder) / PACKAGE_FILE).is_file()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------- the inference network
def inference_net(trainer: Any) -> nn.Module:
    """The network ``infer_volume`` runs: an SR trainer's ``inference_net()`` (two-stage
    trainers chain theirs), else ``nets["G"]``."""
    getter = getattr(trainer, "inference_net", None)
    return getter() if getter is not None else trainer.nets["G"]


def use_inference_net(trainer: Any, net: nn.Module) -> None:
    """Make ``infer_volume`` run ``net`` (e.g. an :class:`OnnxNet`) instead."""
    if hasattr(trainer, "inference_net"):
        trainer.inference_net = lambda: net  # the instance attribute shadows the method
    else:
        trainer.nets["G"] = net


def io_conventions(trainer: Any) -> dict[str, Any]:
    """What the inference network takes and returns, and how volumes are normalised."""
    from mrilearn.engine.seg import SegTrainer
    from mrilearn.engine.sr import SRTrainer

    cfg = trainer.cfg
    common = {"trainer": cfg.trainer["name"], "model": cfg.model["name"], "inferer": cfg.inference}
    if isinstance(trainer, SRTrainer):
        roi = list(cfg.inference.get("roi_size") or trainer.sr_data.patch_size)
        pct = trainer.sr_data.scale_percentile
        return {
            **common,
            "task": "super-resolution",
            "spatial_dims": 3,
            "in_channels": 1,
            "out_channels": 1,
            "layout": "input (B, 1, X, Y, Z) LR image on the HR grid -> output (B, 1, X, Y, Z)",
            "normalisation": f"input / percentile(volume, {pct}); output * the same scale",
            "example_shape": [1, 1, *roi],
        }
    if isinstance(trainer, SegTrainer):
        net, data = trainer.nets["G"], trainer.seg_data
        side = max(32, 2 ** (net.levels - 1))
        return {
            **common,
            "task": "segmentation",
            "spatial_dims": 2,
            "in_channels": net.in_slices,
            "out_channels": net.classes,
            "layout": "input (B, slices, H, W) slab -> logits (B, classes, slices, H, W); "
            f"H, W divisible by {2 ** (net.levels - 1)}",
            "normalisation": f"resample to {data.spacing} mm isotropic, then z-score the volume",
            "labels": dict(zip(data.table.names, data.table.values)),
            "example_shape": [1, net.in_slices, side, side],
            "net_attributes": {
                "in_slices": net.in_slices,
                "classes": net.classes,
                "levels": net.levels,
            },  # fmt: skip
        }
    return {**common, "task": "other"}


# --------------------------------------------------------------------------- export
def export_package(
    run_dir: Path, out_dir: Path, checkpoint: str = "best", onnx: bool = False
) -> dict[str, Any]:
    """Write the package of ``run_dir``'s ``checkpoint`` to ``out_dir`` (replaced atomically);
    returns package.json's content."""
    from safetensors.torch import save_file

    from mrilearn.cli import load_run

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if is_package(run_dir):
        raise ConfigError(f"{run_dir} is already a package; pass a run directory to --run")
    trainer = load_run(run_dir, checkpoint)
    conventions = io_conventions(trainer)
    if onnx and conventions["task"] == "other":
        raise ConfigError(
            f"--onnx: no input conventions known for trainer {type(trainer).__name__}"
        )
    weights = {
        f"{name}.{key}": t.detach().clone().contiguous()
        for name, net in trainer.nets.items()
        for key, t in net.state_dict().items()
    }
    with atomic_dir(out_dir) as tmp:
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        (tmp / CONFIG_FILE).write_text(trainer.cfg.dump())
        files = {WEIGHTS_FILE: sha256(tmp / WEIGHTS_FILE), CONFIG_FILE: sha256(tmp / CONFIG_FILE)}
        onnx_info = None
        if onnx:
            from mrilearn.deploy.onnx import export_onnx

            shape = conventions["example_shape"]
            other = [
                2,
                shape[1],
                *(s + 4 if i % 2 else max(4, s - 4) for i, s in enumerate(shape[2:])),
            ]
            if conventions["task"] == "segmentation":  # keep H, W divisible by 2^(levels-1)
                other = [2, shape[1], shape[2] * 2, shape[3]]
            onnx_info = export_onnx(inference_net(trainer), shape, tmp / ONNX_FILE, other)
            files[ONNX_FILE] = sha256(tmp / ONNX_FILE)
        info = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": trainer.cfg.experiment,
            "version_stamp": f"{trainer.cfg.experiment}-it{trainer.iteration}-"
            f"{files[WEIGHTS_FILE][:8]}",
            "checkpoint": checkpoint,
            "iteration": trainer.iteration,
            "nets": sorted(trainer.nets),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": {p: md.version(p) for p in ("mrilearn", "torch")},
            "weights_sha256": files[WEIGHTS_FILE],
            "files": files,
            "io": conventions,
            "onnx": onnx_info,
        }
        (tmp / PACKAGE_FILE).write_text(json.dumps(info, indent=2) + "\n")
    log.info("exported %s -> %s (%s)", run_dir, out_dir, info["version_stamp"])
    return info


# ---------------------------------------------------------------------------- load
def read_package_info(folder: Path) -> dict[str, Any]:
    """package.json, after checking the format and the presence and sha256 of every file."""
    folder = Path(folder)
    path = folder / PACKAGE_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read package description ({err})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mrilearn package (format is not {FORMAT!r})")
    if info.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: package format {info.get('format_version')} is not {FORMAT_VERSION}; "
            "re-export it with this mrilearn version"
        )
    for name, digest in info.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            raise CheckpointError(f"{folder}: package file {name} is missing; re-export it")
        if sha256(file) != digest:
            raise CheckpointError(
                f"{file}: sha256 does not match package.json (modified or corrupt); re-export "
                "the package or copy it again"
            )
    if WEIGHTS_FILE not in info.get("files", {}) or CONFIG_FILE not in info["files"]:
        raise CheckpointError(f"{path}: lists no {WEIGHTS_FILE} or {CONFIG_FILE}")
    return info


def load_package(folder: Path, runtime: Runtime = "torch") -> Any:
    """Rebuild the trainer of a package for inference, its nets in eval mode.

    ``runtime="onnx"`` makes ``infer_volume`` run ``model.onnx`` with onnxruntime. The
    trainer gets ``package_info`` (package.json) for the model description of outputs.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from mrilearn.cli import build_trainer
    from mrilearn.config import from_dict
    from mrilearn.engine.checkpoint import load_state_dict

    folder = Path(folder)
    info = read_package_info(folder)
    cfg = from_dict(yaml.safe_load((folder / CONFIG_FILE).read_text()))
    trainer = build_trainer(cfg, folder)
    try:
        flat = load_file(str(folder / WEIGHTS_FILE))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{folder / WEIGHTS_FILE}: cannot read weights ({err})") from None
    for name, net in trainer.nets.items():
        prefix = f"{name}."
        state = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
        load_state_dict(net, state, f"{folder / WEIGHTS_FILE} [{name}]")
        net.eval()
    trainer.iteration = int(info.get("iteration", 0))
    trainer.package_info = info
    if runtime == "onnx":
        from mrilearn.deploy.onnx import OnnxNet

        onnx = info.get("onnx")
        if not onnx:
            raise ConfigError(f"{folder}: has no {ONNX_FILE}; export with --onnx")
        net = OnnxNet(
            folder / ONNX_FILE,
            onnx["input_shape"],
            onnx["dynamic_axes"],
            info["io"].get("net_attributes", {}),
        )
        use_inference_net(trainer, net)
    return trainer


def model_description(trainer: Any) -> tuple[str, str]:
    """(SeriesDescription ≤ 64 characters, ImageComments) for a derived DICOM series."""
    info = getattr(trainer, "package_info", None)
    model = trainer.cfg.model["name"]
    if info is not None:
        stamp, sha = info["version_stamp"], info["weights_sha256"]
        comments = f"mrilearn {model}, package {stamp}, weights sha256 {sha}"
    else:
        stamp = f"{trainer.cfg.experiment}-it{trainer.iteration}"
        comments = f"mrilearn {model}, run {trainer.run_dir} iteration {trainer.iteration}"
    return f"mrilearn {model} {stamp}"[:64], comments


def dicom_description(trainer: Any, output: Path) -> dict[str, str]:
    """Writer keywords naming the model in a derived DICOM series; none for NIfTI outputs."""
    from mrilearn.io.nifti import is_nifti_path

    if is_nifti_path(Path(output)):
        return {}
    description, comments = model_description(trainer)
    return {"series_description": description, "image_comments": comments}
