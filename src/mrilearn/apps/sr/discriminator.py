"""3-D discriminators for adversarial super-resolution (§4.3.2 Fig. 4.3, §5.2.1 Fig. 5.1).

``Discriminator3d`` follows SRGAN's discriminator in 3-D: a 3×3×3 conv + LeakyReLU stem, then
strided blocks (3×3×3 conv stride 2 → norm → LeakyReLU → 3×3×3 conv → norm → LeakyReLU, the
channel count growing per block) and a dense head. WGAN-GP (§4.3) needs a normalisation that
does not couple the samples of a batch, so ``norm="layer"`` replaces BatchNorm there.
The dense head acts on globally averaged features so that any patch size works (40³ in §4,
64×80×80 in §5, tiny patches in tests). The DRAGAN feature discriminator (§5.2.1) reads D's
features after its 2nd strided block.
"""

from __future__ import annotations

import torch
from torch import nn

from mrilearn.models.blocks import NormName, make_norm
from mrilearn.registry import MODELS


def _conv_norm_act(cin: int, cout: int, stride: int, norm: NormName) -> list[nn.Module]:
    return [
        nn.Conv3d(cin, cout, 3, stride=stride, padding=1),
        make_norm(norm, cout, 3),
        nn.LeakyReLU(0.2),
    ]


def strided_blocks(in_channels: int, channels: list[int], norm: NormName) -> nn.ModuleList:
    """One block per entry of ``channels``: strided conv then a same-size conv.
    Shape: block i maps (B, C_{i-1}, S) → (B, C_i, ⌈S / 2⌉)."""
    blocks, cin = nn.ModuleList(), in_channels
    for c in channels:
        blocks.append(
            nn.Sequential(*_conv_norm_act(cin, c, 2, norm), *_conv_norm_act(c, c, 1, norm))
        )
        cin = c
    return blocks


class DenseHead(nn.Module):
    """Global average → dense(``width``) → LeakyReLU → dense(1). Shape: (B, C, *S) → (B,)."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(channels, width), nn.LeakyReLU(0.2), nn.Linear(width, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(2).mean(-1)).squeeze(1)


@MODELS.register()
class Discriminator3d(nn.Module):
    """SRGAN-style 3-D discriminator returning logits and the features for F.

    ``forward(x)`` returns ``(logits, features)``: logits (B,) (a real/fake logit for the vanilla
    GAN, the critic value for WGAN-GP) and the feature map after strided block
    ``feature_block`` (1-based; the 2nd in DRAGAN), (B, channels[feature_block-1], S / 2^k).
    Shape: (B, in_channels, X, Y, Z) → ((B,), (B, C_k, X/2^k, Y/2^k, Z/2^k)).
    """

    def __init__(
        self,
        channels: list[int] = [64, 128, 256, 512],  # noqa: B006  (YAML default, never mutated)
        dense: int = 1024,
        norm: NormName = "layer",
        in_channels: int = 1,
        feature_block: int = 2,
    ) -> None:
        super().__init__()
        if not 1 <= feature_block <= len(channels):
            raise ValueError(f"feature_block {feature_block} not in 1..{len(channels)}")
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, channels[0], 3, padding=1), nn.LeakyReLU(0.2)
        )
        self.blocks = strided_blocks(channels[0], channels, norm)
        self.head = DenseHead(channels[-1], dense)
        self.feature_block = feature_block
        self.feature_channels = channels[feature_block - 1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, features = self.stem(x), x
        for i, block in enumerate(self.blocks, start=1):
            h = block(h)
            if i == self.feature_block:
                features = h
        return self.head(h), features


@MODELS.register()
class FeatureDiscriminator(nn.Module):
    """DRAGAN's F (§5.2.1): strided blocks + dense head on D's features → domain logit.

    Shares D's layer layout (Fig. 5.1b). Shape: (B, in_channels, *S) → (B,).
    """

    def __init__(
        self,
        in_channels: int = 128,
        channels: list[int] = [256, 512],  # noqa: B006  (YAML default, never mutated)
        dense: int = 1024,
        norm: NormName = "layer",
    ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*strided_blocks(in_channels, channels, norm))
        self.head = DenseHead(channels[-1] if channels else in_channels, dense)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(features))
