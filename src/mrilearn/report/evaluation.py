"""The evaluation tail every application shares: per-subject scores → summary table,
``evaluation.json``, ``results.csv``, ``results.md`` and the run report.

An application's ``evaluate`` collects one value per subject for every method and metric in
:class:`Scores` (methods keep the order they were first added), adds what only it knows
(paired tests, organ names, T1 agreement, ...) as fields of the result, and hands both to
:func:`write_evaluation` with the :class:`~mrilearn.report.tables.Roles` of its methods (which
is the network, which are baselines), from which the wide tables and the outcome sentence follow.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mrilearn.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from mrilearn.metrics.statistics import paired_test, summarize
from mrilearn.report.html import write_report
from mrilearn.report.tables import (
    PAIRED_TESTS_NOTE,
    Roles,
    max_n,
    outcome_sentence,
    wide_markdown,
    wide_tables,
)

PerSubject = dict[str, dict[str, list[float]]]


class Scores:
    """One value per subject, by method and metric: ``per_subject[method][metric]``."""

    def __init__(self, methods: Sequence[str] = ()) -> None:
        self.per_subject: PerSubject = {m: {} for m in methods}
        self.runtimes: dict[str, list[float]] = {}

    def add(self, method: str, metric: str, value: float) -> None:
        self.per_subject.setdefault(method, {}).setdefault(metric, []).append(value)

    def add_all(self, method: str, values: Mapping[str, float]) -> None:
        for metric, value in values.items():
            self.add(method, metric, value)

    def add_runtime(self, method: str, seconds: float) -> None:
        self.runtimes.setdefault(method, []).append(seconds)

    def paired_tests(
        self, pairs: Mapping[str, tuple[str, str]], metrics: Sequence[str]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """``{label: {metric: paired_test(a, b)}}`` for each ``label: (a, b)`` of ``pairs``."""
        return {
            label: {m: paired_test(self.per_subject[a][m], self.per_subject[b][m]) for m in metrics}
            for label, (a, b) in pairs.items()
        }


def write_evaluation(
    out_dir: Path,
    scores: Scores,
    result: dict[str, Any],
    notes: Sequence[str] = (),
    roles: Roles | None = None,
) -> dict[str, Any]:
    """Complete ``result`` (split, subjects, and what the application adds) with the scores,
    the summary table, the ``roles`` and outcome sentence, and the notes; write the evaluation
    files and the report of ``out_dir``. Returns the completed result."""
    rows = results_table(scores.per_subject, scores.runtimes)
    result = {**result, "per_subject": scores.per_subject, "runtime_s": scores.runtimes}
    result["table"] = rows
    if roles is not None:
        result["roles"] = roles.to_dict()
        result["outcome"] = outcome_sentence(scores.per_subject, roles, result.get("split", ""))
    if notes:
        result["notes"] = list(notes)
    out_dir = Path(out_dir)
    write_json_atomic(out_dir / "evaluation.json", result)
    write_csv(rows, out_dir / "results.csv")
    write_text_atomic(out_dir / "results.md", results_markdown(result, roles))
    write_report(out_dir)
    return result


def results_markdown(result: Mapping[str, Any], roles: Roles | None) -> str:
    """``results.md``: the long table, the wide tables, the outcome and the notes."""
    rows = result["table"]
    parts = [to_markdown(rows), *(wide_markdown(t) for t in wide_tables(rows, roles))]
    if result.get("outcome"):
        parts.append(result["outcome"] + "\n")
    if 0 < max_n(rows) < 2 and result.get("paired_tests"):
        parts.append(PAIRED_TESTS_NOTE.format(n=max_n(rows)) + "\n")
    parts += [f"{n}\n" for n in result.get("notes", [])]
    return "\n".join(parts)


def results_table(
    per_subject: Mapping[str, Mapping[str, Sequence[float]]],
    runtimes: Mapping[str, Sequence[float]] | None = None,
) -> list[dict[str, Any]]:
    """Rows ``{method, metric, n, mean, std, min, median, max}``, one per method and metric.

    ``per_subject[method][metric]`` lists one value per subject; ``runtimes[method]``
    lists seconds per volume and becomes the metric ``"runtime_s"``. Methods keep the
    given order.
    """
    rows: list[dict[str, Any]] = []
    for method, by_metric in per_subject.items():
        for metric, values in by_metric.items():
            rows.append({"method": method, "metric": metric, **summarize(values)})
        if runtimes is not None and method in runtimes:
            rows.append({"method": method, "metric": "runtime_s", **summarize(runtimes[method])})
    return rows


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Write table rows to a CSV file atomically (columns: the union of the rows' keys)."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def _spread(row: Mapping[str, Any]) -> str:
    return f" ± {_fmt(row['std'])}" if row["n"] >= 2 else ""


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table with one line per method and metric: mean ± std (the mean alone for
    one subject), median, min, max, n."""
    lines = [
        "| method | metric | mean ± std | median | min | max | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['metric']} | {_fmt(r['mean'])}{_spread(r)} | "
            f"{_fmt(r['median'])} | {_fmt(r['min'])} | {_fmt(r['max'])} | {r['n']} |"
        )
    return "\n".join(lines) + "\n"
