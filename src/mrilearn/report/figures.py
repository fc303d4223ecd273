"""Output figures: slices, method comparisons, training curves, result plots.

Every function writes one PNG atomically (temp file in the same folder, then
``os.replace``, so a reader never sees half a file) and closes its figure.
Display convention for RAS-like (X, Y, Z) arrays: a 2-D slice ``s[u, v]`` is shown
as ``imshow(s.T, origin="lower")``, i.e. its first in-plane axis runs left→right
and its second bottom→top, so axial, coronal and sagittal slices appear upright.
MRI is shown in grey; error maps in ``magma`` with a colour bar.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from mrilearn.errors import DataError  # noqa: E402
from mrilearn.metrics.image import psnr  # noqa: E402

PLANE_NAMES = ("sagittal", "coronal", "axial")  # slice along axis 0, 1, 2 of a RAS array
X_KEYS = ("iteration", "step", "epoch")


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically and close it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
        os.close(fd)
        try:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    finally:
        plt.close(fig)
    return path


def show_slice(ax: Any, img: np.ndarray, **kwargs: Any) -> Any:
    """Show a 2-D slice upright (transpose, origin lower) without ticks."""
    im = ax.imshow(np.asarray(img).T, origin="lower", interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def grey_range(volume: np.ndarray) -> tuple[float, float]:
    """Robust display window: 0.5th to 99.5th percentile."""
    lo, hi = np.percentile(volume, [0.5, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1)


def _check_3d(volume: Any, what: str) -> np.ndarray:
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise DataError(f"{what} must be a 3-D (X, Y, Z) array, got shape {volume.shape}")
    return volume


def orthogonal_slices(
    volume: np.ndarray,
    path: str | os.PathLike,
    title: str | None = None,
    crosshair: Sequence[int] | None = None,
) -> Path:
    """Sagittal, coronal and axial slices of an (X, Y, Z) volume through ``crosshair``
    (voxel indices; default the centre), with the crosshair drawn on each."""
    volume = _check_3d(volume, "orthogonal_slices volume")
    point = [n // 2 for n in volume.shape] if crosshair is None else [int(c) for c in crosshair]
    vmin, vmax = grey_range(volume)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for axis, ax in enumerate(axes):
        show_slice(ax, np.take(volume, point[axis], axis=axis), cmap="gray", vmin=vmin, vmax=vmax)
        u, v = [a for a in range(3) if a != axis]
        ax.axvline(point[u], color="yellow", lw=0.6, alpha=0.7)
        ax.axhline(point[v], color="yellow", lw=0.6, alpha=0.7)
        ax.set_title(f"{PLANE_NAMES[axis]} (axis {axis} = {point[axis]})")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def comparison_panel(
    images: Mapping[str, np.ndarray],
    reference_key: str,
    path: str | os.PathLike,
    slice_axis: int,
    index: int | None = None,
    zoom_box: tuple[int, int, int, int] | None = None,
    error_maps: bool = True,
) -> Path:
    """The same slice of every image side by side (e.g. LR, methods…, HR).

    Row 1: the slices on the reference's grey scale, titled with PSNR (dB) against the
    reference slice; row 2 (``error_maps``): |image − reference| on one shared colour
    scale with a colour bar; row 3 (``zoom_box``): the box ``(u0, u1, v0, v1)`` in slice
    voxel indices (u = first, v = second in-plane axis), also outlined on row 1.

    Args:
        images: name → (X, Y, Z) volume on one grid; columns follow the dict order.
        reference_key: the name of the reference (HR) image.
        slice_axis: the axis the slice is taken along (the most degraded plane).
        index: slice index; default the middle slice.
    """
    if reference_key not in images:
        raise DataError(
            f"comparison_panel: reference {reference_key!r} is not among {list(images)}"
        )
    vols = {k: _check_3d(v, f"comparison_panel image {k!r}") for k, v in images.items()}
    ref = vols[reference_key]
    if any(v.shape != ref.shape for v in vols.values()):
        shapes = {k: v.shape for k, v in vols.items()}
        raise DataError(f"comparison_panel: images must share one grid, got {shapes}")
    index = ref.shape[slice_axis] // 2 if index is None else int(index)
    slices = {k: np.take(v, index, axis=slice_axis).astype(np.float64) for k, v in vols.items()}
    ref_slice = slices[reference_key]
    vmin, vmax = grey_range(ref)
    data_range = float(ref.max() - ref.min()) or 1.0
    errors = {k: np.abs(s - ref_slice) for k, s in slices.items()}
    err_max = max(float(np.percentile(e, 99.5)) for e in errors.values()) or 1.0

    n_rows = 1 + int(error_maps) + int(zoom_box is not None)
    n_cols = len(slices)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(3 * n_cols + 0.8, 3.1 * n_rows), squeeze=False
    )
    err_im, cbar_ax = None, None
    for col, (name, s) in enumerate(slices.items()):
        ax = axes[0, col]
        show_slice(ax, s, cmap="gray", vmin=vmin, vmax=vmax)
        is_ref = name == reference_key
        score = "reference" if is_ref else f"{psnr(s, ref_slice, data_range):.2f} dB"
        ax.set_title(f"{name}\n{score}", fontsize=10)
        if zoom_box is not None:
            u0, u1, v0, v1 = zoom_box
            ax.add_patch(Rectangle((u0, v0), u1 - u0, v1 - v0, fill=False, ec="red", lw=1))
        row = 1
        if error_maps:
            ax = axes[row, col]
            if is_ref:  # the reference has no error map: its slot holds the colour bar
                ax.axis("off")
                cbar_ax = ax.inset_axes((0.1, 0.05, 0.08, 0.9))
            else:
                err_im = show_slice(ax, errors[name], cmap="magma", vmin=0, vmax=err_max)
                ax.set_title(f"|{name} − {reference_key}|", fontsize=9)
            row += 1
        if zoom_box is not None:
            u0, u1, v0, v1 = zoom_box
            show_slice(axes[row, col], s[u0:u1, v0:v1], cmap="gray", vmin=vmin, vmax=vmax)
            axes[row, col].set_title(f"{name} (zoom)", fontsize=9)
    if err_im is not None:
        fig.colorbar(err_im, cax=cbar_ax, label="absolute error")
    fig.suptitle(f"{PLANE_NAMES[slice_axis]} slice {index} (axis {slice_axis})")
    return save_figure(fig, path)


def loss_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    keys: Sequence[str] | None = None,
) -> Path:
    """Plot logged scalars against the iteration.

    ``records`` are dicts like ``{"iteration": 10, "train/loss": 0.3, "val/loss": 0.4}``
    (a key may be missing from some records, e.g. validation every N iterations).
    Keys with the same last component (``train/loss``, ``val/loss``) share a panel;
    ``keys`` selects the keys (default: every numeric key except the x axis). A panel's y
    axis is logarithmic when its values are positive and span more than a decade (losses),
    linear otherwise (PSNR, SSIM).
    """
    x_key = next((k for k in X_KEYS if any(k in r for r in records)), None)
    if keys is None:
        keys = sorted(
            {
                k
                for r in records
                for k, v in r.items()
                if k not in X_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)
            }
        )
    if not keys:
        raise DataError("loss_curves: no numeric keys to plot in the records")
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(k.rsplit("/", 1)[-1], []).append(k)
    n = len(groups)
    n_cols = min(n, 3)
    n_rows = math.ceil(n / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(5 * n_cols, 3.6 * n_rows), squeeze=False)
    for ax, (group, members) in zip(axes.flat, groups.items(), strict=False):
        lo, hi = math.inf, -math.inf
        for k in members:
            pts = [
                (r[x_key] if x_key else i, float(r[k]))
                for i, r in enumerate(records)
                if k in r and r[k] is not None and (x_key is None or x_key in r)
            ]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            lo, hi = min(lo, *ys), max(hi, *ys)
            ax.plot(xs, ys, marker="." if len(xs) < 50 else None, label=k)
        if 0 < lo and hi > 10 * lo:
            ax.set_yscale("log")
        ax.set_title(group)
        ax.set_xlabel(x_key or "record")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return save_figure(fig, path)


def boxplots(
    per_subject: Mapping[str, Mapping[str, Sequence[float]]], path: str | os.PathLike
) -> Path:
    """One panel per metric with a box per method; each subject is a dot on its box.

    ``per_subject[method][metric]`` lists one value per subject.
    """
    methods = list(per_subject)
    metrics = list(dict.fromkeys(m for by_metric in per_subject.values() for m in by_metric))
    if not metrics:
        raise DataError("boxplots: no metrics to plot")
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(max(4, 1.1 * len(methods) + 1.5) * len(metrics), 4), squeeze=False
    )
    rng = np.random.default_rng(0)  # fixed jitter so figures are reproducible
    for ax, metric in zip(axes[0], metrics, strict=True):
        data = [np.asarray(per_subject[m].get(metric, []), np.float64) for m in methods]
        ax.boxplot(data, showfliers=False)
        for i, d in enumerate(data, start=1):
            ax.plot(i + rng.uniform(-0.12, 0.12, d.size), d, ".", color="k", alpha=0.6)
        ax.set_xticks(range(1, len(methods) + 1), methods, rotation=30, ha="right")
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def scatter_plot(
    x: Sequence[float],
    y: Sequence[float],
    labels: Sequence[str],
    path: str | os.PathLike,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
) -> Path:
    """Labelled points, e.g. distortion (PSNR) vs perception (PI) for every method."""
    if not len(x) == len(y) == len(labels):
        raise DataError(
            f"scatter_plot: x, y and labels differ in length ({len(x)}, {len(y)}, {len(labels)})"
        )
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(x, y, c=range(len(x)), cmap="tab10", vmin=0, vmax=9, zorder=2)
    for xi, yi, label in zip(x, y, labels, strict=True):
        ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def group_scatter(
    points: np.ndarray, groups: Sequence[str], path: str | os.PathLike, title: str | None = None
) -> Path:
    """(N, 2) points coloured by group, e.g. a 2-D embedding of features by data domain."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(groups):
        raise DataError(f"group_scatter: need (N, 2) points and N groups, got {points.shape}")
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name in dict.fromkeys(groups):
        sel = np.asarray([g == name for g in groups])
        ax.scatter(points[sel, 0], points[sel, 1], s=14, alpha=0.7, label=name)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
