"""MALIBU end to end on a tiny generated data set: generation (resumable), training beats the
back-projection U0 on held-out subjects, evaluation outputs, recon --method malibu, configs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import config_dir

from mrilearn.apps.malibu.data import read_subject
from mrilearn.cli import main
from mrilearn.config import load_config
from mrilearn.engine.precision import PRECISION_ENV
from mrilearn.runs import build_trainer, load_run, train_run

CONFIGS = config_dir("malibu")
TINY = str(config_dir("mtmri") / "tiny.yaml")
# tiny.yaml: 32², 4 coils, 800 readouts, L = 6, 4 cardiac x 2 respiratory bins, ADMM 4 x 5
DATA_OVERRIDES = ["recon.admm_iterations=4"]
SUBJECTS = 6


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    import torch

    out = tmp_path_factory.mktemp("malibu") / "data"
    # one thread, as the single_thread fixture: the tiny recons' torch ops on busy cores
    args = ["--threads", "1", "simulate", "mtmri-dataset", TINY, *DATA_OVERRIDES, "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        assert main([*args, "--subjects", str(SUBJECTS - 1)]) == 0
        first = (out / "sub0000.npz").stat().st_mtime_ns
        assert main([*args, "--subjects", str(SUBJECTS)]) == 0  # resumes: only the new subject
        assert (out / "sub0000.npz").stat().st_mtime_ns == first
    finally:
        torch.set_num_threads(threads)
    return out


def _config(dataset: Path, tmp: Path, extra: list[str]) -> object:
    path = CONFIGS / "quick_mdcn.yaml"
    return load_config(
        str(path),
        [
            f"data.source={dataset}", "data.split=[0.5,0.17,0.0,0.33]", "data.crop=16",
            f"output_dir={tmp}", "model.rank=6", "train.threads=1", "train.ema=null", *extra,
        ],
    )  # fmt: skip


def test_dataset_is_complete_and_distinct(dataset: Path):
    rows = list(csv.DictReader(open(dataset / "manifest.csv")))
    assert [r["subject"] for r in rows] == [f"sub{i:04d}" for i in range(SUBJECTS)]
    a, b = read_subject(dataset / "sub0000.npz"), read_subject(dataset / "sub0001.npz")
    assert a.u0.shape == a.u.shape == (6, 32, 32) and a.phi.shape[0] == 6
    hr = [s.meta["simulation"]["phantom"]["heart_rate_bpm"] for s in (a, b)]
    assert hr[0] != hr[1] and not np.allclose(np.abs(a.phi), np.abs(b.phi))


@pytest.fixture(scope="module")
def run(dataset: Path, tmp_path_factory) -> Path:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = _config(
            dataset, tmp_path_factory.mktemp("runs"),
            ["train.iterations=150", "train.val_every=50", "train.checkpoint_every=0"],
        )  # fmt: skip
        return train_run(cfg, resume=False, overwrite=False, devices=1)
    finally:
        torch.set_num_threads(threads)


def test_network_beats_back_projection_on_held_out_subjects(run: Path, single_thread):
    trainer = load_run(run)
    result = trainer.evaluate("test", run)
    ps = result["per_subject"]
    net, u0 = np.mean(ps["MDCN"]["U_nrmse"]), np.mean(ps["U0"]["U_nrmse"])
    # measured: network 0.139 vs least-squares-scaled U0 0.256 (150 iterations, 2 test subjects)
    assert net < 0.8 * u0, (net, u0)
    assert {r["metric"] for r in result["table"]} >= {"U_nrmse", "bright_ssim", "dark_psnr"}
    assert result["speed"]["speedup"] > 1
    assert set(result["t1_agreement"]["myocardium"]) >= {"MDCN vs iterative", "MDCN vs truth"}
    assert (run / "results.md").is_file() and (run / "figures" / "bland_altman.png").is_file()
    saved = json.loads((run / "evaluation.json").read_text())
    assert saved["subjects"] == result["subjects"]


def test_recon_with_malibu_writes_outputs(run: Path, tmp_path: Path, single_thread, capsys):
    scan = tmp_path / "scan.npz"
    assert main(["simulate", "mtmri", TINY, "simulate.seed=99", "--out", str(scan)]) == 0
    out = tmp_path / "recon"
    args = ["recon", TINY, "--data", str(scan), "--out", str(out), "--method", "malibu"]
    assert main([*args, "--run", str(run)]) == 0
    assert "network_s" in capsys.readouterr().out
    with np.load(out / "recon.npz") as f:
        assert f["u"].shape == (6, 32, 32) and np.isfinite(f["t1"]).all()
    assert (out / "figures" / "t1_map.png").is_file() and (out / "report.html").is_file()


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.iterdir()))
def test_every_malibu_config_trains_two_iterations(config, dataset, tmp_path, single_thread):
    small = [
        f"data.source={dataset}", "data.crop=16", f"output_dir={tmp_path}", "model.rank=6",
        "model.growth=2", "train.batch_size=1", "train.val_every=1", "train.checkpoint_every=0",
        "train.iterations=2",
    ]  # fmt: skip
    cfg = load_config(str(CONFIGS / config), small)
    if cfg.model["name"] == "MDCN":
        cfg = load_config(str(CONFIGS / config), [*small, "model.blocks=2"])
    trainer = build_trainer(cfg, tmp_path / "run")
    assert trainer.fit()
    assert (trainer.nets["G"].label_scale > 0).all()


@pytest.mark.parametrize("channel_norm", [False, True])
def test_series_loss_is_the_t1_curve_error_in_units_of_u(dataset: Path, channel_norm: bool):
    """series_l1 on normalised maps equals mean |ΔU Φ_T1| computed from U itself, divided by
    the label's mean normalisation scale, with one or per-channel statistics."""
    import torch

    from mrilearn.apps.malibu.data import MalibuMaps, curve_basis, unpack
    from mrilearn.apps.malibu.trainer import series_l1

    maps = MalibuMaps(str(dataset), split=[0.5, 0.17, 0.0, 0.33], channel_norm=channel_norm)
    subject = maps.subjects("train")[0]
    _, y, norm = maps.pair(subject)
    rng = np.random.default_rng(0)
    pred = y + rng.normal(0, 0.3, y.shape).astype(np.float32)
    batch = {
        "target": torch.from_numpy(y[None]),
        **{k: torch.from_numpy(v[None]) for k, v in maps.series_terms(subject, norm).items()},
    }
    got = series_l1(torch.from_numpy(pred[None]), batch).item()
    du = unpack(norm.invert(pred)) - unpack(norm.invert(y))
    basis = curve_basis(subject.phi, subject.meta["t1_cardiac_bin"])
    curves = np.tensordot(basis, du, axes=([0], [0]))  # (TI, H, W)
    scale = np.broadcast_to(norm.std.reshape(-1), (y.shape[0],)).mean()
    np.testing.assert_allclose(got, np.abs(curves).mean() / scale, rtol=1e-3)
    assert np.linalg.norm(basis) == pytest.approx(np.sqrt(basis.shape[0]), rel=1e-5)


def test_trains_in_bf16_with_the_series_loss(dataset, tmp_path, single_thread, monkeypatch):
    monkeypatch.delenv(PRECISION_ENV)  # quick_mdcn has the T1-curve loss (complex einsum)
    small = ["train.precision=bf16", "train.iterations=2", "train.val_every=1",
             "train.checkpoint_every=0", "model.growth=2", "model.blocks=2"]  # fmt: skip
    trainer = build_trainer(_config(dataset, tmp_path, small), tmp_path / "run")
    assert trainer.amp.dtype is torch.bfloat16 and trainer.series_weight > 0
    assert trainer.fit()
    assert all(torch.isfinite(p).all() for p in trainer.nets["G"].parameters())


def test_nothing_that_goes_to_the_device_is_float64(dataset, tmp_path):
    """Training batches and the network's buffers are float32/complex64: MPS has no float64."""
    trainer = build_trainer(_config(dataset, tmp_path, []), tmp_path / "run")
    batch = trainer.data.train_batch(2, torch.Generator().manual_seed(0))
    tensors = [*batch.values(), *trainer.nets["G"].state_dict().values()]
    assert {t.dtype for t in tensors} <= {torch.float32, torch.complex64}
