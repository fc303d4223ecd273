"""Multi-slice 2-D U-nets of ALAMO (§7.2.3, Fig. 7.1): DenseUnet and PlainUnet.

Input: N contiguous slices as channels, (B, N, H, W). Output: logits of background + organs
for ALL N slices, (B, classes, N, H, W). Labelling every input slice (rather than only the
centre one) makes every labelled pixel of a training slab supervise the network (N times the
supervision of a centre-slice output for the same forward pass) and lets whole-volume
inference step slabs by N/2 and average overlapping predictions, N/2 times fewer forward
passes than one slab per slice; the dissertation describes the output as "the label map of
the slices" (§7.2.3).

Structure: 3×3 stem conv (2k filters for dense, f for plain) → ``levels`` resolution levels
(blocks, 2×2 average pooling down, 2×2 stride-2 transposed conv up, skip concatenation) →
norm → ELU → 1×1 conv head. Convolutions get He (Kaiming normal) initialisation and zero bias:
without normalisation PyTorch's default init shrinks the activations by ~⅓ per unit and the
organ outputs learned visibly slower. Units are pre-activation (norm → ELU → 3×3 conv, the
:class:`~mrilearn.models.blocks.DenseUnit`); a dense block concatenates every unit's output
(growth k), a plain block stacks them (f·2^level filters). Decoder dense blocks pass on only
their new features, as in the Tiramisu DenseUnet, so channels stay bounded.

Deep supervision (§7.2.5): in train mode the forward returns ``[main, aux_1/2, aux_1/4, ...]``
with an auxiliary head on the bottom block and each decoder level below full resolution;
in eval mode only the main output is computed and returned.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from mrilearn.models.blocks import DenseBlock, DenseUnit, make_conv, set_batch_stats_at_eval
from mrilearn.registry import MODELS

UnetNorm = Literal["none", "batch", "batch_train", "instance", "layer"]


class _PlainBlock(nn.Sequential):
    """``units`` stacked pre-activation conv units with ``width`` filters each."""

    def __init__(self, in_channels: int, units: int, width: int, norm: str, dropout: float):
        super().__init__(
            *(DenseUnit(in_channels if i == 0 else width, width, 2, norm, dropout=dropout)
              for i in range(units))
        )  # fmt: skip
        self.out_channels = width


class MultiSliceUnet(nn.Module):
    """The shared implementation; use :class:`DenseUnet` or :class:`PlainUnet`.

    Args:
        block: ``dense`` (DenseBlocks, ``width`` = growth k) or ``plain`` (``width`` = f,
            doubled per level).
        in_slices: N, the slices stacked as input channels (1, 20, 40 in Table 7-4).
        classes: background + organs (11 in §7).
        units: conv units per block.
        levels: resolution levels (4 in §7); H and W must be divisible by 2^(levels − 1).
        norm: ``none`` (best, §7.3.2), ``batch``, ``batch_train`` (BN with batch statistics
            at inference too), ``instance`` or ``layer``.
        deep_supervision: auxiliary heads, returned in train mode only.
        dropout: after every conv (kept on for Monte-Carlo dropout).
    """

    def __init__(
        self,
        block: Literal["dense", "plain"],
        width: int,
        in_slices: int = 20,
        classes: int = 11,
        units: int = 4,
        levels: int = 4,
        norm: UnetNorm = "none",
        deep_supervision: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if levels < 2 or in_slices < 1 or classes < 1:
            raise ValueError(f"need levels ≥ 2, in_slices ≥ 1, classes ≥ 1; got {levels}, "
                             f"{in_slices}, {classes}")  # fmt: skip
        base_norm = "batch" if norm == "batch_train" else norm
        self.in_slices, self.classes, self.levels = in_slices, classes, levels
        self.deep_supervision = deep_supervision

        def make_block(cin: int, level: int, decoder: bool) -> nn.Module:
            if block == "dense":
                return DenseBlock(cin, units, width, 2, base_norm, dropout=dropout,
                                  new_features_only=decoder)  # fmt: skip
            return _PlainBlock(cin, units, width * 2**level, base_norm, dropout)

        def make_head(cin: int) -> nn.Module:
            return DenseUnit(cin, classes * in_slices, 2, base_norm, kernel_size=1)

        channels = 2 * width if block == "dense" else width
        self.stem = make_conv(2, in_slices, channels, 3)
        self.down = nn.ModuleList()
        skips = []
        for level in range(levels):
            self.down.append(make_block(channels, level, decoder=False))
            channels = self.down[-1].out_channels
            skips.append(channels)
        self.pool = nn.AvgPool2d(2)
        self.up, self.dec, self.aux = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        if deep_supervision:
            self.aux.append(make_head(channels))
        self.bottom_new = units * width if block == "dense" else None
        channels = self.bottom_new or channels  # dense: only the bottom's new features go up
        for level in reversed(range(levels - 1)):
            up_channels = channels if block == "dense" else width * 2**level
            self.up.append(nn.ConvTranspose2d(channels, up_channels, 2, stride=2))
            self.dec.append(make_block(up_channels + skips[level], level, decoder=True))
            channels = self.dec[-1].out_channels
            if deep_supervision and level > 0:
                self.aux.append(make_head(channels))
        self.head = make_head(channels)
        for m in self.modules():  # He init: PyTorch's default shrinks ELU activations per layer
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        set_batch_stats_at_eval(self, norm == "batch_train")
        self.to(memory_format=torch.channels_last)  # 2-5x faster convolutions on CPU

    def _logits(self, head: nn.Module, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        return head(x).view(b, self.classes, self.in_slices, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """(B, N, H, W) → logits (B, classes, N, H, W); train mode with deep supervision:
        ``[main, aux at 1/2, 1/4, ...]`` (coarser heads last)."""
        factor = 2 ** (self.levels - 1)
        if (
            x.ndim != 4
            or x.shape[1] != self.in_slices
            or x.shape[2] % factor
            or x.shape[3] % factor
        ):
            raise ValueError(
                f"expected (B, {self.in_slices}, H, W) with H, W divisible by {factor}, "
                f"got {tuple(x.shape)}"
            )
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < self.levels - 1:
                skips.append(x)
                x = self.pool(x)
        aux_on = self.training and self.deep_supervision
        aux = [self._logits(self.aux[0], x)] if aux_on else []
        if self.bottom_new is not None:
            x = x[:, -self.bottom_new :]
        for i, (up, dec) in enumerate(zip(self.up, self.dec)):
            x = dec(torch.cat([up(x), skips[-1 - i]], dim=1))
            if aux_on and i + 1 < len(self.aux):
                aux.append(self._logits(self.aux[i + 1], x))
        main = self._logits(self.head, x)
        return [main, *reversed(aux)] if aux_on else main


@MODELS.register()
class DenseUnet(MultiSliceUnet):
    """ALAMO DenseUnet (§7.2.3): dense blocks with growth rate k (48 best of 24/32/48/64)."""

    def __init__(self, growth: int = 48, **kwargs: Any) -> None:
        super().__init__("dense", growth, **kwargs)


@MODELS.register()
class PlainUnet(MultiSliceUnet):
    """ALAMO PlainUnet (§7.2.3): plain blocks with f filters doubling per level (f = 64)."""

    def __init__(self, features: int = 64, units: int = 2, **kwargs: Any) -> None:
        super().__init__("plain", features, units=units, **kwargs)
