"""ONNX export of an inference network and an onnxruntime-backed stand-in for it (§8.4.1).

The legacy TorchScript exporter (``dynamo=False``) is used: it handles the 2-D/3-D conv nets
here with dynamic batch and spatial axes and needs no ``onnxscript``; the dynamo exporter of
torch 2.13 would add that dependency for no gain on these models.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mrilearn.errors import CheckpointError, DataError

log = logging.getLogger(__name__)

OPSET = 17
INPUT, OUTPUT = "input", "output"


def ort_session(path: Path) -> Any:
    """A CPU onnxruntime session using as many threads as PyTorch; CheckpointError if unreadable."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        msg = str(err).splitlines()[0][:200]
        raise CheckpointError(f"{path}: onnxruntime cannot load the model ({msg})") from None


def _export(net: nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    axes = {0: "batch", **{a: f"s{a}" for a in range(2, example.ndim)}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer warnings
        torch.onnx.export(
            net, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT], output_names=[OUTPUT],
            dynamic_axes={INPUT: axes, OUTPUT: axes} if dynamic else None,
        )  # fmt: skip


def _max_diff(net: nn.Module, session: Any, x: torch.Tensor) -> float:
    with torch.no_grad():
        ref = net(x).numpy()
    out = session.run(None, {INPUT: x.numpy()})[0]
    if out.shape != ref.shape:
        return float("inf")
    return float(np.abs(out - ref).max())


def export_onnx(
    net: nn.Module, example_shape: list[int], path: Path, other_shape: list[int] | None = None
) -> dict[str, Any]:
    """Export ``net`` (eval mode) to ``path`` and check parity with PyTorch on the CPU (where
    onnxruntime runs).

    Tries dynamic batch/spatial axes first and keeps them if the exported model also matches
    PyTorch on ``other_shape``; else exports with the fixed ``example_shape``. Returns the
    ``onnx`` section of package.json: opset, dynamic, input shape, the max abs difference
    from PyTorch on a random ``example_shape`` input (seeded), and the onnxruntime version.
    """
    import onnxruntime as ort

    if any(p.device.type != "cpu" for p in net.parameters()):  # trained or loaded on a GPU
        net = copy.deepcopy(net).cpu()
    net = net.eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(example_shape, generator=gen)
    dynamic = other_shape is not None
    if dynamic:
        try:
            _export(net, x, path, dynamic=True)
            other = torch.randn(other_shape, generator=gen)
            dynamic = _max_diff(net, ort_session(path), other) < 1e-3
        except Exception as err:  # an exporter/runtime failure means: fall back to static
            log.info("dynamic ONNX export failed (%s); exporting fixed shape", err)
            dynamic = False
    if not dynamic:
        _export(net, x, path, dynamic=False)
    diff = _max_diff(net, ort_session(path), x)
    log.info("ONNX export %s: dynamic=%s, parity max |diff| %.3g", path, dynamic, diff)
    return {
        "opset": OPSET,
        "dynamic_axes": dynamic,
        "input_shape": list(example_shape),
        "parity_max_abs_diff": diff,
        "onnxruntime": ort.__version__,
    }


class OnnxNet(nn.Module):
    """Runs an exported network with onnxruntime behind the ``nn.Module`` call interface.

    Inputs and outputs are CPU float32 tensors of the layout recorded in package.json;
    ``attributes`` (e.g. ``in_slices``, ``classes``, ``levels``) are copied from the PyTorch
    network so inferers that read them work unchanged.
    """

    def __init__(
        self, path: Path, input_shape: list[int], dynamic: bool, attributes: dict[str, Any]
    ) -> None:
        super().__init__()
        self.path, self.input_shape, self.dynamic = Path(path), list(input_shape), dynamic
        self.session = ort_session(self.path)
        for key, value in attributes.items():
            setattr(self, key, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.dynamic and list(x.shape[1:]) != self.input_shape[1:]:
            raise DataError(
                f"{self.path}: exported for input shape {self.input_shape[1:]} (no dynamic "
                f"axes), got {list(x.shape[1:])}; use --runtime torch or set the inferer's "
                "roi_size to the exported shape"
            )
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {INPUT: arr})[0])
