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

from mrilearn import plugins
from mrilearn.config import from_dict
from mrilearn.deploy.runtime import pick_runtime, use_runtime
from mrilearn.engine.checkpoint import load_state_dict
from mrilearn.engine.contract import Predictor
from mrilearn.engine.trainer import inference_trainer
from mrilearn.errors import CheckpointError, ConfigError
from mrilearn.io.atomic import atomic_dir
from mrilearn.io.nifti import is_nifti_path

log = logging.getLogger(__name__)

PACKAGE_FILE = "package.json"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
ONNX_FILE = "model.onnx"
PACKAGE_FILES = (PACKAGE_FILE, WEIGHTS_FILE, CONFIG_FILE, ONNX_FILE)  # all a package holds
FORMAT, FORMAT_VERSION = "mrilearn-package", 1
Runtime = Literal["auto", "eager", "torch", "compile", "onnx"]


def is_package(folder: Path) -> bool:
    return (Path(folder) / PACKAGE_FILE).is_file()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- export
def export_package(
    trainer: Predictor, out_dir: Path, checkpoint: str = "best", onnx: bool = False
) -> dict[str, Any]:
    """Write the package of a run's loaded ``checkpoint`` (``mrilearn.runs.load_run``) to
    ``out_dir`` (replaced atomically); returns package.json's content."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    conventions = trainer.io_conventions()
    if onnx and conventions["task"] == "other":
        raise ConfigError(
            f"--onnx: no input conventions known for trainer {type(trainer).__name__}"
        )
    weights = {
        f"{name}.{key}": t.detach().cpu().clone().contiguous()
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
            onnx_info = export_onnx(trainer.inference_net(), shape, tmp / ONNX_FILE, other)
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
    log.info("exported %s -> %s (%s)", trainer.run_dir, out_dir, info["version_stamp"])
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


def load_package(folder: Path, runtime: Runtime = "torch") -> Predictor:
    """Rebuild the trainer of a package for inference, its nets in eval mode.

    ``runtime="onnx"`` makes ``infer_volume`` run ``model.onnx`` with onnxruntime (``auto``
    does on the CPU where the package has one; see :mod:`mrilearn.deploy.runtime`). The
    trainer gets ``package_info`` (package.json) for the model description of outputs.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    plugins.load()
    folder = Path(folder)
    info = read_package_info(folder)
    cfg = from_dict(yaml.safe_load((folder / CONFIG_FILE).read_text()))
    trainer = inference_trainer(cfg, folder)
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
    voxel_size = info.get("io", {}).get("voxel_size_mm")  # older packages have none
    trainer.voxel_size = None if voxel_size is None else tuple(float(v) for v in voxel_size)
    runtime = pick_runtime(runtime, trainer.device, bool(info.get("onnx")), trainer.amp.name)
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
        trainer.use_inference_net(net)
    use_runtime(trainer, runtime)
    return trainer


def version_stamp(trainer: Predictor) -> str:
    """The model's version: a package's stamp ``<experiment>-it<iteration>-<sha8>``, or
    ``<experiment>-it<iteration>`` for a run directory."""
    info = trainer.package_info
    if info is not None:
        return str(info["version_stamp"])
    return f"{trainer.cfg.experiment}-it{trainer.iteration}"


def model_description(trainer: Predictor) -> tuple[str, str]:
    """(SeriesDescription ≤ 64 characters, ImageComments) for a derived DICOM series."""
    info, stamp = trainer.package_info, version_stamp(trainer)
    model = trainer.cfg.model["name"]
    if info is not None:
        comments = f"mrilearn {model}, package {stamp}, weights sha256 {info['weights_sha256']}"
    else:
        comments = f"mrilearn {model}, run {trainer.run_dir} iteration {trainer.iteration}"
    return f"mrilearn {model} {stamp}"[:64], comments


def dicom_description(trainer: Predictor, output: Path) -> dict[str, str]:
    """Writer keywords naming the model in a derived DICOM series; none for NIfTI outputs."""
    if is_nifti_path(Path(output)):
        return {}
    description, comments = model_description(trainer)
    return {"series_description": description, "image_comments": comments}
