"""The report in a real browser (headless Chromium, when one is installed): the page renders,
and the slice viewer shows the slice its plane buttons and slider select."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from evaluated import make_run, volumes
from PIL import Image

from mrilearn.report.viewer import quantize

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium on PATH")


def chromium(tmp_path: Path, *args: str) -> str:
    profile = tempfile.mkdtemp(dir=tmp_path)
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("browser") / "run") / "report.html"


def test_report_renders(report: Path, tmp_path: Path):
    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), np.float64)
    assert pixels.shape == (2400, 1200)
    assert pixels.std() > 20  # text, tables, figures: not a blank page
    assert (pixels < 60).mean() > 0.01  # dark image pixels: the viewer's and figures' slices


@pytest.mark.parametrize(("plane", "index"), [(2, 3), (2, 11), (0, 7)])
def test_viewer_slider_shows_the_chosen_slice(report: Path, tmp_path: Path, plane: int, index: int):
    dom = chromium(tmp_path, "--dump-dom", f"{report.as_uri()}#viewer={plane}:{index}")
    tag = re.search(r"<div[^>]*id=\"mrilearn-viewer\"[^>]*>", dom)
    assert tag, "the viewer did not start"
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))
    assert attrs["data-state"] == f"{plane}:{index}"
    images = volumes()
    lo, hi = float(images["HR"].min()), float(np.percentile(images["HR"], 99.9))
    drawn = np.take(quantize(images["LR"], lo, hi), index, axis=plane)
    assert int(attrs["data-checksum"]) == int(drawn.sum(dtype=np.int64))  # the LR slice, exactly
