"""NIfTI-1/2 reading and writing with the checks a training pipeline needs up front.

Bad inputs (missing, truncated, not NIfTI, NaN voxels, wrong dimensionality) fail here with a
:class:`~mrilearn.errors.DataError` naming the file, instead of as a cryptic shape error
deep inside a model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from mrilearn.errors import DataError
from mrilearn.io.atomic import atomic_write
from mrilearn.io.volume import Volume

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_path(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` ends with ``.nii`` or ``.nii.gz`` (case-insensitive)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _check_shape(shape: tuple[int, ...], path: Path) -> None:
    if len(shape) == 3 or len(shape) == 4:
        return
    raise DataError(
        f"{path}: image has shape {shape} ({len(shape)}-D); expected a 3-D volume (X, Y, Z) "
        "or a 4-D volume with channels last (X, Y, Z, C). Convert it to a 3-D/4-D NIfTI "
        "(e.g. stack 2-D slices into a volume, or split a 5-D file)."
    )


def read_nifti(
    path: str | os.PathLike[str],
    *,
    dtype: Any = None,
    label: bool = False,
    allow_nonfinite: bool = False,
) -> Volume:
    """Read a ``.nii``/``.nii.gz`` file into a :class:`Volume` (checked, header kept).

    Images come back as float32 with NIfTI scaling applied (``dtype`` picks another float
    type). With ``label=True`` (or an integer ``dtype``) the voxels are read as integers
    without a float round trip: the stored integer type is kept, float-stored label maps are
    checked to hold whole numbers and converted (to ``dtype`` or int32).

    Raises DataError for a missing, truncated or non-NIfTI file, a shape that is not
    (X, Y, Z) or (X, Y, Z, C), and for NaN/Inf voxels unless ``allow_nonfinite``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path (and the working directory)")
    if path.is_dir():
        raise DataError(
            f"{path}: is a folder, not a NIfTI file; pass a .nii/.nii.gz file "
            "(or read a DICOM folder with read_dicom_series)"
        )
    want_int = label or (dtype is not None and np.issubdtype(np.dtype(dtype), np.integer))
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for bad files
        raise DataError(
            f"{path}: cannot be read as NIfTI ({type(exc).__name__}: {exc}); check that the "
            "file is a complete .nii/.nii.gz image (re-export or re-download it)"
        ) from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise DataError(
            f"{path}: is a {type(img).__name__}, not a NIfTI image; convert it to .nii.gz "
            "(e.g. with nibabel or mri_convert)"
        )
    _check_shape(tuple(img.shape), path)
    try:
        if want_int:
            data = _read_integer(img, path, dtype)
        else:
            fdtype = np.float32 if dtype is None else np.dtype(dtype)
            data = img.get_fdata(dtype=fdtype)
    except DataError:
        raise
    except Exception as exc:  # truncated gzip, short file, zlib errors, ...
        raise DataError(
            f"{path}: voxel data cannot be read ({type(exc).__name__}: {exc}); the file is "
            "probably truncated or corrupt: re-export or re-download it"
        ) from exc
    if not allow_nonfinite and np.issubdtype(data.dtype, np.floating):
        bad = ~np.isfinite(data)
        if bad.any():
            n_nan = int(np.isnan(data).sum())
            raise DataError(
                f"{path}: {int(bad.sum())} of {data.size} voxels are not finite "
                f"({n_nan} NaN, {int(bad.sum()) - n_nan} Inf); replace them "
                "(e.g. fslmaths in -nan out, or numpy.nan_to_num) or pass allow_nonfinite=True"
            )
    header = img.header.copy()
    meta = {"source": str(path), "format": "nifti"}
    logger.debug("read %s: shape %s, dtype %s", path, data.shape, data.dtype)
    return Volume(
        data=data, affine=np.asarray(img.affine, dtype=np.float64), header=header, meta=meta
    )


