"""DICOM series: geometry matches the DICOM standard and survives a write/read round trip."""

from __future__ import annotations

import random
import shutil
import warnings

import numpy as np
import pydicom
import pytest

from mrilearn.errors import DataError
from mrilearn.io import (
    Volume,
    read_dicom_series,
    read_nifti,
    read_volume,
    write_dicom_series,
    write_nifti,
    write_volume,
)

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def oblique_affine() -> np.ndarray:
    """Right-handed, oblique, anisotropic voxel -> RAS+ affine."""
    a, b, c = np.deg2rad(20), np.deg2rad(-15), np.deg2rad(30)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ ry @ rx @ np.diag([0.9, 1.3, 2.5])
    aff[:3, 3] = [-40.0, 12.5, 7.0]
    return aff


@pytest.fixture
def volume() -> Volume:
    rng = np.random.default_rng(1)
    return Volume(rng.normal(300, 80, (8, 10, 6)).astype(np.float32), oblique_affine())


def quant_step(data: np.ndarray) -> float:
    return float(np.ptp(data)) / 65535


def test_round_trip_oblique_anisotropic(tmp_path, volume):
    out = write_dicom_series(volume, tmp_path / "series")
    files = sorted(out.iterdir())
    assert len(files) == 6
    back = read_dicom_series(out)
    assert back.data.shape == (8, 10, 6) and back.data.dtype == np.float32
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-4)
    np.testing.assert_allclose(back.data, volume.data, atol=quant_step(volume.data) / 2 + 1e-3)
    np.testing.assert_allclose(back.spacing, (0.9, 1.3, 2.5), atol=1e-5)


def test_world_coordinates_match_dicom_and_nifti(tmp_path, volume):
    """Voxel (i=column, j=row, k=slice) lies where the DICOM standard says, and NIfTI agrees."""
    out = write_dicom_series(volume, tmp_path / "series")
    i, j, k = 5, 7, 3
    ds = next(
        d for d in (pydicom.dcmread(f) for f in out.iterdir()) if int(d.InstanceNumber) == k + 1
    )
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    dr, dc = (float(v) for v in ds.PixelSpacing)
    lps = ipp + i * dc * iop[:3] + j * dr * iop[3:]  # DICOM PS3.3 C.7.6.2.1.1
    ras = lps * [-1, -1, 1]
    np.testing.assert_allclose(ras, (volume.affine @ [i, j, k, 1])[:3], atol=1e-4)
    # pixel (row j, column i) of that slice holds voxel (i, j, k)
    value = ds.pixel_array[j, i] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert abs(value - volume.data[i, j, k]) <= quant_step(volume.data)

    back = read_dicom_series(out)
    nifti = read_nifti(write_nifti(back, tmp_path / "from_dicom.nii.gz"))
    np.testing.assert_allclose((nifti.affine @ [i, j, k, 1])[:3], ras, atol=1e-4)
    assert nifti.data[i, j, k] == back.data[i, j, k]


