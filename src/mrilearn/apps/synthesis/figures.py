"""Synthesis figure: one row per slice, the label map in its colours, the real image and
synthesised images. Same display conventions as :mod:`mrilearn.report.figures`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap, to_rgba

from mrilearn.report.figures import grey_range, save_figure, show_slice, subplots


def synthesis_panel(
    rows: Sequence[Sequence[np.ndarray]],
    titles: Sequence[str],
    colours: Mapping[int, str],
    path: str | os.PathLike,
) -> Path:
    """``rows``: per slice (class map, real image, synthetic image, ...), all (X, Y); images
    of a row share the real image's grey window, so intensity errors show."""
    top = max(colours, default=1)
    table = np.zeros((top + 1, 4))
    table[0] = (0, 0, 0, 1)
    for value, colour in colours.items():
        table[value] = to_rgba(colour)
    fig, axes = subplots(len(rows), len(titles), figsize=(2.6 * len(titles), 2.6 * len(rows)),
                             squeeze=False)  # fmt: skip
    for r, (label, real, *synthetic) in enumerate(rows):
        show_slice(axes[r, 0], label, cmap=ListedColormap(table), vmin=-0.5, vmax=top + 0.5)
        vmin, vmax = grey_range(real)
        for c, image in enumerate([real, *synthetic], start=1):
            show_slice(axes[r, c], image, cmap="gray", vmin=vmin, vmax=vmax)
    for c, title in enumerate(titles):
        axes[0, c].set_title(title, fontsize=10)
    return save_figure(fig, path)
