"""Federated averaging with Flower on loopback (§8.4.3): a server and 2 clients finish, the
aggregate is the example-weighted mean of the clients' weights, and the federated model's
held-out loss is close to centralised training on the pooled data."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("flwr", reason='Flower not installed: pip install -e ".[federated]"')

from conftest import sr_config  # noqa: E402

from mrilearn.cli import main  # noqa: E402
from mrilearn.data.phantoms import ellipsoid_phantom  # noqa: E402
from mrilearn.engine.checkpoint import load_checkpoint  # noqa: E402
from mrilearn.federated.flower import record_voxel_size  # noqa: E402
from mrilearn.federated.site import (  # noqa: E402
    get_weights,
    local_training,
    set_weights,
    site_trainer,
    training_size,
    validation_loss,
    voxel_size_metrics,
    weighted_mean,
)
from mrilearn.io import Volume, write_nifti  # noqa: E402
from mrilearn.runs import load_run  # noqa: E402

ROUNDS, LOCAL, SITES = 3, 10, {"siteA": range(0, 4), "siteB": range(4, 10)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def federated_setup(tmp_path: Path) -> Path:
    """Two sites (4 and 6 phantoms), their pooled copy, 4 held-out phantoms, one config."""
    folders = {**SITES, "heldout": range(10, 14)}
    for name, seeds in folders.items():
        for i in seeds:
            volume = Volume(ellipsoid_phantom((20, 20, 20), seed=i), np.eye(4))
            write_nifti(volume, tmp_path / name / f"s{i:02d}.nii.gz")
            if name != "heldout":
                write_nifti(volume, tmp_path / "pooled" / f"s{i:02d}.nii.gz")
    cfg = sr_config(
        "per-site",
        tmp_path / "runs",
        experiment="fed",
        data={"split": [1, 0, 0, 0], "val_patches": 8},
        optim={"lr": 3e-3},
        scheduler=None,
        evaluation=None,
        train={"iterations": ROUNDS * LOCAL * len(SITES), "batch_size": 4, "val_every": 0,
               "checkpoint_every": 0},
    )  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


@pytest.mark.slow
def test_fedavg_on_loopback_matches_weighted_mean_and_centralised(federated_setup, single_thread):
    root, config = federated_setup, federated_setup / "config.yaml"
    address = f"127.0.0.1:{free_port()}"
    sites = [str(root / s) for s in SITES]
    assert main(["--threads", "1", "federated", "simulate", str(config), "--sites", *sites,
                 "--rounds", str(ROUNDS), "--local-iterations", str(LOCAL),
                 "--eval-data", str(root / "heldout"), "--address", address]) == 0  # fmt: skip
    run = root / "runs" / "fed"
    history = json.loads((run / "federated.json").read_text())["history"]
    assert [h["round"] for h in history] == list(range(ROUNDS + 1))
    # the sites' training voxel size is the run's, checked at inference as for a trained run
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["voxel_size"] == [1.0, 1.0, 1.0]

    # round 1's aggregate = weighted mean of each site's LOCAL steps from the initial model
    initial = load_checkpoint(run / "checkpoints" / "round_000.pt")["nets"]
    clients = []
    for site in sites:
        trainer = site_trainer(config, site, [])
        trainer.nets["G"].load_state_dict(initial["G"])
        local_training(trainer, LOCAL)
        clients.append((get_weights(trainer), training_size(trainer)))
    assert [n for _, n in clients] == [4, 6]
    round1 = site_trainer(config, None, [])
    round1.nets["G"].load_state_dict(
        load_checkpoint(run / "checkpoints" / "round_001.pt")["nets"]["G"]
    )
    for got, want in zip(get_weights(round1), weighted_mean(clients)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    # centralised on the pooled data: as many optimiser steps as all sites together, and as
    # many as one site made (the same number of sequential steps)
    held_out = [f"data.source={root / 'heldout'}", "data.split=[0,1,0,0]", 'data.domains=[""]']
    evaluator = site_trainer(config, None, held_out)
    losses = {}
    for name, iterations in (
        ("fed", None),
        ("central_total", ROUNDS * LOCAL * len(SITES)),
        ("central_sequential", ROUNDS * LOCAL),
    ):
        if iterations is not None:
            overrides = [f"data.source={root / 'pooled'}", f"train.iterations={iterations}"]
            assert main(["train", str(config), *overrides, f"experiment={name}"]) == 0
        set_weights(evaluator, get_weights(load_run(root / "runs" / name, "latest")))
        losses[name] = validation_loss(evaluator)["val/loss"]
    # measured: federated 0.0766, central 60 steps 0.0442, central 30 steps 0.0739, start 0.448
    assert abs(losses["fed"] - history[-1]["val/loss"]) < 1e-6
    assert losses["fed"] < 0.3 * history[0]["val/loss"]
    assert losses["fed"] < 1.25 * losses["central_sequential"]
    assert losses["fed"] < 2.5 * losses["central_total"]


def test_weighted_mean_weights_by_examples():
    a, b = [np.zeros(3), np.array([2])], [np.ones(3) * 4, np.array([6])]
    mean = weighted_mean([(a, 1), (b, 3)])
    np.testing.assert_allclose(mean[0], [3, 3, 3])
    np.testing.assert_allclose(mean[1], [5])


def test_local_rounds_keep_the_weight_average(federated_setup):
    """With ``train.ema`` a site's local steps update its weight average exactly as the
    training loop does: the EMA of the raw weights after every step."""
    config, site = federated_setup / "config.yaml", federated_setup / "siteA"
    decay = 0.5
    trainer = site_trainer(config, site, [f"train.ema={decay}"])
    steps = []
    for _ in range(3):
        local_training(trainer, 1)
        steps.append([p.detach().clone() for p in trainer.nets["G"].parameters()])
    average = trainer.averages["G"]
    assert int(average.n_averaged) == 3 and trainer.iteration == 3
    expected = steps[0]
    for raw in steps[1:]:
        expected = [decay * e + (1 - decay) * r for e, r in zip(expected, raw)]
    for got, want in zip(average.module.parameters(), expected):
        np.testing.assert_allclose(got.detach().numpy(), want.numpy(), rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(g.detach().numpy(), r.numpy())
               for g, r in zip(average.module.parameters(), steps[-1]))  # fmt: skip


def test_the_server_records_the_sites_voxel_size_and_warns_of_a_different_one(
    federated_setup, caplog
):
    server = site_trainer(federated_setup / "config.yaml", None, [])
    assert server.voxel_size is None
    sites = [(4, {"val/loss": 0.1, **voxel_size_metrics((1.0, 1.0, 1.0))}),
             (6, voxel_size_metrics((1.0, 1.0, 1.25)))]  # fmt: skip
    assert record_voxel_size(server, sites) == {}
    assert server.voxel_size == (1.0, 1.0, 1.0)
    assert "(1.0, 1.0, 1.25) mm, unlike the run's (1.0, 1.0, 1.0) mm" in caplog.text
    caplog.clear()  # later rounds: recorded already, warned once
    record_voxel_size(server, [(4, voxel_size_metrics((2.0, 1.0, 1.0))), (2, {})])
    assert server.voxel_size == (1.0, 1.0, 1.0) and "unlike" not in caplog.text
    fresh = site_trainer(federated_setup / "config.yaml", None, [])
    record_voxel_size(fresh, [(2, {}), (4, voxel_size_metrics((1.05, 1.0, 1.0, 2.0)))])
    assert fresh.voxel_size == (1.05, 1.0, 1.0, 2.0) and "unlike" not in caplog.text
