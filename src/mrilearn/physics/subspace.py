"""Temporal factors of the low-rank tensor model and what is formed from them (§2.3.2, §6.2.2).

The image tensor A (voxels × TI × cardiac × respiratory) is modelled as A_(1) = U Φ with Φ of
rank L. This module builds Φ in three steps:

1. T1 dimension: right singular vectors of a dictionary of IR-FLASH recovery curves over a T1
   range (:func:`t1_dictionary`, :func:`t1_basis`).
2. Motion dimensions: every readout gets a cardiac and a respiratory bin, either from the
   navigator (self-gating: T1 recovery regressed out, PCA, band-pass filtering into the
   respiratory 0.1–0.5 Hz and cardiac 0.6–2.5 Hz bands; :func:`self_gating`) or, as an
   oracle, from the simulated traces.
3. Core tensor: the navigator data projected on their L principal components are fitted, per
   (cardiac, respiratory) bin, by the T1 basis (a low-rank tensor completion with a smoothness
   penalty across neighbouring bins for sparsely visited ones; :func:`estimate_phi`); Φ is
   the orthonormal row basis of the completed tensor, shape (L, n_TI, n_cardiac, n_resp).

Images for any (TI, cardiac, respiratory) index and T1 maps (dictionary matching along TI)
follow from U and Φ without forming the whole series.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mrilearn.errors import DataError
from mrilearn.physics.acquisition import IRFlash, ir_flash_curves

logger = logging.getLogger(__name__)

RESP_BAND_HZ = (0.1, 0.5)
CARDIAC_BAND_HZ = (0.6, 2.5)
RESP_LOW_PASS_HZ = 0.6


def t1_dictionary(
    seq: IRFlash, t1_range_ms: tuple[float, float], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Log-spaced T1 values (T,) in ms and their IR-FLASH curves (T, n_TI)."""
    t1 = np.geomspace(t1_range_ms[0], t1_range_ms[1], size)
    return t1, ir_flash_curves(t1, seq)


def t1_basis(curves: np.ndarray, rank: int) -> tuple[np.ndarray, float]:
    """The (n_TI, K) leading right singular vectors of the dictionary and the energy fraction
    they capture (Σ σ_k² over the first K / Σ σ²)."""
    if rank > min(curves.shape):
        raise DataError(f"T1 rank {rank} exceeds the dictionary size {curves.shape}")
    vectors, s = leading_left_vectors(curves.T, rank)
    return vectors, float(np.sum(s**2) / np.sum(curves**2))


