"""Shared fixtures: tiny synthetic data sets and configs that train in seconds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
import yaml

from mrilearn import plugins
from mrilearn.data.phantoms import ellipsoid_phantom
from mrilearn.io import Volume, write_nifti
from mrilearn.registry import applications

plugins.load()  # config validation checks names against the registries


@pytest.fixture(autouse=True)
def cpu_fp32(monkeypatch):
    """Every test computes on the CPU in fp32 unless it asks otherwise (``monkeypatch.delenv``
    of the variables that ``--device`` and ``--precision`` set): on a GPU machine ``auto``
    would train on the GPU in bf16, and the numbers tests compare must not depend on it."""
    from mrilearn.engine.device import DEVICE_ENV
    from mrilearn.engine.precision import PRECISION_ENV

    monkeypatch.setenv(DEVICE_ENV, "cpu")
    monkeypatch.setenv(PRECISION_ENV, "fp32")


AFFINE = np.array(
    [[0.0, 0.0, 1.2, -10.0], [-1.0, 0.0, 0.0, 20.0], [0.0, 1.1, 0.0, -5.0], [0, 0, 0, 1]]
)


@pytest.fixture
def sr_folder(tmp_path: Path) -> Path:
    """Ten 20³ phantom subjects as NIfTI files with an oblique-ish affine."""
    folder = tmp_path / "hr"
    for i in range(10):
        write_nifti(
            Volume(ellipsoid_phantom((20, 20, 20), seed=i), AFFINE), folder / f"sub{i:02d}.nii.gz"
        )
    return folder


def config_dir(namespace: str) -> Path:
    """The folder of an application's packaged configs (``sr``, ``seg``, ``synth``, ...)."""
    app = next(a for a in applications() if a.configs == namespace)
    return Path(str(app.config_dir))


def merged(cfg: dict, sections: dict) -> dict:
    """``cfg`` with dict sections updated, others replaced or added, and ``None`` ones dropped."""
    out = dict(cfg)
    for key, value in sections.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = dict(out[key], **value)
        else:
            out[key] = value
    return out


def sr_config(source: Path | str, out: Path | str, **sections: dict | None) -> dict:
    """A complete SR config for a network small enough to train in a second or two."""
    base = {
        "experiment": "tiny",
        "output_dir": str(out),
        "seed": 3,
        "data": {
            "name": "SRVolumes",
            "source": str(source),
            "degradation": {"name": "KspaceTruncation", "factors": [2.0, 2.0], "axes": [1, 2]},
            "patch_size": [8, 8, 8],
            "val_patches": 2,
        },
        "model": {"name": "MDCSRN", "blocks": 1, "units": 2, "growth": 4, "norm": "none"},
        "loss": {"name": "L1Loss"},
        "optim": {"name": "Adam", "lr": 1e-3},
        "scheduler": {"name": "StepLR", "step_size": 5, "gamma": 0.9},
        "trainer": {"name": "SRTrainer"},
        "inference": {"name": "MarginCrop", "roi_size": [12, 12, 12], "margin": 2},
        "train": {
            "iterations": 10,
            "batch_size": 2,
            "val_every": 5,
            "log_every": 2,
            "checkpoint_every": 5,
        },
        "evaluation": {"baselines": ["zero-filled", "tricubic"]},
    }
    return merged(base, sections)


def write_phantoms(folder: Path, seeds: Iterable[int], affine: np.ndarray = AFFINE) -> Path:
    """20³ ellipsoid phantoms ``s{seed:02d}.nii.gz`` in ``folder``."""
    for i in seeds:
        write_nifti(
            Volume(ellipsoid_phantom((20, 20, 20), seed=i), affine), folder / f"s{i:02d}.nii.gz"
        )
    return folder


@pytest.fixture
def tiny_cfg(sr_folder: Path, tmp_path: Path) -> dict:
    return sr_config(sr_folder, tmp_path / "runs")


@pytest.fixture
def config_file(tiny_cfg: dict, tmp_path: Path):
    """Write ``tiny_cfg`` updated by a dict of sections to YAML; returns the path."""

    def write(**sections: dict) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(merged(tiny_cfg, sections)))
        return path

    return write


@pytest.fixture
def single_thread():
    """One PyTorch thread: tiny nets run many times faster than with threads on busy cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tree_checksums(root: Path) -> dict[str, str]:
    """Every entry under ``root`` by relative path: a file's sha256, ``"dir"`` or the target
    of a link. Equal listings before and after a command: it created, changed and removed
    nothing."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = f"-> {p.readlink()}"
        else:
            out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def cli(*argv: object) -> int:
    """``mrilearn`` with these arguments (paths welcome) in this process; its exit status."""
    from mrilearn.cli import main

    return main([str(a) for a in argv])


def cli_error(capsys, argv: list[object], code: int = 2) -> str:
    """Run ``mrilearn argv`` in this process; it must exit with ``code`` after printing one
    line ``mrilearn: error: ...`` (no traceback: an unexpected exception fails the test)."""
    capsys.readouterr()
    assert cli(*argv) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrilearn: error: "), lines
    assert "Traceback" not in lines[0]
    return lines[0]


def write_mr_series(
    folder: Path,
    slices: int = 16,
    pixel_spacing: float = 4.0,
    start: int = 0,
    stop: int | None = None,
) -> list[Path]:
    """Slices ``start:stop`` of a ``slices``-slice MR series made from pydicom's MR_small
    (64 x 64, rolled a little per slice), ``pixel_spacing`` mm in plane and between slices,
    one SeriesInstanceUID (a function of ``folder.name``), new SOP Instance UIDs."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    template = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    series_uid = generate_uid(entropy_srcs=["mrilearn test series", folder.name])
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k in range(slices)[start:stop]:
        ds = template.copy()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.PixelSpacing = [pixel_spacing, pixel_spacing]
        ds.SliceThickness = pixel_spacing
        ds.ImagePositionPatient = [-128.0, -120.0, -30.0 + k * pixel_spacing]
        ds.SliceLocation = -30.0 + k * pixel_spacing
        ds.PixelData = np.roll(template.pixel_array, k, axis=0).astype(np.int16).tobytes()
        path = folder / f"slice{k:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


SEG_TINY = [
    "data.spacing=8.0", "data.synthetic_shape=[40,32,24]", "data.synthetic_spacing=[9.0,8.0,9.0]",
    "data.crop=[40,32]", "data.val_slabs=2", "data.synthetic_subjects=3", "data.split=[2,1,0,0]",
    "data.slices=3", "model.in_slices=3", "model.growth=4", "model.units=1", "scheduler=null",
    "train.iterations=2", "train.batch_size=2", "train.val_every=0", "train.checkpoint_every=0",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_seg_run(tmp_path_factory) -> Path:
    """An ALAMO run trained for 2 iterations on 3 synthetic abdomens (once per test run)."""
    import torch

    from mrilearn.config import load_config
    from mrilearn.runs import train_run

    out = tmp_path_factory.mktemp("seg_run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = load_config(config_dir("seg") / "base.yaml", [*SEG_TINY, f"output_dir={out}"])
        return train_run(cfg, resume=False, overwrite=False, devices=1)
    finally:
        torch.set_num_threads(threads)
