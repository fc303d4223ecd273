"""Synthetic angiography domain: connected bright vessels, seeding, files, cross-domain data."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from scipy import ndimage

from mrilearn.apps.sr import cli as angio_cli
from mrilearn.apps.sr.angio import CrossDomainSR, angio_volume
from mrilearn.apps.sr.degrade import KspaceTruncation
from mrilearn.data.manifest import read_subjects
from mrilearn.io import read_volume


def test_vessel_trees_are_connected_bright_and_thin():
    for seed in range(4):
        vol, frac = angio_volume((40, 40, 40), seed, trees=2, return_fraction=True)
        _, pieces = ndimage.label(frac > 0, np.ones((3, 3, 3)))
        assert 1 <= pieces <= 2  # every tree one connected structure (trees may touch)
        inside, outside = vol[frac > 0.99], vol[frac == 0]
        assert inside.mean() > 5 * outside.mean()
        assert 0.002 < (frac > 0.5).mean() < 0.1  # sparse, as in an angiogram


def test_seeded_reproducible():
    a, b, c = (
        angio_volume((24, 24, 24), 3),
        angio_volume((24, 24, 24), 3),
        angio_volume((24, 24, 24), 4),
    )
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_synth_angio_writes_tagged_manifest_with_4x4_lr(tmp_path):
    out = tmp_path / "angio"
    argv = ["synth-angio", "--out", str(out), "--subjects", "2", "--shape", "16", "16", "16"]
    parser = argparse.ArgumentParser()
    angio_cli.add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    subjects = read_subjects(out / "manifest.csv")
    assert [s.domain for s in subjects] == ["angio", "angio"]
    hr = read_volume(subjects[0].files["image"]).data
    lr = read_volume(subjects[0].files["lr"]).data
    np.testing.assert_allclose(lr, KspaceTruncation([4, 4], [1, 2])(hr), atol=1e-5)
    np.testing.assert_array_equal(hr, angio_volume((16, 16, 16), 0))


def test_cross_domain_data_adds_angio_as_domain_b(sr_folder):
    data = CrossDomainSR(
        source=str(sr_folder), patch_size=[8, 8, 8], angio_subjects=4, angio_shape=[16, 16, 16],
        angio_split=[1, 1, 0, 0], domain_ratio=[1.0, 1.0],
    )  # fmt: skip
    assert data.domains == ["angio", "brain"]
    assert {p.domain for p in data.pairs("test")} == {"brain"}
    assert {p.domain for p in data.pairs("val")} == {"angio", "brain"}
    batch = data.train_batch(32, torch.Generator().manual_seed(0))
    assert 0.2 < batch["domain"].float().mean().item() < 0.8
    with pytest.raises(Exception, match="angio_subjects"):
        CrossDomainSR(angio_subjects=-1)
