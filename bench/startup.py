"""Start-up time of the command line: ``mrilearn --help`` and a tiny ``infer``, for this tree
and a baseline tree side by side (interleaved, each command in a fresh process), plus a folder
of scans inferred by a shell loop (one process per scan) and by one ``infer`` of the folder.

The baseline is another version's ``src`` folder, e.g. the commit before a change:

    git archive <commit> src | tar -x -C /tmp/baseline
    .venv/bin/python bench/startup.py --baseline /tmp/baseline/src
    .venv/bin/python bench/startup.py --baseline /tmp/baseline/src --repeats 3 --scans 4

The run is a 1-iteration ``sr/demo_mni152`` with one dense block (timing only); the scans are
24³ phantoms. Times are wall seconds (best and median of ``--repeats``) and CPU seconds
(user + system, median) of the whole process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import cpu_model

from mrilearn.data.phantoms import ellipsoid_phantom
from mrilearn.io import Volume, write_nifti

HERE = Path(__file__).resolve().parents[1] / "src"
TINY = [
    "train.iterations=1", "train.val_every=0", "train.checkpoint_every=0", "train.batch_size=1",
    "data.patch_size=[12,12,12]", "data.val_patches=1", "model.blocks=1", "model.units=2",
    "evaluation.figures=false",
]  # fmt: skip


def run(src: Path, *args: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -m mrilearn ARGS`` with ``src`` on the path."""
    env = {**os.environ, "PYTHONPATH": str(src), "MRILEARN_QUIET": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mrilearn", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def import_ms(src: Path) -> float:
    """Milliseconds of imports (``-X importtime``, top-level modules) of ``mrilearn --help``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    err = subprocess.run([sys.executable, "-X", "importtime", "-m", "mrilearn", "--help"],
                         env=env, capture_output=True, text=True).stderr  # fmt: skip
    rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:")]
    return sum(int(r[1]) for r in rows[1:] if not r[2].startswith("  ")) / 1000


def prepare(tmp: Path, scans: int) -> tuple[Path, list[Path]]:
    """A tiny trained run and ``scans`` phantom NIfTI files."""
    run(HERE, "train", "sr/demo_mni152", *TINY, f"output_dir={tmp / 'runs'}")
    folder = tmp / "scans"
    paths = [
        write_nifti(
            Volume(ellipsoid_phantom((24, 24, 24), seed=i), np.eye(4)), folder / f"scan{i}.nii.gz"
        )  # fmt: skip
        for i in range(scans)
    ]
    return tmp / "runs" / "demo_mni152", paths


def row(name: str, samples: list[tuple[float, float]]) -> str:
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    return (
        f"| {name} | {min(walls):.2f} | {statistics.median(walls):.2f} | "
        f"{statistics.median(cpus):.2f} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", type=Path, required=True, help="another version's src folder")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--scans", type=int, default=4, help="scans in the folder comparison")
    args = p.parse_args()
    trees = {"baseline": args.baseline.resolve(), "this tree": HERE}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, scans = prepare(Path(tmp), args.scans)
        times: dict[str, list[tuple[float, float]]] = {}
        for k in range(args.repeats):
            for label, src in trees.items():
                times.setdefault(f"{label}: `mrilearn --help`", []).append(run(src, "--help"))
                out = Path(tmp) / f"out_{label[0]}{k}.nii.gz"
                infer = ["infer", "--run", str(run_dir), "-i", str(scans[0]), "-o", str(out)]
                times.setdefault(f"{label}: tiny `infer` (one 24³ scan)", []).append(
                    run(src, *infer)
                )
        for k in range(args.repeats):
            loop = [
                run(HERE, "infer", "--run", str(run_dir), str(s), f"{tmp}/loop{k}_{s.name}")
                for s in scans
            ]
            times.setdefault(f"this tree: shell loop over {len(scans)} scans", []).append(
                (sum(w for w, _ in loop), sum(c for _, c in loop))
            )
            folder = ["infer", "--run", str(run_dir), "-i", str(scans[0].parent),
                      "-o", f"{tmp}/folder{k}"]  # fmt: skip
            times.setdefault(f"this tree: one `infer` of the {len(scans)}-scan folder", []).append(
                run(HERE, *folder)
            )
    print(f"CPU {cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"import time of `mrilearn --help`: baseline {import_ms(trees['baseline']):.0f} ms, "
          f"this tree {import_ms(HERE):.0f} ms")  # fmt: skip
    print("\n| command | best wall s | median wall s | median CPU s |\n|---|---|---|---|")
    for name, samples in times.items():
        print(row(name, samples))


if __name__ == "__main__":
    main()
