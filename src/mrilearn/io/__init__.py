"""Reading and writing MRI volumes (NIfTI, DICOM series) with their geometry."""

from __future__ import annotations

from mrilearn.io.dicom import read_dicom_series, write_dicom_series
from mrilearn.io.embedded import load_mni152
from mrilearn.io.nifti import read_nifti, write_nifti
from mrilearn.io.readers import check_pair, read_volume, write_volume
from mrilearn.io.volume import Volume

__all__ = [
    "Volume",
    "check_pair",
    "load_mni152",
    "read_dicom_series",
    "read_nifti",
    "read_volume",
    "write_dicom_series",
    "write_nifti",
    "write_volume",
]
