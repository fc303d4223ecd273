"""Device choice: auto falls back to what exists, an explicit device that is not there is a
one-line error naming the devices found, ``--device`` wins over the config, and a checkpoint
written on a GPU loads (and resumes) on the CPU."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from mrilearn.cli import main
from mrilearn.config import load_config
from mrilearn.engine.checkpoint import load_checkpoint
from mrilearn.engine.device import DEVICE_ENV, available_devices, resolve_device
from mrilearn.engine.distributed import DistInfo
from mrilearn.errors import ConfigError
from mrilearn.runs import build_trainer, load_run, train_run


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in {d.split(":")[0] for d in available_devices()}
    assert "cpu" in available_devices()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_gpu_is_one_line_naming_the_devices():
    with pytest.raises(ConfigError) as err:
        resolve_device("cuda")
    assert "\n" not in str(err.value) and "found: cpu" in str(err.value)
    with pytest.raises(ConfigError, match="expected one of auto, cpu"):
        resolve_device("tpu")


def as_if_saved_on_cuda(path: Path) -> None:
    """Rewrite a checkpoint so that every tensor's storage says it lived on cuda:0."""
    with zipfile.ZipFile(path) as z:
        entries = [(info, z.read(info)) for info in z.infolist()]
    cpu, cuda = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"  # pickle BINUNICODE
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for info, data in entries:
            if info.filename.endswith("data.pkl"):
                assert cpu in data
                data = data.replace(cpu, cuda)
            z.writestr(info, data)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_checkpoint_saved_on_a_gpu_loads_on_the_cpu(config_file):
    cfg = load_config(config_file(train={"iterations": 2, "val_every": 0, "checkpoint_every": 0}))
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    latest = run / "checkpoints" / "latest.pt"
    expected = torch.load(latest, weights_only=True)["nets"]["G"]
    as_if_saved_on_cuda(latest)
    with pytest.raises(RuntimeError, match="CUDA"):  # the tag took: torch wants a GPU for it
        torch.load(latest, weights_only=True)
    trainer = load_run(run, "latest")
    assert trainer.device == torch.device("cpu")
    for k, v in trainer.nets["G"].state_dict().items():
        assert v.device.type == "cpu" and torch.equal(v, expected[k]), k
    train_run(load_config(config_file(train={"iterations": 3})), True, False, 1)  # and resumes
    assert load_checkpoint(latest)["iteration"] == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_on_the_command_line_wins_over_the_config(config_file, capsys, monkeypatch):
    monkeypatch.delenv(DEVICE_ENV)  # the tests' own --device cpu
    path = config_file(train={"iterations": 2, "val_every": 0, "device": "cuda"})
    assert main(["train", str(path)]) == 2  # the config asks for a GPU this machine lacks
    err = capsys.readouterr().err.strip()
    assert err == "mrilearn: error: device 'cuda' is not available here (found: cpu)"
    run = Path(load_config(path).output_dir) / "tiny"
    assert not run.exists()  # bad input changes nothing
    assert main(["--device", "cpu", "train", str(path)]) == 0
    assert load_run(run, "latest").device == torch.device("cpu")
    assert main(["infer", "--device", "cuda:1", "--run", str(run), "a.nii", "b.nii"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_explicit_cpu_device(config_file):
    cfg = load_config(config_file(train={"device": "cpu", "iterations": 1}))
    trainer = build_trainer(cfg, Path(cfg.output_dir) / "cpu")
    assert trainer.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in trainer.nets["G"].parameters())
    assert trainer.next_batch()["image"].device.type == "cpu"


def test_sync_bn_needs_cuda_processes(config_file):
    cfg = load_config(config_file(train={"sync_bn": True}))
    with pytest.raises(ConfigError, match="sync_bn needs CUDA"):
        build_trainer(cfg, Path(cfg.output_dir) / "x", DistInfo(0, 2, 0, 2))
