"""3-D densely connected super-resolution networks: DCSRN (§3.2.2) and mDCSRN (§4.3.2).

Both map a low-resolution volume to the high-resolution one of the same matrix size
(k-space truncation keeps the size, so there is no up-sampling layer) and predict the HR
image directly, without a global residual connection, as in the dissertation.
"""

from __future__ import annotations

import re
from typing import Literal

import torch
from torch import nn

from mrilearn.models.attention import SelfAttention3d
from mrilearn.models.blocks import (
    BottleneckReconstruction,
    DenseBlock,
    NormName,
    make_conv,
    set_batch_stats_at_eval,
)
from mrilearn.registry import MODELS


@MODELS.register()
class DCSRN(nn.Module):
    """3-D Densely Connected Super-Resolution Network (§3.2.2, Fig. 3.1).

    3×3×3 stem conv with 2k filters → one DenseBlock of ``units`` units (norm → ELU →
    3×3×3 conv with k filters, each fed the concatenation of the stem output and all earlier
    unit outputs) → 3×3×3 conv over the block output (stem + all units) to the SR image.
    The best growth rate in §3 is k = 24. ``bn_train_at_inference`` normalises with batch
    statistics in eval mode too (see ``blocks._BatchStatsAtEval``).
    Shape: (B, in_channels, X, Y, Z) → (B, out_channels, X, Y, Z).
    """

    def __init__(
        self,
        growth: int = 24,
        units: int = 4,
        norm: NormName = "batch",
        in_channels: int = 1,
        out_channels: int = 1,
        dropout: float = 0.0,
        bn_train_at_inference: bool = False,
    ) -> None:
        super().__init__()
        self.stem = make_conv(3, in_channels, 2 * growth, 3)
        self.block = DenseBlock(2 * growth, units, growth, 3, norm, dropout=dropout)
        self.reconstruction = make_conv(3, self.block.out_channels, out_channels, 3)
        set_batch_stats_at_eval(self, bn_train_at_inference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruction(self.block(self.stem(x)))


_VARIANT = re.compile(r"b(\d+)u(\d+)(-r)?")


def mdcsrn_variant(name: str) -> dict[str, int | str]:
    """MDCSRN keyword arguments for a §4.4 variant name: ``"b4u4-r"`` →
    ``{"blocks": 4, "units": 4, "reconstruction": "bottleneck"}`` (no "-r": ``"direct"``)."""
    match = _VARIANT.fullmatch(name.strip().lower())
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(f"not an mDCSRN variant name: {name!r} (expected e.g. b8u4 or b4u4-r)")
    return {
        "blocks": int(match[1]),
        "units": int(match[2]),
        "reconstruction": "bottleneck" if match[3] else "direct",
    }


@MODELS.register()
class MDCSRN(nn.Module):
    """3-D multi-level Densely Connected Super-Resolution Network, mDCSRN bXuY (§4.3.2).

    3×3×3 stem conv with 2k filters; then ``blocks`` DenseBlocks of ``units`` units. Before
    each block a plain 1×1×1 "compressor" conv maps the concatenation of the stem output and
    all earlier block outputs to a fixed 2k channels; inside the block the compressor output
    feeds every unit and is part of the block output (2k + units·k channels). The
    reconstruction is ``"direct"``: one 1×1×1 conv over the concatenation of all block
    outputs (direct feature combination), or ``"bottleneck"`` (the "-r" variants): 1×1×1 conv
    to 8k → norm → ELU → 3×3×3 conv (Fig. 4.5b). ``bottleneck`` adds a 1×1×1 conv of 4k before
    each 3×3×3 unit conv (DenseNet-BC). ``bn_train_at_inference`` normalises with batch
    statistics in eval mode too, as §4 did at test time (see ``blocks._BatchStatsAtEval``).
    Variant names map to arguments with :func:`mdcsrn_variant`. ``residual`` (not in the
    dissertation, off by default) adds the input to the output so the network learns only
    the missing detail: it converges in far fewer iterations, which matters on a CPU.
    ``attention`` inserts a 3-D self-attention block (§8.3.2) after the middle dense block
    (``"mid"``) or on the combined block outputs before the reconstruction (``"last"``).
    ``spatial_dims`` 2 builds the same design on (B, C, X, Y) maps (MALIBU's mDCN, §6.3.2);
    ``dilation`` gives the dilation of each unit of a block, the same in every block (§6's
    d1-4-8-1 is ``[1, 4, 8, 1]``).
    Shape: (B, in_channels, X, Y, Z) → (B, out_channels, X, Y, Z).
    """

    def __init__(
        self,
        blocks: int = 4,
        units: int = 4,
        growth: int = 12,
        bottleneck: bool = False,
        reconstruction: Literal["direct", "bottleneck"] = "direct",
        norm: NormName = "batch",
        dropout: float = 0.0,
        in_channels: int = 1,
        out_channels: int = 1,
        bn_train_at_inference: bool = False,
        residual: bool = False,
        attention: Literal["none", "mid", "last"] = "none",
        spatial_dims: int = 3,
        dilation: list[int] | None = None,
    ) -> None:
        super().__init__()
        if residual and in_channels != out_channels:
            raise ValueError("residual needs in_channels == out_channels")
        if attention != "none" and spatial_dims != 3:
            raise ValueError("attention needs spatial_dims 3")
        self.residual = residual
        width = 2 * growth
        dims = spatial_dims
        self.stem = make_conv(dims, in_channels, width, 3)
        self.compressors = nn.ModuleList()
        self.blocks = nn.ModuleList()
        channels = width  # the stem output and all block outputs so far
        for _ in range(blocks):
            self.compressors.append(make_conv(dims, channels, width, 1))
            block = DenseBlock(
                width, units, growth, dims, norm, bottleneck=bottleneck,
                dilation=dilation or 1, dropout=dropout,
            )  # fmt: skip
            self.blocks.append(block)
            channels += block.out_channels
        combined = channels - width
        # index of the block whose output is attended; len(blocks) means the combined output
        self.attention_at = {"none": -1, "mid": (blocks - 1) // 2, "last": blocks}[attention]
        if attention != "none":
            at = self.attention_at
            self.attention = SelfAttention3d(
                combined if at == blocks else self.blocks[at].out_channels
            )
        if reconstruction == "direct":
            self.reconstruction: nn.Module = make_conv(dims, combined, out_channels, 1)
        elif reconstruction == "bottleneck":
            self.reconstruction = BottleneckReconstruction(
                combined, 8 * growth, out_channels, dims, norm
            )
        else:
            raise ValueError(
                f"reconstruction must be 'direct' or 'bottleneck', got {reconstruction!r}"
            )
        set_batch_stats_at_eval(self, bn_train_at_inference)
        if residual:  # start as the identity: training only adds the missing detail
            convs = (nn.Conv2d, nn.Conv3d)
            last = [m for m in self.reconstruction.modules() if isinstance(m, convs)][-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.stem(x)]
        for i, (compressor, block) in enumerate(zip(self.compressors, self.blocks, strict=True)):
            out = block(compressor(torch.cat(features, dim=1)))
            features.append(self.attention(out) if i == self.attention_at else out)
        combined = torch.cat(features[1:], dim=1)
        if self.attention_at == len(self.blocks):
            combined = self.attention(combined)
        out = self.reconstruction(combined)
        return out + x if self.residual else out
