"""CG and ADMM: a small SPD system, and the spatial-factor problem with the true Φ, on NumPy
arrays (the reference) and on torch tensors (what the reconstruction runs)."""

from __future__ import annotations

import numpy as np
import torch

from mrilearn.apps.mtmri.recon import SpatialFactorADMM
from mrilearn.physics.encoding import SubspaceEncoding
from mrilearn.physics.linop import Array, Linop, to_numpy
from mrilearn.physics.nufft import radial_density
from mrilearn.physics.phantom import CoilModel
from mrilearn.physics.solvers import ConjugateGradient, soft_threshold


class Matrix(Linop):
    def __init__(self, a: Array) -> None:
        super().__init__((a.shape[0],), (a.shape[1],))
        self.a = a

    def forward(self, x: Array) -> Array:
        return self.a @ x

    def adjoint(self, y: Array) -> Array:
        return self.a.conj().T @ y


def test_cg_solves_a_small_spd_system():
    rng = np.random.default_rng(0)
    b = rng.standard_normal((20, 20)) + 1j * rng.standard_normal((20, 20))
    a = b.conj().T @ b + 0.5 * np.eye(20)
    x_true = rng.standard_normal(20) + 1j * rng.standard_normal(20)
    cg = ConjugateGradient(Matrix(a), a @ x_true, np.zeros(20, complex), max_iter=100, tol=1e-12)
    assert np.allclose(cg.run(progress=False), x_true, rtol=1e-8)
    assert cg.iteration <= 40


def test_cg_on_tensors_is_differentiable():
    """Backpropagation through CG steps on tensors: after n steps on an n × n system the
    solve is A⁻¹ b, and gradcheck confirms autograd's vector-Jacobian product of b ↦ x."""
    rng = np.random.default_rng(0)
    b = rng.standard_normal((6, 6)) + 1j * rng.standard_normal((6, 6))
    a = torch.from_numpy(b.conj().T @ b + np.eye(6))

    def solve(rhs: torch.Tensor) -> torch.Tensor:
        return ConjugateGradient(Matrix(a), rhs, torch.zeros_like(rhs), max_iter=6).run(False)

    rhs = torch.from_numpy(rng.standard_normal(6) + 1j * rng.standard_normal(6))
    assert torch.allclose(solve(rhs), torch.linalg.solve(a, rhs), rtol=1e-8)
    assert torch.autograd.gradcheck(solve, (rhs.requires_grad_(),))


def test_soft_threshold_shrinks_complex_magnitudes():
    x = np.array([3 + 4j, 0.1, -2.0])
    assert np.allclose(soft_threshold(x, 1.0), [2.4 + 3.2j, 0, -1.0])


def _blocks(n: int) -> np.ndarray:
    """Three piecewise-constant complex basis images (sparse gradients)."""
    x, y = np.meshgrid(np.arange(n) - n / 2, np.arange(n) - n / 2, indexing="ij")
    disk = (x**2 + y**2 < (0.35 * n) ** 2).astype(float)
    small = ((x - 3) ** 2 + (y + 2) ** 2 < (0.12 * n) ** 2).astype(float)
    square = ((abs(x + 4) < 3) & (abs(y - 4) < 4)).astype(float)
    return np.stack([disk + 0.5 * small, (small - 0.3 * square) * 1j, square - 0.5 * disk])


