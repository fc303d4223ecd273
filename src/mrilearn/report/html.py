"""The run report: one HTML page a person can open without the terminal."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import yaml

from mrilearn.config import read_yaml
from mrilearn.engine.logger import METRICS_FILE, read_records
from mrilearn.io.atomic import write_text_atomic
from mrilearn.report import figures

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td:first-child,td:nth-child(2){text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0}pre{background:#f7f7f7;padding:.8em;
overflow:auto;font-size:.85em}.note{color:#555}
"""


def write_report(run_dir: Path) -> Path:
    """(Re)write ``report.html`` from what the run directory holds now."""
    run_dir = Path(run_dir)
    cfg = read_yaml(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else {}
    records = read_records(run_dir / METRICS_FILE)
    fig_dir = run_dir / "figures"
    if records:
        figures.loss_curves(records, fig_dir / "loss_curves.png")
    parts = [f"<h1>{html.escape(cfg.get('experiment', run_dir.name))}</h1>"]
    if cfg.get("description"):
        parts.append(f"<p>{html.escape(cfg['description'])}</p>")
    parts.append(_summary(cfg, records))
    evaluation = _read_json(run_dir / "evaluation.json")
    if evaluation:
        parts.append(f"<h2>Evaluation ({html.escape(str(evaluation.get('split', '')))})</h2>")
        for note in evaluation.get("notes", []):
            parts.append(f"<p class=note>{html.escape(note)}</p>")
        parts.append(_table(evaluation.get("table", [])))
        parts.append(_tests(evaluation.get("paired_tests", {})))
    pngs = sorted(fig_dir.glob("*.png"), key=lambda p: (p.name != "loss_curves.png", p.name))
    if pngs:
        parts.append("<h2>Figures</h2>")
        for png in pngs:
            rel = png.relative_to(run_dir).as_posix()
            parts.append(f"<h3>{html.escape(png.stem.replace('_', ' '))}</h3><img src='{rel}'>")
    parts.append(
        "<h2>Configuration</h2><pre>" + html.escape(yaml.safe_dump(cfg, sort_keys=False)) + "</pre>"
    )
    page = f"<!doctype html><meta charset=utf-8><title>{html.escape(run_dir.name)}</title><style>{STYLE}</style>\n"
    return write_text_atomic(run_dir / "report.html", page + "\n".join(parts) + "\n")


def _summary(cfg: dict[str, Any], records: list[dict[str, Any]]) -> str:
    last = records[-1]["iteration"] if records else 0
    train = cfg.get("train", {})
    rows = {
        "model": cfg.get("model", {}).get("name", "?"),
        "trainer": cfg.get("trainer", {}).get("name", "?"),
        "data": cfg.get("data", {}).get("name", "?"),
        "iterations": f"{last} / {train.get('iterations', '?')}",
        "batch size": train.get("batch_size", "?"),
    }
    val = [r for r in records if train.get("best_metric", "val/loss") in r]
    if val:
        key = train.get("best_metric", "val/loss")
        best = (min if train.get("best_mode", "min") == "min" else max)(val, key=lambda r: r[key])
        rows[f"best {key}"] = f"{best[key]:.5g} at iteration {best['iteration']}"
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items()
    )
    return f"<h2>Run</h2><table>{body}</table>"


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = "<tr><th>method</th><th>metric</th><th>mean ± std</th><th>median</th><th>min</th><th>max</th><th>n</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(str(r['method']))}</td><td>{html.escape(str(r['metric']))}</td>"
        f"<td>{_num(r['mean'])} ± {_num(r['std'])}</td><td>{_num(r['median'])}</td>"
        f"<td>{_num(r['min'])}</td><td>{_num(r['max'])}</td><td>{r['n']}</td></tr>"
        for r in rows
    )
    return f"<table>{head}{body}</table>"


def _tests(tests: dict[str, dict[str, dict[str, Any]]]) -> str:
    if not tests:
        return ""
    lines = [
        "<h3>Paired tests</h3><table><tr><th>comparison</th><th>metric</th><th>mean diff</th>"
        "<th>t-test p</th><th>Wilcoxon p</th><th>note</th></tr>"
    ]
    for name, by_metric in tests.items():
        for metric, t in by_metric.items():
            lines.append(
                f"<tr><td>{html.escape(name)}</td><td>{metric}</td><td>{_num(t['mean_diff'])}</td>"
                f"<td>{_num(t['t_pvalue'])}</td><td>{_num(t['wilcoxon_pvalue'])}</td>"
                f"<td>{html.escape(t.get('reason') or '')}</td></tr>"
            )
    return "".join(lines) + "</table>"


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) and math.isfinite(x) else "–"


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}
