"""A label map as a DICOM Segmentation (DICOM-SEG, highdicom): one multi-frame instance that
references the source series, one segment per label with its name and recommended display
colour, so viewers and PACS show it as labels over the source images.

Frame ``k`` covers source slice ``k`` (the label map lies on the source grid, as
``read_dicom_series`` read it: ``Volume.meta["files"]`` in slice order). Segments are numbered
1, 2, ... in the order of the label table; a segment's SegmentLabel is the label's name, its
RecommendedDisplayCIELabValue the label's colour, its SegmentedPropertyType the SNOMED CT
concept of that name where pydicom knows one (``liver``, ``left_kidney`` -> Kidney,
``grey_matter`` -> Gray Matter), else Tissue.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from mrilearn.errors import DataError, optional_module
from mrilearn.io.atomic import atomic_write
from mrilearn.io.volume import Label, Volume

logger = logging.getLogger(__name__)

SIDES = ("left_", "right_", "left ", "right ")


def _highdicom() -> Any:
    return optional_module("highdicom", "DICOM-SEG output", "hospital")


def source_datasets(labels: Volume, where: Path) -> list[pydicom.Dataset]:
    """The headers of the source slices of ``labels`` in slice order; DataError unless the
    label map came from a DICOM series of as many slices."""
    files = labels.meta.get("files") if labels.meta.get("format") == "dicom" else None
    if not files or len(files) != labels.data.shape[2]:
        raise DataError(
            f"{where}: DICOM-SEG references the source images: the input must be a DICOM "
            "series folder (write NIfTI or a DICOM series folder for other inputs)"
        )
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def _segment_numbers(data: np.ndarray, table: Sequence[Label], where: Path) -> np.ndarray:
    """Label values -> segment numbers 1..N (uint8/uint16), frames first (Z, rows, columns)."""
    values = np.unique(data)
    unknown = sorted(set(values.tolist()) - {0, *(label.value for label in table)})
    if unknown:
        raise DataError(f"{where}: label values {unknown} are not in the model's label table")
    lut = np.zeros(
        int(max(values.max(initial=0), *(label.value for label in table))) + 1, np.uint16
    )
    for number, label in enumerate(table, start=1):
        lut[label.value] = number
    numbers = lut[data.astype(np.int64)].transpose(2, 1, 0)
    return numbers.astype(np.uint8 if len(table) < 256 else np.uint16)


def _property_type(name: str) -> Any:
    """The SNOMED CT concept pydicom knows for a label name, else Tissue."""
    from pydicom.sr.codedict import codes

    plain = name.lower()
    for side in SIDES:
        plain = plain.removeprefix(side)
    keyword = "".join(
        w.capitalize()
        for w in plain.replace("grey", "gray").replace("-", " ").replace("_", " ").split()
    )
    try:
        return getattr(codes.SCT, keyword)
    except AttributeError:
        return codes.SCT.Tissue


def _segments(table: Sequence[Label], model: str, version: str) -> list[Any]:
    hd = _highdicom()
    from pydicom.sr.codedict import codes

    algorithm = hd.AlgorithmIdentificationSequence(
        name=model[:64], family=codes.cid7162.ArtificialIntelligence, version=version[:64]
    )
    segments = []
    for number, label in enumerate(table, start=1):
        try:
            colour = hd.color.CIELabColor.from_string(label.colour)
        except ValueError:
            raise DataError(
                f"label {label.name!r}: colour {label.colour!r} is not a colour"
            ) from None
        segments.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label.name[:64],
                segmented_property_category=codes.SCT.AnatomicalStructure,
                segmented_property_type=_property_type(label.name),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
                display_color=colour,
            )
        )
    return segments


def write_dicom_seg(
    labels: Volume,
    path: str | os.PathLike[str],
    table: Sequence[Label],
    *,
    series_description: str,
    model: str,
    version: str,
    series_number: int | None = None,
) -> Path:
    """Write the label map ``labels`` (label values of ``table``, on the grid of the DICOM
    series it was computed from) as one DICOM-SEG file at ``path``, atomically; returns it.

    ``model`` and ``version`` identify the algorithm in every segment; the series gets new
    Series and SOP Instance UIDs and ``series_description``.
    """
    from pydicom.uid import generate_uid

    hd = _highdicom()
    path = Path(path)
    sources = source_datasets(labels, path)
    number = series_number or int(sources[0].get("SeriesNumber") or 0) + 2000
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=_segment_numbers(np.asarray(labels.data), table, path),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segments(table, model, version),
        series_instance_uid=generate_uid(),
        series_number=number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="mrilearn",
        manufacturer_model_name=model[:64],
        software_versions=version[:64],
        device_serial_number="none",
        series_description=series_description[:64],
    )
    atomic_write(path, lambda tmp: seg.save_as(tmp))
    logger.info("wrote DICOM-SEG %s (%d segments) to %s", seg.SeriesInstanceUID, len(table), path)
    return path
