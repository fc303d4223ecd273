"""Per-organ segmentation metrics in millimetres (§7.2.7), wrapping MONAI's implementations.

- DSC = 2|P∩R| / (|P| + |R|); Jaccard = |P∩R| / |P∪R|.
- MSD: symmetric mean surface distance (mm): the mean over the border voxels of both masks
  of the distance to the other mask's border (MONAI ``compute_average_surface_distance``,
  ``symmetric=True``).
- HD95 (mm): the larger of the two directed 95th-percentile border distances (MONAI
  ``compute_hausdorff_distance``, ``percentile=95``).
Border voxels are those removed by a 6-connected erosion; distances use the voxel
``spacing`` (mm), so anisotropic grids are measured correctly.

An organ absent from the reference and the prediction gets NaN for every metric; absent from
one of them, DSC = Jaccard = 0 and the distances are NaN (undefined). The reason is returned
in ``notes`` and NaNs are left out of summaries.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from mrilearn.errors import DataError

SEG_METRICS = ("dsc", "jaccard", "msd", "hd95")


def organ_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float],
    hd_percentile: float = 95.0,
) -> tuple[dict[str, float], str | None]:
    """DSC, Jaccard, MSD (mm) and HD (``hd_percentile``, mm) of two boolean (X, Y, Z) masks;
    returns ``(values, note)`` where ``note`` says why some values are NaN."""
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    if pred.shape != ref.shape or pred.ndim != 3:
        raise DataError(f"metrics need two 3-D masks of one shape, got {pred.shape}, {ref.shape}")
    has_p, has_r = bool(pred.any()), bool(ref.any())
    nan = {k: math.nan for k in SEG_METRICS}
    if not has_r and not has_p:
        return nan, "absent in reference and prediction"
    if not (has_r and has_p):
        note = "absent in prediction (missed)" if has_r else "absent in reference (false positive)"
        return {**nan, "dsc": 0.0, "jaccard": 0.0}, note
    p = torch.from_numpy(pred)[None, None]
    r = torch.from_numpy(ref)[None, None]
    with warnings.catch_warnings():  # MONAI warns about its own internal deprecated argument
        warnings.filterwarnings("ignore", ".*always_return_as_numpy", FutureWarning)
        values = _monai_metrics(p, r, [float(s) for s in spacing], hd_percentile)
    return {k: float(v.reshape(-1)[0]) for k, v in values.items()}, None


def _monai_metrics(
    p: torch.Tensor, r: torch.Tensor, sp: list[float], hd_percentile: float
) -> dict[str, torch.Tensor]:
    from monai.metrics import (  # MONAI: seconds to import, so only when evaluating
        compute_average_surface_distance,
        compute_dice,
        compute_hausdorff_distance,
        compute_iou,
    )

    return {
        "dsc": compute_dice(p, r, include_background=True),
        "jaccard": compute_iou(p, r, include_background=True),
        "msd": compute_average_surface_distance(
            p, r, include_background=True, symmetric=True, spacing=sp
        ),
        "hd95": compute_hausdorff_distance(
            p, r, include_background=True, percentile=hd_percentile, spacing=sp
        ),
    }


def segmentation_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    names: Sequence[str],
    values: Sequence[int],
    spacing: Sequence[float],
) -> tuple[dict[str, float], dict[str, str]]:
    """Per-organ metrics of two label maps (label ``values[i]`` is organ ``names[i]``).

    Returns ``({"<metric>_<organ>": value, "<metric>_mean": mean over organs}, notes)``
    with ``notes[organ]`` for organs whose metrics are partly NaN; means skip NaNs.
    """
    out: dict[str, float] = {}
    notes: dict[str, str] = {}
    for name, value in zip(names, values):
        m, note = organ_metrics(pred == value, ref == value, spacing)
        out.update({f"{k}_{name}": v for k, v in m.items()})
        if note:
            notes[name] = note
    for k in SEG_METRICS:
        organ_values = np.array([out[f"{k}_{n}"] for n in names], float)
        finite = organ_values[~np.isnan(organ_values)]
        out[f"{k}_mean"] = float(finite.mean()) if finite.size else math.nan
    return out, notes
