"""Every shipped SR config trains and resumes on tiny data."""

from __future__ import annotations

import pytest
from conftest import config_dir

from mrilearn.config import load_config


@pytest.mark.parametrize(
    "config",
    sorted(p.name for p in config_dir("sr").glob("*.yaml")),
)
def test_every_sr_config_trains_two_iterations_and_resumes(config, sr_folder, tmp_path):
    from mrilearn.engine.checkpoint import load_checkpoint
    from mrilearn.runs import train_run

    small = [
        f"data.source={sr_folder}",
        "data.regions=null",
        "data.patch_size=[8,8,8]",
        "data.val_patches=1",
        f"output_dir={tmp_path}",
        "train.batch_size=1",
        "train.val_every=1",
        "train.checkpoint_every=0",
    ]
    path = config_dir("sr") / config
    run = train_run(
        load_config(path, [*small, "train.iterations=2"]), resume=False, overwrite=False, devices=1
    )
    train_run(
        load_config(path, [*small, "train.iterations=3"]), resume=True, overwrite=False, devices=1
    )
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["iteration"] == 3
