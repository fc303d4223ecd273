"""Segmentation figures: label overlays in three views (Fig. 7.3) and per-organ boxplots
per method (Fig. 7.4). Same display conventions as :mod:`mrilearn.report.figures`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap, to_rgba

from mrilearn.report.figures import PLANE_NAMES, grey_range, save_figure, show_slice, subplots


def overlay_panel(
    image: np.ndarray,
    label_maps: Mapping[str, np.ndarray],
    colours: Mapping[int, str],
    path: str | os.PathLike,
    alpha: float = 0.45,
) -> Path:
    """Rows: sagittal, coronal, axial slices through the centre of the labelled region;
    columns: the image, then the image with each (X, Y, Z) label map drawn in its label
    colours (e.g. reference, single view, multi-view)."""
    first = next(iter(label_maps.values()))
    fg = np.argwhere(first > 0)
    point = fg.mean(0).astype(int) if len(fg) else np.array(image.shape) // 2
    top = max(max(colours, default=0), 1)
    table = np.zeros((top + 1, 4))
    for value, colour in colours.items():
        table[value] = to_rgba(colour, alpha)
    cmap = ListedColormap(table)
    vmin, vmax = grey_range(image)
    cols = ["image", *label_maps]
    fig, axes = subplots(3, len(cols), figsize=(2.8 * len(cols), 8.4), squeeze=False)
    for axis in range(3):
        img = np.take(image, point[axis], axis=axis)
        for col, name in enumerate(cols):
            ax = axes[axis, col]
            show_slice(ax, img, cmap="gray", vmin=vmin, vmax=vmax)
            if name != "image":
                lab = np.clip(np.take(label_maps[name], point[axis], axis=axis), 0, top)
                show_slice(ax, lab, cmap=cmap, vmin=-0.5, vmax=top + 0.5)
            if axis == 0:
                ax.set_title(name, fontsize=10)
        axes[axis, 0].set_ylabel(PLANE_NAMES[axis])
    return save_figure(fig, path)


def organ_boxplots(
    per_subject: Mapping[str, Mapping[str, Sequence[float]]],
    organs: Sequence[str],
    metric: str,
    path: str | os.PathLike,
) -> Path:
    """Boxes of ``per_subject[method][f"{metric}_{organ}"]`` grouped by organ, one colour
    per method (Fig. 7.4)."""
    methods = list(per_subject)
    width = 0.8 / max(len(methods), 1)
    fig, ax = subplots(figsize=(max(6, 0.9 * len(organs) * max(len(methods), 2) / 2), 4))
    for i, method in enumerate(methods):
        data = [np.asarray(per_subject[method][f"{metric}_{o}"], float) for o in organs]
        data = [d[~np.isnan(d)] for d in data]
        pos = np.arange(len(organs)) + (i - (len(methods) - 1) / 2) * width
        box = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                         showfliers=False)  # fmt: skip
        for patch in box["boxes"]:
            patch.set_facecolor(colormaps["tab10"](i % 10))
        ax.plot([], [], "s", color=colormaps["tab10"](i % 10), label=method)
    ax.set_xticks(range(len(organs)), organs, rotation=30, ha="right")
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
