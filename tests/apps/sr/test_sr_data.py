"""SR data: subject-wise splits, region slabs that never leak, clear errors on bad data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mrilearn.apps.sr.data import SRVolumes
from mrilearn.data.manifest import Subject, split_subjects
from mrilearn.data.phantoms import ellipsoid_phantom
from mrilearn.errors import DataError
from mrilearn.io import Volume, write_nifti

EYE = np.eye(4)


def test_split_is_subject_wise_deterministic_and_7_1_1_1():
    subjects = [Subject(f"s{i:02d}", {}) for i in range(20)]
    a = split_subjects(subjects, [7, 1, 1, 1], seed=0)
    assert [len(a[k]) for k in ("train", "val", "eval", "test")] == [14, 2, 2, 2]
    ids = [s.id for part in a.values() for s in part]
    assert sorted(ids) == sorted(s.id for s in subjects)  # each subject exactly once
    assert a == split_subjects(list(reversed(subjects)), [7, 1, 1, 1], seed=0)
    assert a != split_subjects(subjects, [7, 1, 1, 1], seed=1)
    small = split_subjects(subjects[:4], [7, 1, 1, 1])
    assert all(len(v) == 1 for v in small.values())


def test_region_slabs_keep_training_patches_out_of_test(tmp_path: Path):
    write_nifti(Volume(ellipsoid_phantom((24, 40, 24), seed=1), EYE), tmp_path / "one" / "a.nii.gz")
    data = SRVolumes(
        str(tmp_path / "one"), patch_size=[8, 8, 8], regions=[0.6, 0.1, 0.0, 0.3], region_gap=2
    )
    train, test = data.pairs("train")[0].region[1], data.pairs("test")[0].region[1]
    assert train.stop + 2 <= data.pairs("val")[0].region[1].start and train.stop < test.start
    assert data.pairs("eval") == []
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        sl = data._random_patch(data.pairs("train")[0], gen)
        assert train.start <= sl[1].start and sl[1].stop <= train.stop


def test_manifest_with_real_lr_and_mismatched_pair(tmp_path: Path):
    hr = ellipsoid_phantom((16, 16, 16), seed=2)
    write_nifti(Volume(hr, EYE), tmp_path / "hr.nii.gz")
    write_nifti(Volume(hr[:, :, :12], EYE), tmp_path / "lr_bad.nii.gz")
    write_nifti(Volume(hr * 0.9, EYE), tmp_path / "lr.nii.gz")
    (tmp_path / "ok.csv").write_text("subject,image,lr\ns1,hr.nii.gz,lr.nii.gz\n")
    pair = SRVolumes(str(tmp_path / "ok.csv"), split=[1, 0, 0, 0]).pairs("train")[0]
    np.testing.assert_allclose(pair.lr * pair.scale, hr * 0.9, rtol=1e-5)
    (tmp_path / "bad.csv").write_text("subject,image,lr\ns1,hr.nii.gz,lr_bad.nii.gz\n")
    with pytest.raises(DataError, match="shape"):
        SRVolumes(str(tmp_path / "bad.csv"), split=[1, 0, 0, 0]).pairs("train")
    (tmp_path / "missing.csv").write_text("subject,image\ns1,nope.nii.gz\n")
    with pytest.raises(DataError, match=r"missing.csv:2: file .*nope.nii.gz"):
        SRVolumes(str(tmp_path / "missing.csv")).pairs("train")


def test_bad_volumes_are_reported(tmp_path: Path):
    with pytest.raises(DataError, match="no .nii/.nii.gz files found"):
        SRVolumes(str(tmp_path)).pairs("train")
    vol = ellipsoid_phantom((16, 16, 16))
    vol[3, 3, 3] = np.nan
    write_nifti(Volume(vol, EYE), tmp_path / "nan.nii.gz")
    with pytest.raises(DataError, match="nan.nii.gz"):
        SRVolumes(str(tmp_path), split=[1, 0, 0, 0]).pairs("train")
    with pytest.raises(DataError, match="unknown split"):
        SRVolumes(str(tmp_path)).pairs("testing")


def test_patch_larger_than_region_is_explained(tmp_path: Path):
    write_nifti(Volume(ellipsoid_phantom((12, 12, 12)), EYE), tmp_path / "a.nii.gz")
    data = SRVolumes(str(tmp_path), patch_size=[16, 8, 8], split=[1, 0, 0, 0])
    with pytest.raises(DataError, match="smaller than data.patch_size 16"):
        data.train_batch(1, torch.Generator())
