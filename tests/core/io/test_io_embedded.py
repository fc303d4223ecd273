"""The MNI152 templates load from nilearn's wheel, offline."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from mrilearn.errors import DataError
from mrilearn.io import embedded, load_mni152
from mrilearn.io.embedded import embedded_datasets, mni152_paths


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_paths_exist():
    paths = mni152_paths()
    assert set(paths) == {"t1", "gm", "wm"}
    assert all(p.is_file() and p.name.endswith("_converted.nii.gz") for p in paths.values())


def test_t1_loads_offline(no_network):
    t1 = load_mni152("t1")
    assert t1.shape == (197, 233, 189)
    assert t1.data.dtype == np.float32
    np.testing.assert_allclose(t1.spacing, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(t1.affine[:3, 3], (-98.0, -134.0, -72.0))
    assert t1.data.min() == 0.0 and t1.data.max() == pytest.approx(1.0)
    # a brain: a sizeable fraction of the box is bright tissue, the corners are background
    assert 0.1 < (t1.data > 0.2).mean() < 0.7
    assert t1.data[0, 0, 0] == 0.0


@pytest.mark.parametrize("kind", ["gm", "wm"])
def test_tissue_maps_are_probabilities(kind):
    vol = load_mni152(kind)
    assert vol.shape == (197, 233, 189)
    assert 0.0 <= vol.data.min() and vol.data.max() <= 1.0
    raw = load_mni152(kind, normalize=False)
    assert raw.data.max() == 255.0


def test_unknown_kind_and_missing_nilearn(monkeypatch):
    with pytest.raises(DataError, match="t1"):
        load_mni152("csf")
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="nilearn"):
        mni152_paths()
    assert "not available" in embedded_datasets()["mni152"]


def test_embedded_datasets_lists_templates():
    info = embedded_datasets()
    assert set(info) == {"mni152_t1", "mni152_gm", "mni152_wm"}
    assert "197x233x189" in info["mni152_t1"]