def _subspace_problem(
    n_spokes: int, frame_odds: np.ndarray | None = None, device: str | None = None
) -> tuple[SubspaceEncoding, np.ndarray, np.ndarray]:
    """E_Φ (on ``device``; None: NumPy) with a random orthonormal Φ over 16 frames, noiseless
    data of _blocks (NumPy), and U."""
    rng = np.random.default_rng(1)
    n, n_basis, n_frames = 24, 3, 16
    u_true = _blocks(n).astype(np.complex64)
    phi_frames = np.linalg.qr(rng.standard_normal((n_frames, n_basis)))[0].T  # orthonormal rows
    frame = rng.choice(n_frames, n_spokes, p=frame_odds)
    angles = np.arange(n_spokes) * np.pi * (np.sqrt(5) - 1) / 2
    radius = (np.arange(n) - n // 2) * 2 * np.pi / n
    traj = radius[None, :, None] * np.stack([np.cos(angles), np.sin(angles)], -1)[:, None]
    maps = CoilModel(4, 300.0, rng).maps(n, 300.0)
    enc = SubspaceEncoding(traj, phi_frames[:, frame], maps, device=device)
    data = to_numpy(enc.forward(enc.asarray(u_true)))  # the reconstruction's own model
    return enc, data, u_true


def _nrmse(x: np.ndarray, truth: np.ndarray) -> float:
    a = np.vdot(x, truth) / np.vdot(x, x)  # U0 has no absolute scale
    return float(np.linalg.norm(a * x - truth) / np.linalg.norm(truth))


def test_admm_recovers_u_with_true_phi_better_than_back_projection():
    enc, data, u_true = _subspace_problem(60)
    u0 = enc.back_project(data, radial_density(enc.traj))
    admm = SpatialFactorADMM(
        enc.normal(),
        enc.adjoint(data),
        float(np.linalg.norm(data) ** 2),
        lam=3e-3,
        rho=0.05,
        admm_iterations=15,
        cg_iterations=10,
    )
    u, history = admm.run(progress=False), admm.history

    def nrmse(x: np.ndarray) -> float:
        return _nrmse(x, u_true)

    objective = [h["objective"] for h in history]
    assert objective[-1] < objective[0] and all(
        b <= a * 1.001 for a, b in zip(objective, objective[1:])
    )
    # measured: U 0.077, U0 0.585
    assert nrmse(u) < 0.12, nrmse(u)
    assert nrmse(u) < 0.3 * nrmse(u0), (nrmse(u), nrmse(u0))


def test_temporal_unmixing_undoes_uneven_frame_visits_and_warm_starts_admm():
    # Frames visited unevenly (odds 1 to 100): U0 mixes the basis images through the Gram
    # matrix of Φ over the readouts; unmixing it gives a better start for the iterations.
    odds = np.geomspace(1, 100, 16)
    enc, data, u_true = _subspace_problem(600, odds / odds.sum())
    u0 = enc.back_project(data, radial_density(enc.traj))
    start = enc.temporal_unmix(u0)
    # measured: U0 0.32, unmixed 0.20 (the rest is the gridding error of the back-projection)
    assert _nrmse(start, u_true) < 0.75 * _nrmse(u0, u_true)

    def solve(x0: np.ndarray | None) -> np.ndarray:
        args = (enc.normal(), enc.adjoint(data), float(np.linalg.norm(data) ** 2), 3e-3, 0.05)
        return SpatialFactorADMM(*args, 2, 3, x0=x0).run(progress=False)

    # measured after 2 ADMM × 3 CG: cold start 0.19, warm start 0.11
    assert _nrmse(solve(start), u_true) < 0.7 * _nrmse(solve(None), u_true)


def test_torch_admm_matches_the_numpy_solver():
    """The same ADMM (15 × 10, from the temporal unmixing's warm start) on tensors and on NumPy
    arrays gives the same U, to float32 rounding."""

    def solve(device: str | None) -> np.ndarray:
        enc, data, _ = _subspace_problem(60, device=device)
        data = enc.asarray(data)
        u0 = enc.back_project(data, radial_density(enc.traj))
        args = (enc.normal(), enc.adjoint(data), float(np.linalg.norm(to_numpy(data)) ** 2))
        u = SpatialFactorADMM(*args, 3e-3, 0.05, 15, 10, enc.temporal_unmix(u0)).run(False)
        return to_numpy(u)

    reference, on_torch = solve(None), solve("cpu")
    # measured: 1e-7 … 1e-6 (float32 FFTs and matmuls in a different order)
    assert np.linalg.norm(on_torch - reference) / np.linalg.norm(reference) < 1e-4
