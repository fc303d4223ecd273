"""The report page and its figures: readable by others, movable, with the slice viewer's data
embedded, per-slice scores labelled as such, one error scale, zooms on structure."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat

import numpy as np
import pytest
from evaluated import make_run, volumes
from PIL import Image

from mrilearn.report import figures
from mrilearn.report.html import write_report
from mrilearn.report.viewer import META, VIEWER_DIR, mosaic_png, quantize, save_viewer


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_figures_and_report_files_are_readable_by_others(tmp_path, umask_022):
    run = make_run(tmp_path / "run")
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {p.name for p in (run / "figures").glob("*.png")} == {
        "comparison_s0.png",
        "loss_curves.png",
    }
    assert len([p for p in files if p.suffix == ".png"]) == 2 + 4  # + the viewer's 4 mosaics
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert not [p for p in run.rglob(".*")], "temporary files left behind"


def test_report_links_are_relative_and_survive_moving_the_run(tmp_path):
    run = make_run(tmp_path / "run")
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(run, moved)
    page = (moved / "report.html").read_text()
    links = re.findall(r"""(?:src|href)=['"]?([^'" >]+)""", page)
    files = [link for link in links if not link.startswith("data:")]
    assert "figures/comparison_s0.png" in files and "figures/loss_curves.png" in files
    for link in files:
        assert not link.startswith(("/", "file:")) and (moved / link).is_file(), link
    assert str(tmp_path) not in page
    write_report(moved)  # rewriting in the new place needs nothing from the old one
    assert (moved / "report.html").read_text().count("data:image/png;base64,") == 4


def test_viewer_mosaic_holds_every_voxel(tmp_path):
    images = volumes()
    folder = save_viewer(tmp_path / VIEWER_DIR, images, "HR", (1.0, 1.0, 2.0), "s0")
    meta = json.loads((folder / META).read_text())
    assert meta["shape"] == [20, 24, 16] and meta["spacing"] == [1.0, 1.0, 2.0]
    assert [im["name"] for im in meta["images"]] == ["LR", "tricubic", "MDCSRN", "HR"]
    assert len(meta["colormap"]) == 3 * 256 and meta["error_max"] >= 1
    lo, hi = float(images["HR"].min()), float(np.percentile(images["HR"], 99.9))
    cols = 4  # ceil(sqrt(16))
    for im in meta["images"]:
        mosaic = np.asarray(Image.open(folder / im["file"]))
        assert mosaic.dtype == np.uint8 and mosaic.shape == (4 * 24, cols * 20)
        level = quantize(images[im["name"]], lo, hi)
        for z in (0, 5, 15):
            r, c = divmod(z, cols)
            np.testing.assert_array_equal(
                mosaic[r * 24 : (r + 1) * 24, c * 20 : (c + 1) * 20], level[:, :, z].T
            )
    assert Image.open(io.BytesIO(mosaic_png(level))).mode == "L"


def test_viewer_subsamples_large_volumes(tmp_path):
    big = {"HR": np.random.default_rng(0).random((40, 40, 40), np.float32)}
    big["net"] = big["HR"] * 0.9
    meta = json.loads(
        (save_viewer(tmp_path / "v", big, "HR", max_voxels=10_000) / META).read_text()
    )
    assert meta["stride"] == 2 and meta["shape"] == [20, 20, 20] and meta["spacing"] == [2.0] * 3


@pytest.fixture
def captured(monkeypatch):
    """The figure a plotting function would have saved, kept open for inspection."""
    out = {}
    monkeypatch.setattr(
        figures, "save_figure", lambda fig, path, dpi=120: out.setdefault("fig", fig)
    )
    yield out
    figures.plt.close("all")


def test_comparison_panel_labels_slice_psnr_and_shares_one_error_scale(tmp_path, captured):
    images = volumes()
    figures.comparison_panel(images, "HR", tmp_path / "p.png", 2, zoom_box="auto")
    fig = captured["fig"]
    titles = [ax.get_title() for ax in fig.axes]
    assert [t for t in titles if "slice PSNR" in t] == [
        t for t in titles if t.split("\n")[0] in ("LR", "tricubic", "MDCSRN") and "\n" in t
    ]
    assert (
        len([t for t in titles if "slice PSNR" in t]) == 3
        and "slice PSNR" in fig._suptitle.get_text()
    )
    error_axes = [ax for ax in fig.axes if ax.get_title().startswith("|")]
    assert len(error_axes) == 3
    assert len({ax.images[0].get_clim() for ax in error_axes}) == 1  # one scale
    bars = [im.colorbar for ax in fig.axes for im in ax.images if im.colorbar is not None]
    assert len(bars) == 1 and bars[0].mappable.get_clim() == error_axes[0].images[0].get_clim()
    zooms = [ax for ax in fig.axes if "zoom" in ax.get_title()]
    assert len(zooms) == 4 and len({ax.images[0].get_clim() for ax in zooms}) == 1
    hr_zoom = zooms[-1].images[0]
    lo, hi = hr_zoom.get_clim()
    assert (
        np.percentile(np.asarray(hr_zoom.get_array()), 99) <= hi + 1e-9 and lo > images["HR"].min()
    )  # stretched


def test_structure_box_finds_texture_inside_the_mask():
    rng = np.random.default_rng(0)
    image = np.ones((40, 30))
    image[5:13, 4:12] += rng.normal(0, 1.0, (8, 8))  # strong texture, outside the mask
    image[25:35, 15:25] += rng.normal(0, 0.3, (10, 10))  # weaker texture, inside
    mask = np.zeros_like(image, bool)
    mask[20:40, 10:30] = True
    u0, u1, v0, v1 = figures.structure_box(image, 8, mask)
    assert (u1 - u0, v1 - v0) == (8, 8) and mask[u0:u1, v0:v1].all()
    assert 25 <= u0 and u1 <= 35 and 15 <= v0 and v1 <= 25
    assert figures.structure_box(image, 8)[0::2] == (5, 4)  # without a mask: the strongest


def test_loss_curves_give_the_learning_rate_its_own_panel_and_skip_timings(tmp_path, captured):
    records = [
        {
            "iteration": i,
            "train/loss": 1 / i,
            "lr/G": 1e-3 / i,
            "lr/D": 2e-3,
            "time/iteration_s": 0.3,
        }
        for i in range(1, 30)
    ] + [{"iteration": 29, "val/loss": 0.05, "val/psnr": 30.0}]
    assert figures.curve_panels(["lr/D", "lr/G", "train/loss", "val/loss", "val/psnr"]) == {
        "learning rate": ["lr/D", "lr/G"],
        "loss": ["train/loss", "val/loss"],
        "PSNR (dB)": ["val/psnr"],
    }
    figures.loss_curves(records, tmp_path / "c.png")
    axes = [ax for ax in captured["fig"].axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["learning rate", "loss", "PSNR (dB)"]
    legends = {ax.get_title(): [t.get_text() for t in ax.get_legend().get_texts()] for ax in axes}
    assert legends == {"learning rate": ["D", "G"], "loss": ["train", "val"], "PSNR (dB)": ["val"]}
    assert captured["fig"].get_layout_engine() is not None  # titles and labels do not overlap
