"""Mixed precision: what ``auto`` picks, the errors and warnings, and a bf16 GAN critic step
(double backward of the gradient penalty under autocast) that lowers its loss."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from mrilearn.config import load_config
from mrilearn.engine import precision
from mrilearn.engine.precision import PRECISION_ENV, MixedPrecision, resolve_precision
from mrilearn.errors import ConfigError
from mrilearn.losses.adversarial import gradient_penalty, wgan_critic_loss
from mrilearn.runs import build_trainer

CPU = torch.device("cpu")


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV)


@pytest.mark.usefixtures("no_override")
@pytest.mark.parametrize("flags", [(), ("avx512_bf16",), ("amx_bf16",)])
def test_auto_is_fp32_on_the_cpu_and_bf16_warns_without_native_kernels(monkeypatch, caplog, flags):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: flags)
    assert resolve_precision("auto", CPU) == "fp32"  # bf16 training measured slower on CPUs
    # a GPU run inferring here keeps bf16 only where it is native
    assert resolve_precision("bf16", CPU, inherited=True) == ("bf16" if flags else "fp32")
    assert resolve_precision("fp16", CPU, inherited=True) == "fp32"
    precision._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, "mrilearn.engine.precision"):
        assert resolve_precision("bf16", CPU) == "bf16"  # explicit: honoured
    assert ("74× slower than fp32" in caplog.text) == (not flags)


@pytest.mark.usefixtures("no_override")
def test_fp16_on_the_cpu_and_unknown_names_are_one_line_errors(monkeypatch):
    with pytest.raises(ConfigError, match="fp16 needs a GPU") as err:
        resolve_precision("fp16", CPU)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="expected one of auto, fp32, bf16, fp16"):
        resolve_precision("fp8", CPU)
    monkeypatch.setenv(PRECISION_ENV, "fp32")  # --precision wins over the config
    assert resolve_precision("bf16", CPU) == "fp32"


def test_no_scaler_without_cuda_fp16():
    amp = MixedPrecision("bf16", CPU)
    assert not amp.scaler.is_enabled() and amp.loss_scale == 1.0 and amp.state_dict() == {}
    amp.load_state_dict({"scale": 8.0})  # a scaler state from an fp16 GPU run: ignored here


@pytest.mark.usefixtures("no_override", "single_thread")
def test_bf16_wgan_critic_step_with_gradient_penalty_lowers_the_loss(config_file, tmp_path: Path):
    tiny_d = {"name": "Discriminator3d", "channels": [4, 8], "dense": 8, "norm": "layer"}
    trainer_spec = {"name": "WGANTrainer", "discriminator": tiny_d, "warmup_d": 100}
    cfg = load_config(config_file(trainer=trainer_spec, train={"precision": "bf16"}))
    trainer = build_trainer(cfg, tmp_path / "gan")
    assert trainer.amp.dtype is torch.bfloat16
    gen = torch.Generator().manual_seed(0)
    batch = trainer.data.train_batch(2, gen)
    hr = batch["target"]
    with torch.no_grad():
        sr = trainer.nets["G"](batch["image"])

    def critic_loss() -> float:
        torch.manual_seed(0)  # the same interpolates for the penalty each time
        with trainer.amp.autocast():
            real, fake = trainer.critic(hr), trainer.critic(sr)
            gp = gradient_penalty(trainer.critic, hr, sr)
            assert real.dtype is torch.bfloat16  # the critic ran in bf16
        return (wgan_critic_loss(real, fake) + trainer.gp_weight * gp).item()

    before = critic_loss()
    for _ in range(5):
        with trainer.amp.autocast():
            stats = trainer.discriminator_step(batch, hr, sr)
        assert stats["gp"] > 0
    assert critic_loss() < before
    d = trainer.nets["D"]
    assert all(p.dtype is torch.float32 and torch.isfinite(p).all() for p in d.parameters())
