"""Image-quality metrics for super-resolution (§3.4): PSNR, SSIM, NRMSE.

PSNR, SSIM and NRMSE are computed slice by slice in the most degraded plane
(slices taken along ``slice_axis``) and averaged per subject; summaries across subjects
and paired tests between methods (:mod:`mrilearn.metrics.statistics`) build on those.

Conventions:
- ``data_range`` (the "peak" of PSNR and the L of SSIM) defaults to the target
  (HR) volume's max − min over the WHOLE volume, fixed per subject so that all
  its slices are scored on one scale.
- PSNR = 10·log10(data_range² / MSE) in dB; identical slices give ``inf`` (not
  capped), so a subject mean is ``inf`` only if some slice is reproduced exactly.
- NRMSE = ‖pred − target‖₂ / ‖target‖₂ per slice (normalised by the target's
  norm, not by its range or mean).
- SSIM is scikit-image's ``structural_similarity`` with the Wang et al. settings
  (Gaussian window σ = 1.5, 11×11, K1 = 0.01, K2 = 0.03, population covariance);
  without a mask the slice value is scikit-image's mean of the map away from the
  5-pixel border (this matches MONAI's ``SSIMMetric``), with a mask it is the mean
  of the full map over the mask's pixels.
- Slices without foreground are skipped: with a mask, slices where the mask is
  empty; without one, slices whose target never exceeds 10% of the data range
  above the volume's minimum. Such slices hold no anatomy; their PSNR would be
  near-infinite for any method that leaves the background alone and would
  dominate the slice average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from skimage.metrics import structural_similarity

from mrilearn.errors import DataError
from mrilearn.registry import METRICS

METRIC_NAMES = ("psnr", "ssim", "nrmse")
EMPTY_SLICE_FRACTION = 0.1
SSIM_WINDOW = 11  # the Gaussian window scikit-image uses for sigma=1.5 (truncate 3.5)


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float) -> float:
    """PSNR in dB of two same-shape arrays; ``inf`` when they are identical."""
    mse = float(np.mean((np.asarray(pred, np.float64) - np.asarray(target, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def nrmse(pred: np.ndarray, target: np.ndarray) -> float:
    """‖pred − target‖₂ / ‖target‖₂ (NaN when the target is all zero)."""
    target = np.asarray(target, np.float64)
    norm = float(np.linalg.norm(target))
    err = float(np.linalg.norm(np.asarray(pred, np.float64) - target))
    return err / norm if norm > 0 else math.nan


def ssim_slice(
    pred: np.ndarray, target: np.ndarray, data_range: float, mask: np.ndarray | None = None
) -> float:
    """SSIM of one 2-D slice (see the module notes for the window and the mask)."""
    if min(target.shape) < SSIM_WINDOW:
        raise DataError(
            f"SSIM needs slices of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, got "
            f"{target.shape}; choose another slice_axis or skip SSIM for such small images"
        )
    mean, smap = structural_similarity(
        np.asarray(pred, np.float64),
        np.asarray(target, np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        full=True,
    )
    return float(mean) if mask is None else float(smap[mask].mean())


def slicewise_metrics(
    pred: np.ndarray,
    target: np.ndarray,
    slice_axis: int,
    data_range: float | None = None,
    mask: np.ndarray | None = None,
    metrics: Sequence[str] = METRIC_NAMES,
) -> dict[str, float]:
    """Per-subject means of slice-wise PSNR (dB), SSIM and NRMSE.

    Args:
        pred, target: (X, Y, Z) volumes on the same grid (target = HR reference).
        slice_axis: axis to iterate over; the slices are the most degraded plane
            (``KspaceTruncation.slice_axis``).
        data_range: intensity range for PSNR/SSIM; default target.max() − target.min().
        mask: optional boolean (X, Y, Z) foreground: PSNR/NRMSE use only its voxels,
            SSIM averages its map over them; slices with no foreground are skipped.
        metrics: which of "psnr", "ssim", "nrmse" to compute.

    Returns ``{metric: mean over slices}`` plus ``"n_slices"``.
    """
    pred, target, mask = _check_inputs(pred, target, slice_axis, mask)
    unknown = set(metrics) - set(METRIC_NAMES)
    if unknown:
        raise DataError(f"unknown metrics {sorted(unknown)}; choose from {list(METRIC_NAMES)}")
    if data_range is None:
        data_range = float(target.max() - target.min())
    if not data_range > 0:
        raise DataError(
            f"data_range must be > 0, got {data_range} (a constant target volume has no range; "
            "pass data_range explicitly)"
        )
    floor = float(target.min()) + EMPTY_SLICE_FRACTION * data_range
    values: dict[str, list[float]] = {m: [] for m in metrics}
    for i in range(target.shape[slice_axis]):
        p = np.take(pred, i, axis=slice_axis)
        t = np.take(target, i, axis=slice_axis)
        m = None if mask is None else np.take(mask, i, axis=slice_axis)
        empty = not m.any() if m is not None else t.max() < floor
        if empty:
            continue
        pv, tv = (p, t) if m is None else (p[m], t[m])
        if "psnr" in values:
            values["psnr"].append(psnr(pv, tv, data_range))
        if "nrmse" in values:
            values["nrmse"].append(nrmse(pv, tv))
        if "ssim" in values:
            values["ssim"].append(ssim_slice(p, t, data_range, m))
    n_slices = len(next(iter(values.values()))) if values else 0
    if n_slices == 0:
        raise DataError(
            "no slice has foreground (the mask or the target is empty); check the mask/volume"
        )
    out = {k: float(np.mean(v)) for k, v in values.items()}
    out["n_slices"] = float(n_slices)
    return out


def _check_inputs(
    pred: Any, target: Any, slice_axis: int, mask: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    pred = _as_numpy(pred)
    target = _as_numpy(target)
    if pred.shape != target.shape or target.ndim != 3:
        raise DataError(
            f"metrics need two 3-D volumes of the same shape, got {pred.shape} and "
            f"{target.shape}; squeeze channel axes and resample onto the HR grid first"
        )
    if slice_axis not in (0, 1, 2):
        raise DataError(f"slice_axis must be 0, 1 or 2, got {slice_axis}")
    if mask is not None:
        mask = _as_numpy(mask).astype(bool)
        if mask.shape != target.shape:
            raise DataError(f"mask shape {mask.shape} does not match the volume {target.shape}")
    return pred, target, mask


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


class _SliceMetric:
    """Base of the registered per-volume metrics: the subject mean of one slice-wise metric."""

    key = ""

    def __init__(self, slice_axis: int = 0, data_range: float | None = None) -> None:
        self.slice_axis = slice_axis
        self.data_range = data_range

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Mean over slices along ``slice_axis`` of two (X, Y, Z) volumes."""
        return slicewise_metrics(
            pred, target, self.slice_axis, self.data_range, metrics=(self.key,)
        )[self.key]


@METRICS.register()
class PSNR(_SliceMetric):
    """Slice-wise PSNR in dB, averaged over slices (higher is better)."""

    key = "psnr"


@METRICS.register()
class SSIM(_SliceMetric):
    """Slice-wise SSIM, averaged over slices (higher is better, ≤ 1)."""

    key = "ssim"


@METRICS.register()
class NRMSE(_SliceMetric):
    """Slice-wise NRMSE = ‖pred − target‖ / ‖target‖, averaged over slices (lower is better)."""

    key = "nrmse"
