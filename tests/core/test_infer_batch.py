"""``mrilearn infer`` over a folder: one model load, bad scans skipped and reported, the
others written under their own names, the output guard for every item."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, tree_checksums

from mrilearn.config import load_config
from mrilearn.errors import DataError
from mrilearn.io import read_dicom_series, read_nifti, write_dicom_series
from mrilearn.io.batch import Item, file_items, is_folder_of_items, run_batch, volume_items
from mrilearn.progress import inner_bars, inner_enabled


@pytest.fixture
def trained_run(config_file) -> Path:
    path = config_file(train={"iterations": 2, "val_every": 0, "checkpoint_every": 0})
    assert cli("train", path) == 0
    cfg = load_config(path)
    return Path(cfg.output_dir) / cfg.experiment


@pytest.fixture
def scans(sr_folder: Path, tmp_path: Path) -> Path:
    """Two NIfTI scans, a corrupt one and a DICOM series sub-folder (plus a stray note)."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("sub03.nii.gz", "sub04.nii.gz"):
        shutil.copy(sr_folder / name, folder / name)
    (folder / "corrupt.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    write_dicom_series(read_nifti(sr_folder / "sub05.nii.gz"), folder / "series")
    (folder / "notes.txt").write_text("not a scan")
    return folder


def test_a_folder_is_one_series_or_a_folder_of_scans(scans: Path, tmp_path: Path):
    assert is_folder_of_items(scans) and not is_folder_of_items(scans / "series")
    items = volume_items(scans, tmp_path / "out")
    assert [i.name for i in items] == ["corrupt.nii.gz", "series", "sub03.nii.gz", "sub04.nii.gz"]
    assert items[1].output == tmp_path / "out" / "series"
    shutil.copy(scans / "sub03.nii.gz", scans / "series" / "stray.nii.gz")
    with pytest.raises(DataError, match="both DICOM files and NIfTI files"):
        is_folder_of_items(scans / "series")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no NIfTI files"):
        volume_items(tmp_path / "empty", tmp_path / "out")
    raws = file_items(scans, tmp_path, (".nii.gz",), lambda p: p.name[:5])
    assert [i.output.name for i in raws] == ["corru", "sub03", "sub04"]


def test_a_failing_item_is_reported_and_skipped(tmp_path: Path, capsys):
    def work(item: Item) -> list[Path]:
        if item.name == "b":
            raise DataError("b: cannot be read")
        if item.name == "c":
            raise ValueError("a bug")
        return [item.output]

    items = [Item(Path(n), tmp_path / n) for n in "abcd"]
    result = run_batch(items, work)
    assert [i.name for i in result.done] == ["a", "d"] and result.exit_status == 1
    assert result.summary() == "2 written, 2 failed: b, c"
    err = capsys.readouterr().err
    assert "mrilearn: skipped b: b: cannot be read" in err
    assert "mrilearn: skipped c: ValueError: a bug" in err
    assert run_batch(items[:1], work).exit_status == 0


def test_folder_inference_writes_the_good_scans_and_fails_for_the_bad(
    trained_run: Path, scans: Path, tmp_path: Path, capsys
):
    out = tmp_path / "out"
    capsys.readouterr()
    assert cli("infer", "--run", trained_run, "-i", scans, "-o", out, "--samples", "2") == 1
    captured = capsys.readouterr()
    assert "mrilearn: skipped corrupt.nii.gz: " in captured.err
    assert captured.err.strip().splitlines()[-1] == (
        "mrilearn: 3 written, 1 failed: corrupt.nii.gz"
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "series", "series_std.nii.gz", "series_std.png", "sub03.nii.gz", "sub03_std.nii.gz",
        "sub03_std.png", "sub04.nii.gz", "sub04_std.nii.gz", "sub04_std.png",
    ]  # fmt: skip
    for name in ("sub03.nii.gz", "sub04.nii.gz"):
        a, b = read_nifti(scans / name), read_nifti(out / name)
        np.testing.assert_allclose(b.affine, a.affine)
        assert b.shape == a.shape and np.isfinite(b.data).all() and b.data.std() > 0
    derived, source = read_dicom_series(out / "series"), read_dicom_series(scans / "series")
    np.testing.assert_allclose(derived.affine, source.affine, atol=1e-4)
    assert derived.meta["SeriesInstanceUID"] != source.meta["SeriesInstanceUID"]

    before = tree_checksums(tmp_path)  # again: every output exists, so nothing happens
    assert cli("infer", "--run", trained_run, scans, out, "--samples", "2") == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert tree_checksums(tmp_path) == before
    assert cli("infer", "--run", trained_run, scans, out, "--overwrite") == 1  # positional


def test_folder_outputs_are_protected(trained_run: Path, scans: Path, tmp_path: Path, capsys):
    before = tree_checksums(tmp_path)
    for out, message in [
        (scans, "is the input"),
        (scans / "results", "lies inside the input folder"),
        (tmp_path / "out.nii.gz", "go into a folder"),
    ]:
        capsys.readouterr()
        assert cli("infer", "--run", trained_run, "-i", scans, "-o", out, "--overwrite") == 2
        assert message in capsys.readouterr().err
    assert tree_checksums(tmp_path) == before


def test_patch_bars_show_under_infer_only():
    """Inner bars (an inferer's patches) are off in training and evaluation, on a terminal
    under ``infer``, and always on when the component asks (``progress: true``)."""
    assert inner_enabled(False) is False and inner_enabled(True) is True
    with inner_bars():
        assert inner_enabled(False) is None  # None: shown on a terminal
    assert inner_enabled(False) is False
