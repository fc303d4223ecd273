"""The command line: help, one-line user errors, train → evaluate → infer end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mrilearn.cli import main
from mrilearn.config import load_config
from mrilearn.io import read_dicom_series, read_nifti, write_dicom_series


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["infer"], ["demo"], ["info"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: mrilearn" in capsys.readouterr().out


def test_user_error_is_one_line_without_traceback(config_file):
    path = config_file(model={"grwth": 3})
    run = subprocess.run(
        [sys.executable, "-m", "mrilearn", "train", str(path)], capture_output=True, text=True
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "mrilearn: error: model.grwth: unknown key; did you mean growth? (allowed: blocks, "
    )
    debug = subprocess.run(
        [sys.executable, "-m", "mrilearn", "--debug", "train", str(path)],
        capture_output=True,
        text=True,
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_info_lists_data_and_components(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "mni152" in out.lower() and "MDCSRN" in out and "SRTrainer" in out
    # every optional extra with its packages' versions (the test install has the hospital one)
    hospital = next(line for line in out.splitlines() if line.strip().startswith("[hospital]"))
    assert "pynetdicom 3." in hospital and "not installed" not in hospital


@pytest.fixture
def trained_run(config_file) -> Path:
    path = config_file()
    assert main(["train", str(path)]) == 0
    cfg = load_config(path)
    return Path(cfg.output_dir) / cfg.experiment


def test_evaluate_writes_tables_figures_and_report(trained_run: Path, capsys):
    assert main(["evaluate", "--run", str(trained_run)]) == 0
    result = json.loads((trained_run / "evaluation.json").read_text())
    assert set(result["per_subject"]) == {"zero-filled", "tricubic", "MDCSRN"}
    assert len(result["subjects"]) == 1  # 10 subjects split 7:1:1:1
    assert (trained_run / "results.csv").is_file() and "| MDCSRN | psnr |" in (
        trained_run / "results.md"
    ).read_text()
    assert (trained_run / "figures" / "boxplots.png").is_file()
    assert "Evaluation (test)" in (trained_run / "report.html").read_text()


def test_infer_keeps_nifti_geometry(trained_run: Path, sr_folder: Path, tmp_path: Path):
    src = sr_folder / "sub03.nii.gz"
    out = tmp_path / "sr.nii.gz"
    assert main(["infer", "--run", str(trained_run), str(src), str(out)]) == 0
    a, b = read_nifti(src), read_nifti(out)
    assert b.shape == a.shape
    np.testing.assert_allclose(b.affine, a.affine)
    assert np.isfinite(b.data).all() and b.data.std() > 0


def test_infer_dicom_in_dicom_out(trained_run: Path, sr_folder: Path, tmp_path: Path):
    dicom_in = tmp_path / "dicom_in"
    write_dicom_series(read_nifti(sr_folder / "sub03.nii.gz"), dicom_in)
    source = read_dicom_series(dicom_in)
    assert (
        main(["infer", "--run", str(trained_run), str(dicom_in), str(tmp_path / "dicom_out")]) == 0
    )
    derived = read_dicom_series(tmp_path / "dicom_out")
    np.testing.assert_allclose(derived.affine, source.affine, atol=1e-4)
    assert derived.meta["SeriesInstanceUID"] != source.meta["SeriesInstanceUID"]
    assert derived.meta["StudyInstanceUID"] == source.meta["StudyInstanceUID"]


def test_infer_bad_inputs_fail_cleanly(trained_run: Path, tmp_path: Path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    corrupt = work / "corrupt.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b not really gzip")
    out = work / "out.nii.gz"
    assert main(["infer", "--run", str(trained_run), str(corrupt), str(out)]) == 2
    assert "corrupt.nii.gz" in capsys.readouterr().err
    assert [p.name for p in work.iterdir()] == ["corrupt.nii.gz"]  # nothing half-written
    assert main(["infer", "--run", str(work), str(corrupt), str(out)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("mrilearn 0.")


def test_global_options_after_the_command_and_overrides_anywhere(config_file, monkeypatch):
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setenv("MRILEARN_QUIET", "")
    path = config_file(train={"iterations": 2, "val_every": 0, "checkpoint_every": 0})
    try:
        assert main(["train", "--threads", "1", "-q", str(path), "train.iterations=2"]) == 0
        assert torch.get_num_threads() == 1
        assert main(["train", str(path), "--resume", "train.iterations=3", "-v"]) == 0
    finally:
        torch.set_num_threads(threads)
    cfg = load_config(path)
    from mrilearn.engine.checkpoint import load_checkpoint

    latest = Path(cfg.output_dir) / cfg.experiment / "checkpoints" / "latest.pt"
    assert load_checkpoint(latest)["iteration"] == 3
    with pytest.raises(SystemExit) as exit_:
        main(["info", "stray=1"])  # a command without overrides
    assert exit_.value.code == 2


def test_info_shows_a_components_arguments(capsys):
    assert main(["info", "--component", "MarginCrop"]) == 0
    out = capsys.readouterr().out
    assert "MarginCrop (inferer)" in out
    assert "margin: int (default 3)" in out and "roi_size: list[int] (default [70, 70, 70])" in out
    assert main(["info", "--component", "MarginCorp"]) == 2
    assert "did you mean MarginCrop" in capsys.readouterr().err


def test_packaged_configs_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["configs"]) == 0
    listing = capsys.readouterr().out
    assert "sr/demo_mni152" in listing and "seg/demo_synthetic" in listing
    assert main(["configs", "show", "sr/demo_mni152"]) == 0
    assert "MarginCrop" in capsys.readouterr().out
    assert main(["configs", "copy", "sr/base", "my.yaml"]) == 0
    assert load_config(tmp_path / "my.yaml").experiment == load_config("sr/base").experiment
    assert main(["configs", "copy", "sr/demo_mni152", "demo.yaml"]) == 0  # has a _base_
    assert "_base_: sr/base" in (tmp_path / "demo.yaml").read_text()
    assert load_config(tmp_path / "demo.yaml") == load_config("sr/demo_mni152")
    assert main(["configs", "copy", "sr/base", "my.yaml"]) == 2  # never overwrites
    assert main(["configs", "show", "sr/nope"]) == 2

    small = ["train.iterations=2", "train.val_every=2", "data.patch_size=[12,12,12]",
             "data.val_patches=1", "train.batch_size=1", "evaluation.figures=false",
             "model.blocks=1", "model.units=2", f"output_dir={tmp_path / 'runs'}"]  # fmt: skip
    assert main(["train", "sr/demo_mni152", *small]) == 0
    assert (tmp_path / "runs" / "demo_mni152" / "checkpoints" / "latest.pt").is_file()


def test_the_command_line_starts_without_heavy_imports():
    """``mrilearn --help`` (every command's parser) imports no numerical library: a shell
    loop over files pays the start-up once per file."""
    code = (
        "import sys; from mrilearn.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'numpy', 'scipy', 'monai', 'pydicom', 'nibabel', "
        "'matplotlib', 'tqdm') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
