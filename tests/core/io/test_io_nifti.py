"""NIfTI reading/writing: geometry survives, bad files fail with a DataError naming them."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from mrilearn.errors import DataError
from mrilearn.io import Volume, check_pair, read_nifti, read_volume, write_nifti, write_volume


def oblique_affine() -> np.ndarray:
    a, b = np.deg2rad(25), np.deg2rad(-10)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ np.diag([0.8, 1.2, 2.5])
    aff[:3, 3] = [-30.5, 14.0, 7.25]
    return aff


@pytest.fixture
def volume() -> Volume:
    rng = np.random.default_rng(0)
    return Volume(rng.normal(100, 20, (8, 10, 6)).astype(np.float32), oblique_affine())


@pytest.mark.parametrize("name", ["img.nii", "img.nii.gz"])
def test_round_trip_keeps_affine_data_zooms(tmp_path, volume, name):
    path = write_nifti(volume, tmp_path / name)
    back = read_nifti(path)
    assert back.data.dtype == np.float32
    np.testing.assert_array_equal(back.data, volume.data)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-5)
    np.testing.assert_allclose(back.spacing, (0.8, 1.2, 2.5), atol=1e-5)
    np.testing.assert_allclose(back.header.get_zooms(), (0.8, 1.2, 2.5), atol=1e-5)
    _, scode = back.header.get_sform(coded=True)
    _, qcode = back.header.get_qform(coded=True)
    assert scode == 1 and qcode == 1
    np.testing.assert_allclose(back.header.get_qform(), volume.affine, atol=1e-4)
    assert back.meta["source"] == str(path)
    check_pair(volume, back)


def test_carried_header_scaling_is_reset(tmp_path):
    """A header from an int16 file with scl_slope must not rescale new float data."""
    raw = np.arange(8 * 10 * 6, dtype=np.int16).reshape(8, 10, 6)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(2.0, 10.0)
    nib.save(img, tmp_path / "scaled.nii.gz")
    src = read_nifti(tmp_path / "scaled.nii.gz")
    np.testing.assert_allclose(src.data, raw * 2.0 + 10.0)

    pred = src.with_data(np.full(src.shape, 0.25, dtype=np.float32))
    write_nifti(pred, tmp_path / "pred.nii.gz")
    back = read_nifti(tmp_path / "pred.nii.gz")
    assert back.header.get_data_dtype() == np.float32
    np.testing.assert_allclose(back.data, 0.25)


def test_labels_read_as_integers(tmp_path, volume):
    labels = (np.arange(480).reshape(8, 10, 6) % 5).astype(np.uint8)
    write_nifti(volume.with_data(labels), tmp_path / "seg.nii.gz")
    seg = read_nifti(tmp_path / "seg.nii.gz", label=True)
    assert seg.data.dtype == np.uint8
    np.testing.assert_array_equal(seg.data, labels)
    assert read_volume(tmp_path / "seg.nii.gz", label=True).data.dtype == np.uint8
    as64 = read_nifti(tmp_path / "seg.nii.gz", dtype=np.int64)
    assert as64.data.dtype == np.int64
    with pytest.raises(DataError, match="non-integer"):
        read_nifti(write_nifti(volume, tmp_path / "img.nii.gz"), label=True)


def test_explicit_dtype_and_channels(tmp_path, volume):
    four = volume.with_data(np.stack([volume.data, -volume.data], axis=-1))
    back = read_nifti(write_volume(four, tmp_path / "two.nii.gz"))
    assert back.shape == (8, 10, 6, 2)
    np.testing.assert_allclose(back.data, four.data)
    small = read_nifti(write_nifti(volume, tmp_path / "i16.nii.gz", dtype=np.int16))
    step = float(np.ptp(volume.data)) / 65535 * 2
    np.testing.assert_allclose(small.data, volume.data, atol=step)


def test_truncated_gzip_names_path(tmp_path, volume):
    path = write_nifti(volume, tmp_path / "cut.nii.gz")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="cut.nii.gz") as err:
        read_nifti(path)
    assert str(path) in str(err.value)


def test_truncated_uncompressed_names_path(tmp_path, volume):
    path = write_nifti(volume, tmp_path / "cut.nii")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=str(path)):
        read_nifti(path)


def test_text_file_renamed_nii(tmp_path):
    path = tmp_path / "notes.nii"
    path.write_text("this is not an image\n" * 30)
    with pytest.raises(DataError, match="notes.nii"):
        read_volume(path)
    gz = tmp_path / "notes.nii.gz"
    gz.write_bytes(gzip.compress(b"still not an image" * 40))
    with pytest.raises(DataError, match="notes.nii.gz"):
        read_nifti(gz)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_nifti(tmp_path / "nope.nii.gz")
    other = tmp_path / "img.mgz"
    other.write_bytes(b"x")
    with pytest.raises(DataError, match=r"\.nii\.gz"):
        read_volume(other)
    with pytest.raises(DataError, match="not found"):
        read_volume(tmp_path / "nope.png")


def test_nan_voxels_rejected(tmp_path, volume):
    data = volume.data.copy()
    data[1, 2, 3] = np.nan
    data[0, 0, 0] = np.inf
    nib.save(nib.Nifti1Image(data, volume.affine), tmp_path / "nan.nii.gz")
    with pytest.raises(DataError, match=r"2 of 480 voxels.*1 NaN, 1 Inf") as err:
        read_nifti(tmp_path / "nan.nii.gz")
    assert "nan.nii.gz" in str(err.value)
    assert np.isnan(read_nifti(tmp_path / "nan.nii.gz", allow_nonfinite=True).data).sum() == 1


@pytest.mark.parametrize("shape", [(8, 10), (4, 4, 4, 2, 2)])
def test_wrong_dimensionality(tmp_path, shape):
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), tmp_path / "bad.nii.gz")
    with pytest.raises(DataError, match=rf"shape \({shape[0]}, {shape[1]}.*expected a 3-D"):
        read_nifti(tmp_path / "bad.nii.gz")


def test_write_rejects_bad_suffix(tmp_path, volume):
    with pytest.raises(DataError, match=r"\.nii"):
        write_nifti(volume, tmp_path / "out.img")
    with pytest.raises(DataError, match="cannot write"):
        write_volume(volume, tmp_path / "out.mgz")


def test_failed_write_keeps_old_file(tmp_path, volume, monkeypatch):
    path = write_nifti(volume, tmp_path / "keep.nii.gz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(nib, "save", boom)
    with pytest.raises(OSError):
        write_nifti(volume.with_data(volume.data * 2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.nii.gz"]


def test_check_pair(volume):
    check_pair(volume, volume.with_data(np.zeros((8, 10, 6), np.uint8)))
    other = Volume(volume.data[:, :, :5], volume.affine)
    with pytest.raises(DataError, match=r"\(8, 10, 6\) vs target \(8, 10, 5\)"):
        check_pair(volume, other)
    moved = volume.affine.copy()
    moved[0, 3] += 0.5
    with pytest.raises(DataError, match="affines differ"):
        check_pair(volume, Volume(volume.data, moved), what="t1/seg")
    check_pair(volume, Volume(volume.data, moved), atol=0.6)
