"""Which runtime runs the inference network: PyTorch ``eager``, ``compile`` (``torch.compile``)
or ``onnx`` (ONNX Runtime on an exported package's ``model.onnx``); ``auto`` is the fastest on
this kind of device as measured in ``bench/runtime.py`` (docs/benchmarks.md).

``auto`` picks ONNX Runtime on the CPU for a package that holds ``model.onnx`` when inference
runs in fp32 (whole-volume SR and ALAMO inference were faster there and matched eager within
1e-4), and eager everywhere else: on GPUs, with bf16 autocast (faster still on CPUs with
native bf16; ONNX Runtime runs the fp32 model) and for runs that have no ``model.onnx``;
``torch.compile`` lost its compile time on one volume.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from mrilearn.engine.contract import Predictor

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "eager", "compile", "onnx")
ALIASES = {"torch": "eager"}  # the older spelling of eager


def pick_runtime(
    requested: str, device: torch.device, has_onnx: bool, precision: str = "fp32"
) -> str:
    """The runtime ``auto`` (or an alias) stands for here."""
    runtime = ALIASES.get(requested, requested)
    if runtime != "auto":
        return runtime
    return "onnx" if device.type == "cpu" and has_onnx and precision == "fp32" else "eager"


def use_runtime(trainer: Predictor, runtime: str) -> None:
    """Run a loaded trainer's inference network with ``runtime`` (eager, compile or auto;
    ONNX sessions come from packages, :func:`mrilearn.deploy.package.load_package`)."""
    if pick_runtime(runtime, trainer.device, has_onnx=False) == "compile":
        trainer.use_inference_net(torch.compile(trainer.inference_net()))


def runtime_net(
    net: nn.Module, runtime: str, example_shape: list[int], onnx_path: Path | None = None
) -> nn.Module:
    """``net`` (eval mode) behind ``runtime``; ``onnx`` exports it to ``onnx_path`` first
    (with the package exporter's parity check) unless that file exists."""
    runtime = ALIASES.get(runtime, runtime)
    if runtime == "eager":
        return net
    if runtime == "compile":
        return torch.compile(net)  # attribute look-ups fall through to ``net``
    from mrilearn.deploy.onnx import OnnxNet, export_onnx

    info = export_onnx(net, example_shape, onnx_path, _other_shape(example_shape))
    attributes = {k: getattr(net, k) for k in ("in_slices", "classes", "levels") if hasattr(net, k)}
    return OnnxNet(onnx_path, info["input_shape"], info["dynamic_axes"], attributes)


def _other_shape(shape: list[int]) -> list[int]:
    """A second input shape to check dynamic axes on: batch 2, one spatial axis doubled."""
    return [2, shape[1], shape[2] * 2, *shape[3:]]
