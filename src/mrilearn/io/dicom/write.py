"""Writing a :class:`~mrilearn.io.volume.Volume` as a derived MR series: one file per slice,
the source study's identifiers, new series and instance UIDs, the model in the description."""

from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import DS

from mrilearn.errors import DataError
from mrilearn.io.atomic import atomic_dir
from mrilearn.io.dicom.geometry import LPS_TO_RAS, STUDY_KEYS, Geometry
from mrilearn.io.volume import Volume

logger = logging.getLogger(__name__)


class _Quantised(NamedTuple):
    """Voxels as stored 16-bit integers and how to map them back to values."""

    pixels: np.ndarray
    slope: float
    intercept: float
    pixel_rep: int  # PixelRepresentation: 0 uint16, 1 int16


def _quantise(data: np.ndarray) -> _Quantised:
    """Stored integers, slope, intercept and PixelRepresentation (0 uint16, 1 int16).

    Whole-number data that fits 16 bits is stored as is; anything else is mapped linearly onto
    the full uint16 range, so the error is at most half a step ((max - min) / 65535 / 2).
    Slope and intercept are rounded to what the 16-character DS text can hold *before*
    quantising, so the file decodes to exactly the values quantised here.
    """
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if np.array_equal(data, np.round(data)):
        if lo >= 0 and hi <= 65535:
            return _Quantised(data.astype(np.uint16), 1.0, 0.0, 0)
        if lo >= -32768 and hi <= 32767:
            return _Quantised(data.astype(np.int16), 1.0, 0.0, 1)
    inter = float(DS(lo, auto_format=True))
    slope = float(DS((hi - inter) / 65535.0 if hi > inter else 1.0, auto_format=True))
    # rounding of slope may leave the top value a hair above 65535: clip
    stored = np.clip(np.round((data.astype(np.float64) - inter) / slope), 0, 65535)
    return _Quantised(stored.astype(np.uint16), slope, inter, 0)


def _ds(value: float) -> DS:
    return DS(float(value), auto_format=True)


def _volume_3d(folder: Path, volume: Volume) -> np.ndarray:
    """The volume's voxels as a 3-D finite array; DataError for what DICOM cannot store."""
    data = np.asarray(volume.data)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(
            f"{folder}: DICOM output needs a 3-D volume, got shape {data.shape}; write each "
            "channel as its own series or use NIfTI (.nii.gz) output"
        )
    if data.size == 0:
        raise DataError(f"{folder}: cannot write an empty volume (shape {data.shape})")
    if not np.isfinite(data).all():
        raise DataError(
            f"{folder}: volume has NaN/Inf voxels, which DICOM cannot store; replace them "
            "(numpy.nan_to_num) first"
        )
    return data


def _check_output_folder(folder: Path) -> None:
    """Replacing ``folder`` may only discard an earlier DICOM series, never other results."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise DataError(f"{folder}: exists and is not a folder; choose another output path")
    others = [p.name for p in folder.iterdir() if p.suffix.lower() != ".dcm"]
    if others:
        raise DataError(
            f"{folder}: exists and holds files other than .dcm ({', '.join(others[:5])}); "
            "refusing to replace it: choose a new or empty output folder"
        )


def _geometry_of(folder: Path, affine: np.ndarray) -> Geometry:
    """Slice geometry from a RAS+ affine; DataError if DICOM's image planes cannot hold it."""
    affine_lps = np.linalg.inv(LPS_TO_RAS) @ np.asarray(affine, dtype=np.float64)
    x_axis, y_axis = affine_lps[:3, 0], affine_lps[:3, 1]  # along columns, along rows
    dc, dr = float(np.linalg.norm(x_axis)), float(np.linalg.norm(y_axis))
    if dc == 0 or dr == 0:
        raise DataError(f"{folder}: the volume's affine is singular; cannot derive geometry")
    row_dir, col_dir = x_axis / dc, y_axis / dr
    if abs(float(row_dir @ col_dir)) > 1e-4:
        raise DataError(
            f"{folder}: the volume's first two axes are not perpendicular (sheared affine); "
            "DICOM cannot represent that: resample the volume to an orthogonal grid first"
        )
    geometry = Geometry(row_dir, col_dir, (dr, dc), affine_lps[:3, 2], affine_lps[:3, 3])
    if geometry.thickness < 1e-6:
        raise DataError(f"{folder}: the volume's slice axis lies in the image plane")
    if float(geometry.step @ geometry.normal) < 0:
        logger.info(
            "%s: slice axis runs against the DICOM normal; reading back gives the slices in "
            "reverse order (same world geometry)",
            folder,
        )
    return geometry


def _derived_series_number(src_meta: dict[str, Any]) -> int:
    """The source's series number + 1000, so the derived series sorts next to it."""
    base = src_meta.get("SeriesNumber")
    return int(base) + 1000 if isinstance(base, (int, float)) else 1000


