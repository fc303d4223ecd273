"""Test helpers: a small evaluated run: known scores (so the best value of each column is known), a
comparison panel and the slice viewer's volumes, written by the shared evaluation tail."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from mrilearn.report import figures
from mrilearn.report.evaluation import Roles, Scores, write_evaluation
from mrilearn.report.viewer import VIEWER_DIR, save_viewer

# per method: value of subject i = base + step * i; HR is a reference with only NIQE
SCORES = {
    "zero-filled": {"psnr": (30.0, 0.1), "nrmse": (0.040, 0.001), "t1_bias_pct": (3.0, 0.0)},
    "tricubic": {"psnr": (29.5, 0.1), "nrmse": (0.050, 0.001), "t1_bias_pct": (-0.5, 0.0)},
    "MDCSRN": {"psnr": (31.0, 0.2), "nrmse": (0.045, 0.002), "t1_bias_pct": (1.0, 0.0)},
}
NIQE = {"HR": 3.0, "MDCSRN": 5.0, "tricubic": 6.0}
RUNTIME = {"zero-filled": 0.001, "tricubic": 0.5, "MDCSRN": 2.0}
BEST = {  # column → method in bold: higher, lower, closest to 0, lower but never a reference
    "psnr": "MDCSRN",
    "nrmse": "zero-filled",
    "t1_bias_pct": "tricubic",
    "niqe": "MDCSRN",
    "runtime_s": "zero-filled",
}


def volumes() -> dict[str, np.ndarray]:
    """LR, two methods and HR of a textured sphere, (20, 24, 16)."""
    rng = np.random.default_rng(0)
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in (20, 24, 16)], indexing="ij")
    hr = (sum(g**2 for g in grid) < 0.8) * (1 + 0.3 * np.sin(9 * grid[0]) * np.cos(7 * grid[1]))
    hr = hr.astype(np.float32)
    return {
        "LR": hr + rng.normal(0, 0.1, hr.shape).astype(np.float32),
        "tricubic": hr + rng.normal(0, 0.06, hr.shape).astype(np.float32),
        "MDCSRN": hr + rng.normal(0, 0.03, hr.shape).astype(np.float32),
        "HR": hr,
    }


def make_run(run_dir: Path, n_subjects: int = 3) -> Path:
    """Write the run folder ``run_dir`` with ``n_subjects`` evaluated subjects."""
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("experiment: tiny\nmodel: {name: MDCSRN}\n")
    records = [{"iteration": i, "train/loss": 1 / i, "lr/G": 1e-3, "time/iteration_s": 0.2}
               for i in (10, 20, 30)]  # fmt: skip
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    images = volumes()
    fig_dir = run_dir / "figures"
    figures.comparison_panel(images, "HR", fig_dir / "comparison_s0.png", 0, zoom_box="auto")
    save_viewer(fig_dir / VIEWER_DIR, images, "HR", (1.0, 1.0, 1.5), "s0", plane=2)
    scores = Scores()
    for i in range(n_subjects):
        for method, metrics in SCORES.items():
            scores.add_all(method, {m: base + step * i for m, (base, step) in metrics.items()})
            scores.add_runtime(method, RUNTIME[method])
        for method, value in NIQE.items():
            scores.add(method, "niqe", value + 0.1 * i)
    tests = scores.paired_tests({"MDCSRN vs tricubic": ("MDCSRN", "tricubic")}, ["psnr"])
    result = {
        "split": "test",
        "subjects": [f"s{i}" for i in range(n_subjects)],
        "paired_tests": tests,
    }
    roles = Roles("MDCSRN", ("zero-filled", "tricubic"), headline=("psnr", "nrmse"))
    write_evaluation(run_dir, scores, result, ["a note"], roles)
    return run_dir


class Tables(HTMLParser):
    """Every <table> of a page as rows of (text, bold) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, bool]]]] = []
        self.classes: list[str] = []
        self._bold = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
            self.classes.append(dict(attrs).get("class") or "")
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell, self._bold = [], False
        elif tag == "b":
            self._bold = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(("".join(self._cell).strip(), self._bold))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(page: str) -> Tables:
    parser = Tables()
    parser.feed(page)
    return parser
