"""Atomic writes never leave a half-written file or folder behind."""

from __future__ import annotations

import json

import pytest

from mrilearn.io.atomic import (
    atomic_dir,
    atomic_path,
    atomic_write,
    write_json_atomic,
    write_text_atomic,
)


def test_failed_write_keeps_previous_file_and_no_temp(tmp_path):
    target = tmp_path / "model.nii.gz"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nii.gz"]


def test_temp_path_keeps_double_suffix_and_same_dir(tmp_path):
    target = tmp_path / "sub" / "img.nii.gz"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.name.endswith(".nii.gz") and ".tmp-" in tmp.name
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["img.nii.gz"]


def test_text_and_json(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "hello")
    write_json_atomic(tmp_path / "b.json", {"x": [1, 2]})
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": [1, 2]}
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "b.json", {"x": object()})
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": [1, 2]}
    assert len(list(tmp_path.iterdir())) == 2


def test_atomic_dir_replaces_and_rolls_back(tmp_path):
    out = tmp_path / "series"
    with atomic_dir(out) as tmp:
        (tmp / "1.dcm").write_text("one")
    assert [p.name for p in out.iterdir()] == ["1.dcm"]

    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(out) as tmp:
            (tmp / "2.dcm").write_text("two")
            raise KeyboardInterrupt
    assert [p.name for p in out.iterdir()] == ["1.dcm"]
    assert [p.name for p in tmp_path.iterdir()] == ["series"]

    with atomic_dir(out) as tmp:
        (tmp / "3.dcm").write_text("three")
    assert [p.name for p in out.iterdir()] == ["3.dcm"]
    assert [p.name for p in tmp_path.iterdir()] == ["series"]
