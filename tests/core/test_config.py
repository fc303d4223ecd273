"""Config loading: schema errors name the offending path; _base_ and overrides merge."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import config_dir

from mrilearn.config import load_config
from mrilearn.errors import ConfigError
from mrilearn.registry import applications


def test_loads_and_round_trips(config_file):
    cfg = load_config(config_file())
    assert cfg.model["name"] == "MDCSRN" and cfg.train.iterations == 10
    again = yaml.safe_load(cfg.dump())
    assert again["data"]["patch_size"] == [8, 8, 8]


@pytest.mark.parametrize(
    "sections, message",
    [
        ({"train": {"iteratons": 5}}, "train.iteratons: unknown key; did you mean iterations"),
        ({"train": {"iterations": "many"}}, "train.iterations: expected int"),
        ({"model": {"grwth": 4}}, "model.grwth: unknown key; did you mean growth"),
        ({"model": {"growth": 2.5}}, "model.growth: expected int"),
        (
            {"model": {"name": "MDCSRNN"}},
            "model.name: unknown model 'MDCSRNN'; did you mean MDCSRN",
        ),
        ({"optim": {"lr": "fast"}}, "optim.lr: expected"),
        (
            {"data": {"degradation": {"name": "KspaceTruncation", "factor": [2.0]}}},
            "data.degradation.factor: unknown key",
        ),
        ({"trainer": {"context": "x"}}, "trainer.context: expected int"),
        ({"evaluaton": {"split": "val"}}, "evaluaton: unknown key; did you mean evaluation"),
        ({"train": {"best_mode": "lowest"}}, "train.best_mode: expected"),
    ],
)
def test_errors_name_the_path(config_file, sections, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(config_file(**sections))


def test_missing_required_section(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("experiment: x\nmodel: {name: DCSRN}\n")
    with pytest.raises(ConfigError, match="^data: required key is missing"):
        load_config(path)


def test_bad_yaml_and_missing_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_base_inheritance_and_overrides(config_file, tmp_path: Path):
    base = config_file()
    child = tmp_path / "child.yaml"
    child.write_text(
        f"_base_: {base.name}\nexperiment: child\ntrain: {{batch_size: 4}}\nmodel: {{growth: 6}}\n"
    )
    cfg = load_config(child, ["train.iterations=3", "model.blocks=2", "data.patch_size=[6,6,6]"])
    assert cfg.experiment == "child"
    assert cfg.train.batch_size == 4 and cfg.train.iterations == 3 and cfg.train.val_every == 5
    assert cfg.model == {"name": "MDCSRN", "blocks": 2, "units": 2, "growth": 6, "norm": "none"}
    assert cfg.data["patch_size"] == [6, 6, 6]


def test_new_component_name_replaces_base_arguments(config_file, tmp_path: Path):
    child = tmp_path / "child.yaml"
    child.write_text(f"_base_: {config_file().name}\nmodel: {{name: DCSRN, growth: 4}}\n")
    assert load_config(child).model == {"name": "DCSRN", "growth": 4}


def test_bases_chain_and_a_cycle_is_an_error(config_file, tmp_path: Path):
    mid = tmp_path / "mid.yaml"
    mid.write_text(
        f"_base_: {config_file().name}\nmodel: {{growth: 6}}\ntrain: {{iterations: 7}}\n"
    )
    top = tmp_path / "top.yaml"
    top.write_text("_base_: mid.yaml\ntrain: {iterations: 5}\n")
    cfg = load_config(top)
    assert (cfg.model["growth"], cfg.model["blocks"], cfg.train.iterations) == (6, 1, 5)
    mid.write_text("_base_: top.yaml\n")
    with pytest.raises(ConfigError, match=r"cycle \(top.yaml -> mid.yaml -> top.yaml\)"):
        load_config(top)


def test_bad_override(config_file):
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(config_file(), ["train.iterations"])
    with pytest.raises(ConfigError, match="train.iterations: expected int"):
        load_config(config_file(), ["train.iterations=ten"])


def test_shipped_configs_are_valid():
    apps = [config_dir(a.configs) for a in applications() if a.configs]
    # configs/mtmri holds simulation/reconstruction settings, checked in the physics tests
    files = sorted(f for d in apps for f in d.glob("*.yaml") if d != config_dir("mtmri"))
    assert files
    for f in files:
        load_config(f)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.batch_size=0", "train.batch_size: must be ≥ 1, got 0"),
        ("train.iterations=-5", "train.iterations: must be ≥ 1, got -5"),
        ("train.log_every=0", "train.log_every: must be ≥ 1, got 0"),
        ("train.val_every=-1", "train.val_every: must be ≥ 0, got -1"),
        ("train.ema=1.5", "train.ema: must be in [0, 1), got 1.5"),
        ("train.grad_clip=0", "train.grad_clip: must be > 0, got 0"),
        ("seed=-1", "seed: must be ≥ 0, got -1"),
        ("optim.lr=-1", "optim.lr: must be > 0, got -1"),
        ("optim.lr=.nan", "optim.lr: must be > 0, got nan"),
        ("scheduler.gamma=0", "scheduler.gamma: must be > 0, got 0"),
        ("inference.margin=-1", "inference.margin: must be ≥ 0, got -1"),
        ("inference.roi_size=[12,0,12]", "inference.roi_size[1]: must be ≥ 1, got 0"),
        ("data.patch_size=[8,0,8]", "data.patch_size[1]: must be ≥ 1, got 0"),
        ("data.val_patches=-2", "data.val_patches: must be ≥ 0, got -2"),
        ("data.degradation.factors=[0.5,2]", "data.degradation.factors[0]: must be ≥ 1, got 0.5"),
        ("experiment=a/b", "experiment: must be a plain name"),
    ],
)
def test_settings_out_of_range_name_the_path(config_file, override, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load_config(config_file(), [override])


def test_scientific_notation_is_a_number(config_file, tmp_path: Path):
    assert load_config(config_file(), ["optim.lr=1e-3"]).optim["lr"] == 0.001
    assert load_config(config_file(), ["train.grad_clip=5E+2"]).train.grad_clip == 500.0
    child = tmp_path / "child.yaml"
    child.write_text(f"_base_: {config_file().name}\noptim: {{lr: 2e-4}}\n")
    assert load_config(child).optim["lr"] == 2e-4
    assert load_config(config_file(), ["description=1e-3x"]).description == "1e-3x"
