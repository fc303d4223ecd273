"""MC-dropout uncertainty (§8.4.2): deterministic without dropout, BatchNorm kept in eval,
non-zero maps with dropout, SR uncertainty that tracks the error on held-out subjects, and
entropy / mutual information for segmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import config_dir, sr_config, write_phantoms
from torch import nn

from mrilearn.cli import main
from mrilearn.config import load_config
from mrilearn.inference.uncertainty import MCDropout, mc_predict, uncertainty_error_relation
from mrilearn.io import Volume, read_nifti
from mrilearn.runs import build_trainer, load_run


def train_sr(tmp: Path, dropout: float, iterations: int, seed: int) -> Path:
    """A tiny MDCSRN trained on 10 phantoms split 5:1:0:4; returns the run directory."""
    write_phantoms(tmp / "hr", range(10), np.eye(4))
    cfg = sr_config(
        tmp / "hr",
        tmp / "runs",
        experiment="mc",
        seed=seed,
        data={"split": [5, 1, 0, 4]},
        model={"dropout": dropout},
        optim={"lr": 3e-3},
        scheduler=None,
        evaluation=None,
        train={"iterations": iterations, "batch_size": 4, "val_every": 0, "checkpoint_every": 0},
    )
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp / "config.yaml")]) == 0
    return tmp / "runs" / "mc"


def test_one_sample_without_dropout_is_deterministic_inference(tmp_path, single_thread):
    trainer = load_run(train_sr(tmp_path, 0.0, 2, 3), "latest")
    volume = read_nifti(tmp_path / "hr" / "s00.nii.gz")
    expected = trainer.infer_volume(volume).data
    for samples in (1, 3):
        result = mc_predict(trainer, volume, samples)
        np.testing.assert_allclose(result.prediction.data, expected, rtol=1e-6, atol=1e-6)
        assert not result.maps["std"].data.any()


def test_mc_dropout_samples_dropout_only():
    net = nn.Sequential(nn.Conv3d(1, 2, 3), nn.BatchNorm3d(2), nn.Dropout(0.5))
    wrapped = MCDropout(net).eval()
    assert not net[1].training and net[2].training
    net.classes = 2
    assert wrapped.classes == 2  # attributes of the wrapped net stay visible to inferers


def test_infer_samples_writes_mean_and_uncertainty(tmp_path, single_thread):
    run = train_sr(tmp_path, 0.2, 2, 3)
    out = tmp_path / "out" / "sr.nii.gz"
    src = tmp_path / "hr" / "s07.nii.gz"
    assert main(["infer", "--run", str(run), "--samples", "4", str(src), str(out)]) == 0
    std = read_nifti(out.parent / "sr_std.nii.gz")
    assert std.shape == read_nifti(src).shape and (out.parent / "sr_std.png").is_file()
    foreground = read_nifti(src).data > 0.1
    assert (std.data[foreground] > 0).mean() > 0.9  # dropout everywhere: nearly all voxels vary


def test_sr_uncertainty_tracks_error_on_held_out_subjects(tmp_path, single_thread):
    run = train_sr(tmp_path, 0.1, 40, 4)
    assert main(["uncertainty", "--run", str(run), "--checkpoint", "latest"]) == 0
    result = json.loads((run / "uncertainty.json").read_text())
    # measured: Spearman 0.27 over 10065 voxels of 4 test subjects (seeds 3/5 gave 0.10/0.32)
    assert result["subjects"] == 4 and result["spearman"] > 0.1
    errors = result["bins"]["abs_error"]
    assert errors[-1] > 1.5 * errors[0]  # most uncertain decile: larger error (measured 2.6x)
    assert (run / "figures" / "reliability.png").is_file()


def test_relation_of_perfectly_tracking_uncertainty():
    u = np.linspace(0, 1, 1000)
    r = uncertainty_error_relation(u, 2 * u, bins=4)
    assert r["spearman"] == pytest.approx(1.0) and r["bins"]["count"] == [250] * 4


def test_segmentation_entropy_and_mutual_information(tmp_path, single_thread):
    config = config_dir("seg") / "demo_synthetic.yaml"
    cfg = load_config(
        str(config), ["model.growth=4", "model.units=1", "model.levels=2", "model.dropout=0.3",
                      "inference.views=[axial]", f"output_dir={tmp_path}"],
    )  # fmt: skip
    trainer = build_trainer(cfg, tmp_path)
    torch.manual_seed(0)
    volume = Volume(np.random.default_rng(0).random((24, 20, 12), np.float32), np.eye(4) * 4)
    volume.affine[3, 3] = 1
    result = mc_predict(trainer, volume, 3)
    h, mi = result.maps["entropy"].data, result.maps["mutual_information"].data
    assert result.prediction.shape == volume.shape == h.shape == mi.shape
    assert (mi >= 0).all() and (h >= mi - 1e-6).all() and mi.max() > 0
