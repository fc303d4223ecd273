"""A 2-D moving thorax phantom with analytic multi-coil k-space (§6.3's test object).

The object is a tree of ellipses (body fat ⊃ muscle ⊃ liver, lungs, pericardial fat ⊃ LV
myocardium ⊃ LV blood, RV blood). Each ellipse holds one tissue; a child adds
``signal(child) − signal(parent)`` on top of its parent, so the image is a sum of ellipse
indicator functions and its Fourier transform is a sum of analytic ellipse transforms.
Coil sensitivities are short Fourier series (25 terms), so ``FT{coil · ellipse}`` is again a
sum of shifted analytic transforms. Data are therefore generated from the *continuous* object,
never from the N×N pixel model the reconstruction uses: no inverse crime. Ground-truth images
are rasterised with 4×4 sub-pixel sampling (partial volume) on the reconstruction grid.

Motion (y is the craniocaudal axis of this coronal-like slice, + = head):
- cardiac phase ∈ [0, 1): the ventricles contract until end-systole at 0.3 and relax by 0.6;
  the LV blood pool radius shrinks by 30 %, the epicardium by 10 % (wall thickening);
- respiratory position ∈ [0, 1] (0 = end-expiration): the liver moves down by the amplitude,
  the heart by half of it, the lungs stretch downwards.
Units: mm and ms throughout.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import j1

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tissue:
    """Relaxation and density of one tissue (3 T values; T1, T2* in ms, PD relative)."""

    t1: float
    t2s: float
    pd: float


TISSUES: dict[str, Tissue] = {
    "fat": Tissue(t1=380.0, t2s=40.0, pd=0.9),
    "muscle": Tissue(t1=1400.0, t2s=30.0, pd=0.7),
    "liver": Tissue(t1=810.0, t2s=20.0, pd=0.75),
    "lung": Tissue(t1=1300.0, t2s=1.5, pd=0.15),
    "myocardium": Tissue(t1=1200.0, t2s=30.0, pd=0.8),
    "blood": Tissue(t1=1700.0, t2s=60.0, pd=0.95),
}


@dataclass(frozen=True)
class Ellipse:
    """One ellipse of the tree: tissue, parent index, centre and semi-axes (mm), angle (rad),
    and how it moves (``static``, ``liver``, ``lung``, or a cardiac scale ``heart:<s>`` with
    radius factor ``1 − s · contraction``)."""

    tissue: str
    parent: int | None
    center: tuple[float, float]
    axes: tuple[float, float]
    angle: float = 0.0
    motion: str = "static"


def contraction(cardiac_phase: np.ndarray) -> np.ndarray:
    """Ventricular contraction ∈ [0, 1]: sin² rise to end-systole (phase 0.3), relaxed by 0.6."""
    phase = np.mod(cardiac_phase, 1.0)
    return np.where(phase < 0.6, np.sin(np.pi * phase / 0.6) ** 2, 0.0)


def thorax_anatomy(rng: np.random.Generator | None = None) -> list[Ellipse]:
    """The ellipse tree at end-diastole and end-expiration; ``rng`` jitters size and heart
    position and shape (seeded subjects), ``None`` gives the reference anatomy."""
    jit = (lambda lo, hi: rng.uniform(lo, hi)) if rng is not None else (lambda lo, hi: 1.0)
    size = jit(0.94, 1.04)
    heart_shift = (rng.uniform(-3, 3), rng.uniform(-3, 3)) if rng is not None else (0.0, 0.0)
    lv = jit(0.92, 1.06)
    hx, hy = heart_shift
    parts = [
        Ellipse("fat", None, (0, 0), (135, 100)),
        Ellipse("muscle", 0, (0, 0), (125, 90)),
        Ellipse("liver", 1, (-8, -51), (64, 18), 0.05, "liver"),
        Ellipse("lung", 1, (-78, 22), (30, 44), -0.1, "lung"),
        Ellipse("lung", 1, (78, 22), (30, 44), 0.1, "lung"),
        Ellipse("fat", 1, (hx, 8 + hy), (42, 33), 0.35, "heart:0.05"),
        Ellipse("myocardium", 5, (6 + hx, 7 + hy), (27 * lv, 22 * lv), 0.35, "heart:0.1"),
        Ellipse("blood", 6, (6 + hx, 7 + hy), (17 * lv, 12.5 * lv), 0.35, "heart:0.3"),
        Ellipse("blood", 5, (-31 + hx, 3 + hy), (6.5, 15), 0.35, "heart:0.25"),
    ]
    return [
        dataclasses.replace(
            e,
            center=(e.center[0] * size, e.center[1] * size),
            axes=(e.axes[0] * size, e.axes[1] * size),
        )
        for e in parts
    ]


def ellipse_ft(
    kx: np.ndarray, ky: np.ndarray, center: np.ndarray, axes: np.ndarray, angle: float
) -> np.ndarray:
    """Continuous Fourier transform ∫ 1_E(x) exp(−2πi k·x) dx of an ellipse (mm²).

    ``kx, ky`` in cycles/mm (any broadcastable shape); ``center`` (..., 2) and ``axes`` (..., 2)
    in mm broadcast against them along the leading axes (one ellipse per readout).
    """
    c, s = np.cos(angle), np.sin(angle)
    u = (c * kx + s * ky) * axes[..., 0]
    v = (-s * kx + c * ky) * axes[..., 1]
    rho = np.sqrt(u * u + v * v)
    small = rho < 1e-9
    safe = np.where(small, 1.0, rho)
    shape = np.where(small, np.pi, j1(2 * np.pi * safe) / safe)
    phase = np.exp(-2j * np.pi * (kx * center[..., 0] + ky * center[..., 1]))
    return axes[..., 0] * axes[..., 1] * shape * phase


class CoilModel:
    """Smooth receive sensitivities as 5×5-term Fourier series (period 1.5 × FOV).

    Coils sit on a ring around the body; each map is fitted (least squares) to a Gaussian
    profile with a coil-specific phase, then *is* the fitted band-limited series, so its product
    with an ellipse has an analytic Fourier transform.
    """

    def __init__(self, n_coils: int, fov_mm: float, rng: np.random.Generator) -> None:
        period = 1.5 * fov_mm
        m = np.arange(-2, 3)
        mx, my = np.meshgrid(m, m, indexing="ij")
        self.freqs = np.stack([mx.ravel(), my.ravel()], axis=-1) / period  # (M, 2) cycles/mm
        grid = (np.arange(48) + 0.5) / 48 * fov_mm - fov_mm / 2
        gx, gy = np.meshgrid(grid, grid, indexing="ij")
        basis = np.exp(
            2j
            * np.pi
            * (gx.ravel()[:, None] * self.freqs[:, 0] + gy.ravel()[:, None] * self.freqs[:, 1])
        )
        angles = 2 * np.pi * (np.arange(n_coils) + rng.uniform(-0.2, 0.2, n_coils)) / n_coils
        radius = 0.5 * fov_mm
        targets = []
        for a, phase in zip(angles, rng.uniform(-np.pi, np.pi, n_coils)):
            d2 = (gx - radius * np.cos(a)) ** 2 + (gy - 0.75 * radius * np.sin(a)) ** 2
            targets.append(np.exp(-d2 / (2 * (0.4 * fov_mm) ** 2) + 1j * phase).ravel())
        self.coef, *_ = np.linalg.lstsq(basis, np.stack(targets, axis=1), rcond=None)
        self.coef = self.coef.T  # (C, M)
        rss = np.sqrt(np.sum(np.abs(self.coef @ basis.T) ** 2, axis=0))
        self.coef /= np.median(rss)

    @property
    def n_coils(self) -> int:
        return self.coef.shape[0]

    def maps(self, matrix: int, fov_mm: float) -> np.ndarray:
        """Sensitivities at the pixel centres of an N×N grid, (C, N, N) complex64."""
        x = (np.arange(matrix) - matrix // 2) * fov_mm / matrix
        gx, gy = np.meshgrid(x, x, indexing="ij")
        phase = np.exp(
            2j * np.pi * (gx[..., None] * self.freqs[:, 0] + gy[..., None] * self.freqs[:, 1])
        )
        return np.einsum("cm,xym->cxy", self.coef, phase).astype(np.complex64)


class ThoraxPhantom:
    """The moving thorax: geometry per motion state, rasterised truth, analytic k-space.

    Args:
        ellipses: the tree (see :func:`thorax_anatomy`).
        tissues: tissue name → :class:`Tissue`.
        resp_amplitude_mm: liver excursion at full inspiration.
        contraction_scale: scales all cardiac radius changes (0 freezes the heart).
    """

    def __init__(
        self,
        ellipses: Sequence[Ellipse],
        tissues: dict[str, Tissue],
        resp_amplitude_mm: float = 12.0,
        contraction_scale: float = 1.0,
    ) -> None:
        self.ellipses = list(ellipses)
        self.tissues = dict(tissues)
        self.resp_amplitude = float(resp_amplitude_mm)
        self.contraction_scale = float(contraction_scale)
        self.tissue_names = sorted(self.tissues)

    def geometry(
        self, cardiac_phase: np.ndarray, resp: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Centres and semi-axes (T, E, 2) in mm for T motion states."""
        cardiac_phase, resp = np.atleast_1d(cardiac_phase), np.atleast_1d(resp)
        squeeze = self.contraction_scale * contraction(cardiac_phase)
        shift = self.resp_amplitude * resp
        centers = np.empty((len(resp), len(self.ellipses), 2))
        axes = np.empty_like(centers)
        for i, e in enumerate(self.ellipses):
            cx, cy = np.full_like(shift, e.center[0]), np.full_like(shift, e.center[1])
            ax, ay = np.full_like(shift, e.axes[0]), np.full_like(shift, e.axes[1])
            if e.motion == "liver":
                cy = cy - shift
            elif e.motion == "lung":
                stretch = 0.012 * shift * e.axes[1] / 2
                ay, cy = ay + stretch, cy - stretch
            elif e.motion.startswith("heart:"):
                scale = 1 - float(e.motion.split(":")[1]) * squeeze
                ax, ay, cy = ax * scale, ay * scale, cy - 0.5 * shift
            centers[:, i] = np.stack([cx, cy], axis=-1)
            axes[:, i] = np.stack([ax, ay], axis=-1)
        return centers, axes

    def ellipse_values(self, tissue_signal: dict[str, np.ndarray]) -> np.ndarray:
        """Per-ellipse contributions (…, E): own tissue's signal minus the parent's."""
        out = []
        for e in self.ellipses:
            value = tissue_signal[e.tissue]
            if e.parent is not None:
                value = value - tissue_signal[self.ellipses[e.parent].tissue]
            out.append(value)
        return np.stack(out, axis=-1)

    def coverage(
        self, cardiac_phase: float, resp: float, matrix: int, fov_mm: float, supersample: int = 4
    ) -> np.ndarray:
        """Fraction of each pixel inside each ellipse, (E, N, N) (partial volume)."""
        centers, axes = self.geometry(np.array([cardiac_phase]), np.array([resp]))
        step = fov_mm / matrix
        sub = (np.arange(matrix * supersample) + 0.5) / supersample - 0.5 - matrix // 2
        gx, gy = np.meshgrid(sub * step, sub * step, indexing="ij")
        out = np.empty((len(self.ellipses), matrix, matrix))
        for i, e in enumerate(self.ellipses):
            c, s = np.cos(e.angle), np.sin(e.angle)
            dx, dy = gx - centers[0, i, 0], gy - centers[0, i, 1]
            u, v = (c * dx + s * dy) / axes[0, i, 0], (-s * dx + c * dy) / axes[0, i, 1]
            inside = (u * u + v * v <= 1).astype(np.float64)
            out[i] = inside.reshape(matrix, supersample, matrix, supersample).mean(axis=(1, 3))
        return out

    def image(
        self, values: np.ndarray, cardiac_phase: float, resp: float, matrix: int, fov_mm: float
    ) -> np.ndarray:
        """Rasterised truth Σ_e values[..., e] · coverage_e, shape (..., N, N)."""
        cov = self.coverage(cardiac_phase, resp, matrix, fov_mm)
        return np.tensordot(values, cov, axes=([-1], [0]))

    def labels(self, cardiac_phase: float, resp: float, matrix: int, fov_mm: float) -> np.ndarray:
        """Tissue index (into ``tissue_names``) of pixels fully inside one tissue, −1 elsewhere.

        A pixel is labelled by its deepest ellipse, and only when that ellipse covers all of it
        and no child covers any of it (no partial volume): the masks for T1 statistics.
        """
        cov = self.coverage(cardiac_phase, resp, matrix, fov_mm)
        labels = np.full((matrix, matrix), -1)
        for i, e in enumerate(self.ellipses):
            children = [j for j, c in enumerate(self.ellipses) if c.parent == i]
            pure = (cov[i] == 1) & np.all(cov[children] == 0, axis=0)
            labels[pure] = self.tissue_names.index(e.tissue)
        return labels

    def kspace(
        self,
        k_cyc: np.ndarray,
        values: np.ndarray,
        cardiac_phase: np.ndarray,
        resp: np.ndarray,
        coils: CoilModel,
    ) -> np.ndarray:
        """Analytic multi-coil samples of the continuous object, (C, R, S) complex128 (mm²).

        Args:
            k_cyc: (R, S, 2) sample positions in cycles/mm.
            values: (R, E) ellipse contributions at each readout's time.
            cardiac_phase, resp: (R,) the motion state of each readout.
        """
        centers, axes = self.geometry(cardiac_phase, resp)
        kx = k_cyc[:, None, :, 0] - coils.freqs[None, :, None, 0]  # (R, M, S)
        ky = k_cyc[:, None, :, 1] - coils.freqs[None, :, None, 1]
        shifted = np.zeros(kx.shape, dtype=np.complex128)
        for i, e in enumerate(self.ellipses):
            ft = ellipse_ft(kx, ky, centers[:, None, None, i], axes[:, None, None, i], e.angle)
            shifted += values[:, None, None, i] * ft
        return np.einsum("cm,rms->crs", coils.coef, shifted)
