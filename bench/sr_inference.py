"""Whole-volume SR inference: MarginCrop vs MONAI sliding-window averaging (the baseline).

Each setting runs in its own process so its peak memory (max RSS) is its own.
Prints a Markdown table with time and memory as ratios to the baseline (with
``--no-baseline``, to the first setting run).

    .venv/bin/python bench/sr_inference.py                 # MNI152 T1, 197x233x189
    .venv/bin/python bench/sr_inference.py --shape 320 320 256 --no-baseline \
        --settings "MarginCrop roi 70 margin 3"     # bounded memory on an HCP-sized volume
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

BASELINE = "SlidingWindow roi 64 overlap 0.5"
SETTINGS = {
    BASELINE: {"name": "SlidingWindow", "roi_size": [64, 64, 64], "overlap": 0.5},
    "SlidingWindow roi 64 overlap 0.25": {
        "name": "SlidingWindow",
        "roi_size": [64, 64, 64],
        "overlap": 0.25,
    },
    "MarginCrop roi 64 margin 3": {"name": "MarginCrop", "roi_size": [64, 64, 64], "margin": 3},
    "MarginCrop roi 70 margin 3": {"name": "MarginCrop", "roi_size": [70, 70, 70], "margin": 3},
}
MODEL = {"name": "MDCSRN", "blocks": 2, "units": 4, "growth": 12, "residual": True}


def run_one(spec: dict, shape: list[int]) -> dict:
    import numpy as np
    import torch

    from mrilearn import components
    from mrilearn.io import load_mni152

    torch.manual_seed(0)
    net = components.build("model", MODEL).eval()
    if shape:
        vol = np.random.default_rng(0).random(shape, dtype=np.float32)
    else:
        vol = load_mni152("t1").data
    x = torch.from_numpy(vol)[None, None]
    inferer = components.build("inference", spec)
    t0 = time.perf_counter()
    out = inferer(net, x)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "rss_mb": rss_mb, "shape": list(out.shape[2:])}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument(
        "--shape", type=int, nargs=3, help="random volume of this shape instead of MNI152"
    )
    p.add_argument(
        "--settings",
        nargs="+",
        choices=list(SETTINGS),
        default=list(SETTINGS),
        help="which inferers to run (the baseline always runs unless --no-baseline)",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the (slow) baseline")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_one(SETTINGS[args.child], args.shape or [])))
        return
    names = [n for n in SETTINGS if n in args.settings or (n == BASELINE and not args.no_baseline)]
    results = {}
    for name in names:
        cmd = [sys.executable, __file__, "--child", name] + (
            ["--shape", *map(str, args.shape)] if args.shape else []
        )
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name}: {results[name]}", file=sys.stderr)
    base = results.get(BASELINE, next(iter(results.values())))
    shape = "x".join(map(str, base["shape"]))
    print(f"\nvolume {shape}, model {MODEL}\n")
    print("| inferer | seconds | time vs baseline | peak RSS MB | memory vs baseline |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds']:.1f} | {r['seconds'] / base['seconds']:.2f} | "
            f"{r['rss_mb']:.0f} | {r['rss_mb'] / base['rss_mb']:.2f} |"
        )


if __name__ == "__main__":
    main()
