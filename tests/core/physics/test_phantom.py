"""The thorax phantom (analytic k-space, nesting), IR-FLASH signal and T1 subspace."""

from __future__ import annotations

import numpy as np
import pytest

from mrilearn.physics.acquisition import IRFlash, ir_flash_curves, tissue_signal
from mrilearn.physics.phantom import TISSUES, ThoraxPhantom, ellipse_ft, thorax_anatomy
from mrilearn.physics.subspace import estimate_phi, t1_basis, t1_dictionary, t1_map

SEQ = IRFlash(6.0, 2.0, 5.0, 150, 600, 4, 90.0, 32)


def test_analytic_ellipse_ft_matches_fft_of_fine_raster():
    n, fov = 512, 200.0  # 0.39 mm pixels
    x = (np.arange(n) - n // 2) * fov / n
    gx, gy = np.meshgrid(x, x, indexing="ij")
    center, axes, angle = np.array([12.0, -7.0]), np.array([40.0, 22.0]), 0.4
    c, s = np.cos(angle), np.sin(angle)
    u = (c * (gx - center[0]) + s * (gy - center[1])) / axes[0]
    v = (-s * (gx - center[0]) + c * (gy - center[1])) / axes[1]
    raster = (u**2 + v**2 <= 1).astype(float)
    # Discrete transform at the low frequencies |m| ≤ 8 cycles/FOV, times the pixel area.
    m = np.arange(-8, 9)
    kernel = np.exp(-2j * np.pi * m[:, None] * x[None, :] / fov)
    fft = kernel @ raster @ kernel.T * (fov / n) ** 2
    kx, ky = np.meshgrid(m / fov, m / fov, indexing="ij")
    analytic = ellipse_ft(kx, ky, center, axes, angle)
    assert np.abs(fft - analytic).max() <= 0.01 * np.abs(analytic).max()


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
def test_ellipses_stay_nested_and_disjoint_in_every_motion_state(seed):
    rng = None if seed is None else np.random.default_rng(seed)
    phantom = ThoraxPhantom(thorax_anatomy(rng), TISSUES)
    for cardiac, resp in [(0.0, 0.0), (0.3, 0.0), (0.0, 1.0), (0.3, 1.0)]:
        cov = phantom.coverage(cardiac, resp, 150, 300.0, supersample=2) > 0
        for i, e in enumerate(phantom.ellipses):
            if e.parent is not None:
                assert not np.any(cov[i] & ~cov[e.parent]), (i, cardiac, resp)
            siblings = [j for j, f in enumerate(phantom.ellipses) if j > i and f.parent == e.parent]
            assert not any(np.any(cov[i] & cov[j]) for j in siblings), (i, cardiac, resp)


def test_ir_flash_curve_is_the_periodic_steady_state():
    curves = ir_flash_curves(np.array([400.0, 1200.0, 2500.0]), SEQ)
    assert curves.shape == (3, SEQ.readouts_per_inversion)
    assert np.all(curves[:, 0] < 0) and np.all(curves[:, -1] > 0)  # inverted, then recovered
    assert np.all(np.diff(curves, axis=1) > 0)  # monotone recovery between inversions


def test_t1_dictionary_basis_captures_the_energy():
    _, curves = t1_dictionary(SEQ, (100.0, 3000.0), 200)
    _, energy = t1_basis(curves, 4)
    assert energy > 0.9999


def test_t1_fit_recovers_known_t1_on_noiseless_curves():
    t1_values, curves = t1_dictionary(SEQ, (100.0, 3000.0), 300)
    u_ti, _ = t1_basis(curves, 5)
    truth = np.array([[350.0, 850.0], [1234.0, 1790.0]])
    test_curves = ir_flash_curves(truth.ravel(), SEQ) * np.exp(1j * 0.7)  # any complex scale
    u = (test_curves @ u_ti).T.reshape(5, 2, 2)
    phi = u_ti.T[:, :, None, None]  # (K, n_TI, 1, 1)
    t1, amplitude = t1_map(u, phi, t1_values, curves, 0, 0)
    assert np.all(np.abs(t1 / truth - 1) < 0.01)
    assert np.allclose(amplitude, 1.0, rtol=0.02)


def test_phi_from_a_noiseless_low_rank_navigator_spans_it():
    rng = np.random.default_rng(0)
    _, curves = t1_dictionary(SEQ, (100.0, 3000.0), 100)
    u_ti, _ = t1_basis(curves, 3)
    n_card, n_resp, rank, n_nav = 4, 2, 4, 400
    ti = rng.integers(0, SEQ.readouts_per_inversion, n_nav)
    card, resp = rng.integers(0, n_card, n_nav), rng.integers(0, n_resp, n_nav)
    core = rng.standard_normal((rank, 3, n_card, n_resp))
    truth = np.einsum("lkcr,tk->ltcr", core, u_ti)  # (L, n_TI, card, resp) temporal tensor
    space = rng.standard_normal((3 * 16, rank)) + 1j * rng.standard_normal((3 * 16, rank))
    nav = (space @ truth[:, ti, card, resp]).reshape(3, 16, n_nav).transpose(0, 2, 1)
    phi, _ = estimate_phi(nav, ti, card, resp, u_ti, rank, n_card, n_resp, smoothness=1e-6)
    flat_truth, flat_phi = truth.reshape(rank, -1), phi.reshape(rank, -1).astype(complex)
    residual = flat_truth - (flat_truth @ flat_phi.conj().T) @ flat_phi
    assert np.linalg.norm(residual) <= 1e-3 * np.linalg.norm(flat_truth)


def test_t1_fit_recovers_every_tissue_from_the_simulators_readout_signal():
    # The simulator's pixel values (PD · T2* decay · IR-FLASH with imperfect inversion), mixed
    # through a low-rank temporal basis, fitted with the reconstruction's dictionary.
    seq = IRFlash(6.0, 2.0, 5.0, 344, 688, 4, 90.0, 32, inversion_efficiency=0.95)
    phantom = ThoraxPhantom(thorax_anatomy(), TISSUES)
    signal = tissue_signal(phantom, seq)
    t1_values, curves = t1_dictionary(seq, (100.0, 3000.0), 1000)
    u_ti, _ = t1_basis(curves, 5)
    x = np.stack([signal[n] for n in phantom.tissue_names])  # (tissues, n_TI)
    u = (x @ u_ti).T[:, :, None] * np.exp(0.4j)  # (K, tissues, 1): any complex scale
    t1, amplitude = t1_map(u, u_ti.T[:, :, None, None], t1_values, curves, 0, 0)
    truth = np.array([phantom.tissues[n].t1 for n in phantom.tissue_names])
    assert np.all(np.abs(t1[:, 0] / truth - 1) < 0.004), dict(zip(phantom.tissue_names, t1[:, 0]))
    weight = [
        phantom.tissues[n].pd * np.exp(-seq.te_ms / phantom.tissues[n].t2s)
        for n in phantom.tissue_names
    ]
    assert np.allclose(amplitude[:, 0], weight, rtol=0.01)
