"""SR on real scans: an acquisition on its own reduced matrix, the voxel size a run was trained
at, own folders with a config made for MNI152, and empty splits."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import cli, sr_config, write_phantoms

from mrilearn import components
from mrilearn.apps.seg.data import SegVolumes
from mrilearn.apps.sr.data import SRVolumes
from mrilearn.apps.sr.degrade import KspaceTruncation
from mrilearn.apps.sr.reduced import grid_affine, model_shape, onto_model_grid, zero_fill
from mrilearn.config import load_config
from mrilearn.data.phantoms import ellipsoid_phantom
from mrilearn.errors import ConfigError, DataError
from mrilearn.io import Volume, read_nifti, write_nifti
from mrilearn.runs import load_run

# an oblique HR grid: voxel size 1.0 × 1.1 × 1.2 mm, rotated 30° about z
_C, _S = np.cos(np.pi / 6), np.sin(np.pi / 6)
ROTATION = np.array([[_C, -_S, 0.0], [_S, _C, 0.0], [0.0, 0.0, 1.0]])
HR_AFFINE = np.eye(4)
HR_AFFINE[:3, :3] = ROTATION @ np.diag([1.0, 1.1, 1.2])
HR_AFFINE[:3, 3] = [-12.0, 7.0, 30.0]


def corners(affine: np.ndarray, shape: tuple[int, ...], at: float) -> np.ndarray:
    """World coordinates of the grid's eight corners: voxel centres (at = 0) or the outer
    voxel edges, i.e. the field of view (at = 0.5)."""
    ijk = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
    ijk = ijk * (np.array(shape[:3]) - 1 + 2 * at) - at
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def reduced_scan(hr: np.ndarray) -> Volume:
    """``hr`` truncated 2 × 2 along axes 1 and 2 onto its own matrix, with the geometry a
    scanner gives it: the same field of view, each voxel covering two HR voxels along the
    truncated axes (its centre halfway between theirs)."""
    small = KspaceTruncation([2.0, 2.0], [1, 2], output="reduced")(hr)
    affine = HR_AFFINE.copy()
    affine[:3, 1:3] *= 2
    affine[:3, 3] += HR_AFFINE[:3, 1:3] @ [0.5, 0.5]
    return Volume(small, affine)


def test_a_reduced_matrix_goes_back_onto_the_hr_grid_over_the_same_field_of_view():
    hr = ellipsoid_phantom((20, 24, 22), seed=3).astype(np.float64)
    truncation = KspaceTruncation([2.0, 2.0], [1, 2])
    scan = reduced_scan(hr)
    assert scan.shape == (20, 12, 11)
    assert model_shape(scan.shape, truncation.axis_factors) == (20, 24, 22)
    out = onto_model_grid(scan, (20, 24, 22))
    assert out.shape == hr.shape and out.data.dtype == np.float32
    np.testing.assert_allclose(out.affine, HR_AFFINE, atol=1e-12)
    np.testing.assert_allclose(out.spacing, [1.0, 1.1, 1.2])
    fov = corners(scan.affine, scan.shape, 0.5)
    np.testing.assert_allclose(corners(out.affine, out.shape, 0.5), fov)
    np.testing.assert_allclose(corners(out.affine, out.shape, 0), corners(HR_AFFINE, hr.shape, 0))
    centre = [*((np.array(out.shape) - 1) / 2), 1]  # the volume stays centred where it was
    np.testing.assert_allclose(out.affine @ centre, scan.affine @ [9.5, 5.5, 5, 1])
    # the zero-filled image is the degradation's same-size LR: exactly for the complex image,
    # up to the lost phase for the stored magnitude
    complex_lr = zero_fill(truncation.reduced_complex(hr), hr.shape)
    np.testing.assert_allclose(complex_lr, truncation.truncate_complex(hr), atol=1e-12)
    same = truncation(hr)
    assert np.sqrt(np.mean((out.data - same) ** 2)) < 0.01 * same.max()


def test_reduced_matrix_errors():
    scan = Volume(np.ones((8, 6, 5), np.float32), np.eye(4))
    with pytest.raises(DataError, match="at least as large"):
        onto_model_grid(scan, (8, 4, 10))
    factors = (1.0, 2.4, 2.0)
    shape = model_shape((8, 6, 5), factors)
    assert shape == (8, 14, 10)
    assert KspaceTruncation(list(factors[1:]), [1, 2], output="reduced").kept_shape(shape) == (
        8, 6, 5
    )  # fmt: skip
    np.testing.assert_allclose(grid_affine(np.eye(4), (4, 4, 4), (4, 4, 4)), np.eye(4))


@pytest.fixture(scope="module")
def one_mm_run(tmp_path_factory) -> Path:
    """A tiny SR run trained on 1 mm isotropic phantoms."""
    tmp = tmp_path_factory.mktemp("one_mm")
    write_phantoms(tmp / "hr", range(4), np.eye(4))
    train = {"iterations": 2, "val_every": 0, "checkpoint_every": 0}
    cfg = sr_config(tmp / "hr", tmp / "runs", train=train, data={"split": [2, 1, 0, 1]})
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert cli("train", tmp / "config.yaml") == 0
    return tmp / "runs" / "tiny"


def oblique(spacing: tuple[float, float, float]) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = ROTATION @ np.diag(spacing)
    return affine


def test_a_scan_unlike_the_training_voxel_size_is_warned_about(
    one_mm_run: Path, tmp_path: Path, caplog
):
    trainer = load_run(one_mm_run)
    assert trainer.voxel_size == (1.0, 1.0, 1.0)
    assert trainer.optims == {}  # inference builds no optimisers (their import is slow)
    scan = write_nifti(
        Volume(ellipsoid_phantom((20, 20, 20), seed=7), oblique((0.9, 0.9, 1.2))),
        tmp_path / "oblique.nii.gz",
    )
    with caplog.at_level(logging.WARNING):
        assert cli("infer", "--run", one_mm_run, "-i", scan, "-o", tmp_path / "sr.nii.gz") == 0
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"{scan}: voxel size 0.9 × 0.9 × 1.2 mm differs from the 1 × 1 × 1")
    # a package carries the voxel size, and warns the same
    assert cli("export", "--run", one_mm_run, "-o", tmp_path / "pkg") == 0
    info = json.loads((tmp_path / "pkg" / "package.json").read_text())
    assert info["io"]["voxel_size_mm"] == [1.0, 1.0, 1.0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert cli("infer", "--run", tmp_path / "pkg", scan, tmp_path / "pkg.nii.gz") == 0
    assert any("0.9 × 0.9 × 1.2 mm" in r.getMessage() for r in caplog.records)
    caplog.clear()  # within 10 %: no warning
    trainer.prepare_input(Volume(np.ones((4, 4, 4)), oblique((1.05, 0.95, 1.0))), "near")
    assert not caplog.records


def test_infer_reduced_zero_fills_onto_the_model_grid(one_mm_run: Path, tmp_path: Path, caplog):
    hr = ellipsoid_phantom((20, 24, 22), seed=3)
    small = KspaceTruncation([2.0, 2.0], [1, 2], output="reduced")(hr)
    affine = np.diag([1.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [0.0, 0.5, 0.5]
    scan = write_nifti(Volume(small, affine), tmp_path / "reduced.nii.gz")
    with caplog.at_level(logging.WARNING):  # without --reduced: kept as it is, with a hint
        assert cli("infer", "--run", one_mm_run, scan, tmp_path / "as_is.nii.gz") == 0
    assert read_nifti(tmp_path / "as_is.nii.gz").shape == (20, 12, 11)
    assert "pass --reduced to zero-fill it onto the model's grid" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert cli("infer", "--run", one_mm_run, scan, tmp_path / "sr.nii.gz", "--reduced") == 0
    assert not caplog.records
    out = read_nifti(tmp_path / "sr.nii.gz")
    assert out.shape == (20, 24, 22)
    np.testing.assert_allclose(out.affine, np.eye(4), atol=1e-6)
    assert cli("infer", "--run", one_mm_run, scan, tmp_path / "t.nii.gz",
               "--target-shape", "20", "23", "21") == 0  # fmt: skip
    assert read_nifti(tmp_path / "t.nii.gz").shape == (20, 23, 21)
    on_grid = write_nifti(Volume(hr, np.eye(4)), tmp_path / "hr_grid.nii.gz")
    with pytest.raises(ConfigError, match="already the model's"):
        load_run(one_mm_run).prepare_input(read_nifti(on_grid), str(on_grid), reduced=True)


def test_regions_are_ignored_for_a_folder_of_subjects(sr_folder: Path, caplog):
    cfg = load_config("sr/demo_mni152", [f"data.source={sr_folder}"])
    assert cfg.data["regions"] is not None  # made for the MNI152 template
    with caplog.at_level(logging.INFO, logger="mrilearn"):
        data = components.build("data", cfg.data)
        counts = [data.subject_count(s) for s in ("train", "val", "eval", "test")]
    assert counts == [7, 1, 1, 1]
    notes = [r.getMessage() for r in caplog.records if "data.regions" in r.getMessage()]
    assert notes == [f"data.regions cuts one volume into slabs; {sr_folder} holds 10 subjects: "
                     "split by subject (data.split) instead"]  # fmt: skip


def test_an_empty_validation_or_test_split_is_a_warning(tmp_path: Path, caplog):
    write_phantoms(tmp_path / "two", range(2))
    with caplog.at_level(logging.WARNING):
        assert SRVolumes(str(tmp_path / "two")).subject_count("train") == 2
    assert [r.getMessage() for r in caplog.records] == [
        "validation split is empty (2 subjects, data.split [7, 1, 1, 1]): validation and the "
        "best checkpoint are skipped; add subjects: training, validation and test need one each",
        "test split is empty (2 subjects, data.split [7, 1, 1, 1]): evaluate has no test "
        "subjects (evaluation.split test); add subjects: training, validation and test need one "
        "each",
    ]
    write_phantoms(tmp_path / "three", range(3))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        SRVolumes(str(tmp_path / "three")).subject_count("train")
    assert caplog.records and all(
        r.getMessage().endswith("add subjects or set data.split=[1,1,0,1]") for r in caplog.records
    )
    caplog.clear()  # segmentation (and MALIBU) data sets say the same
    seg = SegVolumes(synthetic_subjects=2, synthetic_shape=[24, 20, 16], spacing=None)
    with caplog.at_level(logging.WARNING):
        seg.subject_count("train")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "validation split is empty",
        "test split is empty",
    ]
    caplog.clear()  # a split asked to be empty is no surprise
    with caplog.at_level(logging.WARNING):
        SRVolumes(str(tmp_path / "three"), split=[2, 0, 0, 1]).subject_count("train")
    assert not caplog.records
