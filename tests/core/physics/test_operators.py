"""Linear operators of the MT-MRI reconstruction: adjointness, linearity, NUFFT vs DFT, Toeplitz."""

from __future__ import annotations

import numpy as np
import pytest

from mrilearn.errors import DataError
from mrilearn.physics.linop import Compose, FiniteDifference, Linop, inner
from mrilearn.physics.nufft import (
    NUFFT,
    Coil,
    SubspaceEncoding,
    SubspaceSampling,
    ToeplitzNormal,
    check_trajectory,
)

N, L, C, R, S = 10, 3, 2, 7, 12
RNG = np.random.default_rng(0)


def crandn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


TRAJ = RNG.uniform(-np.pi, np.pi, (R, S, 2))
PHI = crandn(L, R)
MAPS = crandn(C, N, N)


def _encoding() -> SubspaceEncoding:
    return SubspaceEncoding(TRAJ, PHI, MAPS, eps=1e-12, dtype=np.complex128)


OPERATORS = {
    "nufft": lambda: NUFFT(TRAJ, (N, N), (L, C), eps=1e-12, dtype=np.complex128),
    "coil": lambda: Coil(MAPS, L),
    "subspace_sampling": lambda: SubspaceSampling(PHI, C, S),
    "finite_difference": lambda: FiniteDifference((L, N, N)),
    "encoding": _encoding,
    "encoding_adjoint": lambda: _encoding().H,
    "nufft_normal": lambda: Compose(_encoding().H, _encoding()),
    "toeplitz_normal": lambda: ToeplitzNormal(TRAJ, PHI, MAPS, eps=1e-12, dtype=np.complex128),
    "admm_system": lambda: 2.0 * _encoding().normal() + 0.3 * FiniteDifference((L, N, N)).normal(),
}


@pytest.mark.parametrize("name", list(OPERATORS))
def test_adjoint_and_linearity(name: str):
    op: Linop = OPERATORS[name]()
    x, y = crandn(*op.ishape), crandn(*op.oshape)
    ax, ahy = op.forward(x), op.adjoint(y)
    assert ax.shape == op.oshape and ahy.shape == op.ishape
    lhs, rhs = inner(ax, y), inner(x, ahy)
    assert abs(lhs - rhs) <= 1e-9 * abs(lhs)
    x2, a, b = crandn(*op.ishape), 0.7 - 0.2j, -1.3 + 0.5j
    assert np.allclose(
        op.forward(a * x + b * x2), a * ax + b * op.forward(x2), rtol=1e-9, atol=1e-9
    )


def test_nufft_matches_direct_dft():
    f = crandn(N, N)
    n = np.arange(N) - N // 2
    k = TRAJ.reshape(-1, 2)
    dft = np.exp(-1j * (k[:, 0, None, None] * n[:, None] + k[:, 1, None, None] * n[None, :]))
    expected = dft.reshape(len(k), -1) @ f.ravel()
    got = NUFFT(TRAJ, (N, N), eps=1e-12, dtype=np.complex128).forward(f).ravel()
    assert np.abs(got - expected).max() <= 1e-10 * np.abs(expected).max()


@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-10), (np.complex64, 1e-4)])
def test_toeplitz_normal_equals_nufft_normal(dtype, tol):
    enc = SubspaceEncoding(
        TRAJ, PHI, MAPS, eps=1e-12 if dtype == np.complex128 else 1e-6, dtype=dtype
    )
    u = crandn(L, N, N).astype(dtype)
    direct = enc.adjoint(enc.forward(u))
    toeplitz = enc.normal().forward(u)
    assert np.linalg.norm(toeplitz - direct) <= tol * np.linalg.norm(direct)


@pytest.mark.parametrize(
    "traj, message",
    [
        (np.zeros((R, S)), "shape"),
        (np.full((R, S, 2), 4.0), "[-pi, pi]"),
        (np.full((R, S, 2), np.nan), "NaN"),
    ],
)
def test_bad_trajectory_is_a_clear_error(traj, message):
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_trajectory(traj)
    with pytest.raises(DataError, match="readouts"):
        check_trajectory(TRAJ, R + 1)
