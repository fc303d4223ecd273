"""Multitasking reconstruction of one raw scan (§2.3.2, §6.2): gating → Φ → E_Φ → U0 →
ADMM U → T1 map. ``spatial`` replaces ADMM by a learned estimate g(U0, Φ) (MALIBU, §6.2.3)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from mrilearn.apps.mtmri.config import ReconConfig
from mrilearn.apps.mtmri.raw import RawData
from mrilearn.engine.device import resolve_device
from mrilearn.errors import DataError
from mrilearn.physics import acquisition, subspace
from mrilearn.physics.encoding import SubspaceEncoding
from mrilearn.physics.linop import Array, FiniteDifference, Linop, norm, to_numpy
from mrilearn.physics.nufft import NUFFT, radial_density
from mrilearn.physics.solvers import ADMM, max_eigenvalue
from mrilearn.physics.subspace import image_series, t1_map

logger = logging.getLogger(__name__)

BLOOD_T1_MS = 1700.0  # the dark-blood TI nulls a curve with this T1


@runtime_checkable
class SpatialFactorModel(Protocol):
    """A learned replacement of ADMM: U from any scan's U0 (L, N, N) and Φ (L, ...)."""

    def spatial_factor(self, u0: np.ndarray, phi: np.ndarray) -> np.ndarray: ...


@dataclass
class MtmriResult:
    """Everything a reconstruction produces (arrays complex64 unless stated).

    u0, u: (L, N, N) back-projection and ADMM spatial factors; phi: (L, n_TI, n_card, n_resp);
    card_bin, resp_bin: (R,) int bins of every readout; t1_values, curves: the dictionary;
    t1: (N, N) ms and amplitude at (t1_cardiac_bin, resp bin 0); history: ADMM log.
    """

    u0: np.ndarray
    u: np.ndarray
    phi: np.ndarray
    coil_maps: np.ndarray
    card_bin: np.ndarray
    resp_bin: np.ndarray
    resp_signal: np.ndarray
    cardiac_phase: np.ndarray
    t1_values: np.ndarray
    curves: np.ndarray
    t1: np.ndarray
    amplitude: np.ndarray
    t1_cardiac_bin: int
    bright_ti: int
    dark_ti: int
    history: list[dict[str, float]]
    timings: dict[str, float]
    metrics: dict[str, Any] = field(default_factory=dict)


def estimate_coil_maps(raw: RawData, matrix: int, smooth_px: float = 3.0) -> np.ndarray:
    """Relative sensitivities from the time-averaged imaging data: density-compensated coil
    images, Gaussian-smoothed, divided by their root sum of squares. (C, N, N)."""
    from scipy.ndimage import gaussian_filter

    img = ~raw.navigator
    traj = raw.traj[img]
    nufft = NUFFT(traj, (matrix, matrix), (raw.kspace.shape[0],))
    coil_images = nufft.adjoint(raw.kspace[:, img] * radial_density(traj)[None])
    smooth = np.stack(
        [
            gaussian_filter(c.real, smooth_px) + 1j * gaussian_filter(c.imag, smooth_px)
            for c in coil_images
        ]
    )
    rss = np.sqrt(np.sum(np.abs(smooth) ** 2, axis=0))
    return (smooth / np.maximum(rss, 1e-3 * rss.max())).astype(np.complex64)


