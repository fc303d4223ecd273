"""Synthetic 3-D phantoms for tests and examples: smooth-edged random ellipsoids."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit


def ellipsoid_phantom(
    shape: Sequence[int] = (32, 32, 32), n: int = 12, seed: int = 0, edge: float = 0.6
) -> np.ndarray:
    """A (X, Y, Z) float32 volume in [0, 1] of ``n`` overlapping ellipsoids inside a head-like one.

    ``edge`` (voxels) softens the boundaries like partial-volume effects, so the
    phantom has both sharp structure (what super-resolution restores) and texture.
    """
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"), -1)
    vol = _ellipsoid(grid, np.zeros(3), np.full(3, 0.85), np.eye(3), edge / min(shape)) * 0.3
    for _ in range(n):
        centre = rng.uniform(-0.5, 0.5, 3)
        radii = rng.uniform(0.08, 0.35, 3)
        rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        vol += rng.uniform(-0.25, 0.5) * _ellipsoid(grid, centre, radii, rot, edge / min(shape))
    return np.clip(vol, 0, None).astype(np.float32) / max(float(vol.max()), 1e-6)


def _ellipsoid(
    grid: np.ndarray, centre: np.ndarray, radii: np.ndarray, rot: np.ndarray, soft: float
) -> np.ndarray:
    local = (grid - centre) @ rot
    r = np.sqrt(((local / radii) ** 2).sum(-1))
    return expit((1.0 - r) / max(soft, 1e-6))
