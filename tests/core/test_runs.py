"""Run directories never lose a user's files: plain experiment names, --overwrite only of a
run, a lock on a live run, nothing written by a failed start or resume, moved runs resumed,
checkpoints checked against the run, and training that diverges keeps its good checkpoints.

Every refusal is checked the same way: the exit code, one line without a traceback, and a
checksum listing of the whole folder before and after."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import cli, cli_error, tree_checksums

from mrilearn.engine.checkpoint import load_checkpoint

QUICK = {"iterations": 2, "val_every": 0, "checkpoint_every": 1}


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A user's folder that no command may touch."""
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.tex").write_text("\\chapter{Results}\n")
    return folder


@pytest.mark.parametrize("name", ["", "..", "../../x", "a/b", "VICTIM"])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_experiment_is_a_plain_name(config_file, tmp_path, victim, capsys, name, overwrite):
    path = config_file(train=QUICK)
    name = str(victim) if name == "VICTIM" else name
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["train", path, f'experiment="{name}"', *overwrite])
    assert "experiment: must be a plain name" in err
    assert tree_checksums(tmp_path) == before


def test_experiment_in_a_file_is_checked_too(config_file, tmp_path, capsys):
    path = config_file(experiment="../../x")
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["train", path])
    assert "experiment: must be a plain name" in err and "'../../x'" in err
    assert tree_checksums(tmp_path) == before


def test_overwrite_replaces_a_run_and_nothing_else(config_file, tmp_path, capsys):
    path = config_file(train=QUICK)
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "thesis.tex").write_text("mine")
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["train", path, "--overwrite"])
    assert "holds files but no mrilearn run" in err
    assert tree_checksums(tmp_path) == before

    (run / "thesis.tex").unlink()
    assert cli("train", path) == 0
    first = load_checkpoint(run / "checkpoints" / "latest.pt")["nets"]["G"]
    err = cli_error(capsys, ["train", path])
    assert "already holds a run; use --resume" in err
    assert cli("train", path, "--overwrite", "seed=4") == 0
    second = load_checkpoint(run / "checkpoints" / "latest.pt")["nets"]["G"]
    assert any(not torch.equal(first[k], second[k]) for k in first)  # a new run


@pytest.mark.slow
@pytest.mark.parametrize("devices", [1, 2])
def test_a_live_run_is_locked(config_file, tmp_path, capsys, devices):
    slow = {"iterations": 100_000, "val_every": 0, "checkpoint_every": 0, "log_every": 1}
    path = config_file(train=slow)
    run = tmp_path / "runs" / "tiny"
    cmd = [sys.executable, "-m", "mrilearn", "--threads", "1", "train", str(path),
           "--devices", str(devices)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and (
            not (run / "metrics.jsonl").is_file()
            or len((run / "metrics.jsonl").read_text().splitlines()) < 2
        ):
            time.sleep(0.1)
        outside = {k: v for k, v in tree_checksums(tmp_path).items() if "runs/" not in k}
        for extra in (["--overwrite"], ["--resume"], []):
            err = cli_error(capsys, ["train", path, *extra])
            assert "a training process is using this run" in err and f"(pid {proc.pid})" in err
        assert (run / "config.yaml").is_file() and (run / "train.log").is_file()
        after = {k: v for k, v in tree_checksums(tmp_path).items() if "runs/" not in k}
        assert after == outside
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9, workers included
        proc.communicate(timeout=60)
    # the operating system released the lock with the process: the run can be replaced now
    assert cli("train", path, "--overwrite", "train.iterations=2") == 0


FAILED_STARTS = [
    ("data.source=MISSING", "not found"),
    ("data.source=EMPTY", "EMPTY"),
    ("data.patch_size=[30,30,30]", "smaller than data.patch_size"),
    ("data.patch_size=[8,8]", "need three positive sizes"),
    ("data.degradation.factors=[0,2]", "data.degradation.factors[0]: must be ≥ 1, got 0"),
    ("inference.roi_size=[4,4,4]", "roi_size > 2·margin"),
    ("train.iterations=0", "train.iterations: must be ≥ 1, got 0"),
    ("train.iterations=-5", "train.iterations: must be ≥ 1, got -5"),
    ("train.batch_size=0", "train.batch_size: must be ≥ 1, got 0"),
    ("optim.lr=-1", "optim.lr: must be > 0, got -1"),
    ("output_dir=NOTES/runs", "NOTES is a file, not a folder"),
]


@pytest.mark.parametrize("override, message", FAILED_STARTS)
def test_a_failed_start_leaves_no_trace(config_file, tmp_path, capsys, override, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("a file")
    places = {"MISSING": "missing", "EMPTY": "empty", "NOTES": "notes.txt"}
    for word, name in places.items():
        override = override.replace(word, str(tmp_path / name))
        message = message.replace(word, str(tmp_path / name))
    path = config_file(train=QUICK)
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["train", path, override])
    assert message in err
    assert tree_checksums(tmp_path) == before  # no runs/ folder at all


def test_scientific_notation_trains(config_file, tmp_path):
    path = config_file(train=QUICK)
    assert cli("train", path, "optim.lr=2e-3") == 0
    saved = yaml.safe_load((tmp_path / "runs" / "tiny" / "config.yaml").read_text())
    assert saved["optim"]["lr"] == 0.002


@pytest.fixture
def quick_run(config_file, tmp_path) -> tuple[Path, Path]:
    """A 2-iteration run with a checkpoint after each iteration: (config file, run dir)."""
    path = config_file(train=QUICK)
    assert cli("train", path) == 0
    return path, tmp_path / "runs" / "tiny"


def test_a_failed_resume_changes_nothing(quick_run, tmp_path, capsys):
    path, run = quick_run
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["train", path, "--resume", "train.iterations=4", "--devices", "2"])
    assert "written with 1 process(es); resume with --devices 1" in err
    assert tree_checksums(tmp_path) == before

    latest = run / "checkpoints" / "latest.pt"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # a torn copy
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["train", path, "--resume", "train.iterations=4"])
    assert f"{latest}: cannot read checkpoint safely" in err
    assert "iter_0000002.pt is intact: use --checkpoint iter_0000002" in err
    assert tree_checksums(tmp_path) == before  # config.yaml still says 2 iterations
    out = tmp_path / "sr.nii.gz"
    err = cli_error(capsys, ["infer", "--run", run, "--checkpoint", "latest",
                             tmp_path / "hr" / "sub00.nii.gz", out])  # fmt: skip
    assert "use --checkpoint iter_0000002" in err and not out.exists()
    assert cli("infer", "--run", run, "--checkpoint", "iter_0000002",
                 tmp_path / "hr" / "sub00.nii.gz", out) == 0  # fmt: skip


