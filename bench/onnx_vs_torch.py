"""CPU inference speed of onnxruntime vs PyTorch eager for the demo SR network (§8.4.1).

Builds the model of the packaged demo config (``sr/demo_mni152.yaml``; timing does not
depend on the weights), exports it with the same exporter as ``mrilearn export --onnx`` and
times one forward pass of a patch (default 64³) in both runtimes: median of ``--repeats``
after one warm-up. Prints a Markdown table with seconds, the ratio and the max abs difference.

    .venv/bin/python bench/onnx_vs_torch.py
    .venv/bin/python bench/onnx_vs_torch.py --patch 64 --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import tempfile
from importlib import resources
from pathlib import Path

import _common
import numpy as np
import torch
import yaml

from mrilearn import components
from mrilearn.deploy.onnx import INPUT, export_onnx, ort_session


def timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    return _common.timed(fn, repeats, warmup=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patch", type=int, default=64, help="cubic patch side in voxels")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = resources.files("mrilearn") / "configs" / "sr" / "demo_mni152.yaml"
    spec = yaml.safe_load(config.read_text())["model"]
    torch.manual_seed(0)
    net = components.build("model", spec).eval()
    with torch.no_grad():  # the residual net's zero-initialised output conv would hide errors
        for param in net.parameters():
            param.add_(0.01 * torch.randn_like(param))
    shape = [1, 1, *[args.patch] * 3]
    x = torch.randn(shape)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        info = export_onnx(net, shape, path, [1, 1, *[args.patch // 2] * 3])
        session = ort_session(path)
        with torch.inference_mode():
            t_torch, ref = timed(lambda: net(x).numpy(), args.repeats)
        t_ort, out = timed(lambda: session.run(None, {INPUT: x.numpy()})[0], args.repeats)
    print(f"model {spec}, patch {args.patch}³, {args.threads} thread(s), median of {args.repeats}")
    print("| runtime | seconds | speed-up vs torch |\n|---|---|---|")
    print(f"| torch {torch.__version__} eager | {t_torch:.3f} | 1.00 |")
    print(f"| onnxruntime {info['onnxruntime']} | {t_ort:.3f} | {t_torch / t_ort:.2f} |")
    print(
        f"max |onnx - torch| = {np.abs(out - ref).max():.2e}; dynamic axes {info['dynamic_axes']}"
    )


if __name__ == "__main__":
    main()
