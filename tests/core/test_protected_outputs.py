"""Commands never lose a user's file: an output that is the input, an existing output without
--overwrite, a folder holding files the command does not write (even with --overwrite), an
unwritable location; DICOM series with every slice accounted for; temporary files removed on
SIGTERM.

Every refusal is checked the same way: the exit code, one line without a traceback, and a
checksum listing of the whole folder before and after."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import cli, cli_error, tree_checksums

from mrilearn.data.phantoms import ellipsoid_phantom
from mrilearn.io import Volume, read_dicom_series, read_nifti, write_dicom_series, write_nifti


@pytest.fixture
def run(config_file, tmp_path) -> Path:
    """A trained 2-iteration SR run."""
    assert cli("train", config_file(train={"iterations": 2, "val_every": 0})) == 0
    return tmp_path / "runs" / "tiny"


@pytest.fixture
def work(tmp_path, sr_folder) -> Path:
    """A scan, a hard link to it, and a DICOM series of it in one folder."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(sr_folder / "sub03.nii.gz", folder / "scan.nii.gz")
    os.link(folder / "scan.nii.gz", folder / "link.nii.gz")
    write_dicom_series(read_nifti(folder / "scan.nii.gz"), folder / "dicom")
    return folder


def test_infer_never_replaces_its_input(run, work, tmp_path, capsys):
    scan, dicom = work / "scan.nii.gz", work / "dicom"
    cases = [
        ([scan, scan], "is the input"),
        (["-i", scan, "-o", work / "." / "scan.nii.gz"], "is the input"),
        ([scan, work / "link.nii.gz"], "is the input"),  # another name of the same file
        ([dicom, dicom], "is the input"),
        ([dicom, dicom / "sr.nii.gz"], "lies inside the input folder"),
        ([scan, work], "holds the input"),  # a DICOM output folder replacing the input's folder
    ]
    before = tree_checksums(tmp_path)
    for args, message in cases:
        for overwrite in ([], ["--overwrite"]):
            err = cli_error(capsys, ["infer", "--run", run, *args, *overwrite])
            assert message in err, (args, err)
            assert tree_checksums(tmp_path) == before


def test_infer_replaces_an_output_only_with_overwrite(run, work, tmp_path, capsys):
    out = tmp_path / "sr.nii.gz"
    out.write_bytes(b"an earlier result")
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["infer", "--run", run, work / "scan.nii.gz", out])
    assert f"{out}: exists; pass --overwrite" in err
    assert tree_checksums(tmp_path) == before
    assert cli("infer", "--run", run, work / "scan.nii.gz", out, "--overwrite") == 0
    after = tree_checksums(tmp_path)
    assert {k for k in after if after[k] != before.get(k)} == {"sr.nii.gz"}
    assert read_nifti(out).shape == (20, 20, 20)


def test_unwritable_outputs_are_one_line_errors(run, work, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["infer", "--run", run, work / "scan.nii.gz",
                             tmp_path / "notes.txt" / "sr.nii.gz"])  # fmt: skip
    assert "notes.txt is a file, not a folder" in err
    assert tree_checksums(tmp_path) == before
    locked = Path("/sys")  # not writable, not even by root
    try:
        tempfile.TemporaryFile(dir=locked).close()
        pytest.skip("/sys is writable here")
    except OSError:
        pass
    err = cli_error(capsys, ["infer", "--run", run, work / "scan.nii.gz",
                             locked / "mrilearn" / "sr.nii.gz"])  # fmt: skip
    assert "cannot write in /sys" in err
    assert tree_checksums(tmp_path) == before


def _strip_pixels(path: Path) -> None:
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)


def test_dicom_slices_are_all_accounted_for(run, tmp_path, capsys):
    phantom = Volume(ellipsoid_phantom((20, 20, 16), seed=1), np.diag([1.0, 1.0, 2.0, 1.0]))
    series = tmp_path / "series"
    write_dicom_series(phantom, series)
    files = sorted(series.iterdir())
    assert len(files) == 16
    _strip_pixels(files[-1])  # the last slice of the stack lost its pixels
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["infer", "--run", run, series, tmp_path / "sr.nii.gz"])
    assert "1 of 16 files of series" in err and files[-1].name in err
    assert tree_checksums(tmp_path) == before

    # two complete series in one folder: the hint names --series-uid, which chooses one
    mixed = tmp_path / "mixed"
    write_dicom_series(phantom, tmp_path / "a")
    write_dicom_series(phantom.with_data(phantom.data * 2), tmp_path / "b")
    mixed.mkdir()
    for folder in ("a", "b"):
        for f in (tmp_path / folder).iterdir():
            shutil.copy(f, mixed / f"{folder}_{f.name}")
    err = cli_error(capsys, ["infer", "--run", run, mixed, tmp_path / "sr.nii.gz"])
    assert "--series-uid UID (mrilearn infer)" in err
    uid = read_dicom_series(tmp_path / "b").meta["SeriesInstanceUID"]
    assert cli("infer", "--run", run, mixed, tmp_path / "sr.nii.gz", "--series-uid", uid) == 0
    assert read_nifti(tmp_path / "sr.nii.gz").shape == (20, 20, 16)  # all 16 slices
    assert cli("infer", "--run", run, mixed, tmp_path / "sr_dicom", "--series-uid", uid) == 0
    assert len(list((tmp_path / "sr_dicom").iterdir())) == 16


