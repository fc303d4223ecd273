"""Segmentation losses (§7.2.5): Dice + cross-entropy, with deep supervision."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mrilearn.registry import LOSSES


@LOSSES.register()
class DeepSupervisedDiceCE(nn.Module):
    """Soft Dice + cross-entropy (MONAI ``DiceCELoss``, softmax over classes) on the main
    output and on every auxiliary output of a deeply supervised network.

    ``pred`` is logits (B, C, *S) or a list ``[main, aux_1, aux_2, ...]`` (coarser last);
    ``target`` is class indices (B, 1, *S). Each auxiliary output is scored against the
    target down-sampled to its size by nearest neighbour; output i has weight ``decay**i``
    (1, 1/2, 1/4, ... by default) and the weights are normalised to sum to 1. Dice is taken
    over the whole batch (``batch=True``); ``include_background`` adds the background class
    to the Dice term.
    """

    def __init__(
        self,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        decay: float = 0.5,
        include_background: bool = False,
    ) -> None:
        from monai.losses import DiceCELoss  # MONAI: seconds to import, so only when used

        super().__init__()
        self.decay = decay
        self.dice_ce = DiceCELoss(
            include_background=include_background,
            to_onehot_y=True,
            softmax=True,
            batch=True,
            lambda_dice=dice_weight,
            lambda_ce=ce_weight,
        )

    def forward(
        self, pred: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor
    ) -> torch.Tensor:
        outputs = [pred] if isinstance(pred, torch.Tensor) else list(pred)
        weights = [self.decay**i for i in range(len(outputs))]
        total = torch.zeros((), device=target.device)
        for w, out in zip(weights, outputs):
            t = target
            if out.shape[2:] != target.shape[2:]:
                t = F.interpolate(target.float(), size=out.shape[2:], mode="nearest").long()
            total = total + w * self.dice_ce(out, t)
        return total / sum(weights)
