"""Iterative MT-MRI spatial-factor recon per slice: E*E as a NUFFT pair, and by Toeplitz
embedding in NumPy (the reference) and in torch, side by side in one run.

The problem is the ADMM of ``mrilearn recon`` on one simulated slice: the default scan
(4128 readouts, 3096 imaging spokes) at 160², 8 coils, L = 32, 20 ADMM × 20 CG iterations.
E*E is applied as NUFFT → Φ-sampling → adjoint (``Linop.normal``, two NUFFTs of L × C images
per application) or by Toeplitz embedding (``ToeplitzNormal``: FFTs on the 2N grid, no NUFFT),
once on NumPy arrays (scipy.fft, NumPy's matmul: the implementation ``recon`` used before)
and once on torch tensors (what ``recon`` runs now). Both Toeplitz operators share one set of
kernels. Each application is timed ``--repeats`` times, the operators taking turns so that a
change of load hits all of them; the table gives medians. Then the same ADMM runs with each
Toeplitz operator from the same E*d, the two taking turns iteration by iteration, and the
NRMSE between the two U is printed. With
``--sigpy`` the same E is also built from SigPy's operators (NUFFT, Multiply, Sum) and its E.N
is timed and compared.

A solve applies E*E ``15 + admm × (cg + 2)`` times (power iteration, CG start residual, CG
steps, objective). ``--run-admm/--run-cg`` set the iterations actually run (default: all;
``--run-admm 0`` runs no solve); the ``--admm × --cg`` time is then projected as set-up +
applications × measured seconds per application, and the table says which numbers are
measured and which projected.

    OMP_NUM_THREADS=1 .venv/bin/python bench/mtmri_recon.py --threads 1     # 160², L 32
    OMP_NUM_THREADS=1 .venv/bin/python bench/mtmri_recon.py --threads 1 --quick --sigpy
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import time
from typing import Any

import numpy as np
import torch

from mrilearn.apps.mtmri.config import load_config
from mrilearn.apps.mtmri.recon import SpatialFactorADMM, subspace_encoding, temporal_model
from mrilearn.apps.mtmri.simulate import simulate
from mrilearn.physics.encoding import SubspaceEncoding
from mrilearn.physics.linop import Array, Linop, to_numpy

POWER_ITERATIONS = 15  # solvers.max_eigenvalue's default


def applications(admm: int, cg: int) -> int:
    """E*E applications of one ``SpatialFactorADMM`` solve."""
    return POWER_ITERATIONS + admm * (cg + 2)


def seconds_per_application(op: Linop, x: Array, repeats: int) -> float:
    """Median wall time of ``op.forward(x)`` after one untimed call (plans, buffers)."""
    return float(np.median(interleaved_seconds({"op": op}, {"op": x}, repeats)["op"]))


def interleaved_seconds(
    ops: dict[str, Linop], inputs: dict[str, Array], repeats: int
) -> dict[str, list[float]]:
    """Wall times of ``repeats`` applications of each operator, taking turns (after one
    untimed call each)."""
    for name, op in ops.items():
        op.forward(inputs[name])
    times: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(repeats):
        for name, op in ops.items():
            start = time.perf_counter()
            op.forward(inputs[name])
            times[name].append(time.perf_counter() - start)
    return times


def nrmse(x: Array, ref: Array) -> float:
    x, ref = to_numpy(x), to_numpy(ref)
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def cpu_model() -> str:
    """``lscpu``'s model name and whether the CPU has native bf16 (AVX512-BF16 or AMX)."""
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return (
        f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs, "
        f"native bf16: {', '.join(bf16) if bf16 else 'no'}"
    )


