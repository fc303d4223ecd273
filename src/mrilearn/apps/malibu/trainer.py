"""MALIBU trainer (§6.3): learn g(U0) ≈ U, evaluate against the iterative recon.

Training minimises the L1 loss between g(normalised U0) and the normalised iterative U (see
:mod:`mrilearn.apps.malibu.data` for the canonical features and the normalisation) plus
``regularization`` × (mean |w| + mean w²) over the conv weights: the L1/L2 weight
regularisation of Table 6-1 (scales 0, 1e-3, 1e-2), taken as means so that a scale means the
same for any network width. ``series_weight`` adds the L1 distance of the recovery curves the
T1 fit matches, U Φ[:, :, T1 bin, end-expiration] (:func:`series_l1`): an L1 loss on U weighs
each basis component by its energy, whereas T1 hangs on the small ones that shape the curve.
The label scale k of the data set is stored with the weights (a ``label_scale`` buffer of the
network), so a trained run reconstructs new scans on its own (:meth:`MalibuTrainer.spatial_factor`,
used by ``mrilearn recon --method malibu``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mrilearn.apps.malibu.data import MalibuMaps, Normalisation, canonical_rotation, pack, unpack
from mrilearn.apps.malibu.evaluation import evaluate_malibu
from mrilearn.engine.device import to_host
from mrilearn.engine.supervised import SupervisedTrainer
from mrilearn.metrics.image import nrmse
from mrilearn.registry import TRAINERS

log = logging.getLogger(__name__)


@TRAINERS.register()
class MalibuTrainer(SupervisedTrainer):
    """Trains a MALIBU network on :class:`~mrilearn.apps.malibu.data.MalibuMaps` and compares it with
    the iterative recon (and the scaled back-projection U0) on held-out subjects (§6.3.2)."""

    def __init__(
        self,
        cfg: Any,
        run_dir: Path,
        dist: Any,
        regularization: float = 0.0,
        series_weight: float = 0.0,
    ) -> None:
        super().__init__(cfg, run_dir, dist)
        self.regularization = regularization
        self.series_weight = series_weight

    @property
    def maps(self) -> MalibuMaps:
        return self.data

    @property
    def method_name(self) -> str:
        return self.cfg.model["name"]

    def build_nets(self) -> dict[str, nn.Module]:
        nets = super().build_nets()
        channels = 2 * self.cfg.model["rank"] if self.cfg.data.get("channel_norm") else 1
        # float32: the buffer moves to the device with the net, and MPS has no float64
        nets["G"].register_buffer("label_scale", torch.ones(channels))
        return nets

    def fit(self, resume: bool = False) -> bool:
        if not resume:  # a resumed run restores it from the checkpoint
            self.nets["G"].label_scale.copy_(torch.from_numpy(self.maps.label_scale))
        return super().fit(resume)

    def weight_penalty(self) -> torch.Tensor:
        """mean |w| + mean w² over the conv weights (biases excluded)."""
        weights = [p for p in self.nets["G"].parameters() if p.ndim > 1]
        flat = torch.cat([w.reshape(-1) for w in weights])
        return flat.abs().mean() + flat.square().mean()

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        pred = self.train_nets["G"](batch["image"])
        loss = self.loss(pred, batch["target"])
        stats = {"loss": loss.item()}
        if self.series_weight:
            series = self.series_weight * series_l1(pred, batch)
            loss = loss + series
            stats["series"] = series.item()
        if self.regularization:
            penalty = self.regularization * self.weight_penalty()
            loss = loss + penalty
            stats["regularization"] = penalty.item()
        self.optimize("G", loss)
        return stats

    def validate(self) -> dict[str, float]:
        """val/loss (normalised L1), val/series (:func:`series_l1`) and val/nrmse of U in
        physical units, whole maps (:meth:`_forward` takes host batches to the device)."""
        batches = self.maps.val_batches()
        if not batches:
            return {}
        losses, series, errors = [], [], []
        for b in batches:
            pred = self._forward(b["image"])
            losses.append(self.loss(pred, b["target"]).item())
            series.append(series_l1(pred, b).item())
            mean, std = (b[k].double() for k in ("mean", "std"))
            physical = [(y.double() * std + mean).numpy() for y in (pred, b["target"])]
            errors.append(nrmse(*physical))
        return {
            "val/loss": float(np.mean(losses)),
            "val/series": float(np.mean(series)),
            "val/nrmse": float(np.mean(errors)),
        }

    # ------------------------------------------------------------ inference
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network on (B, 2L, H, W), zero-padded to a size it accepts and cropped back; on
        the device, the result in host memory."""
        net = self.inference_net().eval()
        multiple = getattr(net, "size_multiple", 1)
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % multiple, -w % multiple
        with torch.inference_mode(), self.amp.autocast():
            out = net(F.pad(x.to(self.device), (0, pad_w, 0, pad_h)))
        return to_host(out[..., :h, :w])

    def predict_canonical(self, u0: np.ndarray) -> np.ndarray:
        """U (L, N, N) from a canonical U0 (L, N, N): pack, normalise, g, invert, unpack."""
        x = pack(u0)
        label_scale = self.nets["G"].label_scale.cpu().numpy()
        per_channel = label_scale.size > 1
        norm = Normalisation.of(x, per_channel=per_channel)
        label_norm = Normalisation.of(x, label_scale, per_channel)
        y = self._forward(torch.from_numpy(norm.apply(x))[None])[0].numpy()
        return unpack(label_norm.invert(y))

    def spatial_factor(self, u0: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """U from any scan's U0 and Φ (canonicalised, then rotated back): the ``spatial``
        argument of :func:`mrilearn.apps.mtmri.recon.reconstruct`."""
        c = canonical_rotation(phi)
        u = self.predict_canonical(np.conj(c)[:, None, None] * u0)
        return (c[:, None, None] * u).astype(np.complex64)

    # ----------------------------------------------------------- evaluation
    def evaluate(self, split: str, out_dir: Path) -> dict[str, Any]:
        """U, image-series and T1 agreement with the iterative recon on ``split`` (§6.3.2)."""
        return evaluate_malibu(
            self.maps, split, self.method_name, self.predict_canonical, self.cfg.evaluation,
            out_dir,
        )  # fmt: skip


def series_l1(pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean |ΔU Φ_T1| over the recovery-curve images, ΔU the prediction's error in U's units
    relative to the label's mean normalisation scale (so 1 here is 1 in the normalised loss).

    ``pred``/``batch["target"]``: (B, 2L, H, W) normalised; ``batch["curve_basis"]``: (B, L, TI);
    ``batch["std"]``: (B, 1 or 2L, 1, 1), the label's normalisation. The label mean cancels in
    the difference.
    """
    std = batch["std"]
    diff = (pred - batch["target"]) * (std / std.mean(dim=1, keepdim=True)).to(pred.dtype)
    rank = diff.shape[1] // 2
    du = torch.complex(diff[:, :rank], diff[:, rank:])
    curves = torch.einsum("blhw,blt->bthw", du, batch["curve_basis"])
    return curves.abs().mean()
