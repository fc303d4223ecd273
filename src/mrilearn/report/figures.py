"""Output figures: slices, method comparisons, training curves, result plots.

Every function writes one PNG atomically (:func:`mrilearn.io.atomic.atomic_path`: a reader
never sees half a file, and the PNG gets the permissions of a normal file, so a report served
to others shows its images) and closes its figure.
Display convention for RAS-like (X, Y, Z) arrays: a 2-D slice ``s[u, v]`` is shown
as ``imshow(s.T, origin="lower")``, i.e. its first in-plane axis runs left→right
and its second bottom→top, so axial, coronal and sagittal slices appear upright.
MRI is shown in grey; error maps in ``magma`` with a colour bar.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrilearn.errors import DataError
from mrilearn.io.atomic import atomic_path
from mrilearn.metrics.image import psnr
from mrilearn.metrics.naming import metric_info

PLANE_NAMES = ("sagittal", "coronal", "axial")  # slice along axis 0, 1, 2 of a RAS array
X_KEYS = ("iteration", "step", "epoch")


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend, imported on first use: a command that
    draws nothing (``infer``) starts without it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def __getattr__(name: str) -> Any:
    """``figures.plt``: :func:`pyplot`, for code that used the module's ``plt``."""
    if name == "plt":
        return pyplot()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``subplots`` of :func:`pyplot`."""
    return pyplot().subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return Path(path)


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
    fig, axes = subplots(1, 3, figsize=(12, 4.4))
    for axis, ax in enumerate(axes):
        show_slice(ax, np.take(volume, point[axis], axis=axis), cmap="gray", vmin=vmin, vmax=vmax)
        u, v = [a for a in range(3) if a != axis]
        ax.axvline(point[u], color="yellow", lw=0.6, alpha=0.7)
        ax.axhline(point[v], color="yellow", lw=0.6, alpha=0.7)
        ax.set_title(f"{PLANE_NAMES[axis]} (axis {axis} = {point[axis]})")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


ZoomBox = tuple[int, int, int, int]


def comparison_panel(
    images: Mapping[str, np.ndarray],
    reference_key: str,
    path: str | os.PathLike,
    slice_axis: int,
    index: int | None = None,
    zoom_box: ZoomBox | str | None = None,
    error_maps: bool = True,
    mask: np.ndarray | None = None,
) -> Path:
    """The same slice of every image side by side (e.g. LR, methods…, HR).

    Row 1: the slices on the reference's grey scale, titled with the PSNR (dB) of this slice
    against the reference's (inside ``mask`` if given; an evaluation table averages it over
    all slices, so it differs); row 2 (``error_maps``): |image − reference| on one colour
    scale for all (the 99th percentile inside the foreground away from its edge; brighter
    errors saturate) with one colour bar; row 3 (``zoom_box``): the box ``(u0, u1, v0, v1)``
    in slice voxel indices (u = first, v = second in-plane axis), or ``"auto"`` for the
    reference's most structured square inside the foreground and below the grey scale's top
    (:func:`structure_box`), contrast-stretched to the reference's range inside it and
    outlined on row 1.

    Args:
        images: name → (X, Y, Z) volume on one grid; columns follow the dict order.
        reference_key: the name of the reference (HR) image.
        slice_axis: the axis the slice is taken along (the most degraded plane).
        index: slice index; default the middle slice.
        mask: boolean (X, Y, Z) foreground the metrics use; default the reference above 5 %
            of its range.
    """
    vols = _panel_volumes(images, reference_key)
    ref = vols[reference_key]
    index = ref.shape[slice_axis] // 2 if index is None else int(index)
    slices = {k: np.take(v, index, axis=slice_axis).astype(np.float64) for k, v in vols.items()}
    ref_slice = slices[reference_key]
    vmin, vmax = grey_range(ref)
    data_range = float(ref.max() - ref.min()) or 1.0
    fg = (
        np.take(np.asarray(mask, bool), index, axis=slice_axis)
        if mask is not None
        else ref_slice > ref_slice.min() + 0.05 * data_range
    )
    if zoom_box == "auto":
        inside = fg & (ref_slice < vmax)  # a blob saturated on the grey scale is no texture
        zoom_box = structure_box(ref_slice, max(8, min(ref_slice.shape) // 3), inside)
    from matplotlib import patches

    layout = _PanelLayout(ref_slice.shape, len(slices), error_maps, zoom_box is not None)
    fig, axes = layout.figure()
    for col, (name, s) in enumerate(slices.items()):
        ax = axes[0, col]
        show_slice(ax, s, cmap="gray", vmin=vmin, vmax=vmax)
        is_ref = name == reference_key
        value = psnr(s[fg], ref_slice[fg], data_range) if fg.any() else math.nan
        ax.set_title(f"{name}\n" + ("reference" if is_ref else f"slice PSNR {value:.2f} dB"))
        if zoom_box is not None:
            u0, u1, v0, v1 = zoom_box
            ax.add_patch(
                patches.Rectangle((u0 - 0.5, v0 - 0.5), u1 - u0, v1 - v0, fill=False, ec="red")
            )
    row = 1
    if error_maps:
        _error_row(fig, axes[row], slices, reference_key, fg)
        row += 1
    if zoom_box is not None:
        u0, u1, v0, v1 = zoom_box
        lo, hi = np.percentile(ref_slice[u0:u1, v0:v1], [1, 99])
        for col, (name, s) in enumerate(slices.items()):
            show_slice(
                axes[row, col], s[u0:u1, v0:v1], cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6)
            )
            axes[row, col].set_title(f"{name} (zoom, stretched)", fontsize=8)
    fig.suptitle(
        f"{PLANE_NAMES[slice_axis]} slice {index} (axis {slice_axis}); slice PSNR: this slice "
        "only, the table averages all slices",
        fontsize=10,
    )
    return save_figure(fig, path)


def _panel_volumes(images: Mapping[str, np.ndarray], reference_key: str) -> dict[str, np.ndarray]:
    if reference_key not in images:
        raise DataError(
            f"comparison_panel: reference {reference_key!r} is not among {list(images)}"
        )
    vols = {k: _check_3d(v, f"comparison_panel image {k!r}") for k, v in images.items()}
    if any(v.shape != vols[reference_key].shape for v in vols.values()):
        shapes = {k: v.shape for k, v in vols.items()}
        raise DataError(f"comparison_panel: images must share one grid, got {shapes}")
    return vols


class _PanelLayout:
    """Column width from the slice's aspect ratio, so tall and wide slices both fill it."""

    def __init__(self, shape: tuple[int, int], n_cols: int, errors: bool, zoom: bool) -> None:
        aspect = shape[0] / shape[1]  # displayed width / height
        self.width = float(np.clip(3.0 * math.sqrt(aspect), 1.8, 3.6))
        image_h = float(np.clip(self.width / aspect, 1.4, 4.2)) + 0.6
        self.heights = [image_h] * (1 + int(errors)) + [self.width + 0.4] * int(zoom)
        self.n_cols = n_cols

    def figure(self) -> tuple[Any, np.ndarray]:
        return subplots(
            len(self.heights),
            self.n_cols,
            figsize=(self.width * self.n_cols + 0.6, sum(self.heights) + 0.5),
            gridspec_kw={"height_ratios": self.heights},
            squeeze=False,
            layout="constrained",
        )


