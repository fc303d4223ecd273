"""Working grids: every volume is brought to the closest RAS+ axis order (no rotation, so no
interpolation across oblique axes) at an isotropic spacing, and predictions go back onto the
input grid through the same index map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from mrilearn.errors import DataError


@dataclass
class Grid:
    """An input grid and the RAS-ordered working grid: ``index_map`` maps working voxel
    indices to input voxel indices (4×4, homogeneous)."""

    in_shape: tuple[int, int, int]
    in_affine: np.ndarray
    shape: tuple[int, int, int]
    affine: np.ndarray
    index_map: np.ndarray

    @classmethod
    def for_volume(cls, shape: Sequence[int], affine: np.ndarray, spacing: float | None) -> Grid:
        """The grid at ``spacing`` mm (None: the input's own spacing) covering the same field
        of view, axes permuted/flipped to the closest RAS+ order."""
        affine = np.asarray(affine, float)
        in_spacing = np.linalg.norm(affine[:3, :3], axis=0)
        if not np.all(np.isfinite(in_spacing)) or np.any(in_spacing < 1e-6):
            raise DataError(
                f"voxel spacing {in_spacing.tolist()} is missing or zero; fix the header (pixdim)"
            )
        ornt = nib.orientations.io_orientation(affine)
        m = np.eye(4)
        out_shape = [0, 0, 0]
        for i, (j, flip) in enumerate(ornt.astype(int)):
            step = (spacing or in_spacing[i]) / in_spacing[i]
            n = max(1, int(round(shape[i] / step)))
            out_shape[j] = n
            m[i, :] = 0
            m[i, j] = step * flip
            start = -0.5 + step / 2
            m[i, 3] = start if flip > 0 else shape[i] - 1 - start
        return cls(tuple(int(s) for s in shape[:3]), affine, tuple(out_shape), affine @ m, m)

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    def to_working(self, data: np.ndarray, order: int) -> np.ndarray:
        """Resample input-grid ``data`` (X, Y, Z) onto the working grid (order 0 for labels)."""
        return _resample(data, self.index_map, self.shape, order)

    def to_input(self, data: np.ndarray, order: int) -> np.ndarray:
        """Resample working-grid ``data`` (X, Y, Z) back onto the input grid."""
        return _resample(data, np.linalg.inv(self.index_map), self.in_shape, order)


def _resample(data: np.ndarray, m: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    if np.allclose(m, np.eye(4)) and tuple(shape) == data.shape:
        return data.copy()
    return ndimage.affine_transform(
        data, m[:3, :3], m[:3, 3], output_shape=tuple(shape), order=order, mode="nearest"
    )