def leading_left_vectors(y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k leading left singular vectors (M, k) and singular values of y (M, n), from the
    eigen-decomposition of the Gram matrix y y^H (much faster than an SVD for M ≲ n)."""
    w, v = np.linalg.eigh(y @ y.conj().T)
    order = np.argsort(w)[::-1][:k]
    return v[:, order], np.sqrt(np.maximum(w[order], 0))


def _signal() -> Any:
    """``scipy.signal``, imported on first use: a second of start-up for every command."""
    from scipy import signal

    return signal


def _band_filter(x: np.ndarray, band: tuple[float, float], fs: float) -> np.ndarray:
    signal = _signal()
    sos = signal.butter(2, band, btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x)


def _low_pass(x: np.ndarray, cutoff: float, fs: float) -> np.ndarray:
    signal = _signal()
    sos = signal.butter(4, cutoff, btype="lowpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x)


def _band_fraction(x: np.ndarray, band: tuple[float, float], fs: float) -> float:
    power = np.abs(np.fft.rfft(x - x.mean())) ** 2
    freq = np.fft.rfftfreq(x.size, 1 / fs)
    return float(power[(freq >= band[0]) & (freq <= band[1])].sum() / max(power.sum(), 1e-30))


def self_gating(
    nav: np.ndarray,
    times_ms: np.ndarray,
    ti_index: np.ndarray,
    u_ti: np.ndarray,
    n_components: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Respiratory signal and cardiac phase ∈ [0, 1) at the navigator times.

    ``nav`` (C, Rn, S) navigator data, ``u_ti`` (n_TI, K) the T1 basis. The T1 recovery is
    regressed out per navigator sample (least squares on the T1 basis at each TI); the real
    principal components of the residual are ranked by their fraction of power in each band.
    The respiratory signal is the low-passed (0.6 Hz) best component, signed so that its
    longer plateau (end-expiration) is low; the cardiac phase is the angle of the analytic signal
    of the band-passed best cardiac component.
    """
    y = nav.transpose(1, 0, 2).reshape(nav.shape[1], -1)  # (Rn, C·S)
    v = u_ti[ti_index]
    coef, *_ = np.linalg.lstsq(v, y, rcond=None)
    residual = y - v @ coef
    stacked = np.concatenate([residual.real, residual.imag], axis=1)
    left, s = leading_left_vectors(stacked - stacked.mean(axis=0), n_components)
    comps = (left * s).T
    fs = 1000.0 / float(np.median(np.diff(times_ms)))
    resp_k = int(np.argmax([_band_fraction(c, RESP_BAND_HZ, fs) for c in comps]))
    card_scores = [_band_fraction(c, CARDIAC_BAND_HZ, fs) for c in comps]
    card_scores[resp_k] = -1.0
    card_k = int(np.argmax(card_scores))
    # Low-pass below the cardiac band keeps the breathing harmonics, hence its asymmetry:
    # free breathing dwells at end-expiration, so the signal is signed to be positively skewed
    # (long plateau low, short inspiration peaks high).
    resp = _low_pass(comps[resp_k], RESP_LOW_PASS_HZ, fs)
    if np.mean((resp - resp.mean()) ** 3) < 0:
        resp = -resp
    cardiac = _band_filter(comps[card_k], CARDIAC_BAND_HZ, fs)
    phase = np.unwrap(np.angle(_signal().hilbert(cardiac))) / (2 * np.pi)
    logger.info("self-gating: respiratory PC %d, cardiac PC %d", resp_k, card_k)
    return resp, phase


def interpolate_gating(
    nav_times: np.ndarray, resp: np.ndarray, phase: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Respiratory signal and cardiac phase ∈ [0, 1) at every readout time."""
    return np.interp(times, nav_times, resp), np.mod(np.interp(times, nav_times, phase), 1.0)


def motion_bins(
    cardiac_phase: np.ndarray, resp: np.ndarray, n_cardiac: int, n_resp: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cardiac bin (equal phase intervals) and respiratory bin (equal-count quantiles of the
    respiratory signal, 0 = end-expiration) of every readout."""
    card = np.minimum((np.mod(cardiac_phase, 1.0) * n_cardiac).astype(np.int64), n_cardiac - 1)
    edges = np.quantile(resp, np.linspace(0, 1, n_resp + 1)[1:-1])
    return card, np.searchsorted(edges, resp, side="right").astype(np.int64)


def _bin_laplacian(n_cardiac: int, n_resp: int) -> np.ndarray:
    """Graph Laplacian of the bins: cyclic neighbours in cardiac phase, linear in respiration."""
    n = n_cardiac * n_resp
    lap = np.zeros((n, n))
    for c in range(n_cardiac):
        for r in range(n_resp):
            b = c * n_resp + r
            nbrs = [((c + 1) % n_cardiac) * n_resp + r] if n_cardiac > 1 else []
            nbrs += [b + 1] if r + 1 < n_resp else []
            for nb in nbrs:
                lap[b, b] += 1
                lap[nb, nb] += 1
                lap[b, nb] -= 1
                lap[nb, b] -= 1
    return lap


def estimate_phi(
    nav: np.ndarray,
    ti_index: np.ndarray,
    card_bin: np.ndarray,
    resp_bin: np.ndarray,
    u_ti: np.ndarray,
    rank: int,
    n_cardiac: int,
    n_resp: int,
    smoothness: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Φ (L, n_TI, n_cardiac, n_resp) with orthonormal rows, and its singular values.

    ``nav`` (C, Rn, S) are the navigator data with their TI indices and motion bins.
    Model: P^H y_n = Q[b_n] u_TI[t_n] with P the L principal navigator components and Q one
    (L × K) matrix per motion bin b, fitted by least squares with ``smoothness`` × (mean data
    weight) × Σ_neighbours ‖Q_b − Q_b'‖² (bins with few navigators borrow from neighbours).
    """
    y = nav.transpose(0, 2, 1).reshape(-1, nav.shape[1])  # (C·S, Rn)
    n_ti, k = u_ti.shape
    n_bins = n_cardiac * n_resp
    if rank > min(y.shape) or rank > k * n_bins:
        raise DataError(
            f"rank L={rank} is larger than the navigator data support "
            f"(min of {y.shape} navigator matrix, T1 rank × bins = {k * n_bins})"
        )
    if not np.all(np.isfinite(y)):
        raise DataError("navigator data hold NaN or infinite values")
    p, _ = leading_left_vectors(y, rank)
    z = p.conj().T @ y  # (L, Rn)
    bins = card_bin * n_resp + resp_bin
    u = u_ti[ti_index]  # (Rn, K)
    idx = bins[:, None] * k + np.arange(k)  # (Rn, K) unknowns each navigator touches
    normal = np.zeros((n_bins * k, n_bins * k))
    outer = (u[:, :, None] * u[:, None, :]).reshape(len(bins), -1)
    np.add.at(normal, (np.repeat(idx, k, axis=1).ravel(), np.tile(idx, k).ravel()), outer.ravel())
    mu = smoothness * np.trace(normal) / normal.shape[0]
    normal += mu * np.kron(_bin_laplacian(n_cardiac, n_resp), np.eye(k)) + 1e-9 * mu * np.eye(
        len(normal)
    )
    rhs = np.zeros((n_bins * k, rank), dtype=np.complex128)
    np.add.at(rhs, idx.ravel(), (u[:, :, None] * z.T[:, None, :]).reshape(-1, rank))
    q = np.linalg.solve(normal, rhs).reshape(n_bins, k, rank)  # Q[b]^T
    tensor = np.einsum("bkl,tk->ltb", q, u_ti).reshape(rank, -1)
    _, s, vh = np.linalg.svd(tensor, full_matrices=False)
    phi = vh.reshape(rank, n_ti, n_cardiac, n_resp)
    return phi.astype(np.complex64), s


def image_series(
    u: np.ndarray,
    phi: np.ndarray,
    ti: np.ndarray | int,
    cardiac: np.ndarray | int,
    resp: np.ndarray | int,
) -> np.ndarray:
    """Images A = U Φ at (TI index, cardiac bin, respiratory bin) triplets (broadcast), (..., X, Y)."""
    coeff = phi[:, ti, cardiac, resp]  # (L, ...)
    return np.tensordot(np.moveaxis(coeff, 0, -1), u, axes=([-1], [0]))


def t1_map(
    u: np.ndarray,
    phi: np.ndarray,
    t1_values: np.ndarray,
    curves: np.ndarray,
    cardiac: int,
    resp: int,
) -> tuple[np.ndarray, np.ndarray]:
    """T1 (ms) and proton-density-like amplitude maps (X, Y) by dictionary matching along TI.

    The voxel's recovery curve x = U Φ[:, :, cardiac, resp] is matched to the dictionary curve
    d maximising |⟨d, x⟩| / ‖d‖ (any complex scale and phase); the amplitude is |⟨d, x⟩| / ‖d‖².
    ⟨d, x⟩ = Σ_l U_l ⟨d, Φ_l⟩, so the curves are never formed (L instead of n_TI per voxel).
    """
    norms = np.linalg.norm(curves, axis=1)
    per_basis = phi[:, :, cardiac, resp] @ (curves / norms[:, None]).T  # (L, T)
    per_basis = per_basis.astype(np.result_type(u.dtype, np.complex64))
    corr = np.abs(np.tensordot(u, per_basis, axes=([0], [0])))  # (X, Y, T)
    best = np.argmax(corr, axis=-1)
    amplitude = np.take_along_axis(corr, best[..., None], axis=-1)[..., 0] / norms[best]
    return t1_values[best], amplitude
