"""Deployable packages (§8.2.3, §8.4.1): export, safe loading, ONNX parity, DICOM description."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
import yaml
from conftest import sr_config, write_phantoms

from mrilearn.cli import main
from mrilearn.config import load_config
from mrilearn.deploy.onnx import OnnxNet
from mrilearn.deploy.package import WEIGHTS_FILE, load_package
from mrilearn.deploy.runtime import pick_runtime
from mrilearn.errors import CheckpointError
from mrilearn.io import read_nifti, write_dicom_series
from mrilearn.runs import load_run


@pytest.fixture(scope="module")
def run_and_package(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny trained SR run and its package with ONNX (built once for the module)."""
    tmp = tmp_path_factory.mktemp("deploy")
    write_phantoms(tmp / "hr", range(10), np.diag([1.0, 1.1, 1.2, 1.0]))
    train = {"iterations": 6, "val_every": 3, "checkpoint_every": 0}
    cfg = sr_config(tmp / "hr", tmp / "runs", scheduler=None, evaluation=None, train=train)
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", str(tmp / "config.yaml")]) == 0
        c = load_config(tmp / "config.yaml")
        run = Path(c.output_dir) / c.experiment
        assert main(["export", "--run", str(run), "--out", str(tmp / "pkg"), "--onnx"]) == 0
    finally:
        torch.set_num_threads(threads)
    return run, tmp / "pkg"


def test_package_gives_the_runs_outputs(run_and_package, single_thread):
    run, pkg = run_and_package
    info = json.loads((pkg / "package.json").read_text())
    assert info["io"]["task"] == "super-resolution" and info["io"]["spatial_dims"] == 3
    assert info["versions"]["torch"].startswith("2.13") and info["iteration"] == 6
    assert info["version_stamp"].startswith("tiny-it6-")
    volume = read_nifti(next(Path(load_run(run).cfg.data["source"]).glob("*.nii.gz")))
    expected = load_run(run).infer_volume(volume).data
    np.testing.assert_array_equal(load_package(pkg).infer_volume(volume).data, expected)


def test_onnx_parity_and_runtime(run_and_package, single_thread):
    run, pkg = run_and_package
    onnx = json.loads((pkg / "package.json").read_text())["onnx"]
    assert onnx["dynamic_axes"] and onnx["parity_max_abs_diff"] < 1e-4
    volume = read_nifti(next(Path(load_run(run).cfg.data["source"]).glob("*.nii.gz")))
    torch_out = load_package(pkg).infer_volume(volume).data
    onnx_out = load_package(pkg, "onnx").infer_volume(volume).data
    assert np.abs(onnx_out - torch_out).max() < 1e-4 * max(1.0, np.abs(torch_out).max())


def test_loading_never_unpickles(run_and_package, monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("unpickling while loading a package")

    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    load_package(run_and_package[1])


def test_tampered_or_incomplete_package_is_refused(run_and_package, tmp_path, capsys):
    bad = tmp_path / "pkg"
    shutil.copytree(run_and_package[1], bad)
    with open(bad / WEIGHTS_FILE, "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        load_package(bad)
    (bad / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_package(bad)
    assert main(["infer", "--run", str(bad), "in.nii.gz", "out.nii.gz"]) == 2
    assert "is missing" in capsys.readouterr().err


def test_dicom_out_names_the_model(run_and_package, tmp_path, single_thread):
    run, pkg = run_and_package
    source = next(Path(load_run(run).cfg.data["source"]).glob("*.nii.gz"))
    write_dicom_series(read_nifti(source), tmp_path / "in")
    assert main(["infer", "--run", str(pkg), str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    ds = pydicom.dcmread(next((tmp_path / "out").glob("*.dcm")))
    stamp = json.loads((pkg / "package.json").read_text())["version_stamp"]
    assert stamp in ds.SeriesDescription and stamp in ds.ImageComments
    assert "DERIVED" in ds.ImageType


def test_runtime_onnx_needs_a_package(run_and_package, capsys):
    assert main(["infer", "--run", str(run_and_package[0]), "--runtime", "onnx", "a", "b"]) == 2
    assert "needs an exported package" in capsys.readouterr().err


def test_auto_runtime_is_onnx_on_the_cpu_where_the_package_has_it(run_and_package):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert pick_runtime("auto", cpu, has_onnx=True) == "onnx"
    assert pick_runtime("auto", cpu, has_onnx=False) == "eager"
    assert pick_runtime("auto", gpu, has_onnx=True) == "eager"
    assert pick_runtime("torch", cpu, has_onnx=True) == "eager"  # the older name of eager
    assert pick_runtime("auto", cpu, has_onnx=True, precision="bf16") == "eager"  # autocast
    assert isinstance(load_package(run_and_package[1], "auto").inference_net(), OnnxNet)
    assert not isinstance(load_run(run_and_package[0], "best", "auto").inference_net(), OnnxNet)