def _read_integer(img: nib.Nifti1Image, path: Path, dtype: Any) -> np.ndarray:
    """Integer voxels, without converting integer storage to float and back."""
    slope, inter = img.header.get_slope_inter()
    scaled = not (slope in (None, 1.0) and inter in (None, 0.0))
    raw = np.asarray(img.dataobj) if scaled else np.asarray(img.dataobj.get_unscaled())
    if np.issubdtype(raw.dtype, np.integer) or raw.dtype == np.bool_:
        data = raw
    else:
        finite = np.isfinite(raw)
        rounded = np.round(raw)
        if not finite.all() or np.abs(raw - rounded).max(initial=0.0) > 1e-3:
            raise DataError(
                f"{path}: read as a label map but holds non-integer or non-finite values; "
                "labels must be whole numbers (check that this is the label file, not the image)"
            )
        data = rounded.astype(np.int32 if dtype is None else dtype)
        return data
    if dtype is not None:
        target = np.dtype(dtype)
        info = np.iinfo(target)
        if data.size and (data.min() < info.min or data.max() > info.max):
            raise DataError(
                f"{path}: label values span [{data.min()}, {data.max()}], which does not fit "
                f"{target}; read with a wider dtype"
            )
        data = data.astype(target)
    return data


def _storage_dtype(data: np.ndarray, dtype: Any) -> np.dtype:
    """On-disk dtype: as asked, else the array's (float64 -> float32, bool -> uint8, int64 ->
    int32 when the values fit)."""
    if dtype is not None:
        return np.dtype(dtype)
    dt = data.dtype
    if dt == np.bool_:
        return np.dtype(np.uint8)
    if dt == np.float64 or dt == np.float16:
        return np.dtype(np.float32)
    if dt in (np.int64, np.uint64, np.uint32):
        info = np.iinfo(np.int32)
        if data.size == 0 or (data.min() >= info.min and data.max() <= info.max):
            return np.dtype(np.int32)
    return dt


def write_nifti(volume: Volume, path: str | os.PathLike[str], dtype: Any = None) -> Path:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``) atomically; return the path.

    The volume's header is carried over (descriptions, units, intent, ...) but the data
    type is set from ``dtype`` (or the array, see :func:`_storage_dtype`), stale scaling
    (``scl_slope``/``scl_inter``) and display range are reset so values are not rescaled
    wrongly, and the affine is stored in both sform and qform (code 1, scanner, unless the
    header had other non-zero codes).
    """
    path = Path(path)
    if not is_nifti_path(path):
        raise DataError(f"{path}: NIfTI output must end with .nii or .nii.gz; rename the output")
    data = np.asarray(volume.data)
    _check_shape(tuple(data.shape), path)
    affine = np.asarray(volume.affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise DataError(f"{path}: cannot write a volume whose affine is not a finite 4x4 matrix")
    src = volume.header
    if isinstance(src, nib.Nifti2Header):
        header = nib.Nifti2Header.from_header(src)
        img_class: type = nib.Nifti2Image
    elif isinstance(src, nib.Nifti1Header):
        header = nib.Nifti1Header.from_header(src)
        img_class = nib.Nifti1Image
    else:
        header = nib.Nifti1Header()
        img_class = nib.Nifti1Image
    sform_code = int(header["sform_code"]) or 1
    qform_code = int(header["qform_code"]) or 1
    store = _storage_dtype(data, dtype)
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    header.set_data_dtype(store)
    header.set_slope_inter(None, None)  # the old file's scaling does not apply to new data
    header["cal_min"] = 0
    header["cal_max"] = 0
    space_unit, time_unit = header.get_xyzt_units()
    if space_unit == "unknown":
        header.set_xyzt_units("mm", time_unit if time_unit != "unknown" else None)
    img = img_class(data, affine, header=header)
    img.set_sform(affine, code=sform_code)
    img.set_qform(affine, code=qform_code)
    img.header.set_slope_inter(None, None)
    atomic_write(path, lambda tmp: nib.save(img, str(tmp)))
    logger.debug("wrote %s: shape %s as %s", path, data.shape, store)
    return path
