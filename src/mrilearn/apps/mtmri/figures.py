"""Figures and the HTML report of an MT-MRI reconstruction.

Images are (X, Y) arrays shown with the shared convention of :mod:`mrilearn.report.figures`
(x left→right, y bottom→top = head); each PNG is written atomically.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np

from mrilearn.io.atomic import write_text_atomic
from mrilearn.physics.acquisition import IRFlash
from mrilearn.physics.subspace import image_series
from mrilearn.report.figures import loss_curves, save_figure, show_slice, subplots
from mrilearn.report.html import STYLE


def basis_images(u0: np.ndarray, u: np.ndarray, path: str | os.PathLike) -> Path:
    """|U0_l| (top) and |U_l| (bottom) for every basis l, each on its own grey scale (Fig. 2.9)."""
    n = u.shape[0]
    fig, axes = subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
    for row, (name, factor) in enumerate((("U0", u0), ("U", u))):
        for col in range(n):
            mag = np.abs(factor[col])
            show_slice(axes[row, col], mag, cmap="gray", vmin=0, vmax=np.percentile(mag, 99.5))
            axes[row, col].set_title(f"{name}[{col}]", fontsize=8)
    return save_figure(fig, path)


def cardiac_strip(
    u: np.ndarray, phi: np.ndarray, tis: dict[str, int], path: str | os.PathLike, step: int = 2
) -> Path:
    """|images| over the cardiac cycle (every ``step``-th bin) at end-expiration, one row per
    named TI index (e.g. bright-blood, dark-blood), one grey scale per row."""
    cards = np.arange(0, phi.shape[2], step)
    fig, axes = subplots(
        len(tis), len(cards), figsize=(1.5 * len(cards), 1.7 * len(tis)), squeeze=False
    )
    for row, (name, ti) in enumerate(tis.items()):
        images = np.abs(image_series(u, phi, ti, cards, 0))
        vmax = np.percentile(images, 99.5)
        for col, c in enumerate(cards):
            show_slice(axes[row, col], images[col], cmap="gray", vmin=0, vmax=vmax)
            axes[row, col].set_title(f"card {c}" if row == 0 else "", fontsize=8)
        axes[row, 0].set_ylabel(name, fontsize=9)
    return save_figure(fig, path)


def t1_figure(
    t1: np.ndarray, amplitude: np.ndarray, path: str | os.PathLike, threshold: float = 0.1
) -> Path:
    """T1 map (ms, colour bar) where the fitted amplitude exceeds ``threshold`` × its 99th
    percentile, beside the amplitude (proton-density-like) map."""
    mask = amplitude > threshold * np.percentile(amplitude, 99)
    fig, axes = subplots(1, 2, figsize=(9, 4))
    im = show_slice(axes[0], np.where(mask, t1, np.nan), cmap="magma", vmin=0, vmax=2000)
    fig.colorbar(im, ax=axes[0], label="T1 (ms)")
    axes[0].set_title("T1 map")
    show_slice(axes[1], amplitude, cmap="gray", vmin=0, vmax=np.percentile(amplitude, 99.5))
    axes[1].set_title("amplitude")
    return save_figure(fig, path)


def gating_traces(result: Any, times_ms: np.ndarray, path: str | os.PathLike) -> Path:
    """Respiratory signal and cardiac phase used for binning, over the first 20 s."""
    keep = times_ms < 20000
    fig, axes = subplots(2, 1, figsize=(9, 4), sharex=True)
    axes[0].plot(times_ms[keep] / 1000, result.resp_signal[keep], lw=0.8)
    axes[0].set_ylabel("respiratory")
    axes[1].plot(times_ms[keep] / 1000, result.cardiac_phase[keep], ".", ms=1)
    axes[1].set_ylabel("cardiac phase")
    axes[1].set_xlabel("time (s)")
    return save_figure(fig, path)


def write_figures(
    fig_dir: Path, result: Any, seq: IRFlash, times_ms: np.ndarray | None = None
) -> None:
    """All figures of a reconstruction into ``fig_dir``."""
    basis_images(result.u0, result.u, fig_dir / "basis_images.png")
    tis = {
        f"bright TI {seq.ti_ms(result.bright_ti):.0f} ms": result.bright_ti,
        f"dark TI {seq.ti_ms(result.dark_ti):.0f} ms": result.dark_ti,
    }
    cardiac_strip(result.u, result.phi, tis, fig_dir / "cardiac_cycle.png")
    t1_figure(result.t1, result.amplitude, fig_dir / "t1_map.png")
    if result.history:  # a network reconstruction (MALIBU) has no ADMM log
        loss_curves(result.history, fig_dir / "admm_objective.png", keys=["objective", "residual"])
    if times_ms is not None:
        gating_traces(result, times_ms, fig_dir / "gating.png")


def write_report(out_dir: Path, summary: dict[str, Any], description: str = "") -> Path:
    """``report.html``: timings, accuracy against the truth (simulations) and the figures."""
    parts = ["<h1>Multitasking MRI reconstruction</h1>"]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    parts.append(_rows("Timings (s)", {k: f"{v:.2f}" for k, v in summary["timings_s"].items()}))
    if summary.get("t1"):
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "tissue",
                "true",
                "mean ± sd",
                "bias",
                "median bias",
                "voxels",
                "interior mean ± sd",
                "interior bias",
                "interior median bias",
                "interior voxels",
            )
        )
        body = "".join(
            f"<tr><td>{r['tissue']}</td><td>{r['true_ms']:.0f}</td>"
            + "".join(_t1_cells(r, prefix) for prefix in ("", "interior_"))
            + "</tr>"
            for r in summary["t1"]
        )
        parts.append(f"<h2>T1 (ms) vs phantom truth</h2><table><tr>{head}</tr>{body}</table>")
    for key in ("image_nrmse", "gating"):
        if key in summary:
            parts.append(
                _rows(key.replace("_", " "), {k: f"{v:.4f}" for k, v in summary[key].items()})
            )
    for png in sorted((out_dir / "figures").glob("*.png")):
        rel = png.relative_to(out_dir).as_posix()
        parts.append(f"<h3>{html.escape(png.stem.replace('_', ' '))}</h3><img src='{rel}'>")
    page = f"<!doctype html><meta charset=utf-8><title>MT-MRI</title><style>{STYLE}</style>\n"
    return write_text_atomic(out_dir / "report.html", page + "\n".join(parts) + "\n")


def _t1_cells(row: dict[str, Any], prefix: str) -> str:
    """Mean ± sd, bias of the mean and median, voxel count of one T1 region (``""`` or
    ``"interior_"``)."""
    if not row.get(prefix + "voxels"):
        return "<td>–</td><td>–</td><td>–</td><td>0</td>"
    return (
        f"<td>{row[prefix + 'mean_ms']:.0f} ± {row[prefix + 'sd_ms']:.0f}</td>"
        f"<td>{row[prefix + 'bias_pct']:+.1f}%</td><td>{row[prefix + 'median_bias_pct']:+.1f}%</td>"
        f"<td>{row[prefix + 'voxels']}</td>"
    )


def _rows(title: str, rows: dict[str, str]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items()
    )
    return f"<h2>{html.escape(title)}</h2><table>{body}</table>"
