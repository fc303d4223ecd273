"""Iterative solvers in SigPy's ``update()/done()/run()`` style: CG and ADMM.

ADMM solves the spatial-factor problem of §2.3.2,

    U = argmin ‖d − E_Φ(U)‖² + λ ‖Ψ U‖₁,   split as Ψ U = z,

with three steps per iteration: (1) U by CG on (2 E*E + ρ Ψ*Ψ) U = 2 E*d + ρ Ψ*(z − y/ρ);
(2) z = S_{λ/ρ}(Ψ U + y/ρ) (complex soft-thresholding); (3) y ← y + ρ (Ψ U − z).
It needs only E*E (the Toeplitz normal operator), E*d and ‖d‖², so no NUFFT runs inside.

Both run on whatever array type the operator and right-hand side use: torch tensors on any
device (the reconstruction) or NumPy arrays (the reference). On tensors the step sizes stay
0-d tensors, so a solve of fixed length is differentiable end to end (unrolled); the stopping
test and the logged scalars are plain floats.
"""

from __future__ import annotations

import logging

import numpy as np

from mrilearn.physics.linop import Array, Linop, array_module, clone_like, inner, norm, to_float
from mrilearn.progress import progress_bar

logger = logging.getLogger(__name__)


def soft_threshold(x: Array, tau: float) -> Array:
    """Complex soft-thresholding: x · max(1 − τ/|x|, 0)."""
    return x * (1 - tau / abs(x).clip(1e-30)).clip(0)


def max_eigenvalue(op: Linop, like: Array, iterations: int = 15) -> float:
    """Largest eigenvalue of a Hermitian PSD operator by power iteration (start: seeded noise
    shaped like ``like``, the same numbers on every back end)."""
    x = clone_like(np.random.default_rng(0).standard_normal(like.shape), like)
    value = 1.0
    for _ in range(iterations):
        y = op.forward(x)
        value = norm(y) / norm(x)
        x = y / norm(y)
    return value


class Alg:
    """An iterative algorithm: ``update()`` one step, ``done()`` when finished, ``run()`` all."""

    max_iter: int
    iteration: int = 0
    desc: str = "iterations"

    def update(self) -> None:
        raise NotImplementedError

    def done(self) -> bool:
        return self.iteration >= self.max_iter

    def status(self) -> dict[str, float]:
        """Scalars shown on the progress bar after each update."""
        return {}

    def run(self, progress: bool | None = None) -> Array:
        """Iterate until done with a tqdm bar (``None``: only on a terminal); return the result."""
        with progress_bar(total=self.max_iter, desc=self.desc, enabled=progress) as bar:
            while not self.done():
                self.update()
                bar.update(1)
                bar.set_postfix(self.status(), refresh=False)
        return self.result()

    def result(self) -> Array:
        raise NotImplementedError


class ConjugateGradient(Alg):
    """Solve A x = b for a Hermitian positive (semi-)definite Linop A, from ``x0``.

    Stops after ``max_iter`` steps or when ‖r‖ ≤ tol · ‖b‖.
    """

    desc = "CG"

    def __init__(self, a: Linop, b: Array, x0: Array, max_iter: int = 20, tol: float = 0.0) -> None:
        self.a, self.b, self.max_iter, self.tol = a, b, max_iter, tol
        self.x = clone_like(x0, b)
        self.r = b - a.forward(self.x)
        self.p = self.r
        self.rr = inner(self.r, self.r).real
        self.b_norm = norm(b)
        self.iteration = 0

    def update(self) -> None:
        # Out of place (x + ..., not x += ...) so that autograd can differentiate the steps.
        ap = self.a.forward(self.p)
        step = self.rr / max(inner(self.p, ap).real, 1e-300)
        self.x = self.x + step * self.p
        self.r = self.r - step * ap
        rr_new = inner(self.r, self.r).real
        self.p = self.r + (rr_new / max(self.rr, 1e-300)) * self.p
        self.rr = rr_new
        self.iteration += 1

    def done(self) -> bool:
        converged = to_float(self.rr) ** 0.5 <= self.tol * self.b_norm
        return self.iteration >= self.max_iter or converged

    def status(self) -> dict[str, float]:
        return {"residual": to_float(self.rr) ** 0.5 / max(self.b_norm, 1e-300)}

    def result(self) -> Array:
        return self.x


class ADMM(Alg):
    """ADMM for ‖d − E U‖² + λ‖Ψ U‖₁ given ``normal`` = E*E, ``rhs`` = E*d, ``data_norm2`` = ‖d‖².

    ``history`` logs per iteration the objective, the data term and the primal residual
    ‖Ψ U − z‖ / ‖Ψ U‖.
    """

    desc = "ADMM"

    def __init__(
        self,
        normal: Linop,
        rhs: Array,
        psi: Linop,
        lam: float,
        rho: float,
        max_iter: int = 20,
        cg_iter: int = 20,
        data_norm2: float = 0.0,
        x0: Array | None = None,
    ) -> None:
        self.normal, self.rhs, self.psi = normal, rhs, psi
        self.lam, self.rho, self.max_iter, self.cg_iter = lam, rho, max_iter, cg_iter
        self.data_norm2 = data_norm2
        self.x = array_module(rhs).zeros_like(rhs) if x0 is None else clone_like(x0, rhs)
        self.z = psi.forward(self.x)
        self.y = array_module(self.z).zeros_like(self.z)
        self.system = 2.0 * normal + rho * psi.normal()
        self.iteration = 0
        self.history: list[dict[str, float]] = []

    def objective(self, x: Array) -> tuple[float, float]:
        """(objective, data term) at ``x``, from E*E and E*d only."""
        fit = inner(x, self.normal.forward(x)).real - 2 * inner(x, self.rhs).real
        data = self.data_norm2 + to_float(fit)
        return data + self.lam * to_float(abs(self.psi.forward(x)).sum()), data

    def update(self) -> None:
        b = 2 * self.rhs + self.rho * self.psi.adjoint(self.z - self.y / self.rho)
        self.x = ConjugateGradient(self.system, b, self.x, self.cg_iter).run(progress=False)
        psi_x = self.psi.forward(self.x)
        self.z = soft_threshold(psi_x + self.y / self.rho, self.lam / self.rho)
        self.y = self.y + self.rho * (psi_x - self.z)
        self.iteration += 1
        objective, data = self.objective(self.x)
        residual = norm(psi_x - self.z) / max(norm(psi_x), 1e-30)
        self.history.append(
            {
                "iteration": self.iteration,
                "objective": objective,
                "data": data,
                "residual": residual,
            }
        )
        logger.debug("ADMM %d: objective %.6g, residual %.3g", self.iteration, objective, residual)

    def status(self) -> dict[str, float]:
        return {"objective": self.history[-1]["objective"]} if self.history else {}

    def result(self) -> Array:
        return self.x
