"""DICOM series (one file per slice) to and from :class:`Volume`.

Geometry (DICOM PS3.3 C.7.6.2.1.1): the centre of the pixel in column ``i`` and row ``j`` of
a slice is ``IPP + i * dc * r + j * dr * c`` in patient LPS mm, where ``r = IOP[:3]`` (the
direction along a row, increasing column), ``c = IOP[3:]`` (down a column, increasing row)
and ``PixelSpacing = [dr, dc]`` (row spacing, column spacing). The array returned here has
axes (X = columns, Y = rows, Z = slices sorted along the normal ``r x c``), like nibabel, so

    affine_LPS = [[r * dc, c * dr, step, IPP_0], [0, 0, 0, 1]]

with ``step = (IPP_last - IPP_0) / (n - 1)``, and the NIfTI (RAS+) affine is that with its
first two rows negated. Writing inverts exactly this mapping.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import DS, IS, DSdecimal, DSfloat

from mrilearn.errors import DataError
from mrilearn.io.atomic import atomic_dir
from mrilearn.io.volume import Volume

logger = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# Tags a derived series inherits from its template (same patient, study and frame).
_STUDY_KEYS = (
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
_META_KEYS = (
    *_STUDY_KEYS,
    "SeriesInstanceUID",
    "SeriesDescription",
    "SeriesNumber",
    "Modality",
    "Manufacturer",
)


def _plain(value: Any) -> Any:
    """A DICOM element value as a JSON-friendly Python value."""
    if isinstance(value, IS):
        return int(value)
    if isinstance(value, (DSfloat, DSdecimal)):
        return float(value)
    if isinstance(value, bool) or type(value) in (int, float):
        return value
    if isinstance(value, MultiValue):
        return [_plain(v) for v in value]
    return str(value)


# --------------------------------------------------------------------------------- reading


def _load_datasets(folder: Path) -> list[tuple[Path, Dataset]]:
    """All image datasets in ``folder`` (not recursive); non-DICOM files are skipped."""
    found: list[tuple[Path, Dataset]] = []
    for f in sorted(folder.iterdir()):
        if not f.is_file():
            continue
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=False, force=False)
        except InvalidDicomError:
            logger.debug("skipping non-DICOM file %s", f)
            continue
        except Exception as exc:
            raise DataError(
                f"{f}: looks like DICOM but cannot be parsed ({type(exc).__name__}: {exc}); "
                "the file is probably truncated: re-export the series or remove the file"
            ) from exc
        if "PixelData" not in ds:
            logger.debug("skipping DICOM without pixel data %s (e.g. DICOMDIR)", f)
            continue
        found.append((f, ds))
    return found


def _series_label(uid: str, items: list[tuple[Path, Dataset]]) -> str:
    ds = items[0][1]
    desc = str(ds.get("SeriesDescription", "") or "")
    num = ds.get("SeriesNumber", "")
    return f"{uid} (#{num} '{desc}', {len(items)} files)"


def _floats(ds: Dataset, keyword: str, n: int, path: Path) -> np.ndarray:
    value = ds.get(keyword)
    if value is None:
        raise DataError(
            f"{path}: missing {keyword}, needed to place the slice in space; this series "
            "cannot be turned into a 3-D volume (is it a localizer, report or secondary capture?)"
        )
    arr = np.asarray([float(v) for v in (value if n > 1 else [value])], dtype=np.float64)
    if arr.shape != (n,):
        raise DataError(f"{path}: {keyword} has {arr.size} values, expected {n}")
    return arr


def read_dicom_series(
    folder: str | os.PathLike[str],
    series_uid: str | None = None,
    *,
    spacing_rtol: float = 1e-3,
) -> Volume:
    """Read one DICOM series from ``folder`` into a float32 :class:`Volume` (RAS+ affine).

    Files that are not DICOM (DICOMDIR, .txt, ...) are skipped. With several series in the
    folder, ``series_uid`` selects one. Slices are sorted along the slice normal; the series
    must share orientation, matrix and pixel spacing and have uniform slice spacing (within
    ``spacing_rtol`` relative), else DataError says what differs. RescaleSlope/Intercept are
    applied. ``meta`` keeps study/patient/frame-of-reference/series identifiers (see
    ``write_dicom_series``).
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: DICOM folder not found; check the path")
    if not folder.is_dir():
        raise DataError(f"{folder}: expected a folder holding one DICOM file per slice")
    items = _load_datasets(folder)
    if not items:
        subdirs = [p.name for p in folder.iterdir() if p.is_dir()]
        hint = (
            f"; it has sub-folders ({', '.join(sorted(subdirs)[:5])}): pass the one holding the "
            "series"
            if subdirs
            else "; pass the folder that holds the series' .dcm files"
        )
        raise DataError(f"{folder}: no DICOM image files found{hint}")

    groups: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for f, ds in items:
        groups[str(ds.get("SeriesInstanceUID", ""))].append((f, ds))
    if series_uid is not None:
        if series_uid not in groups:
            listed = "; ".join(_series_label(u, g) for u, g in groups.items())
            raise DataError(f"{folder}: series {series_uid} not found; the folder holds: {listed}")
        chosen = series_uid
    elif len(groups) > 1:
        listed = "; ".join(_series_label(u, g) for u, g in groups.items())
        raise DataError(
            f"{folder}: holds {len(groups)} DICOM series: {listed}. Pass series_uid=... to "
            "choose one, or put each series in its own folder"
        )
    else:
        chosen = next(iter(groups))
    series = groups[chosen]
    return _assemble(folder, chosen, series, spacing_rtol)


