"""A segmentation of a DICOM series goes out as DICOM-SEG: highdicom reads it back as the same
label map as the NIfTI output, with the label table's names and colours, referencing the
source series; NIfTI and the labelled MR series stay available."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from conftest import cli, cli_error, write_mr_series

from mrilearn.io import read_nifti, read_volume
from mrilearn.runs import load_run

hd = pytest.importorskip("highdicom")
pytestmark = pytest.mark.usefixtures("single_thread")


def rgb(colour: str) -> tuple[int, int, int]:
    from PIL import ImageColor

    return ImageColor.getrgb(colour)[:3]


def test_dicom_seg_round_trip_equals_the_nifti_prediction(tiny_seg_run, tmp_path):
    sources = write_mr_series(tmp_path / "series")
    for out in ("labels.nii.gz", "labels.dcm", "labelled_series"):
        assert (
            cli("infer", "--run", tiny_seg_run, "-i", tmp_path / "series", "-o", tmp_path / out)
            == 0
        )
    expected = read_nifti(tmp_path / "labels.nii.gz", label=True).data  # (X, Y, Z) label values
    assert len(np.unique(expected)) > 2, "the tiny model should predict several labels"

    seg = hd.seg.segread(tmp_path / "labels.dcm")
    source = [pydicom.dcmread(p, stop_before_pixels=True) for p in sources]
    numbers = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[s.SOPInstanceUID for s in source], combine_segments=True
    )  # (slice, row, column) segment numbers; the series' files are in slice order
    table = load_run(tiny_seg_run).label_table()
    values = np.array([0, *(label.value for label in table)])[numbers].transpose(2, 1, 0)
    np.testing.assert_array_equal(values, expected)

    described = [seg.get_segment_description(n) for n in seg.segment_numbers]
    assert [d.segment_label for d in described] == [label.name for label in table]
    for d, label in zip(described, table):
        shown = hd.color.CIELabColor.from_dicom_value(d.RecommendedDisplayCIELabValue).to_rgb()
        assert np.abs(np.subtract(shown, rgb(label.colour))).max() <= 1, label
    assert [d.segmented_property_type.meaning for d in described[:2]] == ["Liver", "Spleen"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source[0].SeriesInstanceUID
    assert seg.StudyInstanceUID == source[0].StudyInstanceUID
    assert seg.SeriesInstanceUID != source[0].SeriesInstanceUID
    assert seg.SeriesDescription.startswith("mrilearn ")
    labelled = read_volume(tmp_path / "labelled_series", label=True)
    np.testing.assert_array_equal(labelled.data, expected)


def test_dicom_seg_needs_a_dicom_input_and_a_segmentation_model(tiny_seg_run, tmp_path, capsys):
    write_mr_series(tmp_path / "series")
    assert (
        cli("infer", "--run", tiny_seg_run, "-i", tmp_path / "series", "-o", tmp_path / "s.nii.gz")
        == 0
    )
    line = cli_error(capsys, ["infer", "--run", tiny_seg_run, "-i", tmp_path / "s.nii.gz",
                              "-o", tmp_path / "s.dcm"])  # fmt: skip
    assert "pass a DICOM series folder" in line and not (tmp_path / "s.dcm").exists()
