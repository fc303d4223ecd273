"""What a site does with the framework's Trainer, independent of the transport (§8.4.3).

Weights travel as the list of arrays of every net's ``state_dict`` (nets in sorted order,
parameters and buffers in state-dict order). Besides them a site sends its number of training
subjects, the last local step's losses and its training voxel size; no image leaves it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from mrilearn import plugins
from mrilearn.config import load_config
from mrilearn.engine.checkpoint import load_state_dict
from mrilearn.engine.trainer import Trainer
from mrilearn.runs import build_trainer

log = logging.getLogger(__name__)


def get_weights(trainer: Trainer) -> list[np.ndarray]:
    """Every net's state as numpy arrays (copies), in the exchange order."""
    return [
        t.detach().cpu().numpy().copy()
        for key in sorted(trainer.nets)
        for t in trainer.nets[key].state_dict().values()
    ]


def set_weights(trainer: Trainer, arrays: list[np.ndarray]) -> None:
    """Load arrays in the exchange order, cast to each tensor's dtype (averaged integer
    buffers such as BatchNorm's ``num_batches_tracked`` are truncated)."""
    it = iter(arrays)
    for key in sorted(trainer.nets):
        net = trainer.nets[key]
        state = {
            name: torch.as_tensor(np.asarray(next(it))).to(t.dtype)
            for name, t in net.state_dict().items()
        }
        load_state_dict(net, state, f"federated weights [{key}]")


def weighted_mean(clients: list[tuple[list[np.ndarray], int]]) -> list[np.ndarray]:
    """FedAvg's aggregate: per-array mean of the clients' weights weighted by example counts."""
    total = sum(n for _, n in clients)
    return [
        sum(w[i].astype(np.float64) * n for w, n in clients) / total
        for i in range(len(clients[0][0]))
    ]


def training_size(trainer: Trainer) -> int:
    """Training subjects of the site (FedAvg's weight)."""
    return trainer.data.subject_count("train")


def local_training(trainer: Trainer, iterations: int) -> dict[str, float]:
    """``iterations`` steps of the trainer's own loop step (:meth:`Trainer.step`: weight
    average and schedulers included) on local batches; optimiser, scheduler and average state
    carry over between rounds. Returns the last step's stats."""
    stats: dict[str, float] = {}
    for _ in range(iterations):
        stats = trainer.step()
    for net in trainer.nets.values():
        net.eval()
    return stats


def voxel_size_metrics(voxel_size: tuple[float, ...] | None) -> dict[str, float]:
    """A training voxel size as scalar metrics (``voxel_size_0``, ...; none when it does not
    matter), the form Flower carries from site to server."""
    return {} if voxel_size is None else {f"voxel_size_{i}": v for i, v in enumerate(voxel_size)}


def voxel_size_from(metrics: dict[str, float]) -> tuple[float, ...] | None:
    """The voxel size :func:`voxel_size_metrics` put into ``metrics``, or None."""
    size: list[float] = []
    while f"voxel_size_{len(size)}" in metrics:
        size.append(float(metrics[f"voxel_size_{len(size)}"]))
    return tuple(size) or None


def validation_loss(trainer: Trainer) -> dict[str, float]:
    """The trainer's ``validate()`` (e.g. ``val/loss``) under no_grad, nets in eval mode, with
    the averaged weights where the run keeps an average."""
    for net in trainer.nets.values():
        net.eval()
    with torch.no_grad(), trainer.averaged_weights():
        return trainer.validate()


def site_trainer(
    config: str | Path, data_source: str | Path | None, overrides: list[str]
) -> Trainer:
    """A trainer from the shared config file with ``data.source`` set to the site's data."""
    plugins.load()
    extra = [f"data.source={data_source}"] if data_source is not None else []
    cfg = load_config(config, [*overrides, *extra])
    return build_trainer(cfg, Path(cfg.output_dir) / cfg.experiment)
