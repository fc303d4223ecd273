"""Summaries of per-subject values and paired tests between methods on the same subjects."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mrilearn.errors import DataError


def summarize(values: Sequence[float]) -> dict[str, float]:
    """mean, std (population, ddof=0), min, median, max and n across subjects (NaNs dropped)."""
    v = np.asarray(values, np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {k: math.nan for k in ("mean", "std", "min", "median", "max")} | {"n": 0}
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(v.min()),
        "median": float(np.median(v)),
        "max": float(v.max()),
        "n": int(v.size),
    }


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Paired comparison of two methods over the same subjects (``a[i]`` and ``b[i]``).

    Returns the mean difference (a − b), the paired t-test and the Wilcoxon signed-rank
    test (two-sided) statistics and p-values; tests that cannot be run give NaN with
    the reason in ``"reason"`` (fewer than 2 pairs, or all differences zero).
    """
    a_ = np.asarray(a, np.float64)
    b_ = np.asarray(b, np.float64)
    if a_.shape != b_.shape or a_.ndim != 1:
        raise DataError(
            f"paired_test needs two lists of equal length (one value per subject), got "
            f"{a_.shape} and {b_.shape}"
        )
    d = a_ - b_
    out: dict[str, Any] = {
        "n": int(d.size),
        "mean_diff": float(d.mean()) if d.size else math.nan,
        "t_statistic": math.nan,
        "t_pvalue": math.nan,
        "wilcoxon_statistic": math.nan,
        "wilcoxon_pvalue": math.nan,
        "reason": None,
    }
    if d.size < 2:
        out["reason"] = f"need at least 2 paired values, got {d.size}"
        return out
    if not np.any(d):
        out["reason"] = "all paired differences are zero"
        return out
    import scipy.stats  # here: half a second of start-up for every command otherwise

    t = scipy.stats.ttest_rel(a_, b_)
    w = scipy.stats.wilcoxon(a_, b_)
    out.update(
        t_statistic=float(t.statistic),
        t_pvalue=float(t.pvalue),
        wilcoxon_statistic=float(w.statistic),
        wilcoxon_pvalue=float(w.pvalue),
    )
    return out
