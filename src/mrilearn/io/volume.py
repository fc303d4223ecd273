"""A 3-D image with its geometry: what every reader returns and every writer takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Volume:
    """Voxel array plus the voxel→world (RAS+, mm) affine of its grid.

    ``data`` is (X, Y, Z) or (X, Y, Z, C); ``header`` keeps the reader's header
    (e.g. a ``nibabel.Nifti1Header``) so writers can carry it over; ``meta`` holds
    source details such as DICOM tags of the first slice.
    """

    data: np.ndarray
    affine: np.ndarray
    header: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the three array axes."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    def with_data(self, data: np.ndarray) -> Volume:
        """Same grid, new voxels (e.g. a prediction written back in the input's geometry)."""
        if data.shape[:3] != self.data.shape[:3]:
            raise ValueError(f"new data {data.shape} does not fit the grid {self.data.shape[:3]}")
        return Volume(data, self.affine.copy(), self.header, dict(self.meta))


@dataclass(frozen=True)
class Label:
    """One value of a label map: what it names and how it is shown (a colour name or
    ``#rrggbb``), e.g. in a DICOM Segmentation."""

    name: str
    value: int
    colour: str


def spacing_matches(
    spacing: Sequence[float], reference: Sequence[float], rtol: float = 0.1
) -> bool:
    """Whether every axis of ``spacing`` is within ``rtol`` (relative) of ``reference``'s."""
    return len(spacing) == len(reference) and all(
        abs(s - r) <= rtol * r for s, r in zip(spacing, reference)
    )


def fmt_spacing(spacing: Sequence[float]) -> str:
    """``0.9 × 0.9 × 1.2``: a voxel size as people write it (mm)."""
    return " × ".join(f"{s:.3g}" for s in spacing)
