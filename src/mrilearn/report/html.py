"""The run report: one HTML page a person can open without the terminal.

It says the outcome first (the sentence of :mod:`mrilearn.report.tables`), then the run, the
wide results tables with the best values in bold, the paired tests, the slice viewer and the
figures. Every link is relative to the run folder, so the page works when the folder is moved
or served; the viewer's data is embedded.
"""

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
from mrilearn.report.tables import (
    PAIRED_TESTS_NOTE,
    Roles,
    WideTable,
    format_value,
    header,
    max_n,
    row_n,
    table_rows,
    wide_tables,
)
from mrilearn.report.viewer import VIEWER_DIR, viewer_html

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td:first-child,td:nth-child(2){text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0}pre{background:#f7f7f7;padding:.8em;
overflow:auto;font-size:.85em}.note{color:#555}
.outcome{font-size:1.1em;background:#eef5ee;border-left:4px solid #3a7d44;padding:.6em .9em}
table.wide td:nth-child(2){text-align:right}table.wide td{white-space:nowrap}
.scroll{overflow-x:auto}tr.network td{background:#fff8dc}
tr.reference td{color:#666;font-style:italic}details{margin:.6em 0}summary{cursor:pointer}
.viewer{outline:none}.viewer-bar{display:flex;gap:.5em;align-items:center;margin:.4em 0}
.viewer-bar input{flex:1}.viewer-bar button.active{font-weight:bold;background:#dde}
.viewer-grid{display:grid;gap:4px 10px;align-items:end}.viewer-cell{margin:0}
.viewer-cell figcaption{font-size:.8em;text-align:center}.viewer canvas{display:block;
image-rendering:pixelated;background:#000;margin:auto}.viewer-scale{display:flex;gap:4px}
.viewer-colourbar{width:12px;height:128px}.viewer-ticks{display:flex;flex-direction:column;
justify-content:space-between;font-size:.75em;height:128px}
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
    evaluation = _read_json(run_dir / "evaluation.json")
    if evaluation.get("outcome"):
        parts.append(f"<p class=outcome>{html.escape(evaluation['outcome'])}</p>")
    parts.append(_summary(cfg, records))
    if evaluation:
        parts.append(_evaluation(evaluation))
    parts.append(viewer_html(fig_dir / VIEWER_DIR))
    pngs = sorted(fig_dir.glob("*.png"), key=lambda p: (p.name != "loss_curves.png", p.name))
    if pngs:
        parts.append("<h2>Figures</h2>")
        for png in pngs:
            rel = png.relative_to(run_dir).as_posix()
            parts.append(f"<h3>{html.escape(png.stem.replace('_', ' '))}</h3><img src='{rel}'>")
    parts.append(
        "<h2>Configuration</h2><pre>" + html.escape(yaml.safe_dump(cfg, sort_keys=False)) + "</pre>"
    )
    page = (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(run_dir.name)}</title>"
        f"<style>{STYLE}</style>\n"
    )
    return write_text_atomic(
        run_dir / "report.html", page + "\n".join(p for p in parts if p) + "\n"
    )


def _evaluation(evaluation: dict[str, Any]) -> str:
    """Wide tables, notes, paired tests (or why there are none) and the long table."""
    rows = evaluation.get("table", [])
    subjects = evaluation.get("subjects", [])
    shown = ", ".join(map(str, subjects[:8])) + (", …" if len(subjects) > 8 else "")
    parts = [
        f"<h2>Evaluation ({html.escape(str(evaluation.get('split', '')))})</h2>"
        f"<p>{len(subjects)} subject{'s' if len(subjects) != 1 else ''}: {html.escape(shown)}</p>"
    ]
    roles = Roles.from_dict(evaluation.get("roles"))
    tables = wide_tables(rows, roles) if rows else []
    for table in tables:
        parts.append(_wide(table, roles, titled=len(tables) > 1))
    for note in evaluation.get("notes", []):
        parts.append(f"<p class=note>{html.escape(note)}</p>")
    if evaluation.get("paired_tests"):
        n = max_n(rows)
        parts.append(
            _tests(evaluation["paired_tests"])
            if n >= 2
            else f"<p class=note>{html.escape(PAIRED_TESTS_NOTE.format(n=n))}</p>"
        )
    if rows:
        parts.append(
            "<details><summary>Every value (median, min, max)</summary>"
            + _table(rows)
            + "</details>"
        )
    return "\n".join(parts)


def _wide(table: WideTable, roles: Roles | None, titled: bool) -> str:
    """Methods in rows, metrics in columns, the best value of each column in bold."""
    head = "".join(f"<th>{html.escape(header(m))}</th>" for m in table.metrics)
    body = []
    for method, label, n, cells in table_rows(table):
        cls = "reference" if method in table.references else ""
        cls = "network" if roles is not None and method == roles.network else cls
        tds = "".join(
            f"<td><b>{html.escape(t)}</b></td>" if best else f"<td>{html.escape(t)}</td>"
            for t, best in cells
        )
        body.append(f"<tr class='{cls}'><td>{html.escape(label)}</td><td>{n}</td>{tds}</tr>")
    title = f"<h3>{html.escape(table.title)}</h3>" if titled else ""
    spread = any(row_n(table, m) >= 2 for m in table.methods)
    return (
        f"{title}<div class=scroll><table class=wide><tr><th>method</th><th>n</th>{head}</tr>"
        f"{''.join(body)}</table></div>"
        f"<p class=note>{'mean ± standard deviation over subjects' if spread else 'one subject'}"
        "; best of each column in bold (↑ higher is better, ↓ lower, →0 closest to zero)</p>"
    )


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
    timed = [r["time/iteration_s"] for r in records if "time/iteration_s" in r]
    if timed:
        rows["time per iteration"] = f"{timed[-1]:.3g} s"
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
        f"<td>{format_value(r['mean'], r['std'] if r['n'] >= 2 else None)}</td>"
        f"<td>{_num(r['median'])}</td>"
        f"<td>{_num(r['min'])}</td><td>{_num(r['max'])}</td><td>{r['n']}</td></tr>"
        for r in rows
    )
    return f"<table>{head}{body}</table>"


def _tests(tests: dict[str, dict[str, dict[str, Any]]]) -> str:
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
