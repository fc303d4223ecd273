"""On a CUDA machine: training on the GPU in bf16 resumes bit for bit, and a GPU run infers
on the CPU. Skipped without a GPU (``bench/gpu_check.py`` measures the rest)."""

from __future__ import annotations

import pytest
import torch

from mrilearn.config import load_config
from mrilearn.engine.checkpoint import load_checkpoint
from mrilearn.engine.device import DEVICE_ENV, device_override
from mrilearn.engine.precision import PRECISION_ENV
from mrilearn.runs import load_run, train_run

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_cuda_bf16_run_resumes_exactly_and_infers_on_the_cpu(config_file, monkeypatch):
    monkeypatch.delenv(PRECISION_ENV)
    monkeypatch.delenv(DEVICE_ENV)
    path = config_file(train={"device": "cuda", "precision": "bf16", "workers": 2})
    straight = train_run(load_config(path, ["experiment=straight"]), False, False, 1)
    short = load_config(path, ["experiment=resumed", "train.iterations=5"])
    run = train_run(short, False, False, 1)
    train_run(load_config(path, ["experiment=resumed"]), True, False, 1)
    a, b = (load_checkpoint(r / "checkpoints" / "latest.pt")["nets"]["G"] for r in (straight, run))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with device_override("cpu"):
        trainer = load_run(run, "latest")
    assert trainer.device.type == "cpu" and trainer.amp.name in ("fp32", "bf16")
