"""What reading and writing DICOM series share: the slice geometry in patient LPS mm and its
RAS+ affine (see :mod:`mrilearn.io.dicom`), the identifying tags kept in ``Volume.meta``, and
message helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import IS, DSdecimal, DSfloat

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# Tags a derived series inherits from its template (same patient, study and frame).
STUDY_KEYS = (
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "StudyDescription",
    "AccessionNumber",
    "ReferringPhysicianName",
)
# Tags copied into Volume.meta: the study's, plus what identifies the source series.
META_KEYS = (
    *STUDY_KEYS,
    "SeriesInstanceUID",
    "SeriesDescription",
    "SeriesNumber",
    "Modality",
    "Manufacturer",
)

Item = tuple[Path, Dataset]  # one DICOM file and its dataset


def plain_value(value: Any) -> Any:
    """A DICOM element value as a JSON-friendly Python value."""
    if isinstance(value, IS):
        return int(value)
    if isinstance(value, (DSfloat, DSdecimal)):
        return float(value)
    if isinstance(value, bool) or type(value) in (int, float):
        return value
    if isinstance(value, MultiValue):
        return [plain_value(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class Geometry:
    """Where the slices lie in patient LPS mm, in DICOM terms (see the module docstring)."""

    row_dir: np.ndarray  # IOP[:3], along a row: the volume's X axis
    col_dir: np.ndarray  # IOP[3:], down a column: the volume's Y axis
    pixel_spacing: tuple[float, float]  # PixelSpacing (dr, dc): between rows, between columns
    step: np.ndarray  # from one slice's IPP to the next: the volume's Z axis
    origin: np.ndarray  # IPP of the first slice

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    @property
    def thickness(self) -> float:
        """Distance between neighbouring slice planes."""
        return abs(float(self.step @ self.normal))

    def ras_affine(self) -> np.ndarray:
        """The volume's voxel -> RAS+ affine."""
        dr, dc = self.pixel_spacing
        lps = np.eye(4)
        lps[:3, 0] = self.row_dir * dc
        lps[:3, 1] = self.col_dir * dr
        lps[:3, 2] = self.step
        lps[:3, 3] = self.origin
        return LPS_TO_RAS @ lps
