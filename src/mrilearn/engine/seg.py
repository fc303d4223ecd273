"""ALAMO segmentation trainer (§7): multi-slice slabs of several views, deep supervision,
whole-volume multi-view inference, per-organ evaluation of single views vs the vote."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrilearn import components
from mrilearn.data.seg import SegVolumes
from mrilearn.engine.trainer import Trainer
from mrilearn.errors import ConfigError, DataError
from mrilearn.inference.multiview import MultiView
from mrilearn.io import Volume
from mrilearn.io.atomic import write_json_atomic, write_text_atomic
from mrilearn.metrics.image import paired_test, results_table, to_markdown, write_csv
from mrilearn.metrics.segmentation import SEG_METRICS, segmentation_metrics
from mrilearn.registry import TRAINERS
from mrilearn.report.seg_figures import organ_boxplots, overlay_panel

log = logging.getLogger(__name__)


@dataclass
class Segmentation:
    """A segmented volume on the input grid: label values (int16), per-view label values,
    optional class probabilities (X, Y, Z, C) and seconds (``total``: including resampling)."""

    labels: Volume
    views: dict[str, np.ndarray]
    probabilities: Volume | None
    seconds: dict[str, float]


@TRAINERS.register()
class SegTrainer(Trainer):
    """Trains a multi-slice 2-D U-net on slabs of the configured views (§7.2.6) and evaluates
    every single view and the majority vote of the inference views on whole volumes.

    ``overlay_subjects``: how many evaluated subjects get an overlay figure.
    """

    def __init__(self, cfg: Any, run_dir: Path, dist: Any, overlay_subjects: int = 3) -> None:
        super().__init__(cfg, run_dir, dist)
        self.overlay_subjects = overlay_subjects
        net, data = self.nets["G"], self.seg_data
        if (net.in_slices, net.classes) != (data.slices, data.table.classes):
            raise ConfigError(
                f"model takes {net.in_slices} slices and predicts {net.classes} classes but "
                f"data has slices={data.slices} and {data.table.classes} classes (background + "
                f"{len(data.table.names)} labels): make model.in_slices/classes match"
            )

    @property
    def seg_data(self) -> SegVolumes:
        return self.data

    @functools.cached_property
    def inferer(self) -> MultiView:
        inferer = components.build("inference", self.cfg.inference)
        if not isinstance(inferer, MultiView):
            raise ConfigError("inference: segmentation needs {name: MultiView, views: [...]}")
        return inferer

    # --------------------------------------------------------------- training
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        loss = self.loss(self.train_nets["G"](batch["image"]), batch["label"])
        self.optimize("G", loss)
        return {"loss": loss.item()}

    def validate(self) -> dict[str, float]:
        """Loss and mean organ Dice (organs present in the reference slab) of the fixed
        validation slabs."""
        batches = self.seg_data.val_batches()
        if not batches:
            return {}
        net, losses, inter, total = self.nets["G"], [], 0.0, 0.0
        for b in batches:
            logits = net(b["image"])
            losses.append(self.loss(logits, b["label"]).item())
            pred = torch.nn.functional.one_hot(logits.argmax(1), net.classes)
            ref = torch.nn.functional.one_hot(b["label"][:, 0], net.classes)
            dims = tuple(range(pred.ndim - 1))
            inter = inter + (pred * ref).sum(dims)[1:].double()
            total = total + (pred.sum(dims) + ref.sum(dims))[1:].double()
        present = total > 0
        dice = (2 * inter[present] / total[present]).mean().item() if present.any() else 0.0
        return {"val/loss": float(np.mean(losses)), "val/dice": dice}

    # -------------------------------------------------------------- inference
    def segment(self, volume: Volume, probabilities: bool = False) -> Segmentation:
        """Segment a 3-D scan: resample, standardise, predict every view, fuse, and resample
        the label maps (nearest) and optionally probabilities (linear) back to its grid."""
        t0 = time.perf_counter()
        data = self.seg_data
        image, grid = data.prepare_image(volume)
        result = self.inferer(self.nets["G"].eval(), image)
        labels = data.table.to_values(grid.to_input(result.labels, 0))
        views = {v: data.table.to_values(grid.to_input(lab, 0)) for v, lab in result.views.items()}
        probs = None
        if probabilities:
            stack = np.stack([grid.to_input(p, 1) for p in result.probabilities], -1)
            probs = volume.with_data(stack.astype(np.float32))
        seconds = {**result.seconds, "total": time.perf_counter() - t0}
        return Segmentation(volume.with_data(labels), views, probs, seconds)

    def infer_volume(self, volume: Volume) -> Volume:
        """The label map (label values of ``data.labels``) in the input's geometry."""
        if volume.data.ndim != 3:
            raise DataError(f"segmentation needs a 3-D volume, got shape {volume.data.shape}")
        return self.segment(volume).labels

    # ------------------------------------------------------------- evaluation
    def evaluate(self, split: str, out_dir: Path) -> dict[str, Any]:
        """Per-organ DSC/Jaccard/MSD/HD95 of every view and of the vote on ``split``, on the
        input grids of the labels; paired tests of each single view against the vote."""
        cases = self.seg_data.cases(split)
        if not cases:
            raise DataError(f"split {split!r} has no subjects; change data.split")
        table = self.seg_data.table
        fused = self.inferer.fused_name
        per_subject: dict[str, dict[str, list[float]]] = {}
        runtimes: dict[str, list[float]] = {}
        notes: list[str] = []
        fig_dir = out_dir / "figures"
        for i, case in enumerate(cases):
            seg = self.segment(case.image)
            self.seg_data.table.to_classes(case.label.data, f"{case.id} label")  # value check
            outputs = {**seg.views, fused: seg.labels.data}
            seconds = {**seg.seconds, fused: seg.seconds["total"]}
            for method, labels in outputs.items():
                m, why = segmentation_metrics(
                    labels, case.label.data, table.names, table.values, case.label.spacing
                )
                for key, value in m.items():
                    per_subject.setdefault(method, {}).setdefault(key, []).append(value)
                runtimes.setdefault(method, []).append(seconds[method])
                notes += [f"{case.id} {method} {organ}: {text}" for organ, text in why.items()]
            if self.cfg.evaluation.figures and i < self.overlay_subjects:
                maps = {"reference": case.label.data, **outputs}
                colours = dict(zip(table.values, table.colours))
                overlay_panel(case.image.data, maps, colours, fig_dir / f"overlay_{case.id}.png")
            log.info("evaluated %s (%d/%d)", case.id, i + 1, len(cases))
        tests = {
            f"{view} vs {fused}": {
                f"{metric}_mean": paired_test(
                    per_subject[view][f"{metric}_mean"], per_subject[fused][f"{metric}_mean"]
                )
                for metric in SEG_METRICS
            }
            for view in per_subject
            if view != fused
        }
        rows = results_table(per_subject, runtimes)
        result = {
            "split": split,
            "subjects": [c.id for c in cases],
            "organs": dict(zip(table.names, table.values)),
            "per_subject": per_subject,
            "runtime_s": runtimes,
            "table": rows,
            "paired_tests": tests,
            "notes": [
                "metrics on each label's own grid; MSD and HD95 in mm; "
                f"runtime_s of '{fused}' includes resampling and all views",
                *notes,
            ],
        }
        write_json_atomic(out_dir / "evaluation.json", result)
        write_csv(rows, out_dir / "results.csv")
        write_text_atomic(out_dir / "results.md", to_markdown(rows))
        if self.cfg.evaluation.figures:
            for metric in ("dsc", "msd"):
                organ_boxplots(per_subject, table.names, metric, fig_dir / f"boxplot_{metric}.png")
        return result

    def save_figures(self, fig_dir: Path) -> None:
        """Overlay of the first validation slab's middle slice: reference and prediction."""
        batches = self.seg_data.val_batches()
        if not batches:
            return
        b = batches[0]
        with torch.no_grad():
            pred = self.nets["G"].eval()(b["image"])[0].argmax(0).numpy()
        table = self.seg_data.table
        # (N, H, W) slabs shown as volumes whose axis 0 is the slice axis
        maps = {
            "reference": table.to_values(b["label"][0, 0].numpy()),
            "network": table.to_values(pred),
        }
        overlay_panel(
            b["image"][0].numpy(),
            maps,
            dict(zip(table.values, table.colours)),
            fig_dir / "validation_slab.png",
        )
