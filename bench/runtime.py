"""CPU whole-volume inference with each runtime: PyTorch eager (the baseline), ``torch.compile``
and ONNX Runtime, side by side in one process.

SR: the demo network (``sr/demo_mni152``: mDCSRN b2u4, k = 12, residual) on the MNI152 T1
(197×233×189) with the demo's MarginCrop (64³ patches, 3-voxel margin). ALAMO: the CPU demo
DenseUnet (``seg/demo_synthetic``: k = 8, 5 slices) on a z-scored random volume of ``--shape``
on the working grid, three views and the vote. Random weights (timing only; the residual SR
net's zero-initialised output conv is perturbed so differences show). Every runtime is run
timed ``--repeats`` times (median) after its set-up (``first``: the ONNX export and parity
check, or the compiling first call); the table gives seconds, the ratio to eager and the max
|difference| from eager.

    .venv/bin/python bench/runtime.py
    .venv/bin/python bench/runtime.py --apps sr --runtimes eager onnx --repeats 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import machine_line, timed

from mrilearn import components, plugins
from mrilearn.config import load_config
from mrilearn.deploy.runtime import runtime_net


def perturbed(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.01 * torch.randn_like(param))
    return net.eval()


def sr_case() -> tuple[torch.nn.Module, list[int], Callable[[torch.nn.Module], np.ndarray]]:
    from mrilearn.io import load_mni152

    cfg = load_config("sr/demo_mni152")
    net = perturbed(components.build("model", cfg.model))
    inferer = components.build("inference", cfg.inference)
    x = torch.from_numpy(load_mni152("t1").data.astype(np.float32))[None, None]
    x = x / float(np.percentile(x.numpy(), 99.5))
    example = [1, 1, *inferer.roi_size]
    return net, example, lambda n: inferer(n, x)[0, 0].numpy()


def seg_case(shape: list[int]) -> tuple[torch.nn.Module, list[int], Callable]:
    cfg = load_config("seg/demo_synthetic")
    net = perturbed(components.build("model", cfg.model))
    inferer = components.build("inference", {"name": "MultiView"})
    image = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    side = 2 ** (net.levels - 1) * 4
    return net, [1, net.in_slices, side, side], lambda n: inferer(n, image).probabilities


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--apps", nargs="+", default=["sr", "seg"], choices=["sr", "seg"])
    p.add_argument("--runtimes", nargs="+", default=["eager", "compile", "onnx"])
    p.add_argument("--shape", type=int, nargs=3, default=[128, 112, 80], help="ALAMO volume")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    plugins.load()
    torch.set_num_threads(args.threads)
    print(f"{machine_line()}; median of {args.repeats}")
    print("| case | runtime | set-up s | seconds | vs eager | max abs diff vs eager |")
    print("|---|---|---|---|---|---|")
    for app in args.apps:
        net, example, run = sr_case() if app == "sr" else seg_case(args.shape)
        name = "SR MNI152 T1" if app == "sr" else f"ALAMO 3-view {'×'.join(map(str, args.shape))}"
        eager_s, reference = None, None
        with tempfile.TemporaryDirectory() as tmp:
            for runtime in args.runtimes:
                t0 = time.perf_counter()
                model = runtime_net(net, runtime, example, Path(tmp) / f"{app}.onnx")
                if runtime == "compile":  # compiles on the first call
                    run(model)
                first = time.perf_counter() - t0
                seconds, out = timed(lambda m=model, r=run: r(m), args.repeats)
                if reference is None:
                    eager_s, reference = seconds, out
                diff = float(np.abs(out - reference).max())
                print(f"| {name} | {runtime} | {first:.1f} | {seconds:.1f} | "
                      f"{eager_s / seconds:.2f}× | {diff:.1e} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
