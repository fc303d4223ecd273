"""The subspace encoding E_Φ of §6.2.2 and its parts: coil sensitivities S, the per-readout
Φ-projection, and the NUFFT F between them.

``E_Φ(U) = Ω F S (U Φ)`` never forms the image series: all L × C basis-coil images are
transformed once at every sample, and each readout r then contracts its L values with its own
temporal coefficients Φ[:, r]. Its normal operator E_Φ*E_Φ is applied by Toeplitz embedding
(``ToeplitzNormal``: FFTs on a 2N grid with L×L kernels), so CG iterations need no NUFFT.

``SubspaceEncoding(..., device=...)`` computes with torch tensors on that device (the NUFFT
itself on the CPU, with finufft); ``device=None`` gives the NumPy reference implementation,
kept to check the torch one against.
"""

from __future__ import annotations

import numpy as np
import torch

from mrilearn.physics.linop import Array, Compose, Linop, array_module, to_backend
from mrilearn.physics.nufft import NUFFT, check_trajectory
from mrilearn.physics.toeplitz import ToeplitzNormal


class Coil(Linop):
    """S: (L, X, Y) images → (L, C, X, Y) coil images, with ``maps`` (C, X, Y)."""

    def __init__(self, maps: Array, n_images: int) -> None:
        self.maps = maps
        super().__init__((n_images, *maps.shape), (n_images, *maps.shape[1:]))

    def forward(self, x: Array) -> Array:
        return x[:, None] * self.maps[None]

    def adjoint(self, y: Array) -> Array:
        return array_module(y).einsum("lcxy,cxy->lxy", y, self.maps.conj())

    def combine(self, y: Array) -> Array:
        """S⁺: the least-squares coil combination Σ conj(s_c) y_c / Σ |s_c|²."""
        norm = (abs(self.maps) ** 2).sum(0)
        return self.adjoint(y) / array_module(y).maximum(norm, 1e-6 * norm.max())


class SubspaceSampling(Linop):
    """Φ-projection per readout: (L, C, R, S) basis k-space → (C, R, S) data, d_r = Σ_l Φ[l, r] y_l."""

    def __init__(self, phi: Array, n_coils: int, n_samples: int) -> None:
        self.phi = phi
        n_basis, n_readouts = phi.shape
        super().__init__(
            (n_coils, n_readouts, n_samples), (n_basis, n_coils, n_readouts, n_samples)
        )

    def forward(self, x: Array) -> Array:
        return array_module(x).einsum("lr,lcrs->crs", self.phi, x)

    def adjoint(self, y: Array) -> Array:
        return self.phi.conj()[:, None, :, None] * y[None]


class SubspaceEncoding(Compose):
    """E_Φ = Ω F S (· Φ): (L, X, Y) basis images → (C, R, S) multi-coil radial data (§6.2.2).

    Args:
        traj: (R, S, 2) trajectory of the imaging readouts, radians/pixel.
        phi: (L, R) temporal coefficients of each imaging readout.
        maps: (C, X, Y) coil sensitivities.
        device: torch device to compute on; None: NumPy arrays (the reference).

    ``traj``, ``phi`` and ``maps`` stay NumPy arrays as attributes; :meth:`asarray` converts
    data to the back end's array type.
    """

    def __init__(
        self,
        traj: np.ndarray,
        phi: np.ndarray,
        maps: np.ndarray,
        eps: float = 1e-5,
        dtype: type = np.complex64,
        device: str | torch.device | None = None,
    ) -> None:
        traj = check_trajectory(traj, phi.shape[1])
        self.traj, self.eps, self.dtype = traj, eps, dtype
        self.phi, self.maps = np.asarray(phi, dtype), np.asarray(maps, dtype)
        self.device = None if device is None else torch.device(device)
        n_basis, n_coils = self.phi.shape[0], self.maps.shape[0]
        self.coil = Coil(self.asarray(self.maps), n_basis)
        self.nufft = NUFFT(traj, self.maps.shape[1:], (n_basis, n_coils), eps, dtype)
        self.sampling = SubspaceSampling(self.asarray(self.phi), n_coils, traj.shape[1])
        super().__init__(self.sampling, Compose(self.nufft, self.coil))
        self._normal: ToeplitzNormal | None = None

    def asarray(self, x: Array) -> Array:
        """``x`` as this encoding's array type: a tensor on its device, or a NumPy array."""
        return to_backend(x, self.device)

    def normal(self) -> ToeplitzNormal:
        """The Toeplitz-embedded E_Φ*E_Φ on the same back end (built once, then cached)."""
        if self._normal is None:
            self._normal = ToeplitzNormal.from_trajectory(
                self.traj, self.phi, self.maps, self.eps, self.dtype, self.device
            )
        return self._normal

    def back_project(self, data: Array, dcf: Array) -> Array:
        """U0 = E*_{Φ,pc}(d) = S⁺ F* W Ω*(d) Φ^H: density-compensated, coil-combined (§6.2.3).

        ``data`` (C, R, S); ``dcf`` (R, S) are the density weights W. Returns (L, X, Y).
        """
        weighted = self.sampling.adjoint(self.asarray(data) * self.asarray(dcf)[None])
        return self.coil.combine(self.nufft.adjoint(weighted))

    def temporal_unmix(self, u0: Array) -> Array:
        """G⁻¹ U0 with G = conj(Φ) Φᵀ / R, the temporal Gram matrix of the readouts.

        Each readout back-projects its data onto conj(Φ_r), so U0 ≈ G U: readouts visit the
        (TI, cardiac, respiratory) frames unevenly, and Φ is orthonormal over frames, not
        readouts. Undoing G gives a start for the iterations with U's scale and contrast.
        """
        gram = self.phi.conj() @ self.phi.T / self.phi.shape[1]
        gram += 1e-6 * np.trace(gram).real / len(gram) * np.eye(len(gram))  # Φ rows never read
        flat = u0.reshape(u0.shape[0], -1)
        unmixed = array_module(u0).linalg.solve(self.asarray(gram.astype(self.dtype)), flat)
        return unmixed.reshape(u0.shape)
