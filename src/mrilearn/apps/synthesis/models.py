"""SPADE label-to-image synthesis in 2-D (Park et al. 2019; dissertation §8.3.1).

``SpadeGenerator`` turns a class map into an image. It starts from the label map average-pooled
to the coarsest level (the pix2pixHD-style input of SPADE without its image encoder, so no
style image is needed) concatenated with a noise vector ``z`` broadcast over the plane, and
goes up through SPADE residual blocks to the label's own size. Every normalisation is
parameter-free and then modulated per pixel by γ, β that a small conv net computes from the
one-hot label map resized (nearest) to the layer's resolution, so the label geometry is
re-injected at every scale and uniform label regions are not washed out by the normalisation.
The label-side convolutions pad by replication: a label map that is constant over the whole
plane gives exactly constant γ, β, i.e. a plain affine normalisation.

``SpadeDiscriminator`` is the multi-scale PatchGAN of pix2pixHD/SPADE conditioned on the
label (image and one-hot label concatenated), returning every layer's features so the
generator can be trained with feature matching as well as the adversarial loss.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from mrilearn.registry import MODELS

SpadeNorm = Literal["instance", "batch"]


def one_hot(label: torch.Tensor, classes: int) -> torch.Tensor:
    """(B, 1, H, W) class indices → (B, classes, H, W) float one-hot."""
    if label.dim() != 4 or label.shape[1] != 1:
        raise ValueError(f"label must be (B, 1, H, W) class indices, got {tuple(label.shape)}")
    return F.one_hot(label[:, 0].long(), classes).permute(0, 3, 1, 2).float()


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: ``norm(x) · (1 + γ(label)) + β(label)``.

    ``norm`` has no affine parameters; γ and β are (B, C, H, W) maps from a shared
    3×3 conv + ReLU on the one-hot label (resized to x's size, nearest) and one 3×3 conv each.
    Shape: x (B, C, H, W), label one-hot (B, K, h, w) → (B, C, H, W).
    """

    def __init__(self, channels: int, label_channels: int, hidden: int = 16,
                 norm: SpadeNorm = "instance") -> None:  # fmt: skip
        super().__init__()
        self.norm = (
            nn.InstanceNorm2d(channels, affine=False)
            if norm == "instance"
            else nn.BatchNorm2d(channels, affine=False)
        )
        conv = dict(kernel_size=3, padding=1, padding_mode="replicate")
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden, **conv), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, **conv)
        self.beta = nn.Conv2d(hidden, channels, **conv)

    def modulation(self, label: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        """γ, β (B, C, *size) for a one-hot label map."""
        h = self.shared(F.interpolate(label, size=size, mode="nearest"))
        return self.gamma(h), self.beta(h)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.modulation(label, tuple(x.shape[-2:]))
        return self.norm(x) * (1 + gamma) + beta


class SpadeResBlock(nn.Module):
    """SPADE → LeakyReLU → 3×3 conv, twice, plus a shortcut (SPADE → 1×1 conv when the
    channel count changes). Shape: (B, cin, H, W) → (B, cout, H, W)."""

    def __init__(self, cin: int, cout: int, label_channels: int, hidden: int,
                 norm: SpadeNorm) -> None:  # fmt: skip
        super().__init__()
        mid = min(cin, cout)
        self.norm0 = SPADE(cin, label_channels, hidden, norm)
        self.conv0 = nn.Conv2d(cin, mid, 3, padding=1)
        self.norm1 = SPADE(mid, label_channels, hidden, norm)
        self.conv1 = nn.Conv2d(mid, cout, 3, padding=1)
        self.shortcut_norm = SPADE(cin, label_channels, hidden, norm) if cin != cout else None
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else None

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(self.shortcut_norm(x, label))
        h = self.conv0(F.leaky_relu(self.norm0(x, label), 0.2))
        h = self.conv1(F.leaky_relu(self.norm1(h, label), 0.2))
        return skip + h


@MODELS.register()
class SpadeGenerator(nn.Module):
    """Label map → one-channel image of the same size (any H, W).

    ``channels``: feature channels per level, coarsest first; the coarsest level has
    ⌈H / 2^(levels−1)⌉ × ⌈W / 2^(levels−1)⌉ pixels and each further level doubles it
    (the last one is resized to exactly H × W). ``z_dim``: length of the noise vector
    (0: deterministic); ``forward(label, z=None)`` draws z ~ N(0, I) when not given, so
    several images per label map come from several z. ``hidden``: channels of the SPADE
    label nets. The output is linear (images are z-scored, not bounded).
    Shape: (B, 1, H, W) class indices → (B, 1, H, W).
    """

    def __init__(
        self,
        classes: int = 11,
        channels: list[int] = [32, 32, 16, 16],  # noqa: B006  (YAML default, never mutated)
        hidden: int = 16,
        z_dim: int = 8,
        norm: SpadeNorm = "instance",
    ) -> None:
        super().__init__()
        if classes < 2 or not channels or min(channels) < 1 or z_dim < 0:
            raise ValueError(f"SpadeGenerator: bad classes {classes}, channels {channels}")
        self.classes, self.z_dim = classes, z_dim
        self.stem = nn.Conv2d(classes + z_dim, channels[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            SpadeResBlock(cin, cout, classes, hidden, norm)
            for cin, cout in zip([channels[0], *channels[:-1]], channels)
        )
        self.head = nn.Conv2d(channels[-1], 1, 3, padding=1)

    def level_sizes(self, size: tuple[int, int]) -> list[tuple[int, int]]:
        """Spatial size of each level, coarsest first, ending at ``size``."""
        sizes = [tuple(size)]
        for _ in self.blocks[1:]:
            sizes.insert(0, tuple(math.ceil(s / 2) for s in sizes[0]))
        return sizes

    def forward(self, label: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        onehot = one_hot(label, self.classes)
        sizes = self.level_sizes(tuple(label.shape[-2:]))
        x = F.adaptive_avg_pool2d(onehot, sizes[0])
        if self.z_dim:
            if z is None:
                z = torch.randn(label.shape[0], self.z_dim, device=label.device)
            x = torch.cat([x, z[:, :, None, None].expand(-1, -1, *sizes[0])], 1)
        x = self.stem(x)
        for i, (block, size) in enumerate(zip(self.blocks, sizes)):
            if i:
                x = F.interpolate(x, size=size, mode="nearest")
            x = block(x, onehot)
        return self.head(F.leaky_relu(x, 0.2))


class PatchDiscriminator(nn.Module):
    """PatchGAN: 4×4 convs, stride 2 for each entry of ``channels`` but the last, then a
    4×4 conv to one logit per patch. ``forward`` returns every layer's output (the last is
    the patch logits)."""

    def __init__(self, in_channels: int, channels: list[int], spectral: bool) -> None:
        super().__init__()
        wrap = spectral_norm if spectral else (lambda m: m)
        layers, cin = [], in_channels
        for i, c in enumerate(channels):
            stride = 2 if i < len(channels) - 1 else 1
            norm = [nn.InstanceNorm2d(c)] if i else []
            layers.append(
                nn.Sequential(wrap(nn.Conv2d(cin, c, 4, stride, 2)), *norm, nn.LeakyReLU(0.2))
            )
            cin = c
        layers.append(nn.Conv2d(cin, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


@MODELS.register()
class SpadeDiscriminator(nn.Module):
    """Multi-scale PatchGAN conditioned on the label: ``scales`` discriminators, each on the
    (image, one-hot label) pair average-pooled by 2 once more than the previous.

    ``forward(image, label)`` returns, per scale, the list of layer features (last: patch
    logits). Shape: image (B, 1, H, W), label (B, 1, H, W) class indices.
    """

    def __init__(
        self,
        classes: int = 11,
        channels: list[int] = [16, 32, 64],  # noqa: B006  (YAML default, never mutated)
        scales: int = 2,
        spectral: bool = True,
    ) -> None:
        super().__init__()
        if scales < 1 or not channels:
            raise ValueError(f"SpadeDiscriminator: bad scales {scales} / channels {channels}")
        self.classes = classes
        self.nets = nn.ModuleList(
            PatchDiscriminator(1 + classes, channels, spectral) for _ in range(scales)
        )

    def forward(self, image: torch.Tensor, label: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([image, one_hot(label, self.classes)], 1)
        outs = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(net(x))
        return outs
