"""Separately acquired LR/HR pairs: rigid registration recovers a known transform, a manifest of
misaligned pairs trains, and a pair that cannot be aligned is left out with a warning."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from conftest import cli, sr_config
from scipy.spatial.transform import Rotation

from mrilearn.apps.sr.data import SRVolumes
from mrilearn.apps.sr.registration import (
    PairAligner,
    RegistrationFailed,
    register_rigid,
    to_sitk,
)
from mrilearn.apps.sr.registration_limits import Limits
from mrilearn.data.phantoms import ellipsoid_phantom
from mrilearn.errors import DataError
from mrilearn.io import Volume, read_nifti, write_nifti

HR_SPACING = np.array([1.0, 1.0, 1.2])
AXIS = np.array([1.0, 2.0, 3.0]) / np.linalg.norm([1.0, 2.0, 3.0])  # oblique
SHIFT = np.array([3.6, -4.8, 0.0])  # 6 mm


def hr_volume(shape: tuple[int, int, int], seed: int) -> Volume:
    """A phantom on an axial grid centred on the origin (RAS+)."""
    affine = np.diag([*HR_SPACING, 1.0])
    affine[:3, 3] = -HR_SPACING * (np.array(shape) - 1) / 2
    return Volume(ellipsoid_phantom(shape, seed=seed), affine)


def known_transform(degrees: float = 8.0, shift: np.ndarray = SHIFT) -> sitk.Euler3DTransform:
    """Maps LR points to HR points (LPS mm): the LR scan sees the object moved."""
    t = sitk.Euler3DTransform()
    t.SetMatrix(Rotation.from_rotvec(np.radians(degrees) * AXIS).as_matrix().flatten().tolist())
    t.SetTranslation(shift.tolist())
    return t


def separate_lr(hr: Volume, transform: sitk.Transform) -> Volume:
    """``hr`` blurred and seen through ``transform`` on a coarser grid with another matrix and
    field of view (1.25 x 1.25 x 2.4 mm, shifted)."""
    shape = tuple(int(n * 0.75) for n in hr.shape[:2]) + (hr.shape[2] // 2,)
    spacing = np.array([1.25, 1.25, 2.4])
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -spacing * (np.array(shape) - 1) / 2 + np.array([1.5, -2.0, 1.0])
    grid = to_sitk(Volume(np.zeros(shape, np.float32), affine))
    blurred = sitk.SmoothingRecursiveGaussian(to_sitk(hr), [0.6, 0.6, 1.0])
    image = sitk.Resample(blurred, grid, transform, sitk.sitkLinear, 0.0)
    return Volume(sitk.GetArrayFromImage(image).transpose(2, 1, 0), affine)


def test_known_rigid_transform_is_recovered_within_half_a_voxel_and_degree():
    hr = hr_volume((64, 64, 48), seed=1)
    known = known_transform()
    result = register_rigid(separate_lr(hr, known), hr)
    # HR -> LR (result) then LR -> HR (known) must be the identity
    residual = Rotation.from_matrix(
        np.asarray(known.GetMatrix()).reshape(3, 3) @ result.matrix
    ).magnitude()
    assert np.degrees(residual) < 0.5
    corners = np.array(np.meshgrid(*[(-20.0, 20.0)] * 3)).reshape(3, -1).T  # inside the HR FOV
    moved = [known.TransformPoint(result.transform.TransformPoint(p.tolist())) for p in corners]
    assert np.linalg.norm(np.asarray(moved) - corners, axis=1).max() < 0.5 * HR_SPACING.min()
    assert abs(result.rotation_deg - 8.0) < 0.5 and result.problem(Limits()) is None
    assert result.problem(Limits(max_rotation_deg=5)).endswith("° above 5°")
    assert result.problem(Limits(max_shift_mm=2)).startswith("shift ")


def noise(like: Volume) -> Volume:
    """A scan that shows nothing of the object (a failed acquisition, a wrong file)."""
    return Volume(np.random.default_rng(0).random(like.shape, np.float32), like.affine)


def test_a_pair_that_cannot_be_aligned_fails_the_limits():
    hr = hr_volume((32, 32, 28), seed=1)
    aligner = PairAligner(Limits())
    with pytest.raises(RegistrationFailed, match="wrong: registration failed: metric -0.0"):
        aligner("wrong", noise(hr), hr)
    assert aligner.records["wrong"]["status"] == "excluded"


def write_manifest(folder: Path, subjects: int, wrong: str) -> Path:
    """``subjects`` HR phantoms with separately acquired (moved, coarser) LR scans; the LR of
    ``wrong`` shows nothing of its HR."""
    rows = []
    for i in range(subjects):
        hr = hr_volume((24, 24, 24), seed=i)
        lr = separate_lr(hr, known_transform(5.0 + i, SHIFT * (0.5 if i % 2 else -0.5)))
        lr = noise(lr) if f"s{i}" == wrong else lr
        write_nifti(hr, folder / f"hr{i}.nii.gz")
        write_nifti(lr, folder / f"lr{i}.nii.gz")
        rows.append({"subject": f"s{i}", "image": f"hr{i}.nii.gz", "lr": f"lr{i}.nii.gz"})
    with open(folder / "pairs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["subject", "image", "lr"])
        writer.writeheader()
        writer.writerows(rows)
    return folder / "pairs.csv"


def test_registered_pairs_land_on_the_hr_grid(tmp_path):
    manifest = write_manifest(tmp_path, 2, wrong="none")
    with pytest.raises(DataError, match="not on the same voxel grid.*set data.register=rigid"):
        SRVolumes(str(manifest), split=[1, 0, 0, 0]).pairs("train")
    data = SRVolumes(str(manifest), split=[1, 0, 0, 0], register="rigid")
    pairs = data.pairs("train")
    assert [p.lr.shape for p in pairs] == [(24, 24, 24)] * 2
    hr = read_nifti(tmp_path / "hr0.nii.gz").data
    corr = np.corrcoef(pairs[0].lr.ravel() * pairs[0].scale, hr.ravel())[0, 1]
    assert corr > 0.9, corr


@pytest.mark.usefixtures("single_thread")
def test_training_on_separately_acquired_pairs_records_and_excludes(tmp_path, caplog):
    manifest = write_manifest(tmp_path, 5, wrong="s3")
    train = {"iterations": 2, "val_every": 0, "log_every": 1, "checkpoint_every": 0}
    cfg = sr_config(
        manifest, tmp_path / "runs", train=train, scheduler=None, evaluation=None,
        data={"register": "rigid", "split": [4, 1, 0, 0], "degradation": None},
    )  # fmt: skip
    cfg["data"].pop("degradation")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    with caplog.at_level(logging.WARNING, logger="mrilearn"):
        assert cli("train", tmp_path / "c.yaml") == 0
    assert any("s3: registration failed" in r.getMessage() for r in caplog.records)
    record = json.loads((tmp_path / "runs" / "tiny" / "registration.json").read_text())
    statuses = {k: v["status"] for k, v in record["pairs"].items()}
    assert statuses == {"s0": "aligned", "s1": "aligned", "s2": "aligned", "s3": "excluded",
                        "s4": "aligned"}  # fmt: skip
    assert record["pairs"]["s2"]["metric"] < record["limits"]["max_metric"]
    assert record["pairs"]["s3"]["metric"] > record["limits"]["max_metric"]


def test_register_command_writes_the_resampled_lr_and_the_transform(tmp_path, capsys):
    hr = hr_volume((48, 48, 40), seed=2)
    write_nifti(hr, tmp_path / "hr.nii.gz")
    write_nifti(separate_lr(hr, known_transform()), tmp_path / "lr.nii.gz")
    out = tmp_path / "aligned.nii.gz"
    assert cli("register", tmp_path / "lr.nii.gz", tmp_path / "hr.nii.gz", "-o", out) == 0
    aligned = read_nifti(out)
    np.testing.assert_allclose(aligned.affine, read_nifti(tmp_path / "hr.nii.gz").affine)
    info = json.loads((tmp_path / "aligned.json").read_text())
    assert abs(info["rotation_deg"] - 8.0) < 1.0 and info["lr"].endswith("lr.nii.gz")
    tfm = sitk.ReadTransform(str(tmp_path / "aligned.tfm"))
    assert np.allclose(tfm.GetParameters()[3:], info["translation_mm"], atol=1e-4)
    assert cli("register", tmp_path / "lr.nii.gz", tmp_path / "hr.nii.gz", "-o", out) == 2
