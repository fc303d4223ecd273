"""GAN trainers on tiny data: schedules, domain mixing, F's accuracy, bit-for-bit resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mrilearn.config import load_config
from mrilearn.engine.checkpoint import load_checkpoint
from mrilearn.engine.precision import PRECISION_ENV
from mrilearn.errors import CheckpointError
from mrilearn.runs import build_trainer, load_run, train_run

TINY_D = {"name": "Discriminator3d", "channels": [4, 8], "dense": 8, "norm": "layer"}
TINY_F = {"name": "FeatureDiscriminator", "channels": [8], "dense": 8, "norm": "layer"}
pytestmark = pytest.mark.usefixtures("single_thread")
FAST = {"iterations": 6, "val_every": 3, "log_every": 1, "checkpoint_every": 0}


@pytest.fixture
def domain_manifest(sr_folder: Path) -> Path:
    """The ten phantoms tagged as two domains, a (4 subjects) and b (6)."""
    files = sorted(sr_folder.iterdir())
    rows = ["subject,image,domain"] + [
        f"{f.name.split('.')[0]},{f.name},{'a' if i < 4 else 'b'}" for i, f in enumerate(files)
    ]
    path = sr_folder / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def wgan_cfg(config_file, **trainer):
    spec = {"name": "WGANTrainer", "discriminator": TINY_D, "n_critic": 2, "warmup_d": 2, **trainer}
    return load_config(config_file(trainer=spec, train=FAST))


def dragan_cfg(config_file, manifest, name="DRAGANTrainer", **trainer):
    spec = {
        "name": name, "discriminator": TINY_D, "feature_discriminator": TINY_F,
        "lambda_p_ramp": 4, "lr_d": 1e-4, "lr_f": 1e-3, **trainer,
    }  # fmt: skip
    data = {"source": str(manifest), "domains": ["a", "b"], "domain_ratio": [1.0, 1.0]}
    return load_config(config_file(trainer=spec, data=data, train=FAST))


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_wgan_schedule_and_wasserstein_logged(config_file):
    cfg = wgan_cfg(config_file, extra_d_every=1, extra_d_steps=1)
    trainer = build_trainer(cfg, Path(cfg.output_dir) / "sched")
    # warm-up 2, then [D, D+G] (n_critic 2) per G step, one extra D step after each G step
    due = [trainer.generator_step_due(i) for i in range(9)]
    assert due == [False, False, False, True, False, False, True, False, False]
    run = train_run(wgan_cfg(config_file), resume=False, overwrite=False, devices=1)
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert state["optims"]["D"]["state"][0]["step"] == 6
    assert state["optims"]["G"]["state"][0]["step"] == 2  # iterations 4 and 6
    vals = [r for r in records(run) if "val/wasserstein" in r]
    assert [r["iteration"] for r in vals] == [3, 6]
    assert all("train/gp" in r for r in records(run) if "train/d_loss" in r)


def test_wgan_init_from_missing_run_is_a_clear_error_at_training(config_file, tmp_path):
    cfg = wgan_cfg(config_file, init_from=str(tmp_path / "nope"))
    trainer = build_trainer(cfg, tmp_path / "run")  # building is fine
    with pytest.raises(CheckpointError, match="is not a trained run"):
        trainer.fit()


def test_wgan_generator_starts_from_the_non_gan_run(config_file):
    pre = load_config(config_file(train={**FAST, "iterations": 2}), ["experiment=pre"])
    pre_run = train_run(pre, resume=False, overwrite=False, devices=1)
    cfg = load_config(
        config_file(
            trainer={"name": "WGANTrainer", "discriminator": TINY_D, "init_from": str(pre_run),
                     "warmup_d": 100},
            train={**FAST, "iterations": 1},
        ),
        ["experiment=gan"],
    )  # fmt: skip
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    g0 = load_checkpoint(pre_run / "checkpoints" / "latest.pt")["nets"]["G"]
    g1 = load_checkpoint(run / "checkpoints" / "latest.pt")["nets"]["G"]
    for k in g0:  # warm-up: G untouched, equal to the non-GAN weights
        torch.testing.assert_close(g0[k], g1[k], rtol=0, atol=0)


def test_domain_ratio_mixes_batches(domain_manifest, config_file):
    cfg = dragan_cfg(config_file, domain_manifest)
    trainer = build_trainer(cfg, Path(cfg.output_dir) / "x")
    gen = torch.Generator().manual_seed(0)
    batch = trainer.data.train_batch(64, gen)
    share = batch["domain"].float().mean().item()
    assert batch["domain"].shape == (64,) and 0.35 < share < 0.65
    assert trainer.lambda_p(0) == 0 and trainer.lambda_p(2) == 0.5 and trainer.lambda_p(9) == 1


def test_dragan_trains_logs_f_accuracy_and_ttur(domain_manifest, config_file):
    run = train_run(
        dragan_cfg(config_file, domain_manifest), resume=False, overwrite=False, devices=1
    )
    recs = records(run)
    train = [r for r in recs if "train/f_accuracy" in r]
    assert len(train) == 6 and all(0 <= r["train/f_accuracy"] <= 1 for r in train)
    assert [r["train/lambda_p"] for r in train] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert any("val/f_accuracy" in r for r in recs)
    first = next(r for r in recs if "lr/D" in r)  # before the StepLR decay
    assert (first["lr/G"], first["lr/D"], first["lr/F"]) == (1e-3, 1e-4, 1e-3)
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert {k: state["optims"][k]["state"][0]["step"] for k in "GDF"} == {"G": 6, "D": 6, "F": 6}
    assert (run / "figures" / "d_features_pca.png").is_file()


def test_dragan_without_regulariser_keeps_lambda_p_zero(domain_manifest, config_file):
    cfg = dragan_cfg(config_file, domain_manifest, regularize=False)
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    assert {r["train/lambda_p"] for r in records(run) if "train/lambda_p" in r} == {0.0}


@pytest.mark.parametrize("kind", ["wgan", "two_stage"])
def test_pause_and_resume_is_bit_for_bit(kind, domain_manifest, config_file):
    def cfg(name):
        base = (
            wgan_cfg(config_file)
            if kind == "wgan"
            else dragan_cfg(config_file, domain_manifest, "TwoStageDRAGANTrainer")
        )
        return load_config_dict(base, name)

    straight = cfg("straight")
    train_run(straight, resume=False, overwrite=False, devices=1)
    paused = cfg("paused")
    run = Path(paused.output_dir) / "paused"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(paused.dump())
    trainer = build_trainer(paused, run)
    original = trainer.train_step

    def step_then_stop(batch):
        out = original(batch)
        if trainer.iteration == 3:
            trainer.request_stop()
        return out

    trainer.train_step = step_then_stop
    assert trainer.fit() is False
    train_run(paused, resume=True, overwrite=False, devices=1)
    a = load_checkpoint(Path(straight.output_dir) / "straight" / "checkpoints" / "latest.pt")
    b = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert a["nets"].keys() == b["nets"].keys()
    for net in a["nets"]:
        for k in a["nets"][net]:
            torch.testing.assert_close(a["nets"][net][k], b["nets"][net][k], rtol=0, atol=0)
    if kind == "two_stage":  # inference chains the frozen stage 1 and G
        trainer = load_run(Path(straight.output_dir) / "straight", "latest")
        assert [type(m).__name__ for m in trainer.inference_net()] == ["MDCSRN", "MDCSRN"]
        assert all(not p.requires_grad for p in trainer.nets["S"].parameters())


def load_config_dict(cfg, name):
    from mrilearn.config import from_dict

    return from_dict({**cfg.to_dict(), "experiment": name})


def test_f_learns_two_clearly_different_domains_without_the_regulariser(
    domain_manifest, config_file
):
    """F's update (optimiser stepping, detached features, 0/1 labels repeated for HR and SR)
    must separate two trivially different domains: smooth blobs (a) vs fine stripes (b)."""
    cfg = dragan_cfg(config_file, domain_manifest, regularize=False, lr_f=1e-3)
    trainer = build_trainer(cfg, Path(cfg.output_dir) / "f")
    gen = torch.Generator().manual_seed(0)
    shape = trainer.data.train_batch(1, gen)["target"].shape[2:]
    stripes = (torch.arange(shape[0]) % 2).float().view(-1, 1, 1).expand(shape)
    accuracy = []
    for i in range(60):
        trainer.iteration = i
        domain = torch.randint(2, (4,), generator=gen)
        noise = 0.05 * torch.rand((4, 1, *shape), generator=gen)
        hr = noise + domain.view(-1, 1, 1, 1, 1) * stripes + (1 - domain.view(-1, 1, 1, 1, 1)) * 0.5
        batch = {"image": hr, "target": hr, "domain": domain}
        stats = trainer.discriminator_step(batch, hr, hr + 0.01)
        assert stats["lambda_p"] == 0.0
        accuracy.append(stats["f_accuracy"])
    assert sum(accuracy[-10:]) / 10 > 0.9, accuracy


def test_a_gan_run_evaluates_under_its_method_name(config_file):
    """evaluate() drew its prediction figure under the model name, not the GAN's method
    name (MDCSRN-WGAN), and failed with a KeyError on every GAN run."""
    run = train_run(wgan_cfg(config_file), resume=False, overwrite=False, devices=1)
    result = load_run(run, "latest").evaluate("test", run)
    assert "MDCSRN-WGAN" in result["per_subject"]
    assert any((run / "figures").glob("prediction_*.png"))


def test_wgan_keeps_the_checkpoint_with_the_smallest_em_distance(config_file):
    """§4.4.1: the GAN checkpoint with the smallest validation EM distance is ``best``."""
    spec = {"name": "WGANTrainer", "discriminator": TINY_D, "n_critic": 1, "warmup_d": 0}
    train = {**FAST, "val_every": 1, "best_metric": "val/em_distance", "best_mode": "min"}
    cfg = load_config(config_file(trainer=spec, train=train))
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    vals = [r for r in records(run) if "val/em_distance" in r]
    assert len(vals) == 6
    assert all(r["val/em_distance"] == abs(r["val/wasserstein"]) for r in vals)
    best = min(vals, key=lambda r: r["val/em_distance"])
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    assert state["iteration"] == best["iteration"]
    assert state["best"] == pytest.approx(best["val/em_distance"])


def test_dragan_trains_in_bf16(domain_manifest, config_file, monkeypatch):
    monkeypatch.delenv(PRECISION_ENV)
    cfg = dragan_cfg(config_file, domain_manifest)
    cfg.train.precision = "bf16"
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    last = [r for r in records(run) if "train/f_loss" in r][-1]
    assert all(np.isfinite(last[k]) for k in ("train/d_loss", "train/f_loss"))
