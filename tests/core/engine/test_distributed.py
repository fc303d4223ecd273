"""DDP with 2 CPU processes: one step equals a single-process step on both batches joined."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mrilearn.config import load_config
from mrilearn.engine.checkpoint import load_checkpoint
from mrilearn.engine.distributed import DistInfo, launch
from mrilearn.engine.loader import batch_generator
from mrilearn.errors import DataError, Reported
from mrilearn.runs import build_trainer


def test_two_process_ddp_matches_documented_semantics(config_file, tmp_path: Path):
    path = config_file(train={"iterations": 6, "val_every": 3, "checkpoint_every": 0})
    run = subprocess.run(
        [sys.executable, "-m", "mrilearn", "train", str(path), "--devices", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    cfg = load_config(path)
    ddp = load_checkpoint(Path(cfg.output_dir) / cfg.experiment / "checkpoints" / "latest.pt")
    assert ddp["world_size"] == 2 and len(ddp["rng"]["ranks"]) == 2  # each rank's random state

    # the same iterations in one process, on rank 0's and rank 1's batches concatenated
    single = build_trainer(cfg, tmp_path / "single")
    for it in range(cfg.train.iterations):
        streams = [batch_generator(cfg.seed, rank, it) for rank in range(2)]
        parts = [single.data.train_batch(cfg.train.batch_size, g) for g in streams]
        single.train_step({k: torch.cat([p[k] for p in parts]) for k in parts[0]})
        for sched in single.scheds.values():
            sched.step()
    for key, value in single.nets["G"].state_dict().items():
        torch.testing.assert_close(ddp["nets"]["G"][key], value, atol=1e-5, rtol=1e-4, msg=key)

    # and it differs from a single process seeing rank 0's batches only
    alone = build_trainer(cfg, tmp_path / "alone")
    for it in range(cfg.train.iterations):
        batch = alone.data.train_batch(cfg.train.batch_size, batch_generator(cfg.seed, 0, it))
        alone.train_step(batch)
    weight = next(iter(ddp["nets"]["G"]))
    assert not torch.allclose(
        ddp["nets"]["G"][weight], alone.nets["G"].state_dict()[weight], atol=1e-5
    )


def _fails_on_rank_1(info: DistInfo) -> None:
    if info.rank == 1:
        raise DataError("s07.nii.gz: no pixel data")


def test_a_user_error_in_a_spawned_process_is_one_line(capfd):
    """A MrilearnError in one of the processes ``--devices`` starts: that process prints one
    line (no traceback), the others are stopped, and the CLI exits 2 without a second line."""
    with pytest.raises(Reported):
        launch(_fails_on_rank_1, 2)
    err = capfd.readouterr().err
    assert "mrilearn: error: s07.nii.gz: no pixel data" in err and "Traceback" not in err
