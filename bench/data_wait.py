"""How much of the training wall time waits for data, with the batches drawn in the training
process (``train.workers: 0``) and by 2 background workers, for each application's quick
config (fp32, on the CPU unless ``--device``).

    .venv/bin/python bench/data_wait.py
    .venv/bin/python bench/data_wait.py --iterations 10 --workers 0 2 4
"""

from __future__ import annotations

import argparse

from _common import QUICK, machine_line, time_steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["SR demo", "ALAMO demo"], choices=list(QUICK))
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    print(machine_line())
    print("| config | workers | s/iteration | waiting for data |\n|---|---|---|---|")
    for name in args.configs:
        for workers in args.workers:
            config, base = QUICK[name]
            overrides = [*base, f"train.workers={workers}", "train.precision=fp32",
                         f"train.device={args.device}"]  # fmt: skip
            r = time_steps(config, overrides, args.iterations)
            print(f"| {name} | {workers} | {r['s_per_it']:.3f} | {r['data_fraction']:.1%} |")


if __name__ == "__main__":
    main()
