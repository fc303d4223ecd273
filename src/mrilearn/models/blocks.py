"""Dimension-agnostic building blocks of the densely connected networks.

Every block works on ``spatial_dims`` 2 (B, C, X, Y) or 3 (B, C, X, Y, Z) maps, so the 3-D
super-resolution networks of §3.2.2 and §4.3.2 and the 2-D networks of later chapters share
one implementation of the DenseNet unit and block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

NormName = Literal["batch", "instance", "layer", "none"]


class _BatchStatsAtEval:
    """Mixin for BatchNorm: optionally normalise with batch statistics in eval mode too.

    §4.3.2 ran BatchNorm in train mode at test time (batch 1). With ``batch_stats_at_eval``
    set, an eval-mode forward normalises with the statistics of the current batch, exactly as
    a train-mode forward does, but leaves ``running_mean``/``running_var`` and
    ``num_batches_tracked`` untouched, so inference never changes the model's state.
    """

    batch_stats_at_eval: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_stats_at_eval and not self.training:
            self._check_input_dim(x)
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return super().forward(x)


class BatchNorm2d(_BatchStatsAtEval, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that can use batch statistics in eval mode (see ``_BatchStatsAtEval``)."""


class BatchNorm3d(_BatchStatsAtEval, nn.BatchNorm3d):
    """``nn.BatchNorm3d`` that can use batch statistics in eval mode (see ``_BatchStatsAtEval``)."""


def set_batch_stats_at_eval(module: nn.Module, enabled: bool) -> int:
    """Switch every BatchNorm made by :func:`make_norm` inside ``module``; returns how many."""
    layers = [m for m in module.modules() if isinstance(m, _BatchStatsAtEval)]
    for m in layers:
        m.batch_stats_at_eval = enabled
    return len(layers)


def _check_dims(spatial_dims: int) -> None:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")


def make_norm(name: NormName, channels: int, spatial_dims: int = 3) -> nn.Module:
    """Normalisation layer over (B, C, *spatial) maps.

    ``layer`` is GroupNorm with one group (normalises over C and space per sample), the usual
    LayerNorm for convolutional maps; ``instance`` has learnable affine parameters.
    """
    _check_dims(spatial_dims)
    if name == "batch":
        return (BatchNorm2d if spatial_dims == 2 else BatchNorm3d)(channels)
    if name == "instance":
        inorm = nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm3d
        return inorm(channels, affine=True)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {name!r}; use batch, instance, layer or none")


def make_conv(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    dilation: int = 1,
    bias: bool = True,
) -> nn.Module:
    """Same-size convolution (odd ``kernel_size``, zero padding ``dilation * (k // 2)``)."""
    _check_dims(spatial_dims)
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd to keep the size, got {kernel_size}")
    conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
    return conv(
        in_channels,
        out_channels,
        kernel_size,
        padding=dilation * (kernel_size // 2),
        dilation=dilation,
        bias=bias,
    )


class DenseUnit(nn.Module):
    """One DenseNet unit: norm → ELU → conv k×k with ``growth`` filters (§3.2.2, §4.3.2).

    With ``bottleneck`` (DenseNet-BC) a norm → ELU → 1×1 conv to ``4 * growth`` channels comes
    first. ``dropout`` (after each conv) is kept active by Monte-Carlo dropout at inference.
    Shape: (B, in_channels, *S) → (B, growth, *S).
    """

    def __init__(
        self,
        in_channels: int,
        growth: int,
        spatial_dims: int = 3,
        norm: NormName = "batch",
        kernel_size: int = 3,
        bottleneck: bool = False,
        dilation: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        if bottleneck:
            width = 4 * growth
            layers += [make_norm(norm, channels, spatial_dims), nn.ELU()]
            layers.append(make_conv(spatial_dims, channels, width, 1))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            channels = width
        layers += [make_norm(norm, channels, spatial_dims), nn.ELU()]
        layers.append(make_conv(spatial_dims, channels, growth, kernel_size, dilation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.layers = nn.Sequential(*layers)
        self.out_channels = growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DenseBlock(nn.Module):
    """``units`` DenseUnits, each fed the concatenation of the block input and all earlier outputs.

    The output is the concatenation of the block input and every unit output
    (``in_channels + units * growth`` channels), which wires the input directly to the block
    output as in mDCSRN (§4.3.2, Fig. 4.4a); with ``new_features_only`` it is the unit outputs
    alone (``units * growth`` channels), as in SRDenseNet (Fig. 4.4b). ``dilation`` is one value
    for all units or one per unit. Shape: (B, in_channels, *S) → (B, out_channels, *S).
    """

    def __init__(
        self,
        in_channels: int,
        units: int,
        growth: int,
        spatial_dims: int = 3,
        norm: NormName = "batch",
        kernel_size: int = 3,
        bottleneck: bool = False,
        dilation: int | Sequence[int] = 1,
        dropout: float = 0.0,
        new_features_only: bool = False,
    ) -> None:
        super().__init__()
        dilations = [dilation] * units if isinstance(dilation, int) else list(dilation)
        if len(dilations) != units:
            raise ValueError(f"got {len(dilations)} dilations for {units} units")
        self.units = nn.ModuleList(
            DenseUnit(
                in_channels + i * growth,
                growth,
                spatial_dims,
                norm,
                kernel_size,
                bottleneck,
                dilations[i],
                dropout,
            )
            for i in range(units)
        )
        self.new_features_only = new_features_only
        self.out_channels = units * growth + (0 if new_features_only else in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for unit in self.units:
            features.append(unit(torch.cat(features, dim=1)))
        return torch.cat(features[1:] if self.new_features_only else features, dim=1)


class BottleneckReconstruction(nn.Module):
    """Reconstruction of SRDenseNet (Tong et al. 2017) used by mDCSRN "-r" (§4.4.2, Fig. 4.5b).

    1×1 conv to ``width`` (8k) channels → norm → ELU → k×k conv to ``out_channels``; the
    same-scale conv stands in for the up-sampling layers of the original.
    Shape: (B, in_channels, *S) → (B, out_channels, *S).
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        out_channels: int = 1,
        spatial_dims: int = 3,
        norm: NormName = "batch",
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            make_conv(spatial_dims, in_channels, width, 1),
            make_norm(norm, width, spatial_dims),
            nn.ELU(),
            make_conv(spatial_dims, width, out_channels, kernel_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
