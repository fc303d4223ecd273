"""Pixel losses for image-to-image networks (L1 in §4-§6, L2 in §3)."""

from __future__ import annotations

from torch import nn

from mrilearn.registry import LOSSES

LOSSES.register(nn.L1Loss)
LOSSES.register(nn.MSELoss)
LOSSES.register(nn.SmoothL1Loss)