def _study_attributes(src_meta: dict[str, Any]) -> dict[str, Any]:
    """Patient, study and frame tags: the source's, so viewers file the series with it.

    Required tags the source lacks are empty; its UIDs, when missing, are generated.
    """
    attrs: dict[str, Any] = {k: "" for k in STUDY_KEYS if k != "StudyDescription"}
    attrs.update(
        StudyInstanceUID=generate_uid(), FrameOfReferenceUID=generate_uid(), PatientID="mrilearn"
    )
    attrs.update({k: str(src_meta[k]) for k in STUDY_KEYS if src_meta.get(k) not in (None, "")})
    attrs["PositionReferenceIndicator"] = ""
    return attrs


def _series_attributes(description: str, number: int, image_comments: str | None) -> dict[str, Any]:
    """Tags of a new derived MR series; acquisition tags the MR modules require are blank."""
    now = _dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    attrs: dict[str, Any] = {
        "SOPClassUID": MRImageStorage,
        "SpecificCharacterSet": "ISO_IR 192",
        "ImageType": ["DERIVED", "SECONDARY"],
        "SeriesInstanceUID": generate_uid(),
        "Modality": "MR",
        "Manufacturer": "mrilearn",
        "SeriesDescription": description,
        "SeriesNumber": number,
        "SeriesDate": date,
        "ContentDate": date,
        "SeriesTime": time,
        "ContentTime": time,
        "DerivationDescription": "computed by mrilearn",
        "ScanningSequence": "RM",
        "SequenceVariant": "NONE",
        "ScanOptions": "",
        "MRAcquisitionType": "3D",
        "EchoTime": "",
        "RepetitionTime": "",
        "EchoTrainLength": "",
    }
    if image_comments:
        attrs["ImageComments"] = image_comments
    return attrs


def _image_attributes(geometry: Geometry, data: np.ndarray, q: _Quantised) -> dict[str, Any]:
    """Image plane and pixel tags every slice shares."""
    lo, hi = float(data.min()), float(data.max())
    dr, dc = geometry.pixel_spacing
    return {
        "ImageOrientationPatient": [_ds(v) for v in (*geometry.row_dir, *geometry.col_dir)],
        "PixelSpacing": [_ds(dr), _ds(dc)],
        "SliceThickness": _ds(geometry.thickness),
        "SpacingBetweenSlices": _ds(geometry.thickness),
        "SamplesPerPixel": 1,
        "PhotometricInterpretation": "MONOCHROME2",
        "Rows": int(data.shape[1]),
        "Columns": int(data.shape[0]),
        "BitsAllocated": 16,
        "BitsStored": 16,
        "HighBit": 15,
        "PixelRepresentation": q.pixel_rep,
        "RescaleSlope": _ds(q.slope),
        "RescaleIntercept": _ds(q.intercept),
        "RescaleType": "US",
        "WindowCenter": _ds((lo + hi) / 2),
        "WindowWidth": _ds(max(hi - lo, 1.0)),
    }


def _slice_dataset(shared: dict[str, Any], geometry: Geometry, k: int, q: _Quantised) -> Dataset:
    """Slice ``k`` as a DICOM file: the shared tags plus its own UID, position and pixels."""
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.update(shared)
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = k + 1
    ipp = geometry.origin + k * geometry.step
    ds.ImagePositionPatient = [_ds(v) for v in ipp]
    ds.SliceLocation = _ds(float(ipp @ geometry.normal))
    pixels = np.ascontiguousarray(q.pixels[:, :, k].T)
    ds.PixelData = pixels.astype("<i2" if q.pixel_rep else "<u2").tobytes()
    return ds


def write_dicom_series(
    volume: Volume,
    folder: str | os.PathLike[str],
    template: Volume | None = None,
    series_description: str = "mrilearn derived",
    *,
    series_number: int | None = None,
    image_comments: str | None = None,
) -> Path:
    """Write ``volume`` as a derived MR series (one file per slice) into ``folder``, atomically.

    Study, patient and frame-of-reference identifiers come from ``template.meta`` (a volume
    read with :func:`read_dicom_series`), or from ``volume.meta`` when no template is given
    and the volume came from DICOM; missing ones are generated. The series and every SOP
    instance get new UIDs. Geometry comes from the volume's affine (RAS+ -> LPS); voxels are
    stored as 16-bit integers with RescaleSlope/Intercept chosen so float data survives to
    within half a quantisation step. ``image_comments`` (e.g. the model that made the series)
    goes into every slice's ImageComments. An existing ``folder`` is replaced only if it holds
    nothing but ``.dcm`` files.
    """
    folder = Path(folder)
    data = _volume_3d(folder, volume)
    _check_output_folder(folder)
    geometry = _geometry_of(folder, volume.affine)
    src_meta: dict[str, Any] = dict(template.meta if template is not None else volume.meta)
    quantised = _quantise(data)
    if series_number is None:
        series_number = _derived_series_number(src_meta)
    shared = {
        **_study_attributes(src_meta),
        **_series_attributes(series_description, series_number, image_comments),
        **_image_attributes(geometry, data, quantised),
    }
    with atomic_dir(folder) as tmp:
        for k in range(data.shape[2]):
            ds = _slice_dataset(shared, geometry, k, quantised)
            ds.save_as(tmp / f"IM{k + 1:05d}.dcm", enforce_file_format=True)
    logger.info(
        "wrote DICOM series %s (%d slices) to %s",
        shared["SeriesInstanceUID"],
        data.shape[2],
        folder,
    )
    return folder
