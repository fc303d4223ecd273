"""Monte-Carlo dropout uncertainty maps (§8.4.2) and how well they track the error.

N stochastic passes run with every dropout layer in train mode and everything else
(BatchNorm included) in eval mode. Super-resolution gives the mean image and the voxel-wise
standard deviation (image units); segmentation gives the label map of the mean class
probabilities, the predictive entropy H[E p] and the mutual information
H[E p] − E H[p] (the part of the entropy due to the model's weights), both in nats.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mrilearn.engine.contract import ClassProbabilities, Predictor
from mrilearn.errors import ConfigError
from mrilearn.inference.maps import Map
from mrilearn.io import Volume
from mrilearn.report import figures

log = logging.getLogger(__name__)

EPS = 1e-12


class MCDropout(nn.Module):
    """Wraps a network so that ``eval()`` leaves its dropout layers sampling.

    Attribute look-ups fall through to the wrapped network (e.g. ``in_slices``, ``classes``).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def train(self, mode: bool = True) -> MCDropout:
        super().train(mode)
        for m in dropout_layers(self.net):
            m.train(True)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["net"], name)


def dropout_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


@contextlib.contextmanager
def mc_dropout(trainer: Predictor) -> Iterator[bool]:
    """Inside the block the trainer's inference network samples its dropout masks; yields
    whether it has any dropout (without, every pass gives the same output)."""
    net = trainer.inference_net()
    if not any(isinstance(p, torch.nn.Parameter) for p in net.parameters()):
        raise ConfigError("MC dropout needs the PyTorch runtime (--runtime torch)")
    trainer.use_inference_net(MCDropout(net).eval())
    try:
        yield bool(dropout_layers(net))
    finally:
        trainer.use_inference_net(None)
        net.eval()


@dataclass
class MCResult:
    """Mean prediction (SR image or segmentation labels) and uncertainty maps on its grid."""

    prediction: Volume
    maps: dict[str, Volume]
    samples: int


def check_samples(samples: int) -> None:
    if samples < 1:
        raise ConfigError(f"--samples {samples}: need at least 1 pass")


def mc_predict(trainer: Predictor, volume: Volume, samples: int) -> MCResult:
    """``samples`` stochastic passes of ``trainer.class_probabilities`` (a classifier) or else
    ``trainer.infer_volume``."""
    check_samples(samples)
    n = samples
    with mc_dropout(trainer) as stochastic:
        if not stochastic:
            log.warning("the model has no dropout (model.dropout = 0): uncertainty is zero")
            n = 1
        first = trainer.class_probabilities(volume)
        if first is not None:
            return _mc_classify(trainer, volume, first, n)
        mean = m2 = None
        for i in range(n):  # Welford: memory of two volumes whatever N
            x = trainer.infer_volume(volume).data.astype(np.float64)
            if mean is None:
                mean, m2 = x, np.zeros_like(x)
            else:
                delta = x - mean
                mean += delta / (i + 1)
                m2 += delta * (x - mean)
    std = np.sqrt(m2 / max(n - 1, 1)).astype(np.float32)
    return MCResult(volume.with_data(mean.astype(np.float32)), {"std": volume.with_data(std)}, n)


def _mc_classify(trainer: Predictor, volume: Volume, first: ClassProbabilities, n: int) -> MCResult:
    probs = expected_entropy = None
    for i in range(n):
        sample = first if i == 0 else trainer.class_probabilities(volume)
        p = sample.probabilities.data.astype(np.float64)
        p = p / np.maximum(p.sum(-1, keepdims=True), EPS)
        h = entropy(p)
        probs = p if probs is None else probs + p
        expected_entropy = h if expected_entropy is None else expected_entropy + h
    probs, expected_entropy = probs / n, expected_entropy / n
    total = entropy(probs)
    labels = np.asarray(first.values, np.int16)[probs.argmax(-1)]
    maps = {
        "entropy": volume.with_data(total.astype(np.float32)),
        "mutual_information": volume.with_data(
            np.maximum(total - expected_entropy, 0).astype(np.float32)
        ),
    }
    return MCResult(volume.with_data(labels), maps, n)


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats over the last axis of class probabilities (..., C)."""
    return -(p * np.log(np.maximum(p, EPS))).sum(-1)


def infer_with_uncertainty(
    trainer: Predictor, volume: Volume, samples: int
) -> tuple[Volume, list[Map]]:
    """``mrilearn infer --samples N``: the mean prediction and the uncertainty maps that the
    caller writes beside it (:func:`~mrilearn.inference.maps.write_maps`)."""
    result = mc_predict(trainer, volume, samples)
    maps = [
        Map(name, vol, f"MC dropout {name}, {result.samples} samples")
        for name, vol in result.maps.items()
    ]
    return result.prediction, maps


# ----------------------------------------------------------- does uncertainty track error?
def uncertainty_error_relation(
    uncertainty: np.ndarray,
    error: np.ndarray,
    mask: np.ndarray | None = None,
    bins: int = 10,
    max_voxels: int = 200_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Spearman rank correlation of uncertainty vs absolute error over voxels (inside
    ``mask``; a seeded random subset of at most ``max_voxels``) and a reliability curve:
    mean uncertainty and mean error in ``bins`` equal-count uncertainty bins."""
    from scipy.stats import spearmanr

    u, e = np.asarray(uncertainty, np.float64), np.abs(np.asarray(error, np.float64))
    if mask is not None:
        u, e = u[mask], e[mask]
    u, e = u.ravel(), e.ravel()
    if u.size > max_voxels:
        keep = np.random.default_rng(seed).choice(u.size, max_voxels, replace=False)
        u, e = u[keep], e[keep]
    rho = float(spearmanr(u, e).statistic) if u.size > 2 and u.std() > 0 else float("nan")
    order = np.argsort(u, kind="stable")
    groups = [g for g in np.array_split(order, bins) if g.size]
    return {
        "spearman": rho,
        "voxels": int(u.size),
        "bins": {
            "uncertainty": [float(u[g].mean()) for g in groups],
            "abs_error": [float(e[g].mean()) for g in groups],
            "count": [int(g.size) for g in groups],
        },
    }


def reliability_figure(relation: dict[str, Any], path: Path, xlabel: str, title: str) -> Path:
    """Mean absolute error against mean uncertainty per bin (rising = uncertainty is useful)."""
    b = relation["bins"]
    fig, ax = figures.subplots(figsize=(5, 4))
    ax.plot(b["uncertainty"], b["abs_error"], "o-")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean |error|")
    ax.set_title(f"{title} (Spearman ρ = {relation['spearman']:.2f})")
    ax.grid(alpha=0.3)
    return figures.save_figure(fig, path)