def test_geometry_agrees_with_nibabel_wrapper(tmp_path, volume):
    """nibabel's DICOM wrapper (rows-first axes) gives the same in-plane geometry."""
    out = write_dicom_series(volume, tmp_path / "series")
    ds = pydicom.dcmread(sorted(out.iterdir())[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel calls its DICOM readers experimental
        from nibabel.nicom.dicomwrappers import wrapper_from_data

        wrapper = wrapper_from_data(ds)
        nib_data = wrapper.get_data()
    mine = LPS @ read_dicom_series(out).affine
    np.testing.assert_allclose(wrapper.affine[:3, 0], mine[:3, 1], atol=1e-6)  # rows axis
    np.testing.assert_allclose(wrapper.affine[:3, 1], mine[:3, 0], atol=1e-6)  # columns axis
    np.testing.assert_allclose(wrapper.affine[:3, 3], mine[:3, 3], atol=1e-6)
    np.testing.assert_allclose(nib_data.T, read_dicom_series(out).data[:, :, 0], atol=1e-3)


def test_shuffled_files_and_junk_are_handled(tmp_path, volume):
    out = write_dicom_series(volume, tmp_path / "series")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    files = list(out.iterdir())
    random.Random(3).shuffle(files)
    for n, f in enumerate(files):  # names no longer follow slice order
        shutil.copy(f, mixed / f"x{n:02d}")
    (mixed / "README.txt").write_text("not dicom")
    (mixed / "DICOMDIR").write_bytes(b"\0" * 10)
    back = read_volume(mixed)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-4)
    np.testing.assert_allclose(back.data, volume.data, atol=quant_step(volume.data))


def test_missing_slice_reports_spacing(tmp_path, volume):
    out = write_dicom_series(volume, tmp_path / "series")
    sorted(out.iterdir())[2].unlink()
    with pytest.raises(DataError, match="spacing") as err:
        read_dicom_series(out)
    assert "5 mm" in str(err.value) and str(out) in str(err.value)


def test_two_series_need_a_choice(tmp_path, volume):
    a = write_dicom_series(volume, tmp_path / "a", series_description="first")
    b = write_dicom_series(volume.with_data(volume.data * 2), tmp_path / "b")
    both = tmp_path / "both"
    both.mkdir()
    for src in (a, b):
        for f in src.iterdir():
            shutil.copy(f, both / f"{src.name}_{f.name}")
    uid_a = pydicom.dcmread(next(a.iterdir())).SeriesInstanceUID
    uid_b = pydicom.dcmread(next(b.iterdir())).SeriesInstanceUID
    with pytest.raises(DataError, match="2 DICOM series") as err:
        read_dicom_series(both)
    assert uid_a in str(err.value) and uid_b in str(err.value) and "series_uid" in str(err.value)
    chosen = read_dicom_series(both, series_uid=uid_b)
    assert chosen.meta["SeriesInstanceUID"] == uid_b
    np.testing.assert_allclose(chosen.data, volume.data * 2, atol=2 * quant_step(volume.data))
    with pytest.raises(DataError, match="not found"):
        read_dicom_series(both, series_uid="1.2.3")


def test_empty_and_non_dicom_folders(tmp_path):
    with pytest.raises(DataError, match="no DICOM"):
        read_dicom_series(tmp_path)
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(DataError, match="no DICOM"):
        read_volume(tmp_path)
    with pytest.raises(DataError, match="not found"):
        read_dicom_series(tmp_path / "missing")


def test_derived_series_keeps_study_new_series(tmp_path, volume):
    original = read_dicom_series(write_dicom_series(volume, tmp_path / "t1"))
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID"):
        assert original.meta[key]
    pred = Volume((volume.data > 300).astype(np.float32), volume.affine)
    out = write_dicom_series(pred, tmp_path / "pred", template=original, series_description="seg")
    dsets = [pydicom.dcmread(f) for f in out.iterdir()]
    assert {d.SeriesInstanceUID for d in dsets} == {dsets[0].SeriesInstanceUID}
    assert dsets[0].SeriesInstanceUID != original.meta["SeriesInstanceUID"]
    assert len({d.SOPInstanceUID for d in dsets}) == len(dsets)
    for d in dsets:
        assert d.StudyInstanceUID == original.meta["StudyInstanceUID"]
        assert d.FrameOfReferenceUID == original.meta["FrameOfReferenceUID"]
        assert d.PatientID == original.meta["PatientID"]
        assert list(d.ImageType) == ["DERIVED", "SECONDARY"]
        assert d.SeriesDescription == "seg"
        assert d.SOPClassUID == pydicom.uid.MRImageStorage
        assert d.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    back = read_dicom_series(out)
    np.testing.assert_array_equal(back.data, pred.data)  # whole numbers stored exactly
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-4)


def test_integer_and_negative_data_exact(tmp_path, volume):
    ints = np.arange(-240, 240, dtype=np.float32).reshape(8, 10, 6)
    back = read_volume(write_volume(volume.with_data(ints), tmp_path / "ints"), label=True)
    assert back.data.dtype == np.int32
    np.testing.assert_array_equal(back.data, ints)


def test_single_slice_uses_thickness(tmp_path, volume):
    one = Volume(volume.data[:, :, :1].copy(), volume.affine)
    back = read_dicom_series(write_dicom_series(one, tmp_path / "one"))
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-4)


def test_left_handed_affine_keeps_world_geometry(tmp_path, volume):
    """An LAS-style grid reads back with slices reversed but every voxel in the same place."""
    flipped = volume.affine @ np.diag([1.0, 1.0, -1.0, 1.0])
    lh = Volume(volume.data, flipped)
    back = read_dicom_series(write_dicom_series(lh, tmp_path / "lh"))
    ijk = np.array([3, 4, 1, 1.0])
    world = flipped @ ijk
    back_ijk = np.linalg.solve(back.affine, world)
    np.testing.assert_allclose(back_ijk, [3, 4, 4, 1], atol=1e-6)
    assert abs(back.data[3, 4, 4] - volume.data[3, 4, 1]) <= quant_step(volume.data)


