"""fp32 against bf16 autocast on the CPU (or the GPU), side by side in one process: seconds per
training iteration of each application's quick config through the real loop, and seconds per
inference forward pass (SR: one 64³ patch; ALAMO: a batch of 4 slabs of 192×160).

Precision ``auto`` picks bf16 only where it has native kernels (AMX or AVX512-BF16 on the
CPU); this measures whether that pays on the machine at hand.

    .venv/bin/python bench/precision.py
    .venv/bin/python bench/precision.py --iterations 3 --configs "SR demo"
"""

from __future__ import annotations

import argparse

import torch
from _common import QUICK, machine_line, time_steps, timed

from mrilearn import components, plugins
from mrilearn.config import load_config
from mrilearn.engine.precision import MixedPrecision


def forward_seconds(config: str, precision: str, device: torch.device) -> float:
    """Median of 3 inference forward passes (after one) of the config's network."""
    torch.manual_seed(0)
    net = components.build("model", load_config(config).model).to(device).eval()
    shape = [1, 1, 64, 64, 64] if config.startswith("sr/") else [4, net.in_slices, 192, 160]
    x = torch.randn(shape, device=device)
    amp = MixedPrecision(precision, device)

    def forward() -> None:
        with torch.inference_mode(), amp.autocast():
            net(x)

    return timed(forward, 3, warmup=1)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=list(QUICK), choices=list(QUICK))
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    plugins.load()
    print(machine_line())
    print("| config | what | fp32 s | bf16 s | bf16 speed-up |\n|---|---|---|---|---|")
    for name in args.configs:
        config, base = QUICK[name]
        train, infer = {}, {}
        for precision in ("fp32", "bf16"):
            overrides = [*base, f"train.precision={precision}", f"train.device={args.device}",
                         "train.workers=0"]  # fmt: skip
            train[precision] = time_steps(config, overrides, args.iterations)["s_per_it"]
            infer[precision] = forward_seconds(config, precision, torch.device(args.device))
        for what, s in (("training iteration", train), ("inference forward", infer)):
            ratio = s["fp32"] / s["bf16"]
            print(f"| {name} | {what} | {s['fp32']:.3f} | {s['bf16']:.3f} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
