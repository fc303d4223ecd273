"""Reading one DICOM series into a :class:`~mrilearn.io.volume.Volume`: choose the series,
account for every slice (pixel data, duplicates, gaps), check the shared grid, stack."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from mrilearn.errors import DataError, listed
from mrilearn.io.dicom.geometry import META_KEYS, Geometry, Item, plain_value
from mrilearn.io.volume import Volume

logger = logging.getLogger(__name__)


class _SliceGrid(NamedTuple):
    """What every slice of a series must share to stack into one volume."""

    orientation: np.ndarray  # ImageOrientationPatient, 6 values
    pixel_spacing: np.ndarray  # PixelSpacing (dr, dc)
    shape: tuple[int, int]  # (Rows, Columns)


def _load_dicom_files(folder: Path) -> list[Item]:
    """Every DICOM file in ``folder`` (not recursive); files that are not DICOM are skipped."""
    found: list[Item] = []
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
        found.append((f, ds))
    return found


def _is_image(ds: Dataset) -> bool:
    """Whether ``ds`` is meant as an image: it has pixel data or an image SOP class.

    This tells a slice that lost its pixels (an incomplete export, to be reported) from DICOM
    objects that never have any (DICOMDIR, reports, presentation states), which are skipped.
    """
    if "PixelData" in ds:
        return True
    sop = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
    return sop is not None and "Image Storage" in UID(str(sop)).name


def _series_key(ds: Dataset) -> str:
    return str(ds.get("SeriesInstanceUID", ""))


def _image_series(files: list[Item]) -> dict[str, list[Item]]:
    """The image files grouped by SeriesInstanceUID."""
    groups: dict[str, list[Item]] = defaultdict(list)
    for f, ds in files:
        if _is_image(ds):
            groups[_series_key(ds)].append((f, ds))
    return groups


def _series_files(files: list[Item], uid: str) -> list[Item]:
    """The files of series ``uid``: its images and any other file that names the series.

    A non-image file that names the series is kept so that it is reported, not dropped.
    """
    chosen: list[Item] = []
    for f, ds in files:
        if _series_key(ds) == uid and (_is_image(ds) or "SeriesInstanceUID" in ds):
            chosen.append((f, ds))
        elif not _is_image(ds):
            logger.debug("skipping DICOM file without an image %s (e.g. DICOMDIR)", f)
    return chosen


def _series_label(uid: str, items: list[Item]) -> str:
    """A series as users recognise it: UID, number, description and file count."""
    ds = items[0][1]
    desc = str(ds.get("SeriesDescription", "") or "")
    num = ds.get("SeriesNumber", "")
    return f"{uid} (#{num} '{desc}', {len(items)} files)"


def _choose_series(folder: Path, groups: dict[str, list[Item]], series_uid: str | None) -> str:
    """The UID of the series to read; with several and no choice, DataError lists them."""
    listed = "; ".join(_series_label(u, g) for u, g in groups.items())
    if series_uid is not None:
        if series_uid not in groups:
            raise DataError(f"{folder}: series {series_uid} not found; the folder holds: {listed}")
        return series_uid
    if len(groups) > 1:
        raise DataError(
            f"{folder}: holds {len(groups)} DICOM series: {listed}. Choose one: pass "
            "--series-uid UID (mrilearn infer) or series_uid=... (read_dicom_series), or put "
            "each series in its own folder"
        )
    return next(iter(groups))


def _no_images_error(folder: Path) -> DataError:
    """The error for a folder without DICOM images, pointing at sub-folders if there are any."""
    subdirs = [p.name for p in folder.iterdir() if p.is_dir()]
    hint = (
        f"; it has sub-folders ({', '.join(sorted(subdirs)[:5])}): pass the one holding the series"
        if subdirs
        else "; pass the folder that holds the series' .dcm files"
    )
    return DataError(f"{folder}: no DICOM image files found{hint}")


def read_dicom_series(
    folder: str | os.PathLike[str],
    series_uid: str | None = None,
    *,
    spacing_rtol: float = 1e-3,
) -> Volume:
    """Read one DICOM series from ``folder`` into a float32 :class:`Volume` (RAS+ affine).

    Files that are not DICOM images (DICOMDIR, .txt, reports, ...) are skipped. With several
    series in the folder, ``series_uid`` selects one. Every file of that series must be a
    slice of one stack: a file without pixel data, two slices at one position or a gap in
    the positions is a DataError naming the files, so no slice is silently lost. Slices are
    sorted along the slice normal; the series must share orientation, matrix and pixel
    spacing and have uniform slice spacing (within ``spacing_rtol`` relative), else DataError
    says what differs. RescaleSlope/Intercept are applied. ``meta`` keeps
    study/patient/frame-of-reference/series identifiers (see ``write_dicom_series``).
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: DICOM folder not found; check the path")
    if not folder.is_dir():
        raise DataError(f"{folder}: expected a folder holding one DICOM file per slice")
    files = _load_dicom_files(folder)
    groups = _image_series(files)
    if not groups:
        raise _no_images_error(folder)
    uid = _choose_series(folder, groups, series_uid)
    return _assemble(folder, uid, _series_files(files, uid), spacing_rtol)