def _error_row(
    fig: Any, axes: np.ndarray, slices: Mapping[str, np.ndarray], reference_key: str, fg: np.ndarray
) -> None:
    """|image − reference| on one scale; the reference's slot holds the one colour bar."""
    ref = slices[reference_key]
    errors = {k: np.abs(s - ref) for k, s in slices.items() if k != reference_key}
    interior = erode(fg, 2)
    region = interior if interior.any() else np.ones_like(fg)
    err_max = max((float(np.percentile(e[region], 99)) for e in errors.values()), default=0.0)
    err_max = err_max or max((float(e.max()) for e in errors.values()), default=0.0) or 1.0
    image = None
    for ax, name in zip(axes, slices, strict=True):
        if name == reference_key:
            ax.axis("off")
            cbar_ax = ax.inset_axes((0.15, 0.05, 0.1, 0.9))
            continue
        image = show_slice(ax, errors[name], cmap="magma", vmin=0, vmax=err_max)
        ax.set_title(f"|{name} − {reference_key}|", fontsize=9)
    if image is not None:
        fig.colorbar(image, cax=cbar_ax, label="absolute error (all maps)", extend="max")


def erode(mask: np.ndarray, steps: int) -> np.ndarray:
    """A 2-D boolean mask shrunk by ``steps`` voxels (4-neighbourhood) and off the border:
    its interior, where error scales are taken so that edge errors saturate."""
    out = np.asarray(mask, bool).copy()
    for _ in range(steps):
        inner = out.copy()
        inner[1:] &= out[:-1]
        inner[:-1] &= out[1:]
        inner[:, 1:] &= out[:, :-1]
        inner[:, :-1] &= out[:, 1:]
        out = inner
    out[[0, -1], :] = False
    out[:, [0, -1]] = False
    return out