def _gating(
    raw: RawData, cfg: ReconConfig, u_ti: np.ndarray, ti_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if cfg.gating == "oracle":
        if raw.cardiac_phase is None or raw.resp_position is None:
            raise DataError("gating: oracle needs cardiac_phase and resp_position in the raw file")
        return raw.resp_position, raw.cardiac_phase
    nav = raw.navigator
    resp, phase = subspace.self_gating(raw.kspace[:, nav], raw.times_ms[nav], ti_index[nav], u_ti)
    return subspace.interpolate_gating(raw.times_ms[nav], resp, phase, raw.times_ms)


def _quiet_cardiac_bin(u: np.ndarray, phi: np.ndarray, n_ti: int = 8) -> int:
    """The middle of diastasis at end-expiration: the cardiac bin whose neighbours change
    least, summed over three bins so a long quiet stretch wins over the single turning
    point of end-systole, and over ``n_ti`` inversion times so no blood/myocardium
    isocontrast at one TI hides the motion."""
    n_card = phi.shape[2]
    tis = np.linspace(0, phi.shape[1] - 1, n_ti).astype(int)
    images = np.stack([np.abs(image_series(u, phi, int(t), np.arange(n_card), 0)) for t in tis], 1)
    change = np.array(
        [np.sum((images[(c + 1) % n_card] - images[c - 1]) ** 2) for c in range(n_card)]
    )
    return int(np.argmin(change + np.roll(change, 1) + np.roll(change, -1)))


class SpatialFactorADMM(ADMM):
    """U = argmin ‖d − E_Φ U‖² + λ‖Ψ U‖₁ from E*E, E*d and ‖d‖², Ψ = finite differences.

    The problem is normalised (‖E*E‖ = 1 by power iteration, max |E*d| = 1), so ``lam`` and
    ``rho`` mean the same for any data scale; :meth:`result` scales back to U (the array type
    of ``rhs``: a tensor on its device, or NumPy), and ``history`` logs the normalised
    problem's objective. ``x0``: the starting U (default 0).
    """

    def __init__(
        self,
        normal: Linop,
        rhs: Array,
        data_norm2: float,
        lam: float,
        rho: float,
        admm_iterations: int,
        cg_iterations: int,
        x0: Array | None = None,
    ) -> None:
        lam_max = max_eigenvalue(normal, rhs)
        scale = float(abs(rhs).max()) / np.sqrt(lam_max)
        self.unit = scale / np.sqrt(lam_max)
        super().__init__(
            (1.0 / lam_max) * normal,
            rhs / (np.sqrt(lam_max) * scale),
            FiniteDifference(rhs.shape),
            lam,
            rho,
            admm_iterations,
            cg_iterations,
            data_norm2=data_norm2 / scale**2,
            x0=None if x0 is None else x0 / self.unit,
        )

    def result(self) -> Array:
        return super().result() * self.unit


@dataclass
class TemporalModel:
    """The temporal side of one scan: T1 dictionary, motion bins of every readout and Φ."""

    ti_index: np.ndarray
    t1_values: np.ndarray
    curves: np.ndarray
    resp_signal: np.ndarray
    cardiac_phase: np.ndarray
    card_bin: np.ndarray
    resp_bin: np.ndarray
    phi: np.ndarray


def temporal_model(raw: RawData, cfg: ReconConfig) -> TemporalModel:
    """T1 dictionary and basis, gating, motion bins and Φ from the navigator (§6.2.2)."""
    seq = raw.sequence
    ti_index = seq.ti_index(raw.ti_ms)
    if ti_index.min() < 0 or ti_index.max() >= seq.readouts_per_inversion:
        raise DataError("ti_ms lies outside one inversion period of the sequence metadata")
    t1_values, curves = subspace.t1_dictionary(seq, tuple(cfg.t1_range_ms), cfg.dictionary_size)
    u_ti, energy = subspace.t1_basis(curves, cfg.t1_rank)
    logger.info("T1 basis: rank %d captures %.5f of the dictionary energy", cfg.t1_rank, energy)
    resp_signal, cardiac_phase = _gating(raw, cfg, u_ti, ti_index)
    card_bin, resp_bin = subspace.motion_bins(
        cardiac_phase, resp_signal, cfg.cardiac_bins, cfg.resp_bins
    )
    nav = raw.navigator
    phi, _ = subspace.estimate_phi(
        raw.kspace[:, nav],
        ti_index[nav],
        card_bin[nav],
        resp_bin[nav],
        u_ti,
        cfg.rank,
        cfg.cardiac_bins,
        cfg.resp_bins,
        cfg.phi_smoothness,
    )
    return TemporalModel(
        ti_index, t1_values, curves, resp_signal, cardiac_phase, card_bin, resp_bin, phi
    )


def subspace_encoding(
    raw: RawData,
    cfg: ReconConfig,
    temporal: TemporalModel,
    device: str | torch.device | None = "cpu",
) -> tuple[SubspaceEncoding, np.ndarray]:
    """E_Φ of the imaging readouts on ``device`` (None: the NumPy reference) and their data d
    (C, R_img, S) as a NumPy array."""
    if cfg.coil_maps == "file":
        if raw.coil_maps is None:
            raise DataError("coil_maps: file, but the raw file has no coil_maps (use estimate)")
        maps = raw.coil_maps.astype(np.complex64)
    else:
        maps = estimate_coil_maps(raw, int(raw.metadata["matrix"]))
    img = ~raw.navigator
    t = temporal
    phi = t.phi[:, t.ti_index[img], t.card_bin[img], t.resp_bin[img]]
    enc = SubspaceEncoding(raw.traj[img], phi, maps, cfg.nufft_eps, device=device)
    return enc, raw.kspace[:, img].astype(np.complex64)


def reconstruct(
    raw: RawData,
    cfg: ReconConfig,
    progress: bool | None = None,
    spatial: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    device: str | torch.device | None = None,
) -> MtmriResult:
    """U0, ADMM U, Φ and T1 map of one scan (§6.2): gating → Φ → E_Φ → U0 → ADMM → T1.

    ``spatial`` maps (U0, Φ) to U in place of ADMM (MALIBU's network, §6.2.3). E_Φ, its
    Toeplitz normal operator and ADMM compute on ``device`` (a name as ``--device`` takes it,
    or a ``torch.device``; None: auto); the NUFFTs run on the CPU."""
    if not isinstance(device, torch.device):
        device = resolve_device(device)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    seq = raw.sequence
    temporal = temporal_model(raw, cfg)
    phi = temporal.phi
    lap("temporal_factors_s")

    enc, data = subspace_encoding(raw, cfg, temporal, device)
    u0 = enc.back_project(data, radial_density(enc.traj))
    if spatial is not None:
        lap("back_projection_s")
        u, history = spatial(to_numpy(u0), phi), []
        lap("network_s")
    else:
        rhs = enc.adjoint(enc.asarray(data))
        lap("back_projection_s")
        normal = enc.normal()
        lap("toeplitz_kernels_s")
        admm = SpatialFactorADMM(
            normal,
            rhs,
            norm(data) ** 2,
            cfg.lam,
            cfg.rho,
            cfg.admm_iterations,
            cfg.cg_iterations,
            x0=enc.temporal_unmix(u0) if cfg.warm_start else None,
        )
        u, history = to_numpy(admm.run(progress)).astype(np.complex64), admm.history
        lap("admm_s")

    dark_ti = int(np.argmin(np.abs(acquisition.ir_flash_curves(np.array([BLOOD_T1_MS]), seq)[0])))
    bright_ti = seq.readouts_per_inversion - 1
    t1_bin = _quiet_cardiac_bin(u, phi)
    t1, amplitude = t1_map(u, phi, temporal.t1_values, temporal.curves, t1_bin, 0)
    lap("t1_map_s")
    return MtmriResult(
        u0=to_numpy(u0).astype(np.complex64),
        u=u,
        phi=phi,
        coil_maps=enc.maps,
        card_bin=temporal.card_bin,
        resp_bin=temporal.resp_bin,
        resp_signal=temporal.resp_signal,
        cardiac_phase=temporal.cardiac_phase,
        t1_values=temporal.t1_values,
        curves=temporal.curves,
        t1=t1,
        amplitude=amplitude,
        t1_cardiac_bin=t1_bin,
        bright_ti=bright_ti,
        dark_ti=dark_ti,
        history=history,
        timings=timings,
    )
