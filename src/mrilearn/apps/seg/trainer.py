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
from mrilearn.apps.seg.data import SegVolumes
from mrilearn.apps.seg.figures import organ_boxplots, overlay_panel
from mrilearn.engine.contract import ClassProbabilities
from mrilearn.engine.device import to_host
from mrilearn.engine.trainer import Trainer
from mrilearn.errors import ConfigError, DataError
from mrilearn.inference.multiview import MultiView
from mrilearn.io import Volume
from mrilearn.io.volume import Label
from mrilearn.metrics.segmentation import SEG_METRICS, segmentation_metrics
from mrilearn.progress import progress_bar
from mrilearn.registry import TRAINERS
from mrilearn.report.evaluation import Roles, Scores, write_evaluation

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
        batches = self.val_batches()
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
        with self.amp.autocast():
            result = self.inferer(self.inference_net().eval(), image, self.device)
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

    def class_probabilities(self, volume: Volume) -> ClassProbabilities:
        """The fused class probabilities (X, Y, Z, C) on the input's grid."""
        probabilities = self.segment(volume, probabilities=True).probabilities
        return ClassProbabilities(probabilities, self.seg_data.table.class_values)

    def label_table(self) -> list[Label]:
        """``data.labels``: the names, values and colours of the label map."""
        table = self.seg_data.table
        return [Label(*entry) for entry in zip(table.names, table.values, table.colours)]

    def io_conventions(self) -> dict[str, Any]:
        net, data = self.nets["G"], self.seg_data
        side = max(32, 2 ** (net.levels - 1))
        return {
            **super().io_conventions(),
            "task": "segmentation",
            "spatial_dims": 2,
            "in_channels": net.in_slices,
            "out_channels": net.classes,
            "layout": "input (B, slices, H, W) slab -> logits (B, classes, slices, H, W); "
            f"H, W divisible by {2 ** (net.levels - 1)}",
            "normalisation": f"resample to {data.spacing} mm isotropic, then z-score the volume",
            "labels": dict(zip(data.table.names, data.table.values)),
            "example_shape": [1, net.in_slices, side, side],
            "net_attributes": {
                "in_slices": net.in_slices,
                "classes": net.classes,
                "levels": net.levels,
            },  # fmt: skip
        }

    # ------------------------------------------------------------- evaluation
    def evaluate(self, split: str, out_dir: Path) -> dict[str, Any]:
        """Per-organ DSC/Jaccard/MSD/HD95 of every view and of the vote on ``split``, on the
        input grids of the labels; paired tests of each single view against the vote."""
        cases = self.seg_data.cases(split)
        if not cases:
            raise DataError(f"split {split!r} has no subjects; change data.split")
        table = self.seg_data.table
        fused = self.inferer.fused_name
        scores = Scores()
        notes: list[str] = []
        fig_dir = out_dir / "figures"
        for i, case in enumerate(progress_bar(cases, desc="subjects", unit="subject")):
            seg = self.segment(case.image)
            self.seg_data.table.to_classes(case.label.data, f"{case.id} label")  # value check
            outputs = {**seg.views, fused: seg.labels.data}
            seconds = {**seg.seconds, fused: seg.seconds["total"]}
            for method, labels in outputs.items():
                m, why = segmentation_metrics(
                    labels, case.label.data, table.names, table.values, case.label.spacing
                )
                scores.add_all(method, m)
                scores.add_runtime(method, seconds[method])
                notes += [f"{case.id} {method} {organ}: {text}" for organ, text in why.items()]
            if self.cfg.evaluation.figures and i < self.overlay_subjects:
                maps = {"reference": case.label.data, **outputs}
                colours = dict(zip(table.values, table.colours))
                overlay_panel(case.image.data, maps, colours, fig_dir / f"overlay_{case.id}.png")
            log.info("evaluated %s (%d/%d)", case.id, i + 1, len(cases))
        views = [v for v in scores.per_subject if v != fused]
        tests = scores.paired_tests(
            {f"{view} vs {fused}": (view, fused) for view in views},
            [f"{metric}_mean" for metric in SEG_METRICS],
        )
        if self.cfg.evaluation.figures:
            for metric in ("dsc", "msd"):
                organ_boxplots(
                    scores.per_subject, table.names, metric, fig_dir / f"boxplot_{metric}.png"
                )
        result = {
            "split": split,
            "subjects": [c.id for c in cases],
            "organs": dict(zip(table.names, table.values)),
            "paired_tests": tests,
        }
        summary = (
            "metrics on each label's own grid; MSD and HD95 in mm; "
            f"runtime_s of '{fused}' includes resampling and all views"
        )
        roles = Roles(
            fused,
            tuple(views),
            headline=("dsc_mean",),
            tables={
                "Mean over organs": [*(f"{m}_mean" for m in SEG_METRICS), "runtime_s"],
                "DSC per organ": [f"dsc_{organ}" for organ in table.names],
            },
        )
        return write_evaluation(out_dir, scores, result, [summary, *notes], roles)

    def save_figures(self, fig_dir: Path) -> None:
        """Overlay of the first validation slab's middle slice: reference and prediction."""
        batches = self.val_batches()
        if not batches:
            return
        with torch.no_grad():
            pred = to_host(self.trained_net().eval()(batches[0]["image"])[0].argmax(0)).numpy()
        b = {k: to_host(v) for k, v in batches[0].items()}
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
