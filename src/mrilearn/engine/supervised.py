"""Registered trainers. Importing this module registers all of them."""

from __future__ import annotations

import torch

from mrilearn.engine.trainer import Trainer
from mrilearn.registry import TRAINERS


@TRAINERS.register()
class SupervisedTrainer(Trainer):
    """Image-to-image training: ``loss(G(image), target)``, validated on fixed batches."""

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        pred = self.train_nets["G"](batch["image"])
        loss = self.loss(pred, batch["target"])
        self.optimize("G", loss)
        return {"loss": loss.item()}

    def validate(self) -> dict[str, float]:
        batches = self.val_batches()
        if not batches:
            return {}
        net = self.nets["G"]
        losses = [self.loss(net(b["image"]), b["target"]).item() for b in batches]
        return {"val/loss": sum(losses) / len(losses)}