class SigpyNormal(Linop):
    """E*E from SigPy's operators: (sum over L of Φ-weighted NUFFT of coil images)."""

    def __init__(self, enc: SubspaceEncoding) -> None:
        import sigpy as sp

        n_basis, n = enc.phi.shape[0], enc.maps.shape[1]
        super().__init__((n_basis, n, n), (n_basis, n, n))
        coord = enc.traj * (n / (2 * np.pi))  # SigPy's units: cycles per FOV, ±N/2
        shape = (n_basis, 1, n, n)
        coil = sp.linop.Multiply(shape, enc.maps[None])
        nufft = sp.linop.NUFFT(coil.oshape, coord)
        weights = enc.phi[:, None, :, None]  # (L, 1, R, 1)
        sample = sp.linop.Sum(nufft.oshape, axes=(0,)) * sp.linop.Multiply(nufft.oshape, weights)
        # SigPy's NUFFT is unitary-scaled (1/N); ours is not: n² restores E*E.
        self.op = n**2 * (sample * nufft * coil * sp.linop.Reshape(shape, (n_basis, n, n))).N

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.op(x)

    adjoint = forward


# The timed scan's length stays that of docs/benchmarks.md even where default.yaml changes:
# the NUFFT and the back-projection scale with it, the Toeplitz normal operator does not.
READOUTS = 4128


def simulated_slice(matrix: int, coils: int, rank: int) -> tuple[Any, SubspaceEncoding, Any]:
    """The default scan, shortened to READOUTS, simulated at ``matrix``², ``coils`` coils, rank
    L = ``rank`` (oracle gating): its config, subspace encoding E_Φ (NumPy) and imaging data."""
    overrides = [
        f"simulate.phantom.matrix={matrix}",
        f"simulate.phantom.coils={coils}",
        f"simulate.sequence.n_readouts={READOUTS}",
        f"recon.rank={rank}",
        "recon.gating=oracle",
    ]
    cfg = load_config("mtmri/default", overrides)
    raw = simulate(cfg.simulate)
    enc, data = subspace_encoding(raw, cfg.recon, temporal_model(raw, cfg.recon), device=None)
    return cfg, enc, data


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="96², 8 coils, L 12, 5 ADMM × 5 CG")
    p.add_argument("--matrix", type=int, default=160)
    p.add_argument("--coils", type=int, default=8)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--admm", type=int, default=20, help="ADMM iterations of the timed solve")
    p.add_argument("--cg", type=int, default=20, help="CG iterations per ADMM iteration")
    p.add_argument("--run-admm", type=int, help="ADMM iterations actually run (default --admm)")
    p.add_argument("--run-cg", type=int, help="CG iterations actually run (default --cg)")
    p.add_argument("--repeats", type=int, default=5, help="timings of one E*E application")
    p.add_argument("--device", default="cpu", help="torch device of the torch operator")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--sigpy", action="store_true", help="also time SigPy's E*E")
    args = p.parse_args()
    if args.sigpy and importlib.util.find_spec("sigpy") is None:
        p.error("--sigpy needs SigPy: pip install -c constraints.txt -e '.[sigpy]'")
    if args.quick:
        args.matrix, args.rank, args.admm, args.cg = 96, 12, 5, 5
    args.run_admm = args.admm if args.run_admm is None else args.run_admm
    args.run_cg = args.cg if args.run_cg is None else args.run_cg
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    cfg, enc, data = simulated_slice(args.matrix, args.coils, args.rank)
    start = time.perf_counter()
    rhs = enc.adjoint(data)
    rhs_s = time.perf_counter() - start
    start = time.perf_counter()
    toeplitz = enc.normal()
    kernels_s = time.perf_counter() - start
    start = time.perf_counter()
    on_torch = toeplitz.to(device)
    to_device_s = time.perf_counter() - start
    ops = {"NUFFT pair": Linop.normal(enc), "Toeplitz, NumPy": toeplitz}
    ops[f"Toeplitz, torch ({device})"] = on_torch
    if args.sigpy:
        ops["SigPy NUFFT normal"] = SigpyNormal(enc)
    print(
        f"\n{args.matrix}², {args.coils} coils, L = {args.rank}, {data.shape[1]} imaging spokes × "
        f"{data.shape[2]} samples; {cpu_model()}; OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads {torch.get_num_threads()}; "
        f"E*d {rhs_s:.1f} s, Toeplitz kernels {kernels_s:.1f} s, to {device} {to_device_s:.2f} s"
    )
    inputs = {
        "x = noise": np.random.default_rng(0).standard_normal(rhs.shape).astype(np.complex64),
        "x = E*d (smooth, like the iterates)": rhs / np.linalg.norm(rhs),
    }
    for kind, x in inputs.items():
        median = operator_table(ops, x, on_torch, args.repeats, kind)
    if args.run_admm:
        solves(args, cfg, rhs, float(np.linalg.norm(data) ** 2), toeplitz, on_torch, median)