def test_infer_refuses_a_checkpoint_of_another_model(quick_run, tmp_path, capsys):
    _, run = quick_run
    saved = yaml.safe_load((run / "config.yaml").read_text())
    saved["model"]["growth"] = 5
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    before = tree_checksums(tmp_path)
    err = cli_error(capsys, ["infer", "--run", run, tmp_path / "hr" / "sub00.nii.gz",
                             tmp_path / "sr.nii.gz"])  # fmt: skip
    assert "latest.pt: holds another model than" in err and "config.yaml" in err
    assert "model.growth 4 vs 5" in err
    assert tree_checksums(tmp_path) == before


def test_a_moved_run_resumes_where_it_is(quick_run, tmp_path):
    _, run = quick_run
    copy = tmp_path / "elsewhere" / "copied"
    shutil.copytree(run, copy)
    original = tree_checksums(run)
    assert cli("train", copy, "--resume", "train.iterations=4") == 0
    assert load_checkpoint(copy / "checkpoints" / "latest.pt")["iteration"] == 4
    assert cli("train", copy / "config.yaml", "--resume", "train.iterations=5") == 0
    assert load_checkpoint(copy / "checkpoints" / "latest.pt")["iteration"] == 5
    saved = yaml.safe_load((copy / "config.yaml").read_text())
    assert (saved["output_dir"], saved["experiment"]) == (str(copy.parent), "copied")
    assert tree_checksums(run) == original  # the original run was not touched


def test_divergence_stops_with_the_last_good_checkpoint(config_file, tmp_path, capsys):
    path = config_file(train={"iterations": 20, "val_every": 0, "checkpoint_every": 1})
    err = cli_error(capsys, ["train", path, "optim.lr=1e30", "scheduler=null"])
    assert "training diverged: loss became" in err
    failed = int(err.split("at iteration ")[1].split(";")[0])
    latest = load_checkpoint(tmp_path / "runs" / "tiny" / "checkpoints" / "latest.pt")
    assert latest["iteration"] == failed - 1
    assert all(torch.isfinite(t).all() for t in latest["nets"]["G"].values())


def test_weights_that_are_not_finite_are_never_saved(config_file, tmp_path, capsys, monkeypatch):
    from mrilearn.apps.sr.trainer import SRTrainer

    original = SRTrainer.train_step

    def poisoned(self, batch):  # the weights break during iteration 4, its loss was finite
        out = original(self, batch)
        if self.iteration == 3:
            next(self.nets["G"].parameters()).data.fill_(float("nan"))
        return out

    monkeypatch.setattr(SRTrainer, "train_step", poisoned)
    path = config_file(train={"iterations": 6, "val_every": 0, "checkpoint_every": 1})
    err = cli_error(capsys, ["train", path])
    assert "training diverged:" in err and "is not finite at iteration 4" in err
    ck = tmp_path / "runs" / "tiny" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == [f"iter_000000{i}.pt" for i in (1, 2, 3)] + [
        "latest.pt"
    ]
    latest = load_checkpoint(ck / "latest.pt")
    assert latest["iteration"] == 3
    assert all(torch.isfinite(t).all() for t in latest["nets"]["G"].values())
