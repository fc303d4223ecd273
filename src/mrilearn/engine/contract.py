"""The contract between the framework and an application.

A data set is anything that serves training batches, fixed validation batches and the size of
its splits (:class:`TrainingData`). A trained run is used by inference, deployment, MC-dropout
uncertainty and federated training only through :class:`Predictor`, which every
:class:`~mrilearn.engine.trainer.Trainer` implements; an application overrides the methods it
has something to say in (``prepare_input``, ``infer_volume``, ``class_probabilities``,
``label_table``, ``attention_map``, ``io_conventions``, ``evaluate``), and the framework never
asks which application a trainer belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from mrilearn.config import Config
from mrilearn.io.volume import Label, Volume

Batch = dict[str, torch.Tensor]


class TrainingData(Protocol):
    """What the training loop and federated training need of a data set."""

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` random samples drawn with ``generator`` (a resumable stream)."""

    def val_batches(self) -> list[Batch]:
        """Fixed validation batches, the same at every validation."""

    def subject_count(self, split: str) -> int:
        """Subjects in ``split`` (federated averaging weighs sites by their training count)."""


@dataclass
class ClassProbabilities:
    """Per-class probabilities of a classifier on a volume's grid, (X, Y, Z, C), and the label
    value of each class."""

    probabilities: Volume
    values: Sequence[int]


class Predictor(Protocol):
    """A trained run as inference and deployment see it."""

    cfg: Config
    nets: dict[str, nn.Module]
    device: torch.device  # where the nets are and batches of patches or slabs run
    iteration: int
    run_dir: Path
    package_info: dict[str, Any] | None
    voxel_size: tuple[float, ...] | None  # of the training data (mm), if it matters

    def inference_net(self) -> nn.Module:
        """The network ``infer_volume`` runs."""

    def use_inference_net(self, net: nn.Module | None) -> None:
        """Run ``net`` (an ONNX session, an MC-dropout wrapper) in place of the trained
        network; ``None`` restores the trained one."""

    def prepare_input(
        self, volume: Volume, where: str, reduced: bool = False,
        target_shape: Sequence[int] | None = None,
    ) -> Volume:  # fmt: skip
        """A scan as :meth:`infer_volume` takes it; warns (naming ``where``) when it is unlike
        the training data. ``reduced``/``target_shape``: the scan is an acquisition on its own
        smaller matrix, to be brought onto the model's grid (super-resolution)."""

    def infer_volume(self, volume: Volume) -> Volume:
        """The prediction for one scan, in the scan's geometry."""

    def class_probabilities(self, volume: Volume) -> ClassProbabilities | None:
        """Class probabilities for a classifier (segmentation); ``None`` for regression."""

    def label_table(self) -> Sequence[Label] | None:
        """The labels of a prediction that is a label map (segmentation: names, values,
        colours, e.g. for DICOM-SEG); ``None`` when the prediction is an image."""

    def attention_map(self, volume: Volume, voxel: Sequence[int]) -> Volume:
        """Where the network looked to produce ``voxel`` (a map on the input's grid)."""

    def io_conventions(self) -> dict[str, Any]:
        """What the inference network takes and returns and how volumes are normalised
        (``task``, ``example_shape``, ...; recorded in exported packages)."""

    def evaluate(self, split: str, out_dir: Path) -> dict[str, Any]:
        """Metrics, tables and figures on the subjects of ``split``, written to ``out_dir``."""
