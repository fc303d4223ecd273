"""Slice-wise image metrics, summaries, paired tests and results tables."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from mrilearn.errors import DataError
from mrilearn.metrics.image import psnr, slicewise_metrics, ssim_slice
from mrilearn.metrics.statistics import paired_test, summarize
from mrilearn.registry import METRICS
from mrilearn.report.evaluation import results_table, to_markdown, write_csv


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def smooth_volume(rng: np.random.Generator, shape=(16, 24, 20)) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(rng.uniform(0, 1, size=shape), 2) * 4


def test_psnr_identical_is_inf_and_known_value(rng):
    x = rng.uniform(size=(12, 12, 12))
    assert psnr(x, x, 1.0) == math.inf
    assert slicewise_metrics(x, x, 0)["psnr"] == math.inf
    # constant error 0.1 → MSE 0.01 → PSNR = 10·log10(2² / 0.01) = 26.02 dB for range 2
    assert psnr(x + 0.1, x, 2.0) == pytest.approx(10 * math.log10(4 / 0.01))
    out = slicewise_metrics(x + 0.1, x, 2, data_range=2.0)
    assert out["psnr"] == pytest.approx(26.0206, abs=1e-4)
    assert out["n_slices"] == 12


def test_nrmse_normalisation(rng):
    x = rng.uniform(1, 2, size=(12, 12, 12))
    assert slicewise_metrics(1.1 * x, x, 1)["nrmse"] == pytest.approx(0.1)


def test_ssim_agrees_with_monai(rng):
    from monai.metrics import SSIMMetric

    target = smooth_volume(rng, (4, 32, 28))[0]
    pred = target + rng.normal(0, 0.05, size=target.shape)
    drange = float(target.max() - target.min())
    ours = ssim_slice(pred, target, drange)
    monai_ssim = SSIMMetric(spatial_dims=2, data_range=drange, kernel_sigma=1.5, win_size=11)
    theirs = float(monai_ssim(torch.tensor(pred)[None, None], torch.tensor(target)[None, None]))
    assert 0 < ours < 1
    assert ours == pytest.approx(theirs, abs=5e-4)


def test_default_data_range_is_whole_volume(rng):
    target = smooth_volume(rng)
    pred = target + 0.01
    drange = float(target.max() - target.min())
    assert slicewise_metrics(pred, target, 0)["psnr"] == pytest.approx(
        slicewise_metrics(pred, target, 0, data_range=drange)["psnr"]
    )


def test_mask_restricts(rng):
    target = smooth_volume(rng, (8, 48, 48))
    pred = target.copy()
    mask = np.zeros(target.shape, bool)
    mask[:, 4:24, 4:24] = True
    pred[:, 36:, 36:] += 1.0  # errors only well outside the mask (> the SSIM window radius)
    inside = slicewise_metrics(pred, target, 0, mask=mask)
    everywhere = slicewise_metrics(pred, target, 0)
    assert inside == {"psnr": math.inf, "nrmse": 0.0, "ssim": pytest.approx(1.0), "n_slices": 8}
    assert everywhere["psnr"] < 30 and everywhere["nrmse"] > 0.1 and everywhere["ssim"] < 0.95
    # slices with no foreground are skipped
    mask[:5] = False
    assert slicewise_metrics(pred, target, 0, mask=mask)["n_slices"] == target.shape[0] - 5


def test_slices_run_along_slice_axis(rng):
    target = smooth_volume(rng, (16, 16, 16))
    pred = target.copy()
    pred[3] += rng.normal(0, 0.5, size=pred[3].shape)  # one corrupted slice along axis 0
    along0 = slicewise_metrics(pred, target, 0)
    along2 = slicewise_metrics(pred, target, 2)
    # along axis 0 only 1 of 16 slices is hit (mean PSNR is dominated by clean slices = inf)
    assert along0["psnr"] == math.inf
    assert along2["psnr"] < 40
    assert along0["nrmse"] < along2["nrmse"]


def test_inputs_validated(rng):
    x = rng.uniform(size=(12, 12, 12))
    with pytest.raises(DataError, match="same shape"):
        slicewise_metrics(x, x[:-1], 0)
    with pytest.raises(DataError, match="SSIM needs slices"):
        slicewise_metrics(x[:, :5], x[:, :5], 2)


def test_registered_metric_classes(rng):
    target = smooth_volume(rng)
    pred = target + rng.normal(0, 0.01, size=target.shape)
    ref = slicewise_metrics(pred, target, 1)
    for name in ("PSNR", "SSIM", "NRMSE"):
        metric = METRICS.build({"name": name, "slice_axis": 1})
        assert metric(pred, target) == pytest.approx(ref[name.lower()])


def test_summarize():
    s = summarize([1.0, 2.0, 3.0, 10.0])
    assert s == {"mean": 4.0, "std": pytest.approx(3.5355, abs=1e-4), "min": 1.0, "median": 2.5,
                 "max": 10.0, "n": 4}  # fmt: skip


def test_paired_test(rng):
    a = rng.normal(30, 1, size=12)
    better = a + 0.5 + rng.normal(0, 0.05, size=12)
    r = paired_test(better, a)
    assert r["t_pvalue"] < 0.01 and r["wilcoxon_pvalue"] < 0.01 and r["mean_diff"] > 0
    noise = a + rng.normal(0, 1, size=12)
    r = paired_test(noise, a)
    assert r["t_pvalue"] > 0.05 and r["wilcoxon_pvalue"] > 0.05
    r = paired_test([1.0], [2.0])
    assert math.isnan(r["t_pvalue"]) and "at least 2" in r["reason"]
    r = paired_test([1.0, 2.0], [1.0, 2.0])
    assert math.isnan(r["wilcoxon_pvalue"]) and "zero" in r["reason"]


def test_results_table_csv_and_markdown(tmp_path):
    per_subject = {
        "tricubic": {"psnr": [29.1, 29.3, 29.2], "ssim": [0.83, 0.84, 0.85]},
        "DCSRN": {"psnr": [35.0, 35.1, 34.9], "ssim": [0.93, 0.93, 0.94]},
    }
    rows = results_table(per_subject, runtimes={"tricubic": [0.5, 0.6], "DCSRN": [23.0, 22.0]})
    assert [(r["method"], r["metric"]) for r in rows][:3] == [
        ("tricubic", "psnr"),
        ("tricubic", "ssim"),
        ("tricubic", "runtime_s"),
    ]
    md = to_markdown(rows)
    assert "| DCSRN | psnr | 35 ± 0.08165 |" in md
    assert "tricubic" in md and "runtime_s" in md and "mean ± std" in md
    write_csv(rows, tmp_path / "results.csv")
    with open(tmp_path / "results.csv") as f:
        read = list(csv.DictReader(f))
    assert len(read) == 6 and float(read[3]["mean"]) == pytest.approx(35.0)
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]
