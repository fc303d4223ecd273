"""Non-Cartesian encoding: NUFFT (finufft), coil sensitivities, the subspace encoding E_Φ.

Conventions. Images are (..., X, Y) on an N×N grid whose pixel (i, j) sits at mode
(i − N/2, j − N/2). A trajectory is (R, S, 2) in radians per pixel, within [−π, π]: R
readouts of S samples, last axis (kx, ky). The forward NUFFT is finufft type 2,
``d(k) = Σ_n f_n exp(−i k·n)``; the adjoint is type 1 with the opposite sign. Many transforms
(basis images × coils) share one plan (``n_trans``).

The subspace encoding of §6.2.2, ``E_Φ(U) = Ω F S (U Φ)``, never forms the image series: all
L × C basis-coil images are transformed once at every sample, and each readout r then
contracts its L values with its own temporal coefficients Φ[:, r]. Its normal operator
E_Φ*E_Φ is applied by Toeplitz embedding (FFTs on a 2N grid with L×L kernels), so CG
iterations need no NUFFT.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import finufft
import numpy as np
import scipy.fft

from mrilearn.errors import DataError
from mrilearn.physics.linop import Compose, Linop

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
    adjointness to ~1e-12 for tests).
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

    def forward(self, x: np.ndarray) -> np.ndarray:
        flat = np.ascontiguousarray(x, dtype=self.dtype).reshape(self.n_trans, *self.image_shape)
        out = self._plan(2).execute(flat[0] if self.n_trans == 1 else flat)
        return out.reshape(self.oshape)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        flat = np.ascontiguousarray(y, dtype=self.dtype).reshape(self.n_trans, -1)
        out = self._plan(1).execute(flat[0] if self.n_trans == 1 else flat)
        return out.reshape(self.ishape)


class Coil(Linop):
    """S: (L, X, Y) images → (L, C, X, Y) coil images, with ``maps`` (C, X, Y)."""

    def __init__(self, maps: np.ndarray, n_images: int) -> None:
        self.maps = np.asarray(maps)
        super().__init__((n_images, *self.maps.shape), (n_images, *self.maps.shape[1:]))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x[:, None] * self.maps[None]

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return np.einsum("lcxy,cxy->lxy", y, self.maps.conj())

    def combine(self, y: np.ndarray) -> np.ndarray:
        """S⁺: the least-squares coil combination Σ conj(s_c) y_c / Σ |s_c|²."""
        norm = np.sum(np.abs(self.maps) ** 2, axis=0)
        return self.adjoint(y) / np.maximum(norm, 1e-6 * norm.max())


class SubspaceSampling(Linop):
    """Φ-projection per readout: (L, C, R, S) basis k-space → (C, R, S) data, d_r = Σ_l Φ[l, r] y_l."""

    def __init__(self, phi: np.ndarray, n_coils: int, n_samples: int) -> None:
        self.phi = np.asarray(phi)
        n_basis, n_readouts = self.phi.shape
        super().__init__(
            (n_coils, n_readouts, n_samples), (n_basis, n_coils, n_readouts, n_samples)
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.einsum("lr,lcrs->crs", self.phi, x)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self.phi.conj()[:, None, :, None] * y[None]


class ToeplitzNormal(Linop):
    """E_Φ*E_Φ by Toeplitz embedding: (L, X, Y) → (L, X, Y), no NUFFT per application.

    (E*E U)_l = S* Σ_l' K_ll' S U_l', where K_ll' = F* diag(conj Φ_l Φ_l') F is a convolution
    whose kernel h_ll'(p) = Σ_j conj Φ_l,r(j) Φ_l',r(j) exp(i k_j·p) is one type-1 NUFFT onto
    a 2N grid. K_l'l = K_ll'^H, so only l ≤ l' are transformed.
    """

    def __init__(
        self,
        traj: np.ndarray,
        phi: np.ndarray,
        maps: np.ndarray,
        eps: float = 1e-5,
        dtype: type = np.complex64,
        chunk: int = 16,
    ) -> None:
        maps = np.asarray(maps)
        n_basis = phi.shape[0]
        n = maps.shape[1:]
        super().__init__((n_basis, *n), (n_basis, *n))
        self.coil = Coil(maps.astype(dtype), n_basis)
        self.dtype = np.dtype(dtype)
        pairs = [(a, b) for a in range(n_basis) for b in range(a, n_basis)]
        samples = traj.shape[1]
        kernels = np.zeros((n_basis, n_basis, 2 * n[0], 2 * n[1]), dtype=self.dtype)
        for start in range(0, len(pairs), chunk):
            block = pairs[start : start + chunk]
            weights = np.stack([phi[a].conj() * phi[b] for a, b in block])
            weights = np.repeat(weights, samples, axis=1)
            nufft = NUFFT(traj, (2 * n[0], 2 * n[1]), (len(block),), eps, dtype)
            h = nufft.adjoint(weights.reshape(len(block), *traj.shape[:2]))
            spectra = scipy.fft.fft2(scipy.fft.ifftshift(h, axes=(-2, -1)))
            for (a, b), spec in zip(block, spectra):
                kernels[a, b] = spec
                kernels[b, a] = spec.conj()
        # (2N·2N, L, L) so that one batched matmul mixes the basis images per frequency.
        self._kernels = np.ascontiguousarray(
            kernels.reshape(n_basis, n_basis, -1).transpose(2, 0, 1)
        )

    def _apply(self, x: np.ndarray) -> np.ndarray:
        n_basis, nx, ny = self.ishape
        coil_images = self.coil.forward(x)  # (L, C, X, Y)
        # Zero-padded 2-D FFT in two passes, skipping the all-zero half in the first pass
        # (and the cropped half in the inverse): 25 % fewer 1-D transforms than fft2(s=...).
        spectra = scipy.fft.fft(scipy.fft.fft(coil_images, 2 * ny, axis=-1), 2 * nx, axis=-2)
        mixed = self._kernels @ spectra.reshape(n_basis, -1, 4 * nx * ny).transpose(2, 0, 1)
        mixed = mixed.transpose(1, 2, 0).reshape(spectra.shape)
        out = scipy.fft.ifft(scipy.fft.ifft(mixed, axis=-2)[..., :nx, :], axis=-1)[..., :ny]
        out = out.astype(self.dtype, copy=False)
        return self.coil.adjoint(out)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self._apply(x)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self._apply(y)


class SubspaceEncoding(Compose):
    """E_Φ = Ω F S (· Φ): (L, X, Y) basis images → (C, R, S) multi-coil radial data (§6.2.2).

    Args:
        traj: (R, S, 2) trajectory of the imaging readouts, radians/pixel.
        phi: (L, R) temporal coefficients of each imaging readout.
        maps: (C, X, Y) coil sensitivities.
    """

    def __init__(
        self,
        traj: np.ndarray,
        phi: np.ndarray,
        maps: np.ndarray,
        eps: float = 1e-5,
        dtype: type = np.complex64,
    ) -> None:
        traj = check_trajectory(traj, phi.shape[1])
        maps = np.asarray(maps, dtype=dtype)
        n_basis, n_coils = phi.shape[0], maps.shape[0]
        self.traj, self.phi, self.maps, self.eps, self.dtype = (
            traj,
            phi.astype(dtype),
            maps,
            eps,
            dtype,
        )
        self.coil = Coil(maps, n_basis)
        self.nufft = NUFFT(traj, maps.shape[1:], (n_basis, n_coils), eps, dtype)
        self.sampling = SubspaceSampling(self.phi, n_coils, traj.shape[1])
        super().__init__(self.sampling, Compose(self.nufft, self.coil))
        self._normal: ToeplitzNormal | None = None

    def normal(self) -> Linop:
        """The Toeplitz-embedded E_Φ*E_Φ (built once, then cached)."""
        if self._normal is None:
            self._normal = ToeplitzNormal(self.traj, self.phi, self.maps, self.eps, self.dtype)
        return self._normal

    def back_project(self, data: np.ndarray, dcf: np.ndarray) -> np.ndarray:
        """U0 = E*_{Φ,pc}(d) = S⁺ F* W Ω*(d) Φ^H: density-compensated, coil-combined (§6.2.3).

        ``dcf`` (R, S) are the density weights W. Returns (L, X, Y).
        """
        weighted = self.sampling.adjoint(np.asarray(data, self.dtype) * dcf[None])
        return self.coil.combine(self.nufft.adjoint(weighted))

    def temporal_unmix(self, u0: np.ndarray) -> np.ndarray:
        """G⁻¹ U0 with G = conj(Φ) Φᵀ / R, the temporal Gram matrix of the readouts.

        Each readout back-projects its data onto conj(Φ_r), so U0 ≈ G U: readouts visit the
        (TI, cardiac, respiratory) frames unevenly, and Φ is orthonormal over frames, not
        readouts. Undoing G gives a start for the iterations with U's scale and contrast.
        """
        gram = self.phi.conj() @ self.phi.T / self.phi.shape[1]
        gram += 1e-6 * np.trace(gram).real / len(gram) * np.eye(len(gram))  # Φ rows never read
        flat = u0.reshape(u0.shape[0], -1)
        return np.linalg.solve(gram, flat).reshape(u0.shape).astype(u0.dtype)


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
