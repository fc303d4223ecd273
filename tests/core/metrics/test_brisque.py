"""BRISQUE: the distribution fits behind its features, the libsvm model reader and the SVR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import gennorm
from skimage import data

from mrilearn.errors import DataError
from mrilearn.metrics.brisque import brisque_features, load_brisque_model
from mrilearn.metrics.nss import aggd_fit, ggd_fit
from mrilearn.metrics.perceptual import PerceptualScorer


@pytest.mark.parametrize("shape", [0.8, 2.0, 3.0])
def test_ggd_fit_recovers_the_shape_of_ggd_samples(shape):
    x = gennorm.rvs(shape, scale=1.7, size=400_000, random_state=0)
    alpha, sigma = ggd_fit(x)
    assert alpha == pytest.approx(shape, abs=0.04)
    assert sigma == pytest.approx(x.std(), rel=1e-6)


def test_aggd_fit_recovers_shape_and_scales():
    rng = np.random.default_rng(1)
    alpha, bl, br, n = 1.5, 0.5, 1.5, 400_000
    mag = np.abs(gennorm.rvs(alpha, size=n, random_state=2))
    left = rng.random(n) < bl / (bl + br)  # the AGGD's mass on each side ∝ its scale
    x = np.where(left, -bl * mag, br * mag)
    a, mean, fit_bl, fit_br = aggd_fit(x)
    assert a == pytest.approx(alpha, abs=0.05)
    assert (fit_bl, fit_br) == pytest.approx((bl, br), rel=0.02)
    g = math.gamma
    assert mean == pytest.approx((br - bl) * g(2 / alpha) / g(1 / alpha), rel=0.05)


def test_features_follow_the_image_symmetries():
    """Transposing swaps the horizontal and vertical neighbour products, a left-right flip
    swaps the two diagonals; everything else is unchanged, at both scales."""
    img = data.camera()[100:356, 100:356].astype(np.float64)
    f = brisque_features(img).reshape(2, 18)
    groups = f[:, 2:].reshape(2, 4, 4)  # (scale, H/V/D1/D2, α/mean/var_l/var_r)
    swap_hv = np.concatenate([f[:, :2], groups[:, [1, 0, 2, 3]].reshape(2, 16)], 1)
    swap_diag = np.concatenate([f[:, :2], groups[:, [0, 1, 3, 2]].reshape(2, 16)], 1)
    np.testing.assert_allclose(brisque_features(img.T).reshape(2, 18), swap_hv, rtol=1e-4)
    np.testing.assert_allclose(
        brisque_features(img[:, ::-1]).reshape(2, 18), swap_diag, rtol=1e-4, atol=1e-6
    )
    assert not np.allclose(swap_hv, f)  # the image is not symmetric itself


def write_model(folder, gamma=0.5, rho=0.3):
    folder.mkdir(exist_ok=True)
    (folder / "allmodel").write_text(
        f"svm_type epsilon_svr\nkernel_type rbf\ngamma {gamma}\nnr_class 2\ntotal_sv 2\n"
        f"rho {rho}\nSV\n2 1:1\n-1 1:0.5 2:0.5\n"
    )
    ranges = "".join(f"{i} 0 2\n" for i in range(1, 36)) + "36 5 5\n"  # feature 36 constant
    (folder / "allrange").write_text("x\n-1 1\n" + ranges)
    return folder


def test_svr_prediction_equals_the_hand_computed_value(tmp_path):
    model = load_brisque_model(write_model(tmp_path / "m"))
    feats = np.ones(36)
    feats[35] = 123.0  # a constant feature scales to 0 whatever its value
    np.testing.assert_array_equal(model.scale(feats), np.zeros(36))
    # x = 0: ‖x − sv₁‖² = 1, ‖x − sv₂‖² = 0.5
    expected = 2 * math.exp(-0.5 * 1) - 1 * math.exp(-0.5 * 0.5) - 0.3
    assert model.predict(feats) == pytest.approx(expected, abs=1e-12)


def test_scorer_uses_a_supplied_model_and_says_why_when_missing(tmp_path):
    rng = np.random.default_rng(0)
    vol = rng.uniform(0, 1, (3, 40, 40)).astype(np.float32)
    scorer = PerceptualScorer(None, str(write_model(tmp_path / "m")))
    scores = scorer.score({"x": vol}, vol, np.ones(vol.shape, bool), 0)
    assert math.isfinite(scores["x"]["brisque"]) and scorer.info["brisque"]["available"]
    notes = PerceptualScorer(None, None).notes
    assert any(n.startswith("BRISQUE unavailable: no BRISQUE model") for n in notes)
    assert any(n.startswith("MA unavailable: ") for n in notes)
    (tmp_path / "m" / "allmodel").write_text("svm_type epsilon_svr\nno support vectors\n")
    with pytest.raises(DataError, match="not a BRISQUE libsvm model"):
        load_brisque_model(tmp_path / "m")
    with pytest.raises(DataError, match="allrange"):
        load_brisque_model(tmp_path / "missing")
