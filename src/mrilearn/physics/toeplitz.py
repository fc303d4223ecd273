"""E_Φ*E_Φ by Toeplitz embedding: the normal operator of the subspace encoding without a NUFFT.

(E*E U)_l = S* Σ_l' K_ll' S U_l', where K_ll' = F* diag(conj Φ_l Φ_l') F is a convolution
whose kernel h_ll'(p) = Σ_j conj Φ_l,r(j) Φ_l',r(j) exp(i k_j·p) is one type-1 NUFFT onto a 2N
grid. Its spectrum, the (2N·2N, L, L) kernels, is computed once on the CPU with finufft
(:func:`toeplitz_kernels`); an application is then C·L zero-padded FFTs on the 2N grid, an
L × L mix per frequency for all coils at once, and C·L inverse FFTs.

On torch tensors (any device) the FFTs and the mix are batched over coils and basis images,
on the CPU in cache-sized pieces (about ``CPU_CACHE_BYTES`` per FFT call and per batched
matmul, into a spectrum buffer allocated once): at 160², 8 coils and L = 32 that is a basis
image's 8 coil images per FFT call and a few hundred frequencies per matmul, 1.5–2× faster
than one call over all L × C images and all frequencies, whose hundreds of megabytes of
temporaries fall out of the cache and are paged in afresh at every call. Elsewhere (CUDA)
each step is one call. The operator is Hermitian, so its autograd backward is the operator itself. The
NumPy path (scipy.fft) is the reference implementation the torch one is checked against.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import scipy.fft
import torch

from mrilearn.physics.linop import Array, Linop, to_backend
from mrilearn.physics.nufft import NUFFT

# The working set of one FFT call or one batched L×L matmul on the CPU (bench/mtmri_recon.py).
CPU_CACHE_BYTES = 4 * 2**20


def toeplitz_kernels(
    traj: np.ndarray,
    phi: np.ndarray,
    shape: tuple[int, int],
    eps: float = 1e-5,
    dtype: type = np.complex64,
    chunk: int = 16,
) -> np.ndarray:
    """The spectra of the L × L Toeplitz kernels, (2N·2N, L, L), for images of ``shape``.

    K_l'l = K_ll'^H, so only l ≤ l' are transformed, ``chunk`` pairs per NUFFT plan.
    """
    n_basis, samples = phi.shape[0], traj.shape[1]
    grid = (2 * shape[0], 2 * shape[1])
    pairs = [(a, b) for a in range(n_basis) for b in range(a, n_basis)]
    # (2N·2N, L, L) so that one batched matmul mixes the basis images per frequency.
    kernels = np.zeros((grid[0] * grid[1], n_basis, n_basis), dtype=dtype)
    for start in range(0, len(pairs), chunk):
        block = pairs[start : start + chunk]
        weights = np.stack([phi[a].conj() * phi[b] for a, b in block])
        weights = np.repeat(weights, samples, axis=1)
        nufft = NUFFT(traj, grid, (len(block),), eps, dtype)
        h = nufft.adjoint(weights.reshape(len(block), *traj.shape[:2]))
        spectra = scipy.fft.fft2(scipy.fft.ifftshift(h, axes=(-2, -1)))
        for (a, b), spec in zip(block, spectra.reshape(len(block), -1)):
            kernels[:, a, b] = spec
            kernels[:, b, a] = spec.conj()
    return kernels


class ToeplitzNormal(Linop):
    """E_Φ*E_Φ: (L, X, Y) → (L, X, Y) from ``kernels`` (2X·2Y, L, L) and ``maps`` (C, X, Y).

    Both are NumPy arrays (the reference) or tensors on one device; inputs must match. The
    torch path keeps a spectrum buffer of L·C·2X·2Y values between calls, so one operator
    must not be applied from two threads at once.
    """

    def __init__(self, kernels: Array, maps: Array) -> None:
        n_basis, n = kernels.shape[1], tuple(maps.shape[1:])
        if kernels.shape != (4 * n[0] * n[1], n_basis, n_basis):
            raise ValueError(f"kernels {tuple(kernels.shape)} do not fit maps {maps.shape}")
        super().__init__((n_basis, *n), (n_basis, *n))
        self.kernels, self.maps = kernels, maps
        self._buffers: _Workspace | None = None

    @classmethod
    def from_trajectory(
        cls,
        traj: np.ndarray,
        phi: np.ndarray,
        maps: np.ndarray,
        eps: float = 1e-5,
        dtype: type = np.complex64,
        device: str | torch.device | None = None,
    ) -> ToeplitzNormal:
        """Kernels computed with finufft on the CPU, then moved to ``device`` (None: NumPy)."""
        maps = np.asarray(maps, dtype)
        kernels = toeplitz_kernels(traj, phi, maps.shape[1:], eps, dtype)
        normal = cls(kernels, maps)
        return normal if device is None else normal.to(device)

    def to(self, device: str | torch.device) -> ToeplitzNormal:
        """This operator on torch tensors on ``device`` (no copy on the CPU)."""
        moved = copy.copy(self)
        device = torch.device(device)
        moved.kernels, moved.maps = to_backend(self.kernels, device), to_backend(self.maps, device)
        moved._buffers = None
        return moved

    def forward(self, x: Array) -> Array:
        if isinstance(x, torch.Tensor):
            return _Hermitian.apply(x, self)
        return self._apply_numpy(x)

    def adjoint(self, y: Array) -> Array:
        return self.forward(y)

    def _apply_numpy(self, x: np.ndarray) -> np.ndarray:
        n_basis, nx, ny = self.ishape
        coil_images = x[:, None] * self.maps[None]  # (L, C, X, Y)
        # Zero-padded 2-D FFT in two passes, skipping the all-zero half in the first pass
        # (and the cropped half in the inverse): 25 % fewer 1-D transforms than fft2(s=...).
        spectra = scipy.fft.fft(scipy.fft.fft(coil_images, 2 * ny, axis=-1), 2 * nx, axis=-2)
        mixed = self.kernels @ spectra.reshape(n_basis, -1, 4 * nx * ny).transpose(2, 0, 1)
        mixed = mixed.transpose(1, 2, 0).reshape(spectra.shape)
        out = scipy.fft.ifft(scipy.fft.ifft(mixed, axis=-2)[..., :nx, :], axis=-1)[..., :ny]
        out = out.astype(self.kernels.dtype, copy=False)
        return np.einsum("lcxy,cxy->lxy", out, self.maps.conj())

    def _apply_torch(self, x: torch.Tensor) -> torch.Tensor:
        n_basis, nx, ny = self.ishape
        images_per_call, block = self._pieces()
        work = self._workspace(images_per_call, block)
        for start in range(0, n_basis, images_per_call):
            part = slice(start, start + images_per_call)
            padded = work.padded[: min(images_per_call, n_basis - start)]
            torch.mul(x[part, None], self.maps, out=padded[..., :nx, :ny])
            torch.fft.fft2(padded, out=work.spectra[part])
        # The L×L mix of every frequency for all coils: (L, L) @ (L, C) per frequency, in
        # blocks copied to and from frequency-major order (buffers: no allocation per block).
        flat = work.spectra.view(n_basis * self.maps.shape[0], -1)  # (L·C, 2X·2Y)
        for start in range(0, flat.shape[1], block):
            columns = flat[:, start : start + block]
            count = columns.shape[1]
            by_frequency, mixed = work.by_frequency[:count], work.mixed[:count]
            by_frequency.copy_(columns.t())
            torch.bmm(
                self.kernels[start : start + count], by_frequency.view(mixed.shape), out=mixed
            )
            columns.copy_(mixed.view(by_frequency.shape).t())
        out = torch.empty(self.oshape, dtype=self.maps.dtype, device=self.maps.device)
        for start in range(0, n_basis, images_per_call):
            part = slice(start, start + images_per_call)
            images = torch.fft.ifft2(work.spectra[part])[..., :nx, :ny]
            torch.sum(images * work.conj_maps, 1, out=out[part])
        return out

    def _pieces(self) -> tuple[int, int]:
        """(basis images per FFT call, frequencies per batched matmul): on the CPU as many as
        fit in CPU_CACHE_BYTES (one call each for small problems), elsewhere all at once."""
        n_basis, n_freq = self.kernels.shape[1], self.kernels.shape[0]
        if self.maps.device.type != "cpu":
            return n_basis, n_freq
        item = self.maps.element_size()
        coil_spectra = self.maps.shape[0] * n_freq * item  # one basis image's C spectra
        per_frequency = n_basis * (n_basis + 2 * self.maps.shape[0]) * item
        return (
            min(n_basis, max(1, CPU_CACHE_BYTES // coil_spectra)),
            min(n_freq, max(1, CPU_CACHE_BYTES // per_frequency)),
        )

    def _workspace(self, images_per_call: int, block: int) -> _Workspace:
        if self._buffers is None:
            self._buffers = _Workspace.allocate(self.maps, self.ishape[0], images_per_call, block)
        return self._buffers


@dataclass
class _Workspace:
    """Buffers of the torch path, allocated at the first application and kept: the zero-padded
    coil images of one FFT call, the (L, C, 2X, 2Y) spectra, one block of spectra in
    frequency-major order before and after the mix, and conj(S)."""

    padded: torch.Tensor
    spectra: torch.Tensor
    by_frequency: torch.Tensor
    mixed: torch.Tensor
    conj_maps: torch.Tensor

    @classmethod
    def allocate(
        cls, maps: torch.Tensor, n_basis: int, images_per_call: int, block: int
    ) -> _Workspace:
        n_coils, nx, ny = maps.shape
        like = {"dtype": maps.dtype, "device": maps.device}
        grid = (n_coils, 2 * nx, 2 * ny)
        return cls(
            padded=torch.zeros((images_per_call, *grid), **like),
            spectra=torch.empty((n_basis, *grid), **like),
            by_frequency=torch.empty((block, n_basis * n_coils), **like),
            mixed=torch.empty((block, n_basis, n_coils), **like),
            conj_maps=maps.conj().resolve_conj(),
        )


class _Hermitian(torch.autograd.Function):
    """A Hermitian operator's torch path: the backward pass applies the operator again."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, op: ToeplitzNormal) -> torch.Tensor:
        ctx.op = op
        return op._apply_torch(x.to(op.maps.dtype))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _Hermitian.apply(grad, ctx.op), None
