"""Slab augmentation (§7.2.2): projective deformation of image and label, padding."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def homography(angle: float, shear: float, perspective: tuple[float, float]) -> torch.Tensor:
    """3×3 matrix: rotation by ``angle`` rad, horizontal shear, projective terms (per pixel)."""
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    sh = torch.tensor([[1.0, shear, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    pr = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [*perspective, 1.0]], dtype=torch.float64)
    return pr @ sh @ rot


def warp(
    image: torch.Tensor, label: torch.Tensor, h: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply homography ``h`` (output pixel → input pixel, coordinates from the slab centre)
    to every slice of an (N, H, W) image (bilinear) and class map (nearest, stays integral)."""
    n, hh, ww = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(hh, dtype=torch.float64) - (hh - 1) / 2,
        torch.arange(ww, dtype=torch.float64) - (ww - 1) / 2,
        indexing="ij",
    )
    src = h @ torch.stack([ys.reshape(-1), xs.reshape(-1), torch.ones(hh * ww, dtype=h.dtype)])
    src = src[:2] / src[2].clamp(min=1e-3)
    # grid_sample wants (x, y) = (W, H) normalised to [-1, 1] (align_corners=True)
    grid = torch.stack([src[1] / max((ww - 1) / 2, 1), src[0] / max((hh - 1) / 2, 1)], -1)
    grid = grid.reshape(1, hh, ww, 2).float()
    out_image = F.grid_sample(image[None], grid, "bilinear", "border", align_corners=True)[0]
    out_label = F.grid_sample(label[None].float(), grid, "nearest", "border", align_corners=True)[
        0
    ].long()
    return out_image, out_label


def pad_slab(x: torch.Tensor, sizes: Sequence[int], value: float) -> torch.Tensor:
    """Pad an (N, H, W) slab at the end of each axis to ``sizes`` with ``value``."""
    pad = []
    for n, size in zip(reversed(x.shape), reversed(sizes)):
        pad += [0, max(size - n, 0)]
    return F.pad(x, pad, value=value) if any(pad) else x


def draw_index(n: int, generator: torch.Generator) -> int:
    """A uniform random integer in [0, n) from ``generator`` (the resumable sample stream)."""
    return int(torch.randint(n, (1,), generator=generator))


def draw_uniform(generator: torch.Generator) -> float:
    """A uniform random float in [0, 1) from ``generator``."""
    return float(torch.rand(1, generator=generator, dtype=torch.float64))