def structure_box(image: np.ndarray, size: int, mask: np.ndarray | None = None) -> ZoomBox:
    """The ``size`` × ``size`` square of a 2-D ``image`` with the highest variance, among the
    squares that lie inside ``mask`` (if none does, variance times the share of the mask).
    Returns ``(u0, u1, v0, v1)``, the box of :func:`comparison_panel`."""
    image = np.asarray(image, np.float64)
    h = int(min(size, *image.shape))
    mean = _window_means(image, h)
    var = _window_means(image**2, h) - mean**2
    if mask is not None:
        share = _window_means(np.asarray(mask, np.float64), h)
        var = (
            np.where(share >= 1 - 1e-9, var, -np.inf) if (share >= 1 - 1e-9).any() else var * share
        )
    u0, v0 = np.unravel_index(int(np.argmax(var)), var.shape)
    return int(u0), int(u0) + h, int(v0), int(v0) + h


def _window_means(a: np.ndarray, h: int) -> np.ndarray:
    """Means of every h × h window of ``a``, indexed by the window's first corner."""
    c = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (c[h:, h:] - c[:-h, h:] - c[h:, :-h] + c[:-h, :-h]) / (h * h)


def loss_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    keys: Sequence[str] | None = None,
) -> Path:
    """Plot logged scalars against the iteration, one panel per quantity.

    ``records`` are dicts like ``{"iteration": 10, "train/loss": 0.3, "val/loss": 0.4}``
    (a key may be missing from some records, e.g. validation every N iterations).
    ``train/X`` and ``val/X`` share the panel of X; the learning rates ``lr/<net>`` share a
    panel of their own. ``keys`` selects the keys (default: every numeric key except the x
    axis and the timings ``time/...``, which are no curve to read). A panel's y axis is
    logarithmic when its values are positive and span more than a decade (losses, learning
    rates), linear otherwise (PSNR, SSIM).
    """
    x_key = next((k for k in X_KEYS if any(k in r for r in records)), None)
    if keys is None:
        keys = sorted(
            {
                k
                for r in records
                for k, v in r.items()
                if k not in X_KEYS and not k.startswith("time/") and _is_number(v)
            }
        )
    if not keys:
        raise DataError("loss_curves: no numeric keys to plot in the records")
    groups = curve_panels(keys)
    n_cols = min(len(groups), 3)
    n_rows = math.ceil(len(groups) / n_cols)
    fig, axes = subplots(
        n_rows, n_cols, figsize=(4.6 * n_cols, 3.4 * n_rows), squeeze=False, layout="constrained"
    )
    for ax, (title, members) in zip(axes.flat, groups.items(), strict=False):
        _curve_panel(ax, records, x_key, title, members)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    return save_figure(fig, path)


def curve_panels(keys: Sequence[str]) -> dict[str, list[str]]:
    """Panel title → the logged keys it draws: ``train/X`` and ``val/X`` share X's panel
    (titled with X's label and unit, e.g. "PSNR (dB)"), ``lr/<net>`` the "learning rate"."""
    groups: dict[str, list[str]] = {}
    for k in keys:
        prefix, _, name = k.rpartition("/")
        if prefix == "lr":
            title = "learning rate"
        else:
            info = metric_info(name)
            title = info.label + (f" ({info.unit})" if info.unit else "")
        groups.setdefault(title, []).append(k)
    return groups


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _curve_panel(
    ax: Any, records: Sequence[Mapping[str, Any]], x_key: str | None, title: str, keys: list[str]
) -> None:
    lo, hi = math.inf, -math.inf
    for k in keys:
        pts = [
            (r[x_key] if x_key else i, float(r[k]))
            for i, r in enumerate(records)
            if k in r and r[k] is not None and (x_key is None or x_key in r)
        ]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        lo, hi = min(lo, *ys), max(hi, *ys)
        prefix, _, name = k.rpartition("/")
        ax.plot(
            xs,
            ys,
            marker="." if len(xs) < 50 else None,
            label=(name if prefix == "lr" else prefix) or k,
        )
    if 0 < lo and hi > 10 * lo:
        ax.set_yscale("log")
    else:  # e.g. a learning rate that barely moves: 1.9998 ×10⁻³, not 0.00199980
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 4), useMathText=True)
    ax.set_title(title)
    ax.set_ylabel(title, fontsize=9)
    ax.set_xlabel(x_key or "record")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


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
    fig, axes = subplots(
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
    fig, ax = subplots(figsize=(5.5, 4.5))
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
    fig, ax = subplots(figsize=(5.5, 4.5))
    for name in dict.fromkeys(groups):
        sel = np.asarray([g == name for g in groups])
        ax.scatter(points[sel, 0], points[sel, 1], s=14, alpha=0.7, label=name)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