def _assemble(folder: Path, uid: str, series: list[Item], spacing_rtol: float) -> Volume:
    """Check, sort and stack the files of one series (in any order) into a volume."""
    _check_pixel_data(folder, uid, series)
    first = series[0][1]  # meta identifiers come from the first file by name
    grid, positions = _grid_and_positions(folder, series)
    row_dir, col_dir = grid.orientation[:3], grid.orientation[3:]
    normal = np.cross(row_dir, col_dir)
    series, positions, dist = _sort_along(normal, series, positions)
    step = _slice_step(folder, series, positions, dist, normal, spacing_rtol)
    dr, dc = (float(v) for v in grid.pixel_spacing)
    geometry = Geometry(row_dir, col_dir, (dr, dc), step, positions[0])
    data = _stack_pixels(series, grid.shape)
    meta = _series_meta(folder, uid, first, series)
    logger.debug("read DICOM series %s from %s: shape %s", uid, folder, data.shape)
    return Volume(data=data, affine=geometry.ras_affine(), header=None, meta=meta)


def _check_pixel_data(folder: Path, uid: str, series: list[Item]) -> None:
    """Every file of the series holds pixels; else DataError names those that do not."""
    missing = [f.name for f, ds in series if "PixelData" not in ds]
    if missing:
        raise DataError(
            f"{folder}: {len(missing)} of {len(series)} files of series {uid} have no pixel "
            f"data ({listed(missing)}); the export is incomplete: re-export the series, or "
            "remove those files if they are not slices of it"
        )


def _floats(ds: Dataset, keyword: str, n: int, path: Path) -> np.ndarray:
    """The ``n`` numbers of ``keyword`` in ``ds``; DataError if missing or of another length."""
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


def _slice_grid(f: Path, ds: Dataset) -> _SliceGrid:
    """The grid of one slice, after checking it is a single-frame greyscale image."""
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise DataError(
            f"{f}: multi-frame (enhanced) DICOM is not supported; convert the series to "
            "NIfTI (e.g. with dcm2niix) and read that instead"
        )
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise DataError(f"{f}: colour DICOM images are not supported (SamplesPerPixel > 1)")
    return _SliceGrid(
        orientation=_floats(ds, "ImageOrientationPatient", 6, f),
        pixel_spacing=_floats(ds, "PixelSpacing", 2, f),
        shape=(int(ds.Rows), int(ds.Columns)),
    )


