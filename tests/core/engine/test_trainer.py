"""The training engine: run directory, checkpoints, pause/resume bit-for-bit, DDP semantics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mrilearn.config import load_config
from mrilearn.engine.checkpoint import load_checkpoint, save_checkpoint
from mrilearn.errors import CheckpointError
from mrilearn.runs import build_trainer, load_run, train_run


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["nets"]["G"]


def assert_same_weights(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 0.0
) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)


def test_run_directory_contents(config_file):
    cfg = load_config(config_file())
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    ck = run / "checkpoints"
    assert {p.name for p in ck.iterdir()} == {
        "latest.pt",
        "best.pt",
        "iter_0000005.pt",
        "iter_0000010.pt",
    }
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if "train/loss" in r] == [2, 4, 6, 8, 10]
    assert [r["iteration"] for r in records if "val/loss" in r] == [5, 10]
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file()
    assert any((run / "tensorboard").iterdir())
    html = (run / "report.html").read_text()
    assert "loss_curves.png" in html and (run / "figures" / "loss_curves.png").is_file()
    state = load_checkpoint(ck / "latest.pt")
    assert state["trainer"] == "SRTrainer" and state["iteration"] == 10
    assert state["config"]["model"]["name"] == "MDCSRN"
    # best is the checkpoint with the lowest validation loss
    val = {r["iteration"]: r["val/loss"] for r in records if "val/loss" in r}
    assert load_checkpoint(ck / "best.pt")["iteration"] == min(val, key=val.get)


def test_existing_run_is_not_overwritten_silently(config_file):
    cfg = load_config(config_file(train={"iterations": 2, "val_every": 0, "checkpoint_every": 0}))
    train_run(cfg, resume=False, overwrite=False, devices=1)
    with pytest.raises(Exception, match="already holds a run; use --resume"):
        train_run(cfg, resume=False, overwrite=False, devices=1)


@pytest.mark.parametrize("ema", [None, 0.9])
def test_pause_and_resume_is_bit_for_bit(config_file, tmp_path: Path, ema):
    straight = load_config(config_file(train={"ema": ema}), ["experiment=straight"])
    train_run(straight, resume=False, overwrite=False, devices=1)

    paused = load_config(config_file(train={"ema": ema}), ["experiment=paused"])
    run = Path(paused.output_dir) / "paused"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(paused.dump())
    trainer = build_trainer(paused, run)
    original = trainer.train_step

    def step_then_stop(batch):  # a pause request arriving during iteration 7
        out = original(batch)
        if trainer.iteration == 6:
            trainer.request_stop()
        return out

    trainer.train_step = step_then_stop
    assert trainer.fit() is False
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["iteration"] == 7
    train_run(paused, resume=True, overwrite=False, devices=1)

    a = Path(straight.output_dir) / "straight" / "checkpoints"
    b = run / "checkpoints"
    assert_same_weights(weights(a / "latest.pt"), weights(b / "latest.pt"))
    assert load_checkpoint(b / "latest.pt")["optims"]["G"]["state"][0]["step"] == 10
    averages = [load_checkpoint(x / "latest.pt")["averages"] for x in (a, b)]
    assert bool(averages[0]) == (ema is not None)
    if ema:
        assert_same_weights(averages[0]["G"], averages[1]["G"])
    # metrics written after the pause point were not duplicated
    iters = [
        json.loads(line)["iteration"] for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert iters == sorted(iters)


def test_sigterm_pauses_and_resume_matches(config_file, tmp_path: Path):
    """A real process killed with SIGTERM saves, exits, and resumes to identical weights."""
    # enough iterations that the signal arrives mid-run even when the loop is fast
    slow = {"iterations": 300, "val_every": 0, "checkpoint_every": 0, "log_every": 1}
    path = config_file(train=slow)
    cfg = load_config(path)
    train_run(load_config(path, ["experiment=straight"]), resume=False, overwrite=False, devices=1)

    cmd = [sys.executable, "-m", "mrilearn", "train", str(path), "experiment=killed"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = Path(cfg.output_dir) / "killed" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (
        not metrics.is_file() or len(metrics.read_text().splitlines()) < 3
    ):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err  # paused, not failed
    assert "continue with --resume" in err
    latest = Path(cfg.output_dir) / "killed" / "checkpoints" / "latest.pt"
    assert 0 < load_checkpoint(latest)["iteration"] < slow["iterations"]

    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    straight = Path(cfg.output_dir) / "straight" / "checkpoints" / "latest.pt"
    assert_same_weights(weights(straight), weights(latest))


def test_interrupted_checkpoint_write_keeps_previous(tmp_path: Path, monkeypatch):
    path = tmp_path / "latest.pt"
    good = {"trainer": "T", "iteration": 1, "config": {}, "nets": {"G": {"w": torch.ones(3)}}}
    save_checkpoint(good, path)

    def broken_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({**good, "iteration": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_bad_checkpoints_are_clear_errors(config_file, tmp_path: Path):
    cfg = load_config(config_file(train={"iterations": 2, "val_every": 0, "checkpoint_every": 0}))
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    latest = run / "checkpoints" / "latest.pt"

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: cannot read checkpoint safely"):
        load_checkpoint(tmp_path / "junk.pt")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": 1, "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot read checkpoint safely"):
        load_checkpoint(tmp_path / "evil.pt")

    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")

    other = load_config(config_file(model={"growth": 5}))
    trainer = build_trainer(other, run)
    with pytest.raises(CheckpointError, match="weights do not fit the configured model"):
        trainer.load_state(load_checkpoint(latest), str(latest), weights_only=True)

    from_ddp = {**load_checkpoint(latest), "world_size": 2}
    with pytest.raises(CheckpointError, match="resume with --devices 2"):
        build_trainer(cfg, run).load_state(from_ddp, str(latest))


def test_load_run_rebuilds_the_trained_model(config_file):
    cfg = load_config(config_file(train={"iterations": 2, "val_every": 0, "checkpoint_every": 0}))
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    trainer = load_run(run, "best")  # no validation: falls back to latest
    assert_same_weights(trainer.nets["G"].state_dict(), weights(run / "checkpoints" / "latest.pt"))
    assert not trainer.nets["G"].training


def test_weight_average_is_an_ema_and_is_what_validation_and_inference_use(config_file):
    decay = 0.8
    cfg = load_config(config_file(train={"ema": decay, "checkpoint_every": 1, "val_every": 5}))
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    ck = run / "checkpoints"
    raw = [weights(ck / f"iter_{i:07d}.pt") for i in range(1, 11)]
    trainer = load_run(run, "latest")
    for name, param in trainer.nets["G"].named_parameters():
        expected = raw[0][name]  # the average starts at the weights after the first step
        for w in raw[1:]:
            expected = decay * expected + (1 - decay) * w[name]
        torch.testing.assert_close(param.detach(), expected, rtol=1e-5, atol=1e-6, msg=name)
        assert not torch.equal(param.detach(), raw[-1][name])  # not the raw weights
    # validation ran on the averaged weights: re-validating them gives the logged value
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = next(r["val/loss"] for r in records if r["iteration"] == 10 and "val/loss" in r)
    with torch.no_grad():
        assert trainer.validate()["val/loss"] == pytest.approx(logged, rel=1e-5)
