"""A reconstruction against the simulated truth, and its outputs (arrays, JSON, figures,
report)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.ndimage import binary_erosion

from mrilearn.apps.mtmri import figures
from mrilearn.apps.mtmri.config import MtmriConfig, SimulateConfig
from mrilearn.apps.mtmri.raw import RawData
from mrilearn.apps.mtmri.recon import MtmriResult
from mrilearn.apps.mtmri.simulate import Subject, build_subject
from mrilearn.config import to_dataclass
from mrilearn.io.atomic import atomic_dir, write_json_atomic
from mrilearn.physics import acquisition
from mrilearn.physics.subspace import image_series


def _scaled_nrmse(x: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """‖a·x − t‖ / ‖t‖ over ``mask`` with the least-squares complex scale a (U0 has no
    absolute scale; estimated coil maps carry an arbitrary phase)."""
    xs, ts = x[mask], truth[mask]
    a = np.vdot(xs, ts) / max(np.vdot(xs, xs).real, 1e-30)
    return float(np.linalg.norm(a * xs - ts) / np.linalg.norm(ts))


def truth_state(sub: Subject, result: MtmriResult) -> tuple[float, float]:
    """The true (cardiac phase, respiratory position) of the T1 map's motion bin: the mean
    oracle state of the readouts assigned to it (circular mean for the cardiac phase)."""
    sel = (result.card_bin == result.t1_cardiac_bin) & (result.resp_bin == 0)
    phase = float(
        np.mod(np.angle(np.mean(np.exp(2j * np.pi * sub.cardiac_phase[sel]))) / (2 * np.pi), 1)
    )
    return phase, float(sub.resp_position[sel].mean())


def evaluate(raw: RawData, result: MtmriResult) -> dict[str, Any]:
    """Compare with the simulated truth: T1 per tissue and image NRMSE (U and U0 series).

    T1 statistics (mean, SD, bias of the mean and of the median: noise skews a voxel's T1
    upwards, most for long T1) cover the tissue's pure voxels (no partial volume) and, as ``interior_*``,
    those of them whose four neighbours are pure voxels of the same tissue: a reconstruction's
    point spread mixes in the neighbouring tissue at the edges (one to two pixels wide for
    radial sampling with TV), which on a 3-pixel myocardial wall is most of the wall.
    The truth motion state is :func:`truth_state`, so it works for self-gated and oracle bins.
    """
    sim = to_dataclass(SimulateConfig, raw.metadata["simulation"], "metadata.simulation")
    sub = build_subject(sim)
    matrix, fov = sim.phantom.matrix, sim.phantom.fov_mm
    phase, resp = truth_state(sub, result)
    labels = sub.phantom.labels(phase, resp, matrix, fov)
    t1_rows = []
    for tissue in ("blood", "myocardium", "liver", "muscle", "fat"):
        mask = labels == sub.phantom.tissue_names.index(tissue)
        if mask.sum() == 0:
            continue
        true = sub.phantom.tissues[tissue].t1
        row: dict[str, Any] = {"tissue": tissue, "true_ms": true}
        for prefix, region in (("", mask), ("interior_", binary_erosion(mask))):
            values = result.t1[region].astype(np.float64)
            stats = [None] * 4
            if values.size:
                stats = [values.mean(), values.std(), 100 * (values.mean() / true - 1)]
                stats.append(100 * (np.median(values) / true - 1))
            for key, value in zip(("mean_ms", "sd_ms", "bias_pct", "median_bias_pct"), stats):
                row[prefix + key] = None if value is None else float(value)
            row[prefix + "voxels"] = int(values.size)
        t1_rows.append(row)
    signal = acquisition.tissue_signal(sub.phantom, sub.sequence)
    body = sub.phantom.coverage(phase, resp, matrix, fov)[0] > 0
    tis = np.linspace(0, sub.sequence.readouts_per_inversion - 1, 8).astype(int)
    nrmse: dict[str, list[float]] = {"U": [], "U0": []}
    for ti in tis:
        values = sub.phantom.ellipse_values({n: s[ti] for n, s in signal.items()})
        truth = sub.phantom.image(values, phase, resp, matrix, fov)
        for key, factor in (("U", result.u), ("U0", result.u0)):
            image = image_series(factor, result.phi, int(ti), result.t1_cardiac_bin, 0)
            nrmse[key].append(_scaled_nrmse(image, truth, body))
    metrics: dict[str, Any] = {
        "t1": t1_rows,
        "image_nrmse": {k: float(np.mean(v)) for k, v in nrmse.items()},
        "truth_state": {"cardiac_phase": phase, "resp_position": resp},
    }
    if raw.cardiac_phase is not None:
        offset = np.exp(2j * np.pi * (result.cardiac_phase - raw.cardiac_phase))
        metrics["gating"] = {
            "resp_correlation": float(np.corrcoef(result.resp_signal, raw.resp_position)[0, 1]),
            "cardiac_phase_coherence": float(np.abs(offset.mean())),
        }
    return metrics


# ------------------------------------------------------------------ outputs
RESULT_ENTRIES = ("recon.npz", "results.json", "config.yaml", "figures", "report.html")


def save_result(out_dir: str | Path, cfg: MtmriConfig, raw: RawData, result: MtmriResult) -> Path:
    """Write recon.npz, results.json, config.yaml, figures/ and report.html atomically."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        arrays = {
            k: getattr(result, k)
            for k in (
                "u0",
                "u",
                "phi",
                "coil_maps",
                "card_bin",
                "resp_bin",
                "t1_values",
                "curves",
                "t1",
                "amplitude",
            )
        }
        np.savez(
            tmp / "recon.npz", ti_ms=raw.sequence.ti_ms(np.arange(result.phi.shape[1])), **arrays
        )
        summary = {
            "rank": int(result.u.shape[0]),
            "t1_cardiac_bin": result.t1_cardiac_bin,
            "bright_ti_ms": float(raw.sequence.ti_ms(result.bright_ti)),
            "dark_ti_ms": float(raw.sequence.ti_ms(result.dark_ti)),
            "timings_s": result.timings,
            "admm": result.history,
            **result.metrics,
        }
        write_json_atomic(tmp / "results.json", summary)
        (tmp / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        figures.write_figures(tmp / "figures", result, raw.sequence, raw.times_ms)
        figures.write_report(tmp, summary, cfg.description)
    return out_dir
