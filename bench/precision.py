"""fp32 against bf16 autocast on the CPU (or the GPU): seconds per training iteration of each
application's quick config through the real loop, side by side in one process.

Precision ``auto`` picks bf16 only where it has native kernels (AMX or AVX512-BF16 on the
CPU); this measures whether that pays on the machine at hand.

    .venv/bin/python bench/precision.py
    .venv/bin/python bench/precision.py --iterations 3 --configs "SR demo"
"""

from __future__ import annotations

import argparse

from _common import QUICK, machine_line, time_steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=list(QUICK), choices=list(QUICK))
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    print(machine_line())
    print("| config | fp32 s/iteration | bf16 s/iteration | bf16 speed-up |\n|---|---|---|---|")
    for name in args.configs:
        seconds = {
            precision: time_steps(
                QUICK[name],
                [f"train.precision={precision}", f"train.device={args.device}",
                 "train.workers=0"],
                args.iterations,
            )["s_per_it"]
            for precision in ("fp32", "bf16")
        }  # fmt: skip
        ratio = seconds["fp32"] / seconds["bf16"]
        print(f"| {name} | {seconds['fp32']:.3f} | {seconds['bf16']:.3f} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
