"""Super-resolution trainer: patch training, whole-volume inference, evaluation vs baselines."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrilearn import components
from mrilearn.apps.sr.data import SRPair, SRVolumes
from mrilearn.apps.sr.degrade import KspaceTruncation
from mrilearn.apps.sr.evaluation import evaluate_sr
from mrilearn.apps.sr.reduced import reduced_hint, reduced_input
from mrilearn.apps.sr.registration import REGISTRATION_FILE
from mrilearn.engine.device import to_host
from mrilearn.engine.supervised import SupervisedTrainer
from mrilearn.errors import ConfigError, DataError
from mrilearn.inference.sliding import MarginCrop, SlidingWindow
from mrilearn.io import Volume
from mrilearn.metrics.image import psnr
from mrilearn.metrics.perceptual import PerceptualScorer
from mrilearn.models.attention import SelfAttention3d
from mrilearn.registry import TRAINERS
from mrilearn.report import figures

log = logging.getLogger(__name__)


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

    @functools.cached_property
    def inferer(self) -> SlidingWindow | MarginCrop:
        """The whole-volume inferer of ``inference`` (its ``roi_size`` is the patch size of
        inference)."""
        inferer = components.build("inference", self.cfg.inference)
        if not isinstance(inferer, (SlidingWindow, MarginCrop)):
            raise ConfigError("inference: super-resolution needs SlidingWindow or MarginCrop")
        return inferer

    def fit(self, resume: bool = False) -> bool:
        """Train; with ``data.register``, first record every pair's registration in the run
        (``registration.json``)."""
        aligner = self.sr_data.aligner
        if aligner is not None and self.dist.is_main:
            self.sr_data.pairs("train")  # registers every pair
            aligner.write(self.run_dir / REGISTRATION_FILE)
        return super().fit(resume)

    def validate(self) -> dict[str, float]:
        batches = self.val_batches()
        if not batches:
            return {}
        net, losses, psnrs = self.trained_net(), [], []
        for b in batches:
            pred = net(b["image"])
            losses.append(self.loss(pred, b["target"]).item())
            target = to_host(b["target"]).numpy()
            peak = float(target.max() - target.min()) or 1.0
            psnrs.append(psnr(to_host(pred).numpy(), target, peak))
        return {"val/loss": float(np.mean(losses)), "val/psnr": float(np.mean(psnrs))}

    # ------------------------------------------------------------ inference
    def predict(self, lr: np.ndarray) -> np.ndarray:
        """Network output for a normalised (X, Y, Z) LR array, whole volume by sliding window:
        the volume and the merge in host memory, batches of patches on the device."""
        net = self.inference_net().eval()
        x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None, None]
        with torch.inference_mode(), self.amp.autocast():
            return self.inferer(net, x, self.device)[0, 0].numpy()

    def measured_voxel_size(self) -> tuple[float, ...] | None:
        """The median voxel size of the training subjects, per array axis (mm)."""
        spacings = [p.volume.spacing for p in self.sr_data.pairs("train")]
        return tuple(float(s) for s in np.median(spacings, axis=0)) if spacings else None

    def prepare_input(
        self, volume: Volume, where: str, reduced: bool = False,
        target_shape: Sequence[int] | None = None,
    ) -> Volume:  # fmt: skip
        """The LR scan on the model's grid: as it is, or (``reduced``, ``target_shape``) an
        acquisition on its reduced matrix zero-filled onto the HR matrix
        (:mod:`mrilearn.apps.sr.reduced`); warns when the voxel size is unlike training's."""
        degradation = self.sr_data.degradation
        factors = degradation.axis_factors if isinstance(degradation, KspaceTruncation) else None
        if reduced or target_shape is not None:
            volume = reduced_input(volume, where, factors, self.voxel_size, target_shape)
            self.check_voxel_size(volume, where)
            return volume
        hint = reduced_hint(volume.spacing, self.voxel_size, factors) if factors else ""
        self.check_voxel_size(volume, where, hint)
        return volume

    def infer_volume(self, volume: Volume) -> Volume:
        """Super-resolve an LR scan (on the HR matrix: :meth:`prepare_input`) in its own
        geometry."""
        if volume.data.ndim != 3:
            raise DataError(f"super-resolution needs a 3-D volume, got shape {volume.data.shape}")
        scale = self.sr_data.scale_of(volume.data)
        out = self.predict(volume.data / scale) * scale
        return volume.with_data(out.astype(np.float32))

    def io_conventions(self) -> dict[str, Any]:
        pct = self.sr_data.scale_percentile
        return {
            **super().io_conventions(),
            "task": "super-resolution",
            "spatial_dims": 3,
            "in_channels": 1,
            "out_channels": 1,
            "layout": "input (B, 1, X, Y, Z) LR image on the HR grid -> output (B, 1, X, Y, Z)",
            "normalisation": f"input / percentile(volume, {pct}); output * the same scale",
            "example_shape": [1, 1, *self.inferer.roi_size],
        }

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
        crop = []
        for v, n, r in zip(voxel, shape, self.inferer.roi_size):
            lo = min(max(0, v - r // 2), max(0, n - r))
            crop.append(slice(lo, min(n, lo + r)))
        lr = volume.data[tuple(crop)] / self.sr_data.scale_of(volume.data)
        x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None, None]
        block.keep_attention = True
        try:
            with torch.inference_mode(), self.amp.autocast():
                self.inference_net().eval()(x.to(self.device))
            local = [v - c.start for v, c in zip(voxel, crop)]
            small = to_host(block.query_map(tuple(local)))[None, None]
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
    def evaluate(self, split: str, out_dir: Path) -> dict[str, Any]:
        """Metrics, tables and figures for every subject of ``split`` (:func:`evaluate_sr`)."""
        scorer = PerceptualScorer(self.niqe_model, self.brisque_model) if self.perceptual else None
        return evaluate_sr(
            self.sr_data, split, self.method_name, self.predict_region, self.cfg.evaluation,
            scorer, out_dir,
        )  # fmt: skip

    def save_figures(self, fig_dir: Path) -> None:
        """A validation patch: LR, prediction, HR and the error map."""
        batches = self.val_batches()
        if not batches:
            return
        b = {k: to_host(v) for k, v in batches[0].items()}
        with torch.no_grad():
            pred = to_host(self.trained_net().eval()(batches[0]["image"]))[0, 0].numpy()
        images = {"LR": b["image"][0, 0].numpy(), "network": pred, "HR": b["target"][0, 0].numpy()}
        figures.comparison_panel(
            images, "HR", fig_dir / "validation_patch.png", self.sr_data.degradation.slice_axis
        )
