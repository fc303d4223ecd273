"""The GPU check: one script that exercises the CUDA path and prints one Markdown table.

Rows: seconds per iteration of each application's quick config in fp32 and bf16 (the real
training loop, 2 background workers), bit-exact resume on the GPU (bf16, 2 workers), a
2-process DDP run when there are 2 GPUs, whole-volume inference of 320×320×256 (SR, mDCSRN
b8u4, 70³ MarginCrop) and 320×288×180 with three views (ALAMO, DenseUnet k = 48, 20 slices)
against the dissertation's 23 s and 12.25 s, the Multitasking Toeplitz E*E and a 20 × 20
ADMM solve on one 160² slice (8 coils, L = 32) against the CPU, and the peak GPU memory of
each row. Random weights for the inference rows (timing only). On a CUDA machine it runs in under 8 minutes:

    python bench/gpu_check.py                  # CUDA: the full check
    python bench/gpu_check.py --cpu-smoke      # any machine: tiny sizes, the same code paths

``--cpu-smoke`` runs every row on the CPU with a few iterations and small volumes (fp32 and
bf16 alike), and marks the rows that need GPUs as skipped, so the script itself is checked
where there is no GPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import machine_line, time_steps
from mtmri_recon import applications, nrmse, simulated_slice

from mrilearn import components, plugins
from mrilearn.config import load_config
from mrilearn.engine.checkpoint import load_checkpoint
from mrilearn.runs import train_run

TRAINING = {  # name: (packaged config, overrides)
    "SR demo (mDCSRN b2u4, 24³)": ("sr/demo_mni152", []),
    "SR mDCSRN b8u4 (40³, batch 6)": ("sr/mdcsrn_b8u4", []),
    "SR WGAN-GP quick (D and G steps)": ("sr/mdcsrn_gan_quick", ["trainer.warmup_d=0"]),
    "ALAMO demo (k = 8, 5 slices)": ("seg/demo_synthetic", []),
    "ALAMO base-sized (k = 48, 20 slices, 256×160)": (
        "seg/demo_synthetic",
        [
            "model.growth=48",
            "model.in_slices=20",
            "model.units=4",
            "data.slices=20",
            "data.crop=[256,160]",
            "data.spacing=1.2",
            "train.batch_size=1",
        ],
    ),  # fmt: skip
    "SPADE (synthetic abdomens)": ("synth/spade_abdomen", []),
}
# fewer synthetic abdomens than the configs' 36-40, so that building them stays a few seconds
FEW_SUBJECTS = ["data.synthetic_subjects=8", "data.split=[6,1,0,1]"]
SMOKE = ["data.synthetic_subjects=4", "data.split=[2,1,0,1]", "data.val_slabs=1"]
SEG_SMOKE = {"data.spacing=1.2": "data.spacing=6.0", "data.crop=[256,160]": "data.crop=[32,32]"}
INFERENCE = {  # name: (config, volume shape, cpu-smoke shape, dissertation seconds)
    "SR whole volume, mDCSRN b8u4, MarginCrop 70³": ("sr/mdcsrn_b8u4", (320, 320, 256),
                                                     (40, 40, 32), 23.0),
    "ALAMO 3 views, DenseUnet k = 48, 20 slices": ("seg/base", (320, 288, 180), (40, 32, 24),
                                                   12.25),
}  # fmt: skip
# --cpu-smoke: small networks and patches, so that the whole check takes minutes on a CPU
SMOKE_MODEL = {
    "sr/mdcsrn_b8u4": ["model.blocks=1", "model.units=2", "inference.roi_size=[24,24,24]"],
    "seg/base": ["model.growth=4", "model.units=2", "model.in_slices=5"],
}
SMOKE_TRAIN = ["model.blocks=1", "model.units=2", "model.growth=4"]


def peak_memory() -> str:
    if not torch.cuda.is_available():
        return "–"
    peak = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return f"{peak:.1f} GiB"


def smoke_overrides(config: str, overrides: list[str]) -> list[str]:
    if config.startswith("sr/"):
        return [*overrides, *SMOKE_TRAIN, "data.patch_size=[16,16,16]", "train.batch_size=2"]
    return [SEG_SMOKE.get(o, o) for o in overrides] + SMOKE + ["data.crop=[32,32]"]


def training_rows(args: argparse.Namespace, add: Callable[..., None]) -> None:
    for name, (config, overrides) in TRAINING.items():
        if args.cpu_smoke:
            overrides = smoke_overrides(config, overrides)
        elif not config.startswith("sr/"):
            overrides = [*overrides, *FEW_SUBJECTS]
        for precision in ("fp32", "bf16"):
            extra = [f"train.precision={precision}", f"train.device={args.device}",
                     f"train.workers={args.workers}"]  # fmt: skip
            r = time_steps(config, [*overrides, *extra], args.iterations)
            add(f"train {name}", precision, f"{r['s_per_it']:.3f} s/it",
                f"data wait {r['data_fraction']:.0%}")  # fmt: skip


def resume_row(args: argparse.Namespace, add: Callable[..., None], tmp: Path) -> None:
    """10 iterations straight vs 5, then resumed to 10: identical weights?"""
    base = ["train.iterations=10", "train.val_every=0", "train.checkpoint_every=0",
            f"train.device={args.device}", f"train.workers={args.workers}",
            f"output_dir={tmp}", "train.precision=bf16"]  # fmt: skip
    if args.cpu_smoke:
        base += [*SMOKE_TRAIN, "data.patch_size=[16,16,16]", "train.batch_size=2"]
    t0 = time.perf_counter()
    straight = train_run(load_config("sr/demo_mni152", [*base, "experiment=a"]), False, False, 1)
    half = load_config("sr/demo_mni152", [*base, "experiment=b", "train.iterations=5"])
    resumed = train_run(half, False, False, 1)
    train_run(load_config("sr/demo_mni152", [*base, "experiment=b"]), True, False, 1)
    a, b = (
        load_checkpoint(r / "checkpoints" / "latest.pt")["nets"]["G"] for r in (straight, resumed)
    )
    same = all(torch.equal(a[k], b[k]) for k in a)
    add("resume 5 + 5 vs 10 iterations (SR demo, bf16)", "bf16",
        "bit-identical" if same else "DIFFERENT", f"{time.perf_counter() - t0:.0f} s")  # fmt: skip


def ddp_row(args: argparse.Namespace, add: Callable[..., None], tmp: Path) -> None:
    if args.cpu_smoke or torch.cuda.device_count() < 2:
        add("DDP 2 processes (SR demo)", "", "skipped", "needs 2 GPUs")
        return
    times = {}
    for devices in (1, 2):
        cmd = [sys.executable, "-m", "mrilearn", "train", "sr/demo_mni152",
               f"output_dir={tmp}", f"experiment=ddp{devices}", "train.iterations=100",
               "train.val_every=0", "train.checkpoint_every=0", "train.precision=bf16",
               f"train.workers={args.workers}", "--devices", str(devices)]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times[devices] = time.perf_counter() - t0
    # 2 processes draw 2 batches per iteration: the speed-up is samples per second
    add("DDP 2 processes vs 1 (SR demo, 100 it)", "bf16",
        f"{2 * times[1] / times[2]:.2f}× samples/s", f"{times[2]:.0f} s incl. start")  # fmt: skip


def inference_rows(args: argparse.Namespace, add: Callable[..., None]) -> None:
    device = torch.device(args.device)
    for name, (config, shape, smoke, reference) in INFERENCE.items():
        cfg = load_config(config, SMOKE_MODEL[config] if args.cpu_smoke else [])
        net = components.build("model", cfg.model).to(device).eval()
        inferer = components.build("inference", cfg.inference)
        volume = np.random.default_rng(0).standard_normal(smoke if args.cpu_smoke else shape)
        volume = volume.astype(np.float32)
        for precision in ("fp32", "bf16"):
            dtype = torch.bfloat16 if precision == "bf16" else None
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                t0 = time.perf_counter()
                if config.startswith("sr/"):
                    inferer(net, torch.from_numpy(volume)[None, None], device)
                else:
                    inferer(net, volume, device)
                seconds = time.perf_counter() - t0
            size = "×".join(map(str, volume.shape))
            add(f"infer {name} {size}", precision, f"{seconds:.1f} s",
                f"dissertation {reference} s")  # fmt: skip


def mtmri_rows(args: argparse.Namespace, add: Callable[..., None]) -> None:
    """The torch Toeplitz E*E on the device against the CPU (median of 5 applications each,
    same kernels) and the ADMM of ``mrilearn recon`` on the device."""
    from mrilearn.apps.mtmri.recon import SpatialFactorADMM

    matrix, coils, rank, admm, cg = (32, 4, 4, 2, 2) if args.cpu_smoke else (160, 8, 32, 20, 20)
    cfg, enc, data = simulated_slice(matrix, coils, rank)
    rhs, numpy_normal = enc.adjoint(data), enc.normal()
    device = torch.device(args.device)
    seconds, results = {}, {}
    for where in ("cpu", device):
        normal = numpy_normal.to(where)
        x = torch.from_numpy(rhs).to(where)
        normal.forward(x)  # buffers
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            results[str(where)] = normal.forward(x)
            if where != "cpu" and device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        seconds[str(where)] = float(np.median(times))
    error = nrmse(results[str(device)], numpy_normal.forward(rhs))
    add(f"Multitasking E*E {matrix}², {coils} coils, L = {rank}", "fp32 (complex64)",
        f"{seconds[str(device)]:.4f} s", f"CPU {seconds['cpu']:.3f} s "
        f"({seconds['cpu'] / seconds[str(device)]:.0f}×), NRMSE vs NumPy {error:.1e}")  # fmt: skip
    normal = numpy_normal.to(device)
    t0 = time.perf_counter()
    solver = SpatialFactorADMM(normal, torch.from_numpy(rhs).to(device),
                               float(np.linalg.norm(data) ** 2), cfg.recon.lam, cfg.recon.rho,
                               admm, cg)  # fmt: skip
    solver.run(progress=False)
    solve = time.perf_counter() - t0
    add(
        f"Multitasking ADMM {admm}×{cg} ({applications(admm, cg)} E*E)",
        "fp32 (complex64)",
        f"{solve:.1f} s",
        f"CPU projected {applications(admm, cg) * seconds['cpu']:.0f} s",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU")
    p.add_argument("--iterations", type=int, help="timed iterations (default 100; smoke 2)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    args.device = "cpu" if args.cpu_smoke else "cuda"
    if not args.cpu_smoke and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU here; run with --cpu-smoke to check the script")
    args.iterations = args.iterations or (2 if args.cpu_smoke else 100)
    os.environ.pop("MRILEARN_PRECISION", None)
    plugins.load()
    rows: list[tuple[str, ...]] = []

    def add(what: str, precision: str, result: str, note: str) -> None:
        rows.append((what, precision, result, note, peak_memory()))
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)  # progress

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        training_rows(args, add)
        resume_row(args, add, Path(tmp))
        ddp_row(args, add, Path(tmp))
    inference_rows(args, add)
    mtmri_rows(args, add)
    print(f"\n{machine_line()}; {'CPU smoke run, tiny sizes' if args.cpu_smoke else 'CUDA'}; "
          f"{args.iterations} timed iterations per training row; total "
          f"{time.perf_counter() - start:.0f} s\n")  # fmt: skip
    print("| check | precision | result | note | peak GPU memory |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