def operator_table(
    ops: dict[str, Linop], x: np.ndarray, on_torch: Linop, repeats: int, kind: str
) -> dict[str, float]:
    """Time every operator on ``x`` (as a tensor for the torch one), print the table, and
    return the medians."""
    device = on_torch.kernels.device
    inputs = {n: torch.from_numpy(x).to(device) if op is on_torch else x for n, op in ops.items()}
    median = {n: float(np.median(t)) for n, t in interleaved_seconds(ops, inputs, repeats).items()}
    reference = ops["Toeplitz, NumPy"].forward(x)
    print(
        f"\n{kind}:\n\n| E*E | s per application (median of {repeats}) | vs NUFFT pair | "
        "time vs NumPy Toeplitz | NRMSE of E*E x vs NumPy Toeplitz |"
    )
    print("|---|---|---|---|---|")
    for name, op in ops.items():
        error = nrmse(op.forward(inputs[name]), reference)
        print(
            f"| {name} | {median[name]:.3f} | {median['NUFFT pair'] / median[name]:.1f}× | "
            f"{median[name] / median['Toeplitz, NumPy']:.2f}× | "
            f"{'–' if name == 'Toeplitz, NumPy' else f'{error:.1e}'} |"
        )
    return median


def solves(
    args: argparse.Namespace,
    cfg: Any,
    rhs: np.ndarray,
    data_norm2: float,
    toeplitz: Linop,
    on_torch: Linop,
    median: dict[str, float],
) -> None:
    """The ADMM with the NumPy and the torch Toeplitz operator from the same E*d, taking turns
    iteration by iteration so that a change of load hits both; timed."""
    device = on_torch.kernels.device
    rhs_torch = torch.from_numpy(rhs).to(device)
    solvers, seconds = {}, {}
    for name, op, b in (("NumPy", toeplitz, rhs), (f"torch ({device})", on_torch, rhs_torch)):
        start = time.perf_counter()
        solvers[name] = SpatialFactorADMM(
            op, b, data_norm2, cfg.recon.lam, cfg.recon.rho, args.run_admm, args.run_cg
        )
        seconds[name] = time.perf_counter() - start
    while not all(admm.done() for admm in solvers.values()):
        for name, admm in solvers.items():
            start = time.perf_counter()
            admm.update()
            seconds[name] += time.perf_counter() - start
    results = {name: admm.result() for name, admm in solvers.items()}
    names = list(results)
    measured = (args.run_admm, args.run_cg) == (args.admm, args.cg)
    print(
        f"\n{args.run_admm} ADMM × {args.run_cg} CG from E*d, U(torch) vs U(NumPy) NRMSE "
        f"{nrmse(results[names[1]], results[names[0]]):.1e}; measured "
        + ", ".join(f"{name} {seconds[name]:.1f} s" for name in names)
        + "\n"
    )
    kind = "measured" if measured else "projected from s per application"
    print(f"| ADMM with Toeplitz E*E | {args.admm}×{args.cg} solve s ({kind}) | time vs NumPy |")
    print("|---|---|---|")
    per_apply = (median["Toeplitz, NumPy"], median[next(k for k in median if "torch" in k)])
    totals = [
        seconds[name] if measured else applications(args.admm, args.cg) * s
        for name, s in zip(names, per_apply)
    ]
    for name, total in zip(names, totals):
        print(f"| {name} | {total:.1f} | {total / totals[0]:.2f}× |")


if __name__ == "__main__":
    main()
