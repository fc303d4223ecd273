"""The non-uniform FFT (finufft), its trajectory checks and radial density compensation.

Conventions. Images are (..., X, Y) on an N×N grid whose pixel (i, j) sits at mode
(i − N/2, j − N/2). A trajectory is (R, S, 2) in radians per pixel, within [−π, π]: R
readouts of S samples, last axis (kx, ky). The forward NUFFT is finufft type 2,
``d(k) = Σ_n f_n exp(−i k·n)``; the adjoint is type 1 with the opposite sign. Many transforms
(basis images × coils) share one plan (``n_trans``).

finufft computes on the CPU with NumPy arrays. Given a torch tensor (any device), ``NUFFT``
copies it to the CPU, transforms, and returns a tensor on the input's device, through an
autograd function whose backward is the adjoint transform, so gradients flow through it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import finufft
import numpy as np
import torch

from mrilearn.errors import DataError
from mrilearn.physics.linop import Array, Linop, to_numpy

logger = logging.getLogger(__name__)


def check_trajectory(traj: np.ndarray, n_readouts: int | None = None) -> np.ndarray:
    """Validate an (R, S, 2) trajectory in radians/pixel within [−π, π]; return it as float."""
    traj = np.asarray(traj)
    if traj.ndim != 3 or traj.shape[-1] != 2:
        raise DataError(f"trajectory must have shape (readouts, samples, 2), got {traj.shape}")
    if n_readouts is not None and traj.shape[0] != n_readouts:
        raise DataError(f"trajectory has {traj.shape[0]} readouts but k-space has {n_readouts}")
    if not np.all(np.isfinite(traj)):
        raise DataError("trajectory holds NaN or infinite values")
    if np.abs(traj).max() > np.pi * (1 + 1e-6):
        raise DataError(
            f"trajectory must lie in [-pi, pi] (radians per pixel); max |k| = "
            f"{np.abs(traj).max():.4g} — rescale it by pi / k_max"
        )
    return traj


def _real_dtype(dtype: np.dtype) -> type:
    return np.float32 if np.dtype(dtype) == np.complex64 else np.float64


class NUFFT(Linop):
    """F: (*batch, N, N) images → (*batch, R, S) samples on ``traj`` (finufft type 2 / type 1).

    ``eps`` is finufft's relative tolerance; ``dtype`` complex64 (fast) or complex128 (exact
    adjointness to ~1e-12 for tests). Takes NumPy arrays or torch tensors (module docstring).
    """

    def __init__(
        self,
        traj: np.ndarray,
        image_shape: Sequence[int],
        batch: Sequence[int] = (),
        eps: float = 1e-5,
        dtype: type = np.complex64,
    ) -> None:
        traj = check_trajectory(traj)
        self.batch = tuple(batch)
        self.image_shape = tuple(int(n) for n in image_shape)
        super().__init__((*self.batch, *traj.shape[:2]), (*self.batch, *self.image_shape))
        self.dtype = np.dtype(dtype)
        real = _real_dtype(self.dtype)
        self._x = np.ascontiguousarray(traj[..., 0].ravel(), dtype=real)
        self._y = np.ascontiguousarray(traj[..., 1].ravel(), dtype=real)
        self.n_trans = int(np.prod(self.batch, dtype=np.int64))
        self.eps = eps
        self._plans: dict[int, finufft.Plan] = {}

    def _plan(self, kind: int) -> finufft.Plan:
        if kind not in self._plans:
            plan = finufft.Plan(
                kind, self.image_shape, n_trans=self.n_trans, eps=self.eps, dtype=self.dtype.name
            )
            plan.setpts(self._x, self._y)
            self._plans[kind] = plan
        return self._plans[kind]

    def transform(self, x: np.ndarray, adjoint: bool) -> np.ndarray:
        """Type 2 (``adjoint=False``: images → samples) or type 1 on NumPy arrays."""
        shape_in, shape_out = (self.oshape, self.ishape) if adjoint else (self.ishape, self.oshape)
        if x.shape != shape_in:
            raise ValueError(f"{self}: expected an array of shape {shape_in}, got {x.shape}")
        flat = np.ascontiguousarray(x, dtype=self.dtype).reshape(self.n_trans, -1)
        if not adjoint:
            flat = flat.reshape(self.n_trans, *self.image_shape)
        out = self._plan(1 if adjoint else 2).execute(flat[0] if self.n_trans == 1 else flat)
        return out.reshape(shape_out)

    def forward(self, x: Array) -> Array:
        if isinstance(x, torch.Tensor):
            return _NufftFunction.apply(x, self, False)
        return self.transform(x, adjoint=False)

    def adjoint(self, y: Array) -> Array:
        if isinstance(y, torch.Tensor):
            return _NufftFunction.apply(y, self, True)
        return self.transform(y, adjoint=True)


class _NufftFunction(torch.autograd.Function):
    """finufft on the CPU for a tensor on any device; the backward pass is the other transform
    (for a linear map A, PyTorch's complex vector-Jacobian product is A^H applied to the
    incoming gradient)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, nufft: NUFFT, adjoint: bool) -> torch.Tensor:
        ctx.nufft, ctx.adjoint = nufft, adjoint
        out = torch.from_numpy(nufft.transform(to_numpy(x), adjoint))
        return out.to(device=x.device, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return _NufftFunction.apply(grad, ctx.nufft, not ctx.adjoint), None, None


def radial_density(traj: np.ndarray) -> np.ndarray:
    """Ramp density compensation for radial spokes: w ∝ |k| (floored at the centre).

    Normalised as the k-space area a sample represents divided by (2π)², so that the
    weighted adjoint of fully sampled data approximates the inverse Fourier transform.
    Returns (R, S) weights.
    """
    traj = check_trajectory(traj)
    radius = np.linalg.norm(traj, axis=-1)
    step = float(np.median(np.abs(np.diff(radius, axis=1))))
    n_spokes = traj.shape[0]
    area = np.maximum(radius, step / 4) * step * np.pi / n_spokes
    return (area / (2 * np.pi) ** 2).astype(np.float32)
