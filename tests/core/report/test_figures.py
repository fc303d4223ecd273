"""Every figure function writes a readable, non-empty PNG atomically."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import image as mpimg

from mrilearn.errors import DataError
from mrilearn.report import figures


@pytest.fixture
def volume() -> np.ndarray:
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in (24, 28, 20)], indexing="ij")
    return (sum(g**2 for g in grid) < 0.7).astype(np.float32) + 0.1 * grid[2]


def check_png(path, min_width=300, min_height=150) -> None:
    assert path.exists() and path.stat().st_size > 2000
    img = mpimg.imread(path)
    assert img.shape[1] >= min_width and img.shape[0] >= min_height
    assert img[..., :3].std() > 0.01  # not a blank canvas
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_orthogonal_slices(tmp_path, volume):
    path = tmp_path / "ortho.png"
    assert figures.orthogonal_slices(volume, path, title="T1w", crosshair=(10, 12, 8)) == path
    check_png(path, min_width=600)


@pytest.mark.parametrize("zoom_box", [None, (4, 14, 4, 12)])
def test_comparison_panel(tmp_path, volume, zoom_box):
    rng = np.random.default_rng(0)
    images = {
        "LR": volume + rng.normal(0, 0.2, volume.shape),
        "tricubic": volume + rng.normal(0, 0.1, volume.shape),
        "HR": volume,
    }
    path = tmp_path / "panel.png"
    figures.comparison_panel(images, "HR", path, slice_axis=0, zoom_box=zoom_box)
    check_png(path, min_width=500, min_height=400 if zoom_box else 300)
    with pytest.raises(DataError, match="reference"):
        figures.comparison_panel(images, "GT", tmp_path / "x.png", slice_axis=0)


def test_loss_curves(tmp_path):
    records = [
        {"iteration": i, "train/loss": 1 / (i + 1), "train/lr": 1e-4} for i in range(0, 100, 5)
    ]
    records += [
        {"iteration": i, "val/loss": 1.2 / (i + 1), "val/psnr": 20 + i / 10} for i in (0, 50, 95)
    ]
    path = tmp_path / "curves.png"
    figures.loss_curves(records, path)
    check_png(path)
    figures.loss_curves(records, path, keys=["val/psnr"])
    check_png(path, min_width=200)


def test_boxplots(tmp_path):
    rng = np.random.default_rng(0)
    per_subject = {
        m: {"psnr": list(rng.normal(mu, 1, 8)), "ssim": list(rng.uniform(0.8, 0.95, 8))}
        for m, mu in (("nearest", 28), ("tricubic", 29), ("DCSRN", 35))
    }
    path = tmp_path / "box.png"
    figures.boxplots(per_subject, path)
    check_png(path)


def test_scatter_plot(tmp_path):
    path = tmp_path / "pd.png"
    figures.scatter_plot([26.9, 34.2, 31.4], [7.1, 6.2, 4.98], ["bicubic", "mDCSRN", "DRAGAN"],
                         path, "PSNR (dB)", "Perceptual index", title="distortion vs perception")  # fmt: skip
    check_png(path)