def test_write_refuses_foreign_folder_and_bad_data(tmp_path, volume):
    busy = tmp_path / "results"
    busy.mkdir()
    (busy / "metrics.json").write_text("{}")
    with pytest.raises(DataError, match="refusing"):
        write_dicom_series(volume, busy)
    assert (busy / "metrics.json").exists()
    bad = volume.data.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        write_dicom_series(volume.with_data(bad), tmp_path / "nan")
    with pytest.raises(DataError, match="3-D"):
        write_dicom_series(Volume(np.zeros((4, 4, 4, 2)), np.eye(4)), tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_rewrite_replaces_previous_series(tmp_path, volume):
    out = write_dicom_series(volume, tmp_path / "s")
    first_uid = read_dicom_series(out).meta["SeriesInstanceUID"]
    write_dicom_series(volume, out)
    assert len(list(out.iterdir())) == 6
    assert read_dicom_series(out).meta["SeriesInstanceUID"] != first_uid


# ------------------------------------------------- every slice of the series is accounted for


def valid_and_broken_copy(tmp_path, volume) -> list:
    """Write a series, check it reads whole, and return the files (slice order) of a copy."""
    good = write_dicom_series(volume, tmp_path / "good")
    assert read_dicom_series(good).data.shape[2] == volume.data.shape[2]
    return sorted(shutil.copytree(good, tmp_path / "broken").iterdir())


def strip_pixels(path) -> None:
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)


def one_line_error(folder, match: str) -> str:
    with pytest.raises(DataError, match=match) as err:
        read_dicom_series(folder)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("index", [-1, 2], ids=["last", "middle"])
def test_slice_without_pixel_data_is_named(tmp_path, volume, index):
    """A slice that lost its pixels is an error naming it: not dropped, not a spacing error."""
    files = valid_and_broken_copy(tmp_path, volume)
    strip_pixels(files[index])
    message = one_line_error(files[0].parent, "no pixel data")
    assert files[index].name in message and "1 of 6 files" in message
    assert "spacing" not in message


def test_duplicate_slice_names_both_files(tmp_path, volume):
    files = valid_and_broken_copy(tmp_path, volume)
    copy = files[0].parent / "IM00003_copy.dcm"
    shutil.copy(files[2], copy)
    message = one_line_error(files[0].parent, "share a position")
    assert files[2].name in message and copy.name in message


@pytest.mark.parametrize("n_slices", [6, 4])
def test_missing_slice_names_the_gap(tmp_path, volume, n_slices):
    """Also in a short stack (gaps 2.5 and 5 mm), where the median spacing would be wrong."""
    short = Volume(volume.data[:, :, :n_slices].copy(), volume.affine)
    files = valid_and_broken_copy(tmp_path, short)
    mid = n_slices // 2
    files[mid].unlink()
    message = one_line_error(files[0].parent, "gap")
    assert f"{files[mid - 1].name} and {files[mid + 1].name}" in message
    assert (
        "expected 2.5 mm" in message and "gap of 5 mm" in message and "1 slice missing" in message
    )


def test_two_series_message_names_the_options(tmp_path, volume):
    files = valid_and_broken_copy(tmp_path, volume)
    other = write_dicom_series(volume, tmp_path / "other")
    for f in other.iterdir():
        shutil.copy(f, files[0].parent / f"other_{f.name}")
    message = one_line_error(files[0].parent, "2 DICOM series")
    assert "--series-uid UID" in message and "series_uid=..." in message


def test_non_image_dicom_objects_are_skipped(tmp_path, volume):
    """A DICOMDIR-like object or a report (DICOM without an image SOP class) is not a slice."""
    files = valid_and_broken_copy(tmp_path, volume)
    for name, sop_class in [
        ("DICOMDIR", pydicom.uid.MediaStorageDirectoryStorage),
        ("report.dcm", pydicom.uid.BasicTextSRStorage),
    ]:
        ds = pydicom.dcmread(files[0])
        del ds.PixelData
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.SeriesInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(files[0].parent / name)
    assert read_dicom_series(files[0].parent).data.shape[2] == 6
    ds.SeriesInstanceUID = pydicom.dcmread(files[0]).SeriesInstanceUID  # now claims a slice
    ds.save_as(files[0].parent / "report.dcm")
    assert "report.dcm" in one_line_error(files[0].parent, "no pixel data")
