"""MALIBU evaluation (§6.3.2): the network's U, image series and T1 maps against the iterative
(ADMM) recon of the same held-out subjects, with the scaled back-projection U0 as baseline,
voxel-wise Bland–Altman T1 agreement and the speed-up."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mrilearn.apps.malibu.data import MalibuMaps, MalibuSubject, pack
from mrilearn.apps.mtmri import figures as mt_figures
from mrilearn.config import EvaluationConfig
from mrilearn.errors import DataError
from mrilearn.metrics.image import nrmse, slicewise_metrics
from mrilearn.physics.subspace import image_series, t1_map
from mrilearn.progress import progress_bar
from mrilearn.report.evaluation import Roles, Scores, write_evaluation
from mrilearn.report.figures import save_figure, subplots

log = logging.getLogger(__name__)

ITERATIVE = "iterative"
BACK_PROJECTION = "U0"
T1_TISSUES = ("myocardium", "blood")
IMAGE_METRICS = ("nrmse", "psnr", "ssim")
NOTES = (
    "Metrics compare with the iterative (ADMM) recon of the same data; U0 is scaled "
    "by its least-squares factor onto U (an oracle that favours the baseline).",
    "Image metrics: |images| of all cardiac bins at end-expiration (respiratory bin "
    "0) for the bright-blood (last) and dark-blood (blood-nulling) TI.",
    "Runtime: network forward incl. normalisation vs the iterative recon's Toeplitz "
    "kernels + ADMM recorded when the data set was generated, same machine.",
)


def evaluate_malibu(
    maps: MalibuMaps,
    split: str,
    net_name: str,
    predict: Callable[[np.ndarray], np.ndarray],
    settings: EvaluationConfig,
    out_dir: Path,
) -> dict[str, Any]:
    """U, image-series and T1 agreement with the iterative recon on ``split`` (§6.3.2)."""
    subjects = maps.subjects(split)
    if not subjects:
        raise DataError(f"split {split!r} has no subjects; change data.split")
    scores = Scores([net_name, BACK_PROJECTION])
    voxels: dict[str, dict[str, list[np.ndarray]]] = {t: {} for t in T1_TISSUES}
    fig_dir = out_dir / "figures"
    for i, s in enumerate(progress_bar(subjects, desc="subjects", unit="subject")):
        t0 = time.perf_counter()
        u_net = predict(s.u0)
        scores.add_runtime(net_name, time.perf_counter() - t0)
        timings = s.meta["timings_s"]
        scores.add_runtime(ITERATIVE, timings["toeplitz_kernels_s"] + timings["admm_s"])
        a = np.vdot(s.u0, s.u) / np.vdot(s.u0, s.u0)  # oracle scale: the fairest U0
        estimates = {net_name: u_net, BACK_PROJECTION: a * s.u0}
        t1_maps = {ITERATIVE: s.t1}
        for method, u in estimates.items():
            scores.add_all(method, subject_metrics(s, u))
            t1_maps[method] = _t1(s, u)
        for tissue in T1_TISSUES:
            mask = s.labels == s.meta["tissue_names"].index(tissue)
            if not mask.any():  # no pure pixel of this tissue at this matrix size
                continue
            for method, t1 in t1_maps.items():
                voxels[tissue].setdefault(method, []).append(t1[mask])
            truth = np.full(int(mask.sum()), s.meta["true_t1_ms"][tissue])
            voxels[tissue].setdefault("truth", []).append(truth)
            ref = s.t1[mask].mean()
            for method in estimates:
                bias = float(100 * (t1_maps[method][mask].mean() / ref - 1))
                scores.add(method, f"t1_{tissue}_bias_pct", bias)
        if settings.figures and i < 2:
            write_subject_figures(fig_dir, s, {ITERATIVE: s.u, **estimates}, t1_maps)
        log.info("evaluated %s (%d/%d)", s.id, i + 1, len(subjects))
    agreement = t1_agreement(voxels, net_name)
    if settings.figures:
        bland_altman_figure(voxels, net_name, fig_dir / "bland_altman.png")
    runtimes = scores.runtimes
    speed = {
        "network_s_per_slice": float(np.median(runtimes[net_name])),
        "iterative_s_per_slice": float(np.median(runtimes[ITERATIVE])),
        "fastest_iterative_s": float(np.min(runtimes[ITERATIVE])),
    }
    speed["speedup"] = speed["iterative_s_per_slice"] / speed["network_s_per_slice"]
    speed["speedup_vs_fastest"] = speed["fastest_iterative_s"] / speed["network_s_per_slice"]
    result = {
        "split": split,
        "subjects": [s.id for s in subjects],
        "speed": speed,
        "t1_agreement": agreement,
    }
    roles = Roles(net_name, (BACK_PROJECTION,), headline=("U_nrmse", "bright_psnr"))
    return write_evaluation(out_dir, scores, result, NOTES, roles)


def _t1(s: MalibuSubject, u: np.ndarray) -> np.ndarray:
    return t1_map(u, s.phi, s.t1_values, s.curves, s.meta["t1_cardiac_bin"], 0)[0]


def subject_metrics(s: MalibuSubject, u: np.ndarray) -> dict[str, float]:
    """NRMSE of U and NRMSE/PSNR/SSIM of the end-expiration cardiac cycle at the bright- and
    dark-blood TI, each against the subject's iterative U."""
    out = {"U_nrmse": nrmse(pack(u), pack(s.u))}  # packing keeps the complex norm
    cards = np.arange(s.phi.shape[2])
    for name in ("bright", "dark"):
        ti = s.meta[f"{name}_ti"]
        ref = np.abs(image_series(s.u, s.phi, ti, cards, 0))
        est = np.abs(image_series(u, s.phi, ti, cards, 0))
        m = slicewise_metrics(est, ref, 0, float(ref.max() - ref.min()), metrics=IMAGE_METRICS)
        out.update({f"{name}_{k}": m[k] for k in IMAGE_METRICS})
    return out


