"""Linear operators of the MT-MRI reconstruction: adjointness, linearity, NUFFT vs DFT, Toeplitz.

Every operator is checked on both back ends: torch tensors (what the reconstruction computes
with) and NumPy arrays (the reference implementation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrilearn.errors import DataError
from mrilearn.physics import toeplitz
from mrilearn.physics.encoding import Coil, SubspaceEncoding, SubspaceSampling
from mrilearn.physics.linop import Compose, FiniteDifference, Linop, inner, to_backend, to_numpy
from mrilearn.physics.nufft import NUFFT, check_trajectory
from mrilearn.physics.toeplitz import ToeplitzNormal

N, L, C, R, S = 10, 3, 2, 7, 12
RNG = np.random.default_rng(0)
BACKENDS = {"numpy": None, "torch": torch.device("cpu")}
CUDA = pytest.param(
    "cuda",
    marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")],
)


def crandn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


TRAJ = RNG.uniform(-np.pi, np.pi, (R, S, 2))
PHI = crandn(L, R)
MAPS = crandn(C, N, N)


def _encoding(device: torch.device | None) -> SubspaceEncoding:
    return SubspaceEncoding(TRAJ, PHI, MAPS, eps=1e-12, dtype=np.complex128, device=device)


OPERATORS = {
    "nufft": lambda d: NUFFT(TRAJ, (N, N), (L, C), eps=1e-12, dtype=np.complex128),
    "coil": lambda d: Coil(to_backend(MAPS, d), L),
    "subspace_sampling": lambda d: SubspaceSampling(to_backend(PHI, d), C, S),
    "finite_difference": lambda d: FiniteDifference((L, N, N)),
    "encoding": _encoding,
    "encoding_adjoint": lambda d: _encoding(d).H,
    "nufft_normal": lambda d: Compose(_encoding(d).H, _encoding(d)),
    "toeplitz_normal": lambda d: ToeplitzNormal.from_trajectory(
        TRAJ, PHI, MAPS, eps=1e-12, dtype=np.complex128, device=d
    ),
    "admm_system": lambda d: (
        2.0 * _encoding(d).normal() + 0.3 * FiniteDifference((L, N, N)).normal()
    ),
}


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("name", list(OPERATORS))
def test_adjoint_and_linearity(name: str, backend: str):
    device = BACKENDS[backend]
    op: Linop = OPERATORS[name](device)
    x, y = to_backend(crandn(*op.ishape), device), to_backend(crandn(*op.oshape), device)
    ax, ahy = op.forward(x), op.adjoint(y)
    assert type(ax) is type(x) and type(ahy) is type(y)  # computed on the back end's arrays
    assert ax.shape == op.oshape and ahy.shape == op.ishape
    lhs, rhs = complex(inner(ax, y)), complex(inner(x, ahy))
    assert abs(lhs - rhs) <= 1e-9 * abs(lhs)
    x2, a, b = to_backend(crandn(*op.ishape), device), 0.7 - 0.2j, -1.3 + 0.5j
    assert np.allclose(
        to_numpy(op.forward(a * x + b * x2)),
        to_numpy(a * ax + b * op.forward(x2)),
        rtol=1e-9,
        atol=1e-9,
    )


def test_nufft_matches_direct_dft():
    f = crandn(N, N)
    n = np.arange(N) - N // 2
    k = TRAJ.reshape(-1, 2)
    dft = np.exp(-1j * (k[:, 0, None, None] * n[:, None] + k[:, 1, None, None] * n[None, :]))
    expected = dft.reshape(len(k), -1) @ f.ravel()
    nufft = NUFFT(TRAJ, (N, N), eps=1e-12, dtype=np.complex128)
    for backend in BACKENDS.values():
        got = to_numpy(nufft.forward(to_backend(f, backend))).ravel()
        assert np.abs(got - expected).max() <= 1e-10 * np.abs(expected).max()


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-10), (np.complex64, 1e-4)])
def test_toeplitz_normal_equals_nufft_normal(dtype, tol, backend):
    enc = SubspaceEncoding(
        TRAJ,
        PHI,
        MAPS,
        eps=1e-12 if dtype == np.complex128 else 1e-6,
        dtype=dtype,
        device=BACKENDS[backend],
    )
    u = enc.asarray(crandn(L, N, N).astype(dtype))
    direct = to_numpy(enc.adjoint(enc.forward(u)))
    toeplitz = to_numpy(enc.normal().forward(u))
    assert np.linalg.norm(toeplitz - direct) <= tol * np.linalg.norm(direct)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_torch_operators_equal_the_numpy_reference(device: str):
    """The same E, E*, E*E (Toeplitz) and Ψ on tensors and on NumPy arrays, in complex64."""
    ref, dev = (SubspaceEncoding(TRAJ, PHI, MAPS, device=d) for d in (None, device))
    u, d = crandn(L, N, N).astype(np.complex64), crandn(C, R, S).astype(np.complex64)
    psi = FiniteDifference((L, N, N))
    pairs = [
        (ref.forward(u), dev.forward(dev.asarray(u))),
        (ref.adjoint(d), dev.adjoint(dev.asarray(d))),
        (ref.normal().forward(u), dev.normal().forward(dev.asarray(u))),
        (psi.forward(u), psi.forward(dev.asarray(u))),
    ]
    for expected, got in pairs:
        assert got.dtype == torch.complex64
        assert np.linalg.norm(to_numpy(got) - expected) <= 1e-6 * np.linalg.norm(expected)


@pytest.mark.parametrize("cache_bytes", [1, 25_600, 10**9])
def test_toeplitz_pieces_on_the_cpu_do_not_change_the_result(monkeypatch, cache_bytes):
    """One image and one frequency per call, uneven pieces (2 + 1 images, 76 frequencies per
    matmul), and everything at once all give the NumPy reference's E*E."""
    monkeypatch.setattr(toeplitz, "CPU_CACHE_BYTES", cache_bytes)
    reference = ToeplitzNormal.from_trajectory(TRAJ, PHI, MAPS, eps=1e-12, dtype=np.complex128)
    u = crandn(L, N, N)
    on_torch = reference.to("cpu")
    for _ in range(2):  # the second call reuses the buffers
        got = to_numpy(on_torch.forward(torch.from_numpy(u)))
        assert np.linalg.norm(got - reference.forward(u)) <= 1e-12 * np.linalg.norm(got)


def test_torch_operators_are_differentiable():
    """Autograd through finufft and the Toeplitz operator gives their adjoints (gradcheck)."""
    enc = _encoding(torch.device("cpu"))
    normal = enc.normal()
    for op in (enc, enc.H, normal):
        x = torch.from_numpy(crandn(*op.ishape)).requires_grad_()
        assert torch.autograd.gradcheck(op.forward, (x,), fast_mode=True)
    u = torch.from_numpy(crandn(L, N, N)).requires_grad_()
    assert torch.autograd.gradgradcheck(normal.forward, (u,), fast_mode=True)


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
