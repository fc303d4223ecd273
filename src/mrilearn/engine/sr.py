"""Super-resolution trainer: patch training, whole-volume inference, evaluation vs baselines."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrilearn import components
from mrilearn.data.degrade import KspaceTruncation, upsample
from mrilearn.data.sr import SRPair, SRVolumes
from mrilearn.engine.trainers import SupervisedTrainer
from mrilearn.errors import ConfigError, DataError
from mrilearn.io import Volume, write_volume
from mrilearn.io.atomic import write_json_atomic, write_text_atomic
from mrilearn.metrics.image import (
    paired_test,
    psnr,
    results_table,
    slicewise_metrics,
    summarize,
    to_markdown,
    write_csv,
)
from mrilearn.metrics.perceptual import PerceptualScorer
from mrilearn.models.attention import SelfAttention3d
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
    test of the network against each baseline, and seconds per volume. With ``perceptual``
    it adds no-reference scores (NIQE with ``niqe_model`` or the standard model, PIQE, BRISQUE
    with ``brisque_model``) for every method and the HR reference, and a
    distortion–perception plot (§5.4.3).
    """

    def __init__(
        self,
        cfg: Any,
        run_dir: Path,
        dist: Any,
        context: int = 8,
        perceptual: bool = False,
        niqe_model: str | None = None,
        brisque_model: str | None = None,
    ) -> None:
        super().__init__(cfg, run_dir, dist)
        self.context = context
        self.perceptual = perceptual
        self.niqe_model = niqe_model
        self.brisque_model = brisque_model

    @property
    def sr_data(self) -> SRVolumes:
        return self.data

    @property
    def method_name(self) -> str:
        """The network's label in evaluation tables."""
        return self.cfg.model["name"]

    def inference_net(self) -> torch.nn.Module:
        """The network that maps LR to SR (two-stage trainers chain theirs)."""
        return self.nets["G"]

    def validate(self) -> dict[str, float]:
        batches = self.data.val_batches()
        if not batches:
            return {}
        net, losses, psnrs = self.inference_net(), [], []
        for b in batches:
            pred = net(b["image"])
            losses.append(self.loss(pred, b["target"]).item())
            target = b["target"].numpy()
            psnrs.append(psnr(pred.numpy(), target, float(target.max() - target.min()) or 1.0))
        return {"val/loss": float(np.mean(losses)), "val/psnr": float(np.mean(psnrs))}

    # ------------------------------------------------------------ inference
    def predict(self, lr: np.ndarray) -> np.ndarray:
        """Network output for a normalised (X, Y, Z) LR array, whole volume by sliding window."""
        net = self.inference_net().eval()
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

    def attention_map(self, volume: Volume, voxel: Sequence[int]) -> Volume:
        """Where the self-attention block (§8.3.2) looked to produce ``voxel``.

        The network runs on an ``inference.roi_size`` crop around the voxel; the attention row
        of that query is spread from the pooled grid onto the input grid (zero outside the
        crop), so the map sums to 1. Returns an (X, Y, Z) Volume in the input's geometry.
        """
        block = next(
            (m for m in self.inference_net().modules() if isinstance(m, SelfAttention3d)), None
        )
        if block is None:
            raise ConfigError("the model has no self-attention block (set model.attention)")
        shape = volume.data.shape
        if len(voxel) != 3 or not all(0 <= v < n for v, n in zip(voxel, shape)):
            raise DataError(f"voxel {list(voxel)} is not inside the volume of shape {shape}")
        roi = self.cfg.inference.get("roi_size") or list(self.sr_data.patch_size)
        crop = []
        for v, n, r in zip(voxel, shape, roi):
            lo = min(max(0, v - r // 2), max(0, n - r))
            crop.append(slice(lo, min(n, lo + r)))
        lr = volume.data[tuple(crop)] / self.sr_data.scale_of(volume.data)
        x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None, None]
        block.keep_attention = True
        try:
            with torch.inference_mode():
                self.inference_net().eval()(x)
            local = [v - c.start for v, c in zip(voxel, crop)]
            small = block.query_map(tuple(local))[None, None]
        finally:
            block.keep_attention, block.attention = False, None
        up = torch.nn.functional.interpolate(small, scale_factor=block.downsample)[0, 0]
        up = up[tuple(slice(0, c.stop - c.start) for c in crop)]
        out = np.zeros(shape, np.float32)
        out[tuple(crop)] = (up / up.sum()).numpy()
        return volume.with_data(out)

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
        outputs[self.method_name] = self.predict_region(pair)
        seconds[self.method_name] = time.perf_counter() - t0
        return outputs, seconds

    def evaluate(self, split: str, out_dir: Path) -> dict[str, Any]:
        """Metrics, tables and figures for every subject of ``split``."""
        pairs = self.sr_data.pairs(split)
        if not pairs:
            raise DataError(f"split {split!r} has no subjects; change data.split or data.regions")
        slice_axis = self.sr_data.degradation.slice_axis
        thr = self.cfg.evaluation.mask_threshold
        per_subject: dict[str, dict[str, list[float]]] = {}
        scorer = PerceptualScorer(self.niqe_model, self.brisque_model) if self.perceptual else None
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
            if scorer is not None:
                fg = mask if mask is not None else hr > 0.05 * hr.max()
                for method, m in scorer.score({**outputs, "HR": hr}, hr, fg, slice_axis).items():
                    for key, value in m.items():
                        per_subject.setdefault(method, {}).setdefault(key, []).append(value)
            if self.cfg.evaluation.figures and i == 0:
                net_out = outputs[self.method_name]  # e.g. MDCSRN-WGAN for a GAN trainer
                figures.orthogonal_slices(
                    net_out,
                    fig_dir / f"prediction_{pair.id}.png",
                    title=f"{self.method_name}: {pair.id}",
                )
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
        network = self.method_name
        tests = {
            f"{network} vs {b}": {
                metric: paired_test(per_subject[network][metric], per_subject[b][metric])
                for metric in ("psnr", "ssim", "nrmse")
            }
            for b in per_subject
            if b != network and "psnr" in per_subject[b]
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
        notes = scorer.notes if scorer is not None else []
        if scorer is not None:
            result["perceptual"] = scorer.info
            result["notes"] = notes
            if self.cfg.evaluation.figures:
                _distortion_perception_plot(per_subject, fig_dir / "distortion_perception.png")
        write_json_atomic(out_dir / "evaluation.json", result)
        write_csv(rows, out_dir / "results.csv")
        write_text_atomic(
            out_dir / "results.md", to_markdown(rows) + "".join(f"\n{n}\n" for n in notes)
        )
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
            pred = self.inference_net().eval()(b["image"])[0, 0].numpy()
        images = {"LR": b["image"][0, 0].numpy(), "network": pred, "HR": b["target"][0, 0].numpy()}
        figures.comparison_panel(
            images, "HR", fig_dir / "validation_patch.png", self.sr_data.degradation.slice_axis
        )


def write_attention_map(trainer: SRTrainer, volume: Volume, voxel: str, output: Path) -> list[Path]:
    """``mrilearn infer --attention X,Y,Z``: the map as NIfTI and a PNG beside ``output``."""
    try:
        point = [int(v) for v in voxel.split(",")]
    except ValueError:
        raise ConfigError(f"--attention {voxel!r}: expected three voxel indices X,Y,Z") from None
    amap = trainer.attention_map(volume, point)
    stem = output.name.removesuffix(".gz").removesuffix(".nii")
    base = output.parent / f"{stem}_attention_{'_'.join(map(str, point))}"
    nifti = write_volume(amap, base.with_name(base.name + ".nii.gz"))
    png = figures.orthogonal_slices(
        amap.data, base.with_name(base.name + ".png"), f"attention of voxel {point}", point
    )
    return [Path(nifti), png]


def _distortion_perception_plot(per_subject: dict[str, dict[str, list[float]]], path: Path) -> None:
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


def _zoom_box(hr: np.ndarray, slice_axis: int) -> tuple[int, int, int, int]:
    """A square around the centre of the middle slice, a quarter of its size."""
    shape = [n for a, n in enumerate(hr.shape) if a != slice_axis]
    h = max(4, min(shape) // 4)
    c0, c1 = shape[0] // 2, shape[1] // 2
    return (c0 - h // 2, c0 + h // 2, c1 - h // 2, c1 + h // 2)


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
    _distortion_perception_plot(per_subject, out_dir / "distortion_perception.png")
    return rows
