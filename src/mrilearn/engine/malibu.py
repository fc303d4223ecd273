"""MALIBU trainer (§6.3; issue 6): learn g(U0) ≈ U, evaluate against the iterative recon.

Training minimises the L1 loss between g(normalised U0) and the normalised iterative U (see
:mod:`mrilearn.data.malibu` for the canonical features and the normalisation) plus
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
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mrilearn.data.malibu import (
    MalibuMaps,
    MalibuSubject,
    Normalisation,
    canonical_rotation,
    pack,
    unpack,
)
from mrilearn.engine.trainers import SupervisedTrainer
from mrilearn.errors import DataError
from mrilearn.io.atomic import write_json_atomic, write_text_atomic
from mrilearn.metrics.image import nrmse, results_table, slicewise_metrics, to_markdown, write_csv
from mrilearn.physics import figures as mt_figures
from mrilearn.physics.subspace import image_series, t1_map
from mrilearn.registry import TRAINERS
from mrilearn.report.figures import plt, save_figure

log = logging.getLogger(__name__)

ITERATIVE = "iterative"
BACK_PROJECTION = "U0"
T1_TISSUES = ("myocardium", "blood")
IMAGE_METRICS = ("nrmse", "psnr", "ssim")


@TRAINERS.register()
class MalibuTrainer(SupervisedTrainer):
    """Trains a MALIBU network on :class:`~mrilearn.data.malibu.MalibuMaps` and compares it with
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
        nets["G"].register_buffer("label_scale", torch.ones(channels, dtype=torch.float64))
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
        physical units, whole maps."""
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
        """The network on (B, 2L, H, W), zero-padded to a size it accepts and cropped back."""
        net = self.nets["G"].eval()
        multiple = getattr(net, "size_multiple", 1)
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % multiple, -w % multiple
        with torch.inference_mode():
            out = net(F.pad(x, (0, pad_w, 0, pad_h)))
        return out[..., :h, :w]

    def predict_canonical(self, u0: np.ndarray) -> np.ndarray:
        """U (L, N, N) from a canonical U0 (L, N, N): pack, normalise, g, invert, unpack."""
        x = pack(u0)
        label_scale = self.nets["G"].label_scale.numpy()
        per_channel = label_scale.size > 1
        norm = Normalisation.of(x, per_channel=per_channel)
        label_norm = Normalisation.of(x, label_scale, per_channel)
        y = self._forward(torch.from_numpy(norm.apply(x))[None])[0].numpy()
        return unpack(label_norm.invert(y))

    def spatial_factor(self, u0: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """U from any scan's U0 and Φ (canonicalised, then rotated back): the ``spatial``
        argument of :func:`mrilearn.physics.mtmri.reconstruct`."""
        c = canonical_rotation(phi)
        u = self.predict_canonical(np.conj(c)[:, None, None] * u0)
        return (c[:, None, None] * u).astype(np.complex64)

    # ----------------------------------------------------------- evaluation
    def evaluate(self, split: str, out_dir: Path) -> dict[str, Any]:
        """U, image-series and T1 agreement with the iterative recon on ``split`` (§6.3.2)."""
        subjects = self.maps.subjects(split)
        if not subjects:
            raise DataError(f"split {split!r} has no subjects; change data.split")
        net_name = self.method_name
        per_subject: dict[str, dict[str, list[float]]] = {net_name: {}, BACK_PROJECTION: {}}
        runtimes: dict[str, list[float]] = {net_name: [], ITERATIVE: []}
        voxels: dict[str, dict[str, list[np.ndarray]]] = {t: {} for t in T1_TISSUES}
        fig_dir = out_dir / "figures"
        for i, s in enumerate(subjects):
            t0 = time.perf_counter()
            u_net = self.predict_canonical(s.u0)
            runtimes[net_name].append(time.perf_counter() - t0)
            timings = s.meta["timings_s"]
            runtimes[ITERATIVE].append(timings["toeplitz_kernels_s"] + timings["admm_s"])
            a = np.vdot(s.u0, s.u) / np.vdot(s.u0, s.u0)  # oracle scale: the fairest U0
            estimates = {net_name: u_net, BACK_PROJECTION: a * s.u0}
            t1_maps = {ITERATIVE: s.t1}
            for method, u in estimates.items():
                m = subject_metrics(s, u)
                for key, value in m.items():
                    per_subject[method].setdefault(key, []).append(value)
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
                    per_subject[method].setdefault(f"t1_{tissue}_bias_pct", []).append(bias)
            if self.cfg.evaluation.figures and i < 2:
                write_subject_figures(fig_dir, s, {ITERATIVE: s.u, **estimates}, t1_maps)
            log.info("evaluated %s (%d/%d)", s.id, i + 1, len(subjects))
        agreement = t1_agreement(voxels, net_name)
        if self.cfg.evaluation.figures:
            bland_altman_figure(voxels, net_name, fig_dir / "bland_altman.png")
        rows = results_table(per_subject, runtimes)
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
            "per_subject": per_subject,
            "runtime_s": runtimes,
            "speed": speed,
            "t1_agreement": agreement,
            "table": rows,
            "notes": [
                "Metrics compare with the iterative (ADMM) recon of the same data; U0 is scaled "
                "by its least-squares factor onto U (an oracle that favours the baseline).",
                "Image metrics: |images| of all cardiac bins at end-expiration (respiratory bin "
                "0) for the bright-blood (last) and dark-blood (blood-nulling) TI.",
                "Runtime: network forward incl. normalisation vs the iterative recon's Toeplitz "
                "kernels + ADMM recorded when the data set was generated, same machine.",
            ],
        }
        write_json_atomic(out_dir / "evaluation.json", result)
        write_csv(rows, out_dir / "results.csv")
        write_text_atomic(out_dir / "results.md", to_markdown(rows))
        return result


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
    fig, axes = plt.subplots(
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
