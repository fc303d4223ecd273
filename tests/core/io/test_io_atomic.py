"""Atomic writes never leave a half-written file or folder behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_what_a_kill_9_leaves_goes_with_the_next_write(tmp_path):
    target = tmp_path / "img.nii.gz"
    code = (
        "import time\nfrom mrilearn.io.atomic import atomic_path\n"
        f"with atomic_path({str(target)!r}) as tmp:\n"
        "    tmp.write_text('half')\n    print(tmp, flush=True)\n    time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    leftover = Path(proc.stdout.readline().strip())
    proc.kill()
    proc.wait()
    assert leftover.is_file() and leftover.name.startswith(".img.tmp-mrilearn-")
    assert leftover.name.endswith(".nii.gz")
    write_text_atomic(tmp_path / "other.txt", "x")  # another target's write leaves it alone
    assert leftover.is_file()
    write_text_atomic(target, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.nii.gz", "other.txt"]


def test_a_folder_moved_aside_by_a_killed_write_is_put_back(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = tmp_path / f".series.old-mrilearn-{dead.pid}-abc"
    old.mkdir()
    (old / "1.dcm").write_text("the user's series")
    (tmp_path / f".series.tmp-mrilearn-{dead.pid}-def").mkdir()  # the half-written new one
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "series"):
            raise RuntimeError("this write fails too")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]
    assert (tmp_path / "series" / "1.dcm").read_text() == "the user's series"