def _check_same_grid(folder: Path, first: tuple[Path, _SliceGrid], other: Item) -> None:
    """``other`` lies on the grid of ``first``; else DataError names both files."""
    (f0, g0), (f, ds) = first, other
    g = _slice_grid(f, ds)
    checks = (
        (
            "orientations",
            np.allclose(g.orientation, g0.orientation, atol=1e-4),
            g0.orientation.tolist(),
            g.orientation.tolist(),
            "the series mixes stacks (e.g. a localizer): split it into separate folders",
        ),
        ("matrix sizes", g.shape == g0.shape, g0.shape, g.shape, "split the series"),
        (
            "PixelSpacing",
            np.allclose(g.pixel_spacing, g0.pixel_spacing, rtol=1e-4, atol=1e-6),
            g0.pixel_spacing.tolist(),
            g.pixel_spacing.tolist(),
            "split the series",
        ),
    )
    for what, same, value0, value, hint in checks:
        if not same:
            raise DataError(
                f"{folder}: slices have different {what} ({f0.name}: {value0}, "
                f"{f.name}: {value}); {hint}"
            )


def _grid_and_positions(folder: Path, series: list[Item]) -> tuple[_SliceGrid, np.ndarray]:
    """The grid all slices share and each slice's ImagePositionPatient (n x 3)."""
    f0, ds0 = series[0]
    grid = _slice_grid(f0, ds0)
    positions = []
    for f, ds in series:
        _check_same_grid(folder, (f0, grid), (f, ds))
        positions.append(_floats(ds, "ImagePositionPatient", 3, f))
    return grid, np.asarray(positions)


def _sort_along(
    normal: np.ndarray, series: list[Item], positions: np.ndarray
) -> tuple[list[Item], np.ndarray, np.ndarray]:
    """Files, positions and distances along ``normal``, sorted by that distance."""
    dist = positions @ normal
    order = np.argsort(dist, kind="stable")
    return [series[i] for i in order], positions[order], dist[order]


def _slice_step(
    folder: Path,
    series: list[Item],
    positions: np.ndarray,
    dist: np.ndarray,
    normal: np.ndarray,
    spacing_rtol: float,
) -> np.ndarray:
    """The vector from one slice to the next, after checking the slices form one even stack."""
    n = len(series)
    if n == 1:
        return normal * _single_slice_thickness(folder, series[0][1])
    _check_unique_positions(folder, series, dist)
    _check_uniform_spacing(folder, series, dist, spacing_rtol)
    step = (positions[-1] - positions[0]) / (n - 1)
    _check_on_a_line(folder, series, positions, step, spacing_rtol)
    return step


def _single_slice_thickness(folder: Path, ds: Dataset) -> float:
    """A lone slice has no neighbour to measure against: use its header, else 1 mm."""
    thick = ds.get("SpacingBetweenSlices") or ds.get("SliceThickness")
    if thick is None or float(thick) <= 0:
        logger.warning("%s: single slice without SliceThickness; assuming 1 mm", folder)
        return 1.0
    return float(thick)


def _check_unique_positions(folder: Path, series: list[Item], dist: np.ndarray) -> None:
    """No two slices (sorted by ``dist``) at one position; else DataError names each pair."""
    same = np.abs(np.diff(dist)) < 1e-6 * max(1.0, float(np.abs(dist).max()))
    if same.any():
        pairs = [
            f"{series[i][0].name} and {series[i + 1][0].name} (both at {dist[i]:.4g} mm)"
            for i in np.nonzero(same)[0]
        ]
        raise DataError(
            f"{folder}: slices share a position along the slice normal: {listed(pairs, 3)}; "
            "the series holds several echoes/time points or duplicated files: split them "
            "into separate folders or remove the duplicates"
        )


def _regular_spacing(gaps: np.ndarray, rtol: float) -> float:
    """The spacing the stack was acquired with, from the gaps between sorted slices.

    Missing slices only widen gaps, so when every gap is a whole multiple of the smallest and
    at most half the stack would be missing, the smallest gap is the spacing (the median of a
    short stack would be off); otherwise the median.
    """
    smallest = float(gaps.min())
    multiple = np.round(gaps / smallest)
    whole = np.all(np.abs(gaps - multiple * smallest) <= rtol * multiple * smallest)
    if whole and multiple.sum() <= 2 * gaps.size:
        return smallest
    return float(np.median(gaps))


