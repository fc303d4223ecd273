"""Super-resolution trainer: patch training, whole-volume inference, evaluation vs baselines."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrilearn import components
from mrilearn.data.degrade import KspaceTruncation, upsample
from mrilearn.data.sr import SRPair, SRVolumes
from mrilearn.engine.trainers import SupervisedTrainer
from mrilearn.errors import ConfigError, DataError
from mrilearn.io import Volume
from mrilearn.io.atomic import write_json_atomic, write_text_atomic
from mrilearn.metrics.image import (
    paired_test,
    psnr,
    results_table,
    slicewise_metrics,
    to_markdown,
    write_csv,
)
from mrilearn.registry import TRAINERS
from mrilearn.report import figures

log = logging.getLogger(__name__)

# Interpolation baselines from the reduced-matrix image, by spline order (§3.4).
INTERPOLATIONS = {"nearest": 0, "trilinear": 1, "tricubic": 3}
ZERO_FILLED = "zero-filled"


@TRAINERS.register()
class SRTrainer(SupervisedTrainer):
    """Trains a same-size 3-D SR network and compares it with interpolation baselines.

    Evaluation follows §3.4/§4.4.1: PSNR, SSIM and NRMSE slice by slice in the most
    degraded plane, per subject, then mean/std/min/median/max across subjects, a paired
    test of the network against each baseline, and seconds per volume.
    """

    def __init__(self, cfg: Any, run_dir: Path, dist: Any, context: int = 8) -> None:
        super().__init__(cfg, run_dir, dist)
        self.context = context

    @property
    def sr_data(self) -> SRVolumes:
        return self.data

    def validate(self) -> dict[str, float]:
        batches = self.data.val_batches()
        if not batches:
            return {}
        net, losses, psnrs = self.nets["G"], [], []
        for b in batches:
            pred = net(b["image"])
            losses.append(self.loss(pred, b["target"]).item())
            target = b["target"].numpy()
            psnrs.append(psnr(pred.numpy(), target, float(target.max() - target.min()) or 1.0))
        return {"val/loss": float(np.mean(losses)), "val/psnr": float(np.mean(psnrs))}

    # ------------------------------------------------------------ inference
    def predict(self, lr: np.ndarray) -> np.ndarray:
        """Network output for a normalised (X, Y, Z) LR array, whole volume by sliding window."""
        net = self.nets["G"].eval()
        inferer = components.build("inference", self.cfg.inference)
        x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None, None]
        with torch.inference_mode():
            return inferer(net, x)[0, 0].numpy()

    def infer_volume(self, volume: Volume) -> Volume:
        """Super-resolve an LR scan (already on the HR matrix) in its own geometry."""
        if volume.data.ndim != 3:
            raise DataError(f"super-resolution needs a 3-D volume, got shape {volume.data.shape}")
        scale = self.sr_data.scale_of(volume.data)
        out = self.predict(volume.data / scale) * scale
        return volume.with_data(out.astype(np.float32))

    def predict_region(self, pair: SRPair) -> np.ndarray:
        """Predict the pair's region from its LR with ``context`` voxels around it."""
        outer, inner = [], []
        for sl, n in zip(pair.region, pair.lr.shape):
            start, stop, _ = sl.indices(n)
            lo, hi = max(0, start - self.context), min(n, stop + self.context)
            outer.append(slice(lo, hi))
            inner.append(slice(start - lo, start - lo + stop - start))
        return self.predict(pair.lr[tuple(outer)])[tuple(inner)]

    # ----------------------------------------------------------- evaluation
    def method_outputs(self, pair: SRPair) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """Every compared method's output on the pair's region, and its seconds per volume."""
        outputs: dict[str, np.ndarray] = {}
        seconds: dict[str, float] = {}
        region = pair.region
        deg = self.sr_data.degradation
        for name in self.cfg.evaluation.baselines:
            t0 = time.perf_counter()
            if name == ZERO_FILLED:
                out = pair.lr
            elif name in INTERPOLATIONS:
                reduce = KspaceTruncation(deg.factors, deg.axes, output="reduced")
                out = upsample(reduce(pair.lr), pair.lr.shape, INTERPOLATIONS[name])
            else:
                known = ", ".join([ZERO_FILLED, *INTERPOLATIONS])
                raise ConfigError(
                    f"evaluation.baselines: unknown baseline {name!r} (known: {known})"
                )
            outputs[name] = out[region]
            seconds[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        outputs[self.cfg.model["name"]] = self.predict_region(pair)
        seconds[self.cfg.model["name"]] = time.perf_counter() - t0
        return outputs, seconds

    def evaluate(self, split: str, out_dir: Path) -> dict[str, Any]:
        """Metrics, tables and figures for every subject of ``split``."""
        pairs = self.sr_data.pairs(split)
        if not pairs:
            raise DataError(f"split {split!r} has no subjects; change data.split or data.regions")
        slice_axis = self.sr_data.degradation.slice_axis
        thr = self.cfg.evaluation.mask_threshold
        per_subject: dict[str, dict[str, list[float]]] = {}
        runtimes: dict[str, list[float]] = {}
        fig_dir = out_dir / "figures"
        for i, pair in enumerate(pairs):
            outputs, seconds = self.method_outputs(pair)
            hr = pair.hr[pair.region]
            mask = hr > thr * hr.max() if thr is not None else None
            data_range = float(hr.max() - hr.min())
            for method, out in outputs.items():
                m = slicewise_metrics(out, hr, slice_axis, data_range, mask)
                for key in ("psnr", "ssim", "nrmse"):
                    per_subject.setdefault(method, {}).setdefault(key, []).append(m[key])
                runtimes.setdefault(method, []).append(seconds[method])
            if self.cfg.evaluation.figures and i < 3:
                images = {"LR": pair.lr[pair.region], **outputs, "HR": hr}
                images.pop(ZERO_FILLED, None)
                figures.comparison_panel(
                    images,
                    "HR",
                    fig_dir / f"comparison_{pair.id}.png",
                    slice_axis,
                    zoom_box=_zoom_box(hr, slice_axis),
                )
            log.info("evaluated %s (%d/%d)", pair.id, i + 1, len(pairs))
        network = self.cfg.model["name"]
        tests = {
            f"{network} vs {b}": {
                metric: paired_test(per_subject[network][metric], per_subject[b][metric])
                for metric in ("psnr", "ssim", "nrmse")
            }
            for b in per_subject
            if b != network
        }
        rows = results_table(per_subject, runtimes)
        result = {
            "split": split,
            "slice_axis": slice_axis,
            "mask_threshold": thr,
            "subjects": [p.id for p in pairs],
            "per_subject": per_subject,
            "runtime_s": runtimes,
            "table": rows,
            "paired_tests": tests,
        }
        write_json_atomic(out_dir / "evaluation.json", result)
        write_csv(rows, out_dir / "results.csv")
        write_text_atomic(out_dir / "results.md", to_markdown(rows))
        if self.cfg.evaluation.figures:
            figures.boxplots(per_subject, fig_dir / "boxplots.png")
        return result

    def save_figures(self, fig_dir: Path) -> None:
        """A validation patch: LR, prediction, HR and the error map."""
        batches = self.data.val_batches()
        if not batches:
            return
        b = batches[0]
        with torch.no_grad():
            pred = self.nets["G"].eval()(b["image"])[0, 0].numpy()
        images = {"LR": b["image"][0, 0].numpy(), "network": pred, "HR": b["target"][0, 0].numpy()}
        figures.comparison_panel(
            images, "HR", fig_dir / "validation_patch.png", self.sr_data.degradation.slice_axis
        )


def _zoom_box(hr: np.ndarray, slice_axis: int) -> tuple[int, int, int, int]:
    """A square around the centre of the middle slice, a quarter of its size."""
    shape = [n for a, n in enumerate(hr.shape) if a != slice_axis]
    h = max(4, min(shape) // 4)
    c0, c1 = shape[0] // 2, shape[1] // 2
    return (c0 - h // 2, c0 + h // 2, c1 - h // 2, c1 + h // 2)
