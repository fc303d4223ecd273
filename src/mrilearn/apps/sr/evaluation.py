"""Super-resolution evaluation (§3.4, §4.4.1): every method slice by slice against HR on the
held-out subjects, paired tests of the network against each baseline, the no-reference
scores with ``perceptual`` and the distortion–perception plot (§5.4.3)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrilearn.apps.sr.data import SRPair, SRVolumes
from mrilearn.apps.sr.degrade import KspaceTruncation, upsample
from mrilearn.config import EvaluationConfig
from mrilearn.errors import ConfigError, DataError
from mrilearn.io.atomic import write_text_atomic
from mrilearn.metrics.image import slicewise_metrics
from mrilearn.metrics.perceptual import PerceptualScorer
from mrilearn.metrics.statistics import summarize
from mrilearn.progress import progress_bar
from mrilearn.report import figures
from mrilearn.report.evaluation import (
    Roles,
    Scores,
    results_table,
    to_markdown,
    write_csv,
    write_evaluation,
)
from mrilearn.report.viewer import VIEWER_DIR, save_viewer

log = logging.getLogger(__name__)

# Interpolation baselines from the reduced-matrix image, by spline order (§3.4).
INTERPOLATIONS = {"nearest": 0, "trilinear": 1, "tricubic": 3}
ZERO_FILLED = "zero-filled"
IMAGE_METRICS = ("psnr", "ssim", "nrmse")

Predict = Callable[[SRPair], np.ndarray]


def method_outputs(
    pair: SRPair, data: SRVolumes, baselines: Sequence[str], network: str, predict: Predict
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every compared method's output on the pair's region, and its seconds per volume."""
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    deg = data.degradation
    for name in baselines:
        t0 = time.perf_counter()
        if name == ZERO_FILLED:
            out = pair.lr
        elif name in INTERPOLATIONS:
            reduce = KspaceTruncation(deg.factors, deg.axes, output="reduced")
            out = upsample(reduce(pair.lr), pair.lr.shape, INTERPOLATIONS[name])
        else:
            known = ", ".join([ZERO_FILLED, *INTERPOLATIONS])
            raise ConfigError(f"evaluation.baselines: unknown baseline {name!r} (known: {known})")
        outputs[name] = out[pair.region]
        seconds[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    outputs[network] = predict(pair)
    seconds[network] = time.perf_counter() - t0
    return outputs, seconds


def evaluate_sr(
    data: SRVolumes,
    split: str,
    network: str,
    predict: Predict,
    settings: EvaluationConfig,
    scorer: PerceptualScorer | None,
    out_dir: Path,
) -> dict[str, Any]:
    """Metrics, tables and figures of ``network`` and the baselines on every subject of
    ``split``; ``predict`` gives the network's output on a pair's region."""
    pairs = data.pairs(split)
    if not pairs:
        raise DataError(f"split {split!r} has no subjects; change data.split or data.regions")
    slice_axis = data.degradation.slice_axis
    thr = settings.mask_threshold
    scores = Scores()
    fig_dir = out_dir / "figures"
    for i, pair in enumerate(progress_bar(pairs, desc="subjects", unit="subject")):
        outputs, seconds = method_outputs(pair, data, settings.baselines, network, predict)
        hr = pair.hr[pair.region]
        mask = hr > thr * hr.max() if thr is not None else None
        data_range = float(hr.max() - hr.min())
        for method, out in outputs.items():
            m = slicewise_metrics(out, hr, slice_axis, data_range, mask)
            scores.add_all(method, {key: m[key] for key in IMAGE_METRICS})
            scores.add_runtime(method, seconds[method])
        if scorer is not None:
            fg = mask if mask is not None else hr > 0.05 * hr.max()
            for method, m in scorer.score({**outputs, "HR": hr}, hr, fg, slice_axis).items():
                scores.add_all(method, m)
        if settings.figures and i == 0:
            figures.orthogonal_slices(
                outputs[network], fig_dir / f"prediction_{pair.id}.png", f"{network}: {pair.id}"
            )
        if settings.figures and i < 3:
            images = {"LR": pair.lr[pair.region], **outputs, "HR": hr}
            images.pop(ZERO_FILLED, None)  # the LR column is the zero-filled image
            path = fig_dir / f"comparison_{pair.id}.png"
            figures.comparison_panel(images, "HR", path, slice_axis, zoom_box="auto", mask=mask)
            if i == 0:
                spacing = pair.volume.spacing
                save_viewer(fig_dir / VIEWER_DIR, images, "HR", spacing, pair.id, slice_axis)
        log.info("evaluated %s (%d/%d)", pair.id, i + 1, len(pairs))
    per_subject = scores.per_subject
    compared = [b for b in per_subject if b != network and "psnr" in per_subject[b]]
    tests = scores.paired_tests(
        {f"{network} vs {b}": (network, b) for b in compared}, IMAGE_METRICS
    )
    result: dict[str, Any] = {
        "split": split,
        "slice_axis": slice_axis,
        "mask_threshold": thr,
        "subjects": [p.id for p in pairs],
        "paired_tests": tests,
    }
    notes: list[str] = []
    if scorer is not None:
        result["perceptual"] = scorer.info
        notes = scorer.notes
        if settings.figures:
            distortion_perception_plot(per_subject, fig_dir / "distortion_perception.png")
    if settings.figures:
        figures.boxplots(per_subject, fig_dir / "boxplots.png")
    roles = Roles(network, tuple(settings.baselines), headline=("psnr", "ssim"))
    return write_evaluation(out_dir, scores, result, notes, roles)


def distortion_perception_plot(per_subject: dict[str, dict[str, list[float]]], path: Path) -> None:
    """PSNR vs NIQE (PIQE without a NIQE model) of every method, means over subjects."""
    metric = "niqe" if any("niqe" in m for m in per_subject.values()) else "piqe"
    points = {}
    for method, m in per_subject.items():
        x, y = summarize(m.get("psnr", []))["mean"], summarize(m.get(metric, []))["mean"]
        if np.isfinite(x) and np.isfinite(y):
            points[method] = (x, y)
    if points:
        xs, ys = zip(*points.values())
        figures.scatter_plot(
            xs, ys, list(points), path, "PSNR (dB)", f"{metric.upper()} (lower is better)",
            "distortion vs perception",
        )  # fmt: skip


COMPARISON_FILES = ("comparison.csv", "comparison.md", "distortion_perception.png")


def compare_runs(runs: Sequence[Path], out_dir: Path) -> list[dict[str, Any]]:
    """One table and one distortion–perception plot for several evaluated SR runs (§5.4.3).

    Each run's ``evaluation.json`` must cover the same subjects; the baselines and HR come from
    the first run, and each run's network is named by its run directory (two DRAGAN runs share
    a method name). Writes ``comparison.md``, ``comparison.csv`` and
    ``distortion_perception.png`` to ``out_dir``; returns the table rows."""
    per_subject: dict[str, dict[str, list[float]]] = {}
    subjects = None
    references = {ZERO_FILLED, *INTERPOLATIONS, "HR"}
    for i, run in enumerate(runs):
        path = Path(run) / "evaluation.json"
        if not path.is_file():
            raise DataError(f"{run}: no evaluation.json (run mrilearn evaluate --run {run})")
        ev = json.loads(path.read_text())
        if subjects is not None and ev["subjects"] != subjects:
            raise DataError(
                f"{run} was evaluated on {ev['subjects']}, {runs[0]} on {subjects}: not comparable"
            )
        subjects = ev["subjects"]
        networks = [m for m in ev["per_subject"] if m not in references]
        for method, metrics in ev["per_subject"].items():
            if method in networks:
                name = Path(run).name + ("" if len(networks) == 1 else f" {method}")
                if name in per_subject:
                    raise DataError(f"two runs are named {name!r}: rename one folder")
                per_subject[name] = metrics
            elif i == 0:
                per_subject[method] = metrics
    rows = results_table(per_subject)
    write_csv(rows, out_dir / "comparison.csv")
    write_text_atomic(out_dir / "comparison.md", to_markdown(rows))
    distortion_perception_plot(per_subject, out_dir / "distortion_perception.png")
    return rows
