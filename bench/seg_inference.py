"""Whole-volume ALAMO inference: single view vs 3-view majority vote, time and peak memory.

The networks are those of ``configs/seg/base.yaml`` (full size: DenseUnet k = 48, 20
slices) and ``configs/seg/demo_synthetic.yaml`` (CPU demo: k = 8, 5 slices) with random
weights (timing only), applied to a random volume already on the working grid (default
320×288×180, the size the dissertation quotes: < 1 min, 12.25 s with 3 views on GPUs).
Each setting runs in its own process so its peak memory (max RSS) is its own.

``--estimate`` times ``--batches`` forward passes of full slab batches per view and scales
them by the number of batches the inferer runs on the volume (forward passes only; peak RSS
is then that of one batch, without the whole-volume probability maps): for networks too slow
to run whole volumes on a loaded CPU.

    .venv/bin/python bench/seg_inference.py --threads 1
    .venv/bin/python bench/seg_inference.py --threads 1 --nets full --estimate
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "mrilearn" / "configs" / "seg"
NETS = {"full": "base.yaml", "demo": "demo_synthetic.yaml"}
VIEWS = {"axial": ["axial"], "3-view": ["axial", "coronal", "sagittal"]}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """User + system CPU seconds of this process: less sensitive than wall time to other
    jobs on the same cores (with one thread, equal to it on an idle machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_one(net_name: str, views: str, shape: list[int], threads: int, batches: int) -> dict:
    import numpy as np
    import torch

    from mrilearn import components
    from mrilearn.config import load_config
    from mrilearn.inference.multiview import SLICE_AXIS

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model_cfg = load_config(CONFIGS / NETS[net_name]).model
    net = components.build("model", model_cfg).eval()
    inferer = components.build("inference", {"name": "MultiView", "views": VIEWS[views]})
    before = _rss_mb()
    wall, cpu = time.perf_counter(), _cpu_s()
    if batches:
        view_seconds, cpu_seconds = {}, 0.0
        factor = 2 ** (net.levels - 1)
        for view in VIEWS[views]:
            depth, h, w = (shape[SLICE_AXIS[view]], *np.delete(shape, SLICE_AXIS[view]))
            slabs = len(inferer.slab_starts(depth, net.in_slices))
            scale = -(-slabs // inferer.batch_size) / batches
            x = torch.randn(inferer.batch_size, net.in_slices, h + -h % factor, w + -w % factor)
            t0, c0 = time.perf_counter(), _cpu_s()
            with torch.inference_mode():
                for _ in range(batches):
                    net(x).softmax(1)
            view_seconds[view] = (time.perf_counter() - t0) * scale
            cpu_seconds += (_cpu_s() - c0) * scale
        seconds = sum(view_seconds.values())
    else:
        image = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        view_seconds = inferer(net, image).seconds
        seconds, cpu_seconds = time.perf_counter() - wall, _cpu_s() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "view_seconds": view_seconds,
        "rss_before_mb": before,
        "rss_mb": _rss_mb(),
        "model": dict(model_cfg),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", type=int, nargs=3, default=[320, 288, 180], help="working grid")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--nets", nargs="+", choices=list(NETS), default=["demo", "full"])
    p.add_argument("--views", nargs="+", choices=list(VIEWS), default=list(VIEWS))
    p.add_argument("--estimate", action="store_true", help="time a few batches, scale up")
    p.add_argument("--batches", type=int, default=2, help="batches timed per view (--estimate)")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    batches = args.batches if args.estimate else 0
    if args.child:
        print(json.dumps(run_one(*args.child, args.shape, args.threads, batches)))
        return
    rows = []
    for net_name in args.nets:
        for views in args.views:
            cmd = [sys.executable, __file__, "--child", net_name, views, "--threads",
                   str(args.threads), "--shape", *map(str, args.shape)]  # fmt: skip
            cmd += ["--estimate", "--batches", str(batches)] if batches else []
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{net_name} {views}: {r}", file=sys.stderr)
            rows.append((net_name, views, r))
    how = f", estimated from {batches} batches per view" if batches else ""
    print(f"\nvolume {'x'.join(map(str, args.shape))}, {args.threads} thread(s){how}\n")
    print("| network | views | wall s | CPU s | wall s per view | peak RSS MB | RSS before MB |")
    print("|---|---|---|---|---|---|---|")
    for net_name, views, r in rows:
        m = r["model"]
        net = f"{net_name} (k={m['growth']}, {m['in_slices']} slices)"
        per_view = " / ".join(f"{s:.1f}" for s in r["view_seconds"].values())
        print(
            f"| {net} | {views} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {per_view} | "
            f"{r['rss_mb']:.0f} | {r['rss_before_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