def bland_altman(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Bias (mean a − b, ms and % of mean b), 95% limits of agreement and Pearson R."""
    d = a - b
    bias, sd = float(d.mean()), float(d.std(ddof=1)) if d.size > 1 else float("nan")
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    return {
        "n": int(d.size),
        "bias_ms": bias,
        "bias_pct": 100 * bias / float(b.mean()),
        "loa_low_ms": bias - 1.96 * sd,
        "loa_high_ms": bias + 1.96 * sd,
        "r": r,
    }


def _comparisons(net_name: str) -> dict[str, tuple[str, str]]:
    return {
        f"{net_name} vs {ITERATIVE}": (net_name, ITERATIVE),
        f"{net_name} vs truth": (net_name, "truth"),
        f"{ITERATIVE} vs truth": (ITERATIVE, "truth"),
        f"{BACK_PROJECTION} vs {ITERATIVE}": (BACK_PROJECTION, ITERATIVE),
    }


def t1_agreement(voxels: dict[str, dict[str, list[np.ndarray]]], net_name: str) -> dict[str, Any]:
    """Voxel-wise Bland–Altman statistics per tissue, pooled over subjects."""
    return {
        tissue: {
            label: bland_altman(np.concatenate(by[a]), np.concatenate(by[b]))
            for label, (a, b) in _comparisons(net_name).items()
        }
        for tissue, by in voxels.items()
        if by
    }


def bland_altman_figure(
    voxels: dict[str, dict[str, list[np.ndarray]]], net_name: str, path: Path
) -> Path:
    """Bland–Altman plots (difference vs mean, bias and limits of agreement), tissue × pair."""
    pairs = _comparisons(net_name)
    voxels = {tissue: by for tissue, by in voxels.items() if by}
    fig, axes = subplots(
        len(voxels), len(pairs), figsize=(3.2 * len(pairs), 2.8 * len(voxels)), squeeze=False
    )
    for row, (tissue, by) in enumerate(voxels.items()):
        for col, (label, (a_key, b_key)) in enumerate(pairs.items()):
            a, b = np.concatenate(by[a_key]), np.concatenate(by[b_key])
            stats = bland_altman(a, b)
            ax = axes[row, col]
            ax.plot((a + b) / 2, a - b, ".", ms=2, alpha=0.5)
            for y, style in ((stats["bias_ms"], "-"), (stats["loa_low_ms"], "--")):
                ax.axhline(y, color="k", ls=style, lw=0.8)
            ax.axhline(stats["loa_high_ms"], color="k", ls="--", lw=0.8)
            ax.set_title(f"{tissue}: {label}\nbias {stats['bias_pct']:+.1f}%", fontsize=8)
            ax.set_xlabel("mean T1 (ms)", fontsize=7)
            ax.set_ylabel("difference (ms)", fontsize=7)
    return save_figure(fig, path)


def write_subject_figures(
    fig_dir: Path, s: MalibuSubject, factors: dict[str, np.ndarray], t1_maps: dict[str, np.ndarray]
) -> None:
    """Per method: cardiac-cycle strips at the bright/dark TI and the T1 map."""
    tis = {"bright": s.meta["bright_ti"], "dark": s.meta["dark_ti"]}
    for method, u in factors.items():
        name = method.replace(" ", "_")
        mt_figures.cardiac_strip(u, s.phi, tis, fig_dir / f"{s.id}_cardiac_{name}.png")
        amplitude = t1_map(u, s.phi, s.t1_values, s.curves, s.meta["t1_cardiac_bin"], 0)[1]
        mt_figures.t1_figure(t1_maps[method], amplitude, fig_dir / f"{s.id}_t1_{name}.png")
