"""Iterative MT-MRI spatial-factor recon per slice: NUFFT normal operator vs Toeplitz embedding.

The problem is the ADMM of ``mrilearn recon`` on one simulated slice: the default
scan (4128 readouts, 3096 imaging spokes) at 160², 8 coils, L = 32, 20 ADMM × 20 CG
iterations. E*E is applied either as NUFFT → Φ-sampling → adjoint (``Linop.normal``, two
NUFFTs of L × C images per application) or by Toeplitz embedding (``ToeplitzNormal``: FFTs on
the 2N grid, no NUFFT). Both ADMMs start from the same point, so their results must agree
(NRMSE < 1e-3). With ``--sigpy`` the same E is also built from SigPy's operators (NUFFT,
Multiply, Sum) and its normal operator E.N is timed and compared.

A solve applies E*E ``15 + admm × (cg + 2)`` times (power iteration, CG start residual, CG
steps, objective). Minutes-long solves are out of reach on a shared 2-core machine, so
``--run-admm/--run-cg`` set the iterations actually run (default: all; ``--run-admm 0`` runs
no solve); the ``--admm × --cg`` time is then projected as set-up + applications × measured
seconds per application, and the table says which numbers are measured and which projected.

    OMP_NUM_THREADS=1 .venv/bin/python bench/mtmri_recon.py --quick --sigpy  # 96², L 12, 5×5
    OMP_NUM_THREADS=1 .venv/bin/python bench/mtmri_recon.py --run-admm 0     # 160², L 32
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from importlib import resources
from typing import Any

import numpy as np

from mrilearn.apps.mtmri.config import load_config
from mrilearn.apps.mtmri.recon import spatial_factor_admm, subspace_encoding, temporal_model
from mrilearn.apps.mtmri.simulate import simulate
from mrilearn.physics.linop import Linop
from mrilearn.physics.nufft import SubspaceEncoding

POWER_ITERATIONS = 15  # solvers.max_eigenvalue's default


def applications(admm: int, cg: int) -> int:
    """E*E applications of one ``spatial_factor_admm`` call."""
    return POWER_ITERATIONS + admm * (cg + 2)


def seconds_per_application(op: Linop, x: np.ndarray, repeats: int) -> float:
    """Median wall time of ``op.forward(x)`` after one untimed call (plans, JIT compilation)."""
    op.forward(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        op.forward(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def nrmse(x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


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


def simulated_slice(matrix: int, coils: int, rank: int) -> tuple[Any, Any, np.ndarray]:
    """The default scan, shortened to READOUTS, simulated at ``matrix``², ``coils`` coils, rank
    L = ``rank`` (oracle gating): its config, subspace encoding E_Φ and imaging data."""
    config = resources.files("mrilearn") / "configs" / "mtmri" / "default.yaml"
    overrides = [
        f"simulate.phantom.matrix={matrix}",
        f"simulate.phantom.coils={coils}",
        f"simulate.sequence.n_readouts={READOUTS}",
        f"recon.rank={rank}",
        "recon.gating=oracle",
    ]
    cfg = load_config(str(config), overrides)
    raw = simulate(cfg.simulate)
    enc, data = subspace_encoding(raw, cfg.recon, temporal_model(raw, cfg.recon))
    return cfg, enc, data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="96², 8 coils, L 12, 5 ADMM × 5 CG")
    p.add_argument("--matrix", type=int, default=160)
    p.add_argument("--coils", type=int, default=8)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--admm", type=int, default=20, help="ADMM iterations of the timed solve")
    p.add_argument("--cg", type=int, default=20, help="CG iterations per ADMM iteration")
    p.add_argument("--run-admm", type=int, help="ADMM iterations actually run (default --admm)")
    p.add_argument("--run-cg", type=int, help="CG iterations actually run (default --cg)")
    p.add_argument("--repeats", type=int, default=3, help="timings of one E*E application")
    p.add_argument("--sigpy", action="store_true", help="also time SigPy's E*E")
    args = p.parse_args()
    if args.sigpy and importlib.util.find_spec("sigpy") is None:
        p.error("--sigpy needs SigPy: pip install -c constraints.txt -e '.[sigpy]'")
    if args.quick:
        args.matrix, args.rank, args.admm, args.cg = 96, 12, 5, 5
    run_admm = args.admm if args.run_admm is None else args.run_admm
    run_cg = args.cg if args.run_cg is None else args.run_cg

    cfg, enc, data = simulated_slice(args.matrix, args.coils, args.rank)
    samples = data.shape[1] * data.shape[2]
    start = time.perf_counter()
    rhs = enc.adjoint(data)
    rhs_s = time.perf_counter() - start
    start = time.perf_counter()
    toeplitz = enc.normal()
    kernels_s = time.perf_counter() - start
    operators = {"NUFFT normal": Linop.normal(enc), "Toeplitz normal": toeplitz}
    setup = {"NUFFT normal": rhs_s, "Toeplitz normal": rhs_s + kernels_s}
    if args.sigpy:
        start = time.perf_counter()
        operators["SigPy NUFFT normal"] = SigpyNormal(enc)
        setup["SigPy NUFFT normal"] = rhs_s + time.perf_counter() - start

    x = np.random.default_rng(0).standard_normal(rhs.shape).astype(np.complex64)
    reference = toeplitz.forward(x)
    rows = []
    results = {}
    for name, op in operators.items():
        per_apply = seconds_per_application(op, x, args.repeats)
        op_error = nrmse(op.forward(x), reference)
        run_s = None
        if run_admm and name != "SigPy NUFFT normal":
            start = time.perf_counter()
            results[name], _ = spatial_factor_admm(
                op,
                rhs,
                float(np.linalg.norm(data) ** 2),
                cfg.recon.lam,
                cfg.recon.rho,
                run_admm,
                run_cg,
                progress=False,
            )
            run_s = setup[name] + time.perf_counter() - start
        projected = setup[name] + applications(args.admm, args.cg) * per_apply
        rows.append((name, per_apply, op_error, run_s, projected))
        print(f"{name}: {per_apply:.3f} s per E*E, solve {run_s} s", flush=True)

    agreement = (
        f"{nrmse(results['Toeplitz normal'], results['NUFFT normal']):.2e}" if results else "–"
    )
    measured = (run_admm, run_cg) == (args.admm, args.cg)
    print(
        f"\n{args.matrix}², {args.coils} coils, L = {args.rank}, {data.shape[1]} imaging spokes × "
        f"{data.shape[2]} samples ({samples} samples), OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; solve run: {run_admm} ADMM × {run_cg} CG; "
        f"U(Toeplitz) vs U(NUFFT) NRMSE {agreement}\n"
    )
    kind = "measured" if measured else "projected"
    run_col = f" {run_admm}×{run_cg} solve s (measured) |" if run_admm and not measured else ""
    print(
        f"| E*E | s per application | NRMSE of E*E x vs Toeplitz |{run_col} "
        f"{args.admm}×{args.cg} solve s ({kind}) | time vs Toeplitz |"
    )
    print("|---" * (5 + bool(run_col)) + "|")
    toeplitz_total = rows[1][4] if not measured else rows[1][3]
    for name, per_apply, op_error, run_s, projected in rows:
        total = run_s if measured and run_s is not None else projected
        run = "" if not run_col else (" – |" if run_s is None else f" {run_s:.1f} |")
        print(
            f"| {name} | {per_apply:.3f} | {op_error:.1e} |{run} {total:.1f} | "
            f"{total / toeplitz_total:.1f}× |"
        )
    if args.sigpy:
        print("\nSigPy: solve time projected from its seconds per application (no solve run).")


if __name__ == "__main__":
    main()
