"""Segmentation metrics on shapes with known values, and majority voting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from mrilearn.inference.multiview import majority_vote
from mrilearn.metrics.segmentation import organ_metrics, segmentation_metrics


def test_two_cubes_with_known_overlap():
    a = np.zeros((30, 30, 30), bool)
    b = a.copy()
    a[5:15, 5:15, 5:15] = True
    b[10:20, 5:15, 5:15] = True  # half of each cube overlaps
    m, note = organ_metrics(a, b, (1.0, 1.0, 1.0))
    assert note is None
    assert m["dsc"] == pytest.approx(0.5) and m["jaccard"] == pytest.approx(1 / 3)


def _border_mm(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    return np.argwhere(mask & ~ndimage.binary_erosion(mask)) * spacing


def test_shifted_sphere_distances_in_mm_with_anisotropic_spacing():
    spacing = np.array([2.0, 1.0, 0.5])
    grid = np.stack(np.meshgrid(*[np.arange(40)] * 3, indexing="ij"), -1)
    centre = np.array([20, 20, 20])
    a = np.linalg.norm((grid - centre) * spacing, axis=-1) < 10
    b = np.linalg.norm((grid - centre - [2, 0, 0]) * spacing, axis=-1) < 10  # 4 mm along x
    hd100, _ = organ_metrics(a, b, spacing, hd_percentile=100)
    assert hd100["hd95"] == pytest.approx(4.0)  # the poles: 2 voxels × 2 mm
    m, _ = organ_metrics(a, b, spacing)
    ea, eb = _border_mm(a, spacing), _border_mm(b, spacing)
    d_ab, d_ba = cKDTree(eb).query(ea)[0], cKDTree(ea).query(eb)[0]
    assert m["msd"] == pytest.approx(np.concatenate([d_ab, d_ba]).mean(), rel=1e-4)
    hd95 = max(np.percentile(d_ab, 95), np.percentile(d_ba, 95))
    assert m["hd95"] == pytest.approx(hd95, rel=1e-4)
    assert 0 < m["msd"] < m["hd95"] <= 4.0


def test_absent_organs_give_nan_with_a_reason():
    ref = np.zeros((10, 10, 10), np.int16)
    pred = ref.copy()
    ref[2:5, 2:5, 2:5] = 1
    pred[6:8, 6:8, 6:8] = 2
    m, notes = segmentation_metrics(pred, ref, ["a", "b", "c"], [1, 2, 3], (1, 1, 1))
    assert m["dsc_a"] == 0 and math.isnan(m["msd_a"]) and "missed" in notes["a"]
    assert m["dsc_b"] == 0 and "false positive" in notes["b"]
    assert math.isnan(m["dsc_c"]) and "absent in reference and prediction" in notes["c"]
    assert m["dsc_mean"] == 0.0  # mean over organs with a defined value


def test_majority_vote_with_a_tie_broken_by_summed_probabilities():
    views = [np.array([0, 1, 2, 1]), np.array([0, 1, 1, 2]), np.array([2, 0, 0, 2])]
    views = [v.reshape(4, 1, 1) for v in views]
    prob_sum = np.zeros((3, 4, 1, 1))
    prob_sum[:, 2, 0, 0] = [0.9, 0.2, 1.1]  # voxel 2: views say 2, 1, 0 → tie
    assert majority_vote(views, prob_sum).ravel().tolist() == [0, 1, 2, 2]


def test_majority_vote_matches_the_per_voxel_rule_on_random_views():
    rng = np.random.default_rng(0)
    classes, shape = 5, (6, 5, 4)
    probs = [rng.dirichlet(np.ones(classes), shape).transpose(3, 0, 1, 2) for _ in range(3)]
    views = [rng.integers(0, classes, shape) for _ in probs]  # disagree often, ties included
    prob_sum = np.sum(probs, axis=0)
    fused = majority_vote(views, prob_sum)
    for idx in np.ndindex(shape):
        votes = np.bincount([v[idx] for v in views], minlength=classes)
        tied = np.flatnonzero(votes == votes.max())
        assert fused[idx] == tied[np.argmax(prob_sum[(slice(None), *idx)][tied])]
    assert fused.dtype == np.uint8