def _assemble(
    folder: Path, uid: str, series: list[tuple[Path, Dataset]], spacing_rtol: float
) -> Volume:
    f0, ds0 = series[0]
    iop0 = _floats(ds0, "ImageOrientationPatient", 6, f0)
    spacing0 = _floats(ds0, "PixelSpacing", 2, f0)
    shape0 = (int(ds0.Rows), int(ds0.Columns))
    positions = []
    for f, ds in series:
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise DataError(
                f"{f}: multi-frame (enhanced) DICOM is not supported; convert the series to "
                "NIfTI (e.g. with dcm2niix) and read that instead"
            )
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise DataError(f"{f}: colour DICOM images are not supported (SamplesPerPixel > 1)")
        iop = _floats(ds, "ImageOrientationPatient", 6, f)
        if not np.allclose(iop, iop0, atol=1e-4):
            raise DataError(
                f"{folder}: slices have different orientations ({f0.name}: {iop0.tolist()}, "
                f"{f.name}: {iop.tolist()}); the series mixes stacks (e.g. a localizer): split "
                "it into separate folders"
            )
        if (int(ds.Rows), int(ds.Columns)) != shape0:
            raise DataError(
                f"{folder}: slices have different matrix sizes ({f0.name}: {shape0}, "
                f"{f.name}: {(int(ds.Rows), int(ds.Columns))}); split the series"
            )
        sp = _floats(ds, "PixelSpacing", 2, f)
        if not np.allclose(sp, spacing0, rtol=1e-4, atol=1e-6):
            raise DataError(
                f"{folder}: slices have different PixelSpacing ({f0.name}: {spacing0.tolist()}, "
                f"{f.name}: {sp.tolist()}); split the series"
            )
        positions.append(_floats(ds, "ImagePositionPatient", 3, f))

    row_dir, col_dir = iop0[:3], iop0[3:]
    normal = np.cross(row_dir, col_dir)
    pos = np.asarray(positions)
    dist = pos @ normal
    order = np.argsort(dist, kind="stable")
    pos, dist = pos[order], dist[order]
    series = [series[i] for i in order]
    n = len(series)

    if n > 1:
        gaps = np.diff(dist)
        same = np.abs(gaps) < 1e-6 * max(1.0, float(np.abs(dist).max()))
        if same.any():
            dup = [series[i][0].name for i in np.nonzero(same)[0][:3]]
            raise DataError(
                f"{folder}: several slices share one position (e.g. {', '.join(dup)}); the "
                "series holds several echoes/time points or duplicates: split them into "
                "separate folders"
            )
        expected = float(np.median(gaps))
        bad = np.nonzero(np.abs(gaps - expected) > spacing_rtol * abs(expected))[0]
        if bad.size:
            detail = ", ".join(
                f"{gaps[i]:.4g} mm between {series[i][0].name} and {series[i + 1][0].name}"
                for i in bad[:5]
            )
            raise DataError(
                f"{folder}: non-uniform slice spacing: expected {expected:.4g} mm but found "
                f"{detail}; a slice is probably missing or duplicated: check the files "
                "(or raise spacing_rtol if the difference is only rounding)"
            )
        step = (pos[-1] - pos[0]) / (n - 1)
        off_line = np.linalg.norm(pos - (pos[0] + np.arange(n)[:, None] * step), axis=1)
        if off_line.max() > spacing_rtol * np.linalg.norm(step) + 1e-4:
            i = int(off_line.argmax())
            raise DataError(
                f"{folder}: slice positions do not lie on a line with uniform spacing "
                f"({series[i][0].name} is {off_line[i]:.4g} mm off); the series mixes stacks: "
                "split it"
            )
    else:
        thick = ds0.get("SpacingBetweenSlices") or ds0.get("SliceThickness")
        if thick is None or float(thick) <= 0:
            logger.warning("%s: single slice without SliceThickness; assuming 1 mm", folder)
            thick = 1.0
        step = normal * float(thick)

    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_dir * spacing0[1]
    affine_lps[:3, 1] = col_dir * spacing0[0]
    affine_lps[:3, 2] = step
    affine_lps[:3, 3] = pos[0]
    affine = LPS_TO_RAS @ affine_lps

    data = np.empty((shape0[1], shape0[0], n), dtype=np.float32)
    for k, (f, ds) in enumerate(series):
        try:
            pixels = ds.pixel_array
        except Exception as exc:
            ts = ds.file_meta.get("TransferSyntaxUID", "unknown")
            raise DataError(
                f"{f}: pixel data cannot be decoded ({type(exc).__name__}: {exc}; transfer "
                f"syntax {ts}); decompress the series (e.g. gdcmconv --raw) or install the "
                "pydicom decoder plugins"
            ) from exc
        if pixels.shape != shape0:
            raise DataError(f"{f}: pixel array has shape {pixels.shape}, expected {shape0}")
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        inter = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        data[:, :, k] = pixels.T.astype(np.float32) * np.float32(slope) + np.float32(inter)

    meta: dict[str, Any] = {"source": str(folder), "format": "dicom"}
    for key in _META_KEYS:
        if key in ds0 and ds0.get(key) not in (None, ""):
            meta[key] = _plain(ds0.get(key))
    meta["SeriesInstanceUID"] = uid
    meta["files"] = [str(f) for f, _ in series]
    logger.debug("read DICOM series %s from %s: shape %s", uid, folder, data.shape)
    return Volume(data=data, affine=affine, header=None, meta=meta)


