"""MALIBU networks (§6.3.2, Fig. 6.1): g maps the 2L-channel U0 to U in one forward pass.

Both reuse existing implementations: :class:`MDCN` is :class:`~mrilearn.models.dcsrn.MDCSRN` built
in 2-D with per-unit dilation; :class:`MalibuDenseUnet` is the ALAMO
:class:`~mrilearn.models.unet.MultiSliceUnet` with dense blocks and one output "class" per input
channel. Shape of both: (B, 2L, H, W) → (B, 2L, H, W).
"""

from __future__ import annotations

import torch

from mrilearn.models.blocks import NormName
from mrilearn.models.dcsrn import MDCSRN
from mrilearn.models.unet import MultiSliceUnet
from mrilearn.registry import MODELS


@MODELS.register()
class MDCN(MDCSRN):
    """2-D mDCN (mDCSRN design in 2-D): ``blocks`` dense blocks of ``units`` 3×3 conv units, ELU.

    ``rank`` L gives 2L input and output channels. ``dilation`` lists the dilation of each unit
    of a block, the same for every block (Fig. 6.1): ``[1, 1, 1, 1]`` no dilation, ``[1, 2, 4,
    1]`` d1-2-4-1, ``[1, 4, 8, 1]`` d1-4-8-1 (best in Table 6-2). The dissertation used 8
    blocks, 4 units, growth 128. ``residual`` adds the input (off in §6; it speeds up CPU
    training).
    """

    def __init__(
        self,
        rank: int = 8,
        blocks: int = 8,
        units: int = 4,
        growth: int = 16,
        dilation: list[int] = [1, 4, 8, 1],  # noqa: B006  (YAML default, never mutated)
        norm: NormName = "none",
        residual: bool = False,
    ) -> None:
        super().__init__(
            blocks=blocks,
            units=units,
            growth=growth,
            norm=norm,
            in_channels=2 * rank,
            out_channels=2 * rank,
            residual=residual,
            spatial_dims=2,
            dilation=dilation,
        )


@MODELS.register()
class MalibuDenseUnet(MultiSliceUnet):
    """MALIBU DenseUnet (§6.3.2, Fig. 6.1b): ``levels`` resolution levels of dense blocks
    (``units`` units, growth ``growth``), no dilation, 2L channels in and out.

    H and W must be divisible by ``size_multiple`` = 2^(levels − 1).
    """

    def __init__(
        self,
        rank: int = 8,
        growth: int = 16,
        units: int = 4,
        levels: int = 4,
        norm: NormName = "none",
    ) -> None:
        super().__init__("dense", growth, 2 * rank, 1, units, levels, norm, False, 0.0)
        self.size_multiple = 2 ** (levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2L, H, W) → (B, 2L, H, W)."""
        return super().forward(x)[:, 0]