def _describe_gap(found: float, expected: float, rtol: float, before: Path, after: Path) -> str:
    """One irregular gap for a message, saying how many slices it lacks if it is a multiple."""
    between = f"between {before.name} and {after.name}"
    multiple = round(found / expected)
    if multiple >= 2 and abs(found - multiple * expected) <= rtol * multiple * expected:
        missing = multiple - 1
        return f"a gap of {found:.4g} mm {between} ({missing} slice{'s' * (missing > 1)} missing)"
    return f"{found:.4g} mm {between}"


def _check_uniform_spacing(
    folder: Path, series: list[Item], dist: np.ndarray, spacing_rtol: float
) -> None:
    """Neighbouring slices are equally far apart; else DataError names the files around each
    irregular gap with the expected and found spacing."""
    gaps = np.diff(dist)
    expected = _regular_spacing(gaps, spacing_rtol)
    bad = np.nonzero(np.abs(gaps - expected) > spacing_rtol * abs(expected))[0]
    if bad.size:
        found = [
            _describe_gap(float(gaps[i]), expected, spacing_rtol, series[i][0], series[i + 1][0])
            for i in bad
        ]
        raise DataError(
            f"{folder}: non-uniform slice spacing: expected {expected:.4g} mm between "
            f"neighbouring slices but found {listed(found)}; a slice is probably missing or "
            "misplaced: check the files (or raise spacing_rtol if the difference is only "
            "rounding)"
        )


def _check_on_a_line(
    folder: Path, series: list[Item], positions: np.ndarray, step: np.ndarray, rtol: float
) -> None:
    """Slice positions advance by ``step`` along a line, not just along the normal."""
    n = len(series)
    expected = positions[0] + np.arange(n)[:, None] * step
    off_line = np.linalg.norm(positions - expected, axis=1)
    if off_line.max() > rtol * np.linalg.norm(step) + 1e-4:
        i = int(off_line.argmax())
        raise DataError(
            f"{folder}: slice positions do not lie on a line with uniform spacing "
            f"({series[i][0].name} is {off_line[i]:.4g} mm off); the series mixes stacks: "
            "split it"
        )


def _slice_pixels(f: Path, ds: Dataset, shape: tuple[int, int]) -> np.ndarray:
    """One slice's rescaled pixels as float32 (rows x columns)."""
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        ts = ds.file_meta.get("TransferSyntaxUID", "unknown")
        raise DataError(
            f"{f}: pixel data cannot be decoded ({type(exc).__name__}: {exc}; transfer "
            f"syntax {ts}); decompress the series (e.g. gdcmconv --raw) or install the "
            "pydicom decoder plugins"
        ) from exc
    if pixels.shape != shape:
        raise DataError(f"{f}: pixel array has shape {pixels.shape}, expected {shape}")
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    inter = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(inter)


def _stack_pixels(series: list[Item], shape: tuple[int, int]) -> np.ndarray:
    """The sorted slices as one (columns, rows, slices) float32 array."""
    data = np.empty((shape[1], shape[0], len(series)), dtype=np.float32)
    for k, (f, ds) in enumerate(series):
        data[:, :, k] = _slice_pixels(f, ds, shape).T
    return data


def _series_meta(folder: Path, uid: str, ds: Dataset, series: list[Item]) -> dict[str, Any]:
    """Volume.meta: where it came from, the identifiers in ``ds`` and the files in order."""
    meta: dict[str, Any] = {"source": str(folder), "format": "dicom"}
    for key in META_KEYS:
        if key in ds and ds.get(key) not in (None, ""):
            meta[key] = plain_value(ds.get(key))
    meta["SeriesInstanceUID"] = uid
    meta["files"] = [str(f) for f, _ in series]
    return meta
