"""What a metric's name says: how to label it, its unit, and which direction is better.

Evaluations name their metrics ``<qualifier>_<metric>_<unit>`` in any combination:
``psnr``, ``dsc_liver``, ``bright_ssim``, ``U_nrmse``, ``t1_blood_bias_pct``, ``runtime_s``.
This module is the one place that knows that PSNR is better high and NRMSE low, so tables
(the bold best value) and the outcome sentence of a report agree with each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

HIGHER = "higher"
LOWER = "lower"
ZERO = "zero"  # a bias: the smaller its magnitude, the better

_DIRECTION = {
    **dict.fromkeys(("psnr", "ssim", "dsc", "dice", "jaccard", "r"), HIGHER),
    **dict.fromkeys(
        ("nrmse", "rmse", "mse", "mae", "niqe", "piqe", "brisque", "pi", "msd", "hd", "hd95"),
        LOWER,
    ),
    **dict.fromkeys(("runtime", "seconds", "loss"), LOWER),
    "bias": ZERO,
}
_LABEL = {
    "psnr": "PSNR", "ssim": "SSIM", "dice": "Dice", "nrmse": "NRMSE", "rmse": "RMSE", "mse": "MSE",
    "mae": "MAE", "dsc": "DSC", "jaccard": "Jaccard", "msd": "MSD", "hd": "HD", "hd95": "HD95",
    "niqe": "NIQE", "piqe": "PIQE", "brisque": "BRISQUE", "pi": "PI", "t1": "T1",
}  # fmt: skip
_METRIC_UNIT = {"psnr": "dB", "msd": "mm", "hd": "mm", "hd95": "mm"}
# decimals a table shows (None: enough for 4 significant digits of the column's largest value)
_DECIMALS = {"psnr": 2, "ssim": 4, "dsc": 4, "dice": 4, "jaccard": 4, "msd": 2, "hd": 2, "hd95": 2}
_SUFFIX_UNIT = {"s": "s", "ms": "ms", "mm": "mm", "pct": "%", "db": "dB"}


@dataclass(frozen=True)
class MetricInfo:
    """``label`` for tables and sentences, ``unit`` (``""`` if none), ``better``:
    :data:`HIGHER`, :data:`LOWER`, :data:`ZERO` or ``None`` when the name does not say, and
    the ``decimals`` a table shows (``None``: as many as the values need)."""

    name: str
    label: str
    unit: str
    better: str | None
    decimals: int | None = None


def metric_info(name: str) -> MetricInfo:
    """Label, unit and direction of the metric ``name`` (see the module docstring)."""
    tokens = name.split("_")
    unit = ""
    if len(tokens) > 1 and tokens[-1].lower() in _SUFFIX_UNIT:
        unit = _SUFFIX_UNIT[tokens.pop().lower()]
    lower = [t.lower() for t in tokens]
    better = (
        ZERO if "bias" in lower else next((_DIRECTION[t] for t in lower if t in _DIRECTION), None)
    )
    unit = unit or next((_METRIC_UNIT[t] for t in lower if t in _METRIC_UNIT), "")
    label = " ".join(_LABEL.get(t.lower(), t) for t in tokens)
    decimals = next((_DECIMALS[t] for t in lower if t in _DECIMALS), None)
    return MetricInfo(name, label, unit, better, decimals)


def goodness(name: str) -> Callable[[float], float] | None:
    """A key that is larger for a better value of ``name`` (``max(values, key=...)`` is the
    best); ``None`` when the name does not say which direction is better."""
    better = metric_info(name).better
    if better == HIGHER:
        return lambda x: x
    if better == LOWER:
        return lambda x: -x
    if better == ZERO:
        return lambda x: -abs(x)
    return None
