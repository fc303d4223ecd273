"""Same-size baseline super-resolution networks of §3.4 and §4.4.2.

The LR and HR volumes share the matrix size, so the up-sampling layers of the original
designs (transposed convolutions, sub-pixel layers) are replaced by same-scale convolutions,
as in the dissertation. Defaults follow the papers; shrink them through the arguments to run
on a CPU. Shape of every model: (B, in_channels, X, Y, Z) → (B, out_channels, X, Y, Z).
"""

from __future__ import annotations

import torch
from torch import nn

from mrilearn.models.blocks import (
    BottleneckReconstruction,
    DenseBlock,
    NormName,
    make_conv,
    make_norm,
    set_batch_stats_at_eval,
)
from mrilearn.registry import MODELS


def _fsrcnn(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    d: int,
    s: int,
    m: int,
    final_kernel: int,
) -> nn.Sequential:
    """FSRCNN(d, s, m) (Dong et al. 2016) with a same-size last conv instead of the deconv."""

    def conv_prelu(cin: int, cout: int, k: int) -> list[nn.Module]:
        return [make_conv(spatial_dims, cin, cout, k), nn.PReLU(cout)]

    layers = conv_prelu(in_channels, d, 5) + conv_prelu(d, s, 1)
    for _ in range(m):
        layers += conv_prelu(s, s, 3)
    layers += conv_prelu(s, d, 1)
    layers.append(make_conv(spatial_dims, d, out_channels, final_kernel))
    return nn.Sequential(*layers)


@MODELS.register()
class FSRCNN2d(nn.Module):
    """2-D FSRCNN applied slice by slice to a volume, the 2-D baseline of §3.4 (Table 3-1).

    Feature extraction 5×5 (d), shrinking 1×1 (s), m mapping 3×3 (s), expanding 1×1 (d), all
    with PReLU, then a same-size ``final_kernel`` conv in place of the 9×9 deconvolution.
    Slices are the planes perpendicular to spatial axis ``slice_axis`` (0 = X, 1 = Y, 2 = Z);
    they are folded into the batch, so each slice is processed independently.
    """

    def __init__(
        self,
        slice_axis: int = 2,
        d: int = 56,
        s: int = 12,
        m: int = 4,
        final_kernel: int = 9,
        in_channels: int = 1,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        if slice_axis not in (0, 1, 2):
            raise ValueError(f"slice_axis must be 0, 1 or 2 (X, Y, Z), got {slice_axis}")
        self.slice_axis = slice_axis
        self.net = _fsrcnn(2, in_channels, out_channels, d, s, m, final_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.slice_axis + 2
        moved = x.movedim(axis, 1)  # (B, S, C, *plane)
        b, n = moved.shape[:2]
        out = self.net(moved.reshape(b * n, *moved.shape[2:]))
        return out.reshape(b, n, *out.shape[1:]).movedim(1, axis)


@MODELS.register()
class FSRCNN3d(nn.Module):
    """3-D FSRCNN, the 3-D baseline of §3.4: the 2-D layer settings with 3-D kernels.

    5³ (d) → 1³ (s) → m × 3³ (s) → 1³ (d), PReLU after each, then a same-size
    ``final_kernel``³ conv in place of the deconvolution.
    """

    def __init__(
        self,
        d: int = 56,
        s: int = 12,
        m: int = 4,
        final_kernel: int = 5,
        in_channels: int = 1,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        self.net = _fsrcnn(3, in_channels, out_channels, d, s, m, final_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _ResidualBlock(nn.Module):
    """SRResNet block: conv → norm → PReLU → conv → norm, plus the identity."""

    def __init__(self, channels: int, norm: NormName) -> None:
        super().__init__()
        self.body = nn.Sequential(
            make_conv(3, channels, channels, 3),
            make_norm(norm, channels, 3),
            nn.PReLU(channels),
            make_conv(3, channels, channels, 3),
            make_norm(norm, channels, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@MODELS.register()
class SRResNet3d(nn.Module):
    """3-D SRResNet (Ledig et al. 2017), a baseline of §4.4.2.

    ``head_kernel``³ conv + PReLU → ``blocks`` residual blocks → conv + norm, added to the head
    output (global skip) → 3³ conv + PReLU (the same-scale stand-in for the sub-pixel
    up-sampling block) → ``head_kernel``³ conv to the output.
    """

    def __init__(
        self,
        blocks: int = 16,
        channels: int = 64,
        head_kernel: int = 9,
        norm: NormName = "batch",
        in_channels: int = 1,
        out_channels: int = 1,
        bn_train_at_inference: bool = False,
    ) -> None:
        super().__init__()
        self.head = nn.Sequential(
            make_conv(3, in_channels, channels, head_kernel), nn.PReLU(channels)
        )
        self.body = nn.Sequential(
            *(_ResidualBlock(channels, norm) for _ in range(blocks)),
            make_conv(3, channels, channels, 3),
            make_norm(norm, channels, 3),
        )
        self.tail = nn.Sequential(
            make_conv(3, channels, channels, 3),
            nn.PReLU(channels),
            make_conv(3, channels, out_channels, head_kernel),
        )
        set_batch_stats_at_eval(self, bn_train_at_inference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(h + self.body(h))


@MODELS.register()
class SRDenseNet3d(nn.Module):
    """3-D SRDenseNet (Tong et al. 2017, "All" skips), a baseline of §4.4.2.

    Set as close to mDCSRN b8u4 as §4.4.2 did: ``blocks`` DenseBlocks of ``units`` units with
    ELU and growth k = 12, stem conv with 2k filters. Blocks are chained (each sees only the
    previous block's new features, Fig. 4.4b; no compressor); the stem output and all block
    outputs are concatenated into the bottleneck (8k) → norm → ELU → 3³ conv reconstruction.
    """

    def __init__(
        self,
        blocks: int = 8,
        units: int = 4,
        growth: int = 12,
        norm: NormName = "batch",
        in_channels: int = 1,
        out_channels: int = 1,
        bn_train_at_inference: bool = False,
    ) -> None:
        super().__init__()
        self.stem = make_conv(3, in_channels, 2 * growth, 3)
        self.blocks = nn.ModuleList()
        channels = 2 * growth
        for _ in range(blocks):
            block = DenseBlock(channels, units, growth, 3, norm, new_features_only=True)
            self.blocks.append(block)
            channels = block.out_channels
        combined = 2 * growth + blocks * units * growth
        self.reconstruction = BottleneckReconstruction(combined, 8 * growth, out_channels, 3, norm)
        set_batch_stats_at_eval(self, bn_train_at_inference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.stem(x)]
        for block in self.blocks:
            features.append(block(features[-1]))
        return self.reconstruction(torch.cat(features, dim=1))
