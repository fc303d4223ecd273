"""Reading and writing MRI volumes (NIfTI, DICOM series) with their geometry.

The names below are loaded on first use, so that importing one light module of the package
(``mrilearn.io.volume``, ``mrilearn.io.outputs``) does not load pydicom and nibabel.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mrilearn.io.dicom import read_dicom_series, write_dicom_series
    from mrilearn.io.embedded import load_mni152
    from mrilearn.io.nifti import read_nifti, write_nifti
    from mrilearn.io.readers import check_pair, read_volume, write_volume
    from mrilearn.io.volume import Volume

_WHERE = {
    "Volume": "mrilearn.io.volume",
    "check_pair": "mrilearn.io.readers",
    "load_mni152": "mrilearn.io.embedded",
    "read_dicom_series": "mrilearn.io.dicom",
    "read_nifti": "mrilearn.io.nifti",
    "read_volume": "mrilearn.io.readers",
    "write_dicom_series": "mrilearn.io.dicom",
    "write_nifti": "mrilearn.io.nifti",
    "write_volume": "mrilearn.io.readers",
}
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


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'mrilearn.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
