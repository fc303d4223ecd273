"""One entry point for reading/writing volumes whatever the format, plus grid checks."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from mrilearn.errors import DataError
from mrilearn.io.nifti import is_nifti_path, read_nifti, write_nifti
from mrilearn.io.volume import Volume

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = "NIfTI files (.nii, .nii.gz) or a folder holding one DICOM series"

# File suffixes that are clearly not a DICOM output folder.
_OTHER_IMAGE_SUFFIXES = {
    ".mgz", ".mgh", ".mha", ".mhd", ".nrrd", ".nhdr", ".img", ".hdr", ".dcm", ".ima",
    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy", ".npz", ".h5", ".hdf5", ".mat", ".gz",
}  # fmt: skip


def read_volume(
    path: str | os.PathLike[str],
    *,
    label: bool = False,
    allow_nonfinite: bool = False,
    series_uid: str | None = None,
) -> Volume:
    """Read a NIfTI file or a DICOM series folder, chosen by what ``path`` is.

    ``label=True`` returns integer voxels (NIfTI: without float conversion; DICOM: checked
    to be whole numbers and converted to int32). ``series_uid`` chooses the series of a
    DICOM folder that holds several.
    """
    from mrilearn.io.dicom import read_dicom_series  # pydicom: only for DICOM

    path = Path(path)
    if series_uid is not None and not path.is_dir():
        raise DataError(f"{path}: --series-uid chooses a series of a DICOM folder, not a file")
    if path.is_dir():
        vol = read_dicom_series(path, series_uid)
        if label:
            rounded = np.round(vol.data)
            if np.abs(vol.data - rounded).max(initial=0.0) > 1e-3:
                raise DataError(
                    f"{path}: read as a label map but holds non-integer values; "
                    "check that this is the label series"
                )
            vol.data = rounded.astype(np.int32)
        return vol
    if is_nifti_path(path):
        return read_nifti(path, label=label, allow_nonfinite=allow_nonfinite)
    if not path.exists():
        raise DataError(f"{path}: not found; check the path. Accepted: {ACCEPTED_FORMATS}")
    if path.suffix.lower() in (".dcm", ".ima"):
        raise DataError(
            f"{path}: is a single DICOM file; pass the folder that holds the whole series"
        )
    raise DataError(
        f"{path}: unsupported format '{''.join(path.suffixes) or path.name}'. Accepted: "
        f"{ACCEPTED_FORMATS}; convert it (e.g. mri_convert or nibabel to .nii.gz)"
    )


def write_volume(volume: Volume, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``volume`` as NIfTI when ``path`` ends with .nii/.nii.gz, else as a DICOM series
    folder at ``path``; keyword arguments go to the chosen writer."""
    from mrilearn.io.dicom import write_dicom_series  # pydicom: only for DICOM

    path = Path(path)
    if is_nifti_path(path):
        return write_nifti(volume, path, **kwargs)
    if path.suffix.lower() in _OTHER_IMAGE_SUFFIXES:
        raise DataError(
            f"{path}: cannot write '{path.suffix}'. Outputs are NIfTI (.nii, .nii.gz) or a "
            "folder path (no suffix) for a DICOM series; rename the output"
        )
    return write_dicom_series(volume, path, **kwargs)


def _where(vol: Volume) -> str:
    src = vol.meta.get("source") if isinstance(vol.meta, dict) else None
    return f" ({src})" if src else ""


def check_pair(
    image: Volume,
    target: Volume,
    what: str = "image/target",
    atol: float = 1e-3,
    hint: str | None = None,
) -> None:
    """Raise DataError unless ``image`` and ``target`` lie on the same voxel grid.

    Spatial shapes (first three axes; channels may differ) must match and the affines must
    agree within ``atol`` (mm). Use it before pairing an image with its label or reference;
    ``hint`` replaces the default advice (resample the second onto the first's grid).
    """
    parts = what.split("/", 1)
    first, second = (parts[0], parts[1]) if len(parts) == 2 else ("image", "target")
    s1, s2 = tuple(image.data.shape[:3]), tuple(target.data.shape[:3])
    a1, a2 = np.asarray(image.affine), np.asarray(target.affine)
    problems = []
    if s1 != s2:
        problems.append(f"shapes differ: {first} {s1} vs {second} {s2}")
    if a1.shape != (4, 4) or a2.shape != (4, 4) or not np.allclose(a1, a2, atol=atol, rtol=0):
        diff = float(np.abs(a1 - a2).max()) if a1.shape == a2.shape else float("nan")
        fmt = {"float_kind": lambda x: f"{x:.4g}"}
        problems.append(
            f"affines differ (max {diff:.3g} > {atol}): {first} "
            f"{np.array2string(a1, formatter=fmt, separator=',').replace(chr(10), '')} vs "
            f"{second} {np.array2string(a2, formatter=fmt, separator=',').replace(chr(10), '')}"
        )
    if problems:
        raise DataError(
            f"{what}: {first}{_where(image)} and {second}{_where(target)} are not on the same "
            f"voxel grid: {'; '.join(problems)}. "
            + (hint or f"Resample {second} onto {first}'s grid (nearest-neighbour for label "
                       "maps) or fix the pairing")
        )  # fmt: skip
