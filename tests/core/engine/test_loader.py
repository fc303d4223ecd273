"""Background data loading: the batches are a function of (seed, rank, iteration), so any
number of workers yields the same stream and a resumed run is bit-identical."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest
import torch

from mrilearn.config import load_config
from mrilearn.engine.checkpoint import load_checkpoint
from mrilearn.engine.loader import batch_stream
from mrilearn.engine.precision import PRECISION_ENV
from mrilearn.runs import build_trainer, train_run

CPU = torch.device("cpu")


def first_batches(trainer, workers: int, start: int, n: int = 5) -> list[dict]:
    stream = batch_stream(trainer.data, 2, 3, 0, start, workers, CPU)
    try:
        return list(itertools.islice(stream, n))
    finally:
        stream.close()


def test_workers_0_and_2_yield_the_same_batches(config_file, tmp_path: Path, caplog, monkeypatch):
    trainer = build_trainer(load_config(config_file()), tmp_path / "run")
    in_process = first_batches(trainer, 0, start=4)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    with caplog.at_level(logging.WARNING, "mrilearn.engine.loader"):
        background = first_batches(trainer, 2, start=4)
    assert "train.workers 2 is more than the 1 CPU cores" in caplog.text
    for a, b in zip(in_process, background, strict=True):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    # a stream started at iteration 6 continues the one started at 4: resuming needs no state
    later = first_batches(trainer, 0, start=6, n=3)
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(later, in_process[2:]))
    assert not torch.equal(in_process[0]["image"], in_process[1]["image"])


def pause_at(cfg, iteration: int) -> Path:
    """Train ``cfg`` until a pause request during ``iteration`` (1-based); returns the run."""
    run = Path(cfg.output_dir) / cfg.experiment
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(cfg.dump())
    trainer = build_trainer(cfg, run)
    original = trainer.train_step

    def step_then_stop(batch):
        out = original(batch)
        if trainer.iteration == iteration - 1:
            trainer.request_stop()
        return out

    trainer.train_step = step_then_stop
    assert trainer.fit() is False
    return run


@pytest.mark.parametrize(
    ("train", "resumed"),
    [
        ({"workers": 2}, ["train.workers=0"]),  # resumed with another number of workers
        ({"precision": "bf16", "workers": 0}, []),
    ],
    ids=["workers2", "bf16"],
)
def test_resume_is_bit_identical(config_file, monkeypatch, train, resumed):
    monkeypatch.delenv(PRECISION_ENV)
    path = config_file(train={"val_every": 0, "checkpoint_every": 0, **train})
    straight = train_run(load_config(path, ["experiment=straight"]), False, False, 1)
    paused = pause_at(load_config(path, ["experiment=paused"]), 6)
    assert load_checkpoint(paused / "checkpoints" / "latest.pt")["iteration"] == 6
    train_run(load_config(path, ["experiment=paused", *resumed]), True, False, 1)
    a, b = (load_checkpoint(r / "checkpoints" / "latest.pt") for r in (straight, paused))
    assert b["iteration"] == 10
    for k, v in a["nets"]["G"].items():
        assert torch.equal(v, b["nets"]["G"][k]), k
    if train.get("precision") == "bf16":  # autocast ran: bf16 differs from fp32 training
        fp32 = train_run(load_config(path, ["experiment=fp32", "train.precision=fp32"]), 0, 0, 1)
        other = load_checkpoint(fp32 / "checkpoints" / "latest.pt")["nets"]["G"]
        assert any(not torch.equal(v, other[k]) for k, v in a["nets"]["G"].items())