# --------------------------------------------------------------------------------- writing


def _quantise(data: np.ndarray) -> tuple[np.ndarray, float, float, int]:
    """Stored integers, slope, intercept and PixelRepresentation (0 uint16, 1 int16).

    Whole-number data that fits 16 bits is stored as is; anything else is mapped linearly onto
    the full uint16 range, so the error is at most half a step ((max - min) / 65535 / 2).
    Slope and intercept are rounded to what the 16-character DS text can hold *before*
    quantising, so the file decodes to exactly the values quantised here.
    """
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if np.array_equal(data, np.round(data)):
        if lo >= 0 and hi <= 65535:
            return data.astype(np.uint16), 1.0, 0.0, 0
        if lo >= -32768 and hi <= 32767:
            return data.astype(np.int16), 1.0, 0.0, 1
    inter = float(DS(lo, auto_format=True))
    slope = float(DS((hi - inter) / 65535.0 if hi > inter else 1.0, auto_format=True))
    # rounding of slope may leave the top value a hair above 65535: clip
    stored = np.clip(np.round((data.astype(np.float64) - inter) / slope), 0, 65535)
    return stored.astype(np.uint16), slope, inter, 0


def _ds(value: float) -> DS:
    return DS(float(value), auto_format=True)


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
    if folder.exists():
        if not folder.is_dir():
            raise DataError(f"{folder}: exists and is not a folder; choose another output path")
        others = [p.name for p in folder.iterdir() if p.suffix.lower() != ".dcm"]
        if others:
            raise DataError(
                f"{folder}: exists and holds files other than .dcm ({', '.join(others[:5])}); "
                "refusing to replace it: choose a new or empty output folder"
            )

    affine_lps = np.linalg.inv(LPS_TO_RAS) @ np.asarray(volume.affine, dtype=np.float64)
    col_vec, row_vec = affine_lps[:3, 0], affine_lps[:3, 1]  # along X (columns), Y (rows)
    dc, dr = float(np.linalg.norm(col_vec)), float(np.linalg.norm(row_vec))
    if dc == 0 or dr == 0:
        raise DataError(f"{folder}: the volume's affine is singular; cannot derive geometry")
    row_dir, col_dir = col_vec / dc, row_vec / dr
    if abs(float(row_dir @ col_dir)) > 1e-4:
        raise DataError(
            f"{folder}: the volume's first two axes are not perpendicular (sheared affine); "
            "DICOM cannot represent that: resample the volume to an orthogonal grid first"
        )
    step = affine_lps[:3, 2]
    normal = np.cross(row_dir, col_dir)
    thickness = abs(float(step @ normal))
    if thickness < 1e-6:
        raise DataError(f"{folder}: the volume's slice axis lies in the image plane")
    if float(step @ normal) < 0:
        logger.info(
            "%s: slice axis runs against the DICOM normal; reading back gives the slices in "
            "reverse order (same world geometry)",
            folder,
        )

    src_meta: dict[str, Any] = dict(template.meta if template is not None else volume.meta)
    stored, slope, inter, pixel_rep = _quantise(data)
    study = {k: src_meta[k] for k in _STUDY_KEYS if src_meta.get(k) not in (None, "")}
    study.setdefault("StudyInstanceUID", generate_uid())
    study.setdefault("FrameOfReferenceUID", generate_uid())
    study.setdefault("PatientID", "mrilearn")
    study.setdefault("PatientName", "")
    series_uid = generate_uid()
    if series_number is None:
        base = src_meta.get("SeriesNumber")
        series_number = int(base) + 1000 if isinstance(base, (int, float)) else 1000
    now = _dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    iop = [_ds(v) for v in (*row_dir, *col_dir)]
    lo, hi = float(data.min()), float(data.max())

    with atomic_dir(folder) as tmp:
        for k in range(data.shape[2]):
            ipp = affine_lps[:3, 3] + k * step
            sop_uid = generate_uid()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            ds = Dataset()
            ds.file_meta = meta
            ds.preamble = b"\0" * 128
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = sop_uid
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.ImageType = ["DERIVED", "SECONDARY"]
            for key in ("StudyDate", "StudyTime", "StudyID", "AccessionNumber"):
                setattr(ds, key, str(study.get(key, "")))
            ds.ReferringPhysicianName = str(study.get("ReferringPhysicianName", ""))
            ds.PatientName = str(study["PatientName"])
            ds.PatientID = str(study["PatientID"])
            ds.PatientBirthDate = str(study.get("PatientBirthDate", ""))
            ds.PatientSex = str(study.get("PatientSex", ""))
            if "StudyDescription" in study:
                ds.StudyDescription = str(study["StudyDescription"])
            ds.StudyInstanceUID = study["StudyInstanceUID"]
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = study["FrameOfReferenceUID"]
            ds.PositionReferenceIndicator = ""
            ds.Modality = "MR"
            ds.Manufacturer = "mrilearn"
            ds.SeriesDescription = series_description
            if image_comments:
                ds.ImageComments = image_comments
            ds.SeriesNumber = series_number
            ds.InstanceNumber = k + 1
            ds.SeriesDate = ds.ContentDate = date
            ds.SeriesTime = ds.ContentTime = time
            ds.DerivationDescription = "computed by mrilearn"
            ds.ScanningSequence = "RM"
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.EchoTime = ""
            ds.RepetitionTime = ""
            ds.EchoTrainLength = ""
            ds.ImagePositionPatient = [_ds(v) for v in ipp]
            ds.ImageOrientationPatient = iop
            ds.PixelSpacing = [_ds(dr), _ds(dc)]
            ds.SliceThickness = _ds(thickness)
            ds.SpacingBetweenSlices = _ds(thickness)
            ds.SliceLocation = _ds(float(ipp @ normal))
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = int(data.shape[1]), int(data.shape[0])
            ds.BitsAllocated = 16
            ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = pixel_rep
            ds.RescaleSlope = _ds(slope)
            ds.RescaleIntercept = _ds(inter)
            ds.RescaleType = "US"
            ds.WindowCenter = _ds((lo + hi) / 2)
            ds.WindowWidth = _ds(max(hi - lo, 1.0))
            pixels = np.ascontiguousarray(stored[:, :, k].T)
            ds.PixelData = pixels.astype("<i2" if pixel_rep else "<u2").tobytes()
            ds.save_as(tmp / f"IM{k + 1:05d}.dcm", enforce_file_format=True)
    logger.info("wrote DICOM series %s (%d slices) to %s", series_uid, data.shape[2], folder)
    return folder