# every command that writes a folder; OUT is the user's folder, holding thesis.tex
FOLDER_COMMANDS = {
    "synth-abdomen": ["synth-abdomen", "--subjects", "1", "--out", "OUT"],
    "synth-angio": ["synth-angio", "--subjects", "1", "--out", "OUT"],
    "simulate mtmri-dataset": [
        "simulate",
        "mtmri-dataset",
        "mtmri/tiny",
        "--subjects",
        "1",
        "--out",
        "OUT",
    ],  # fmt: skip
    "recon": ["recon", "mtmri/tiny", "--data", "raw.npz", "--out", "OUT"],
    "export": ["export", "--run", "RUN", "--out", "OUT"],
    "sr-compare": ["sr-compare", "RUN", "--out", "OUT"],
    "synthesize": ["synthesize", "--run", "RUN", "LABELS", "--out", "OUT"],
    "synthesize-experiment": [
        "synthesize-experiment",
        "--spade",
        "spade.yaml",
        "--seg",
        "seg.yaml",
        "--out",
        "OUT",
    ],  # fmt: skip
}


@pytest.mark.parametrize("command", FOLDER_COMMANDS)
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_a_command_did_not_write_is_never_replaced(tmp_path, capsys, command, overwrite):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("\\chapter{Results}\n")
    labels = tmp_path / "labels"
    write_nifti(Volume(np.ones((8, 8, 8), np.int16), np.eye(4)), labels / "l.nii.gz")
    names = {"OUT": thesis, "RUN": tmp_path / "runs" / "x", "LABELS": labels}
    argv = [names.get(a, a) for a in FOLDER_COMMANDS[command]]
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, [*argv, *overwrite])
    assert "holds files this command does not write (thesis.tex)" in err
    assert tree_checksums(tmp_path) == before


# every command that writes a file: (its arguments, the file it writes)
FILE_COMMANDS = {
    "simulate mtmri": (["simulate", "mtmri", "mtmri/tiny", "--out", "OUT"], "OUT"),
    "niqe-fit": (["niqe-fit", "--data", "mni152", "--out", "OUT"], "OUT"),
    "synthesize": (["synthesize", "--run", "RUN", "LABEL", "--out", "OUT"], "OUT"),
    "uncertainty": (["uncertainty", "--run", "RUN", "--out", "DIR"], "DIR/uncertainty.json"),
}


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_an_existing_file_is_replaced_only_with_overwrite(tmp_path, capsys, command):
    label = tmp_path / "label.nii.gz"
    write_nifti(Volume(np.ones((8, 8, 8), np.int16), np.eye(4)), label)
    names = {"OUT": tmp_path / "result.nii.gz", "DIR": tmp_path / "results",
             "RUN": tmp_path / "runs" / "x", "LABEL": label}  # fmt: skip
    argv, written = FILE_COMMANDS[command]
    existing = Path(written.replace("OUT", str(names["OUT"])).replace("DIR", str(names["DIR"])))
    existing.parent.mkdir(exist_ok=True)
    existing.write_bytes(b"an earlier result")
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, [names.get(a, a) for a in argv])
    assert f"{existing}: exists; pass --overwrite" in err
    existing.unlink()
    existing.mkdir()  # a folder where the file goes: never replaced, even with --overwrite
    err = cli_error(capsys, [*(names.get(a, a) for a in argv), "--overwrite"])
    assert f"{existing}: is a folder" in err
    existing.rmdir()
    existing.write_bytes(b"an earlier result")
    assert tree_checksums(tmp_path) == before


def test_a_generator_replaces_only_its_own_folder(tmp_path, capsys):
    out = tmp_path / "abdomen"
    make = ["synth-abdomen", "--subjects", "1", "--shape", "16", "16", "16", "--out", out]
    assert cli(*make) == 0
    first = tree_checksums(tmp_path)
    assert "exists; pass --overwrite" in cli_error(capsys, make)
    assert tree_checksums(tmp_path) == first
    assert cli(*make, "--seed", "1", "--overwrite") == 0
    assert sorted(p.name for p in out.iterdir()) == ["images", "labels", "manifest.csv"]
    assert "abdomen_001_0000" in (out / "manifest.csv").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("synth-abdomen", "--subjects", "1", "--shape", "16", "16", "16", "--out", empty) == 0


def test_sigterm_removes_the_temporary_folder(tmp_path):
    out = tmp_path / "abdomen"
    cmd = [sys.executable, "-m", "mrilearn", "synth-abdomen", "--subjects", "500", "--out",
           str(out)]  # fmt: skip
    before = tree_checksums(tmp_path)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(tmp_path.glob(".abdomen.tmp-mrilearn-*/images/*")):
        time.sleep(0.05)
    assert any(tmp_path.glob(".abdomen.tmp-mrilearn-*")), "the generator did not start"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines() == ["mrilearn: stopped by SIGTERM"]
    assert tree_checksums(tmp_path) == before  # no output, no temporary folder
