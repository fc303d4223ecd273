"""Results that tell the outcome: wide tables (methods × metrics, the best value of each column
in bold) and one sentence comparing the network with its baselines in numbers.

Both work on the long rows of :func:`mrilearn.report.evaluation.results_table` (one row per
method and metric), so the report, ``results.md`` and ``evaluation.json`` show the same numbers.
Which direction is better comes from :mod:`mrilearn.metrics.naming`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mrilearn.metrics.naming import HIGHER, LOWER, ZERO, goodness, metric_info
from mrilearn.metrics.statistics import summarize

PAIRED_TESTS_NOTE = (
    "No paired tests: they need at least 2 subjects, and this split has {n}. "
    "Values are that subject's scores, so there is no spread (±) to show."
)


@dataclass(frozen=True)
class Roles:
    """What each method is: the ``network`` under test, the ``baselines`` it should beat, and
    references (every other method, e.g. HR or the iterative recon: shown, never ranked).

    ``headline``: the metrics the outcome sentence states (default: the network's first).
    ``tables``: wide tables as ``{title: metric columns}`` (default: one with every metric).
    """

    network: str
    baselines: Sequence[str] = ()
    headline: Sequence[str] = ()
    tables: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Roles | None:
        return None if not d else cls(**d)


@dataclass
class WideTable:
    """``cells[method][metric]`` is a long row (mean, std, n, ...); ``best[metric]`` the
    methods whose value is best among the ranked ones (network and baselines);
    ``decimals[metric]`` how a column's values are shown (:func:`column_decimals`)."""

    title: str
    metrics: list[str]
    methods: list[str]
    references: list[str]
    cells: dict[str, dict[str, Mapping[str, Any]]]
    best: dict[str, set[str]]
    decimals: dict[str, int | None]


def wide_tables(rows: Sequence[Mapping[str, Any]], roles: Roles | None) -> list[WideTable]:
    """The wide tables of ``roles`` (one table of every metric without roles)."""
    cells: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        cells.setdefault(r["method"], {})[r["metric"]] = r
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    specs = dict(roles.tables) if roles and roles.tables else {"Results": metrics}
    ranked = set(cells) if roles is None else {roles.network, *roles.baselines}
    tables = []
    for title, columns in specs.items():
        columns = [m for m in columns if any(m in c for c in cells.values())]
        methods = [m for m in cells if any(k in cells[m] for k in columns)]
        refs = [m for m in methods if m not in ranked]
        best = {m: _best(cells, [x for x in methods if x in ranked], m) for m in columns}
        methods = [m for m in methods if m in ranked] + refs
        decimals = {m: column_decimals(m, (cells[x][m]["mean"] for x in methods if m in cells[x]))
                    for m in columns}  # fmt: skip
        tables.append(WideTable(title, columns, methods, refs, cells, best, decimals))
    return tables


def _best(
    cells: Mapping[str, Mapping[str, Mapping[str, Any]]], methods: list[str], metric: str
) -> set[str]:
    key = goodness(metric)
    values = {m: cells[m][metric]["mean"] for m in methods if metric in cells[m]}
    values = {m: v for m, v in values.items() if math.isfinite(v)}
    if key is None or len(values) < 2:
        return set()
    top = max(key(v) for v in values.values())
    return {m for m, v in values.items() if key(v) == top}


def column_decimals(metric: str, values: Iterable[float], digits: int = 4) -> int | None:
    """The decimals of a column of ``metric``: its own (DSC: 4, PSNR: 2, ...), else those that
    show the largest magnitude with ``digits`` significant digits, so a column reads alike
    (``None``: tiny values, shown in scientific notation)."""
    if metric_info(metric).decimals is not None:
        return metric_info(metric).decimals
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    if not finite or max(finite) < 1e-4:
        return None
    return min(6, max(0, digits - 1 - math.floor(math.log10(max(finite)))))


def format_value(
    mean: float, std: float | None = None, decimals: int | None = None, sign: bool = False
) -> str:
    """``mean`` to ``decimals`` (default 4 significant digits), ``± std`` to the same
    decimals if given, with a ``+`` for positive values if ``sign``."""
    if not math.isfinite(mean):
        return "–"
    plus = "+" if sign else ""
    text = f"{mean:{plus}.4g}" if decimals is None else f"{mean:{plus}.{decimals}f}"
    if std is None or not math.isfinite(std):
        return text
    if "e" in text:
        return f"{text} ± {std:.2g}"
    shown = len(text.split(".")[1]) if "." in text else 0
    return f"{text} ± {std:.{shown}f}"


def cell_text(row: Mapping[str, Any] | None, n_row: int, decimals: int | None = None) -> str:
    """A cell: ``mean ± std`` (``mean`` alone for one subject) and ``(n=k)`` where the cell
    has fewer subjects than its row."""
    if row is None:
        return ""
    text = format_value(row["mean"], row["std"] if row["n"] >= 2 else None, decimals)
    return text + (f" (n={row['n']})" if row["n"] < n_row else "")


def row_n(table: WideTable, method: str) -> int:
    return max(
        (table.cells[method][m]["n"] for m in table.metrics if m in table.cells[method]), default=0
    )


def header(metric: str) -> str:
    """A column header: the metric's label, unit and ↑/↓ for the better direction."""
    info = metric_info(metric)
    arrow = {HIGHER: " ↑", LOWER: " ↓", ZERO: " →0"}.get(info.better or "", "")
    return info.label + (f" ({info.unit})" if info.unit else "") + arrow


def table_rows(table: WideTable) -> list[tuple[str, str, int, list[tuple[str, bool]]]]:
    """Each row of ``table``: the method, its label (references marked), its n and its cells
    as ``(text, best)``."""
    out = []
    for method in table.methods:
        n = row_n(table, method)
        cells = [
            (cell_text(table.cells[method].get(m), n, table.decimals[m]), method in table.best[m])
            for m in table.metrics
        ]
        label = method + (" (reference)" if method in table.references else "")
        out.append((method, label, n, cells))
    return out


def wide_markdown(table: WideTable) -> str:
    """A Markdown table: methods in rows, metrics in columns, the best value in bold."""
    lines = [
        f"**{table.title}**",
        "",
        "| method | n | " + " | ".join(header(m) for m in table.metrics) + " |",
        "|---|---|" + "---|" * len(table.metrics),
    ]
    for _, label, n, cells in table_rows(table):
        texts = [f"**{text}**" if best else text for text, best in cells]
        lines.append(f"| {label} | {n} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def max_n(rows: Sequence[Mapping[str, Any]]) -> int:
    """The most subjects behind any value of the table."""
    return max((int(r["n"]) for r in rows), default=0)


def outcome_sentence(
    per_subject: Mapping[str, Mapping[str, Sequence[float]]], roles: Roles, split: str
) -> str:
    """One sentence: does the network beat its baselines, by how much in each headline metric
    (the difference of the table's means, to the table's decimals), and on how many subjects
    (with n ≥ 2: on how many of them it did better)."""
    net = per_subject.get(roles.network, {})
    headline = list(roles.headline) or [m for m in net if metric_info(m).better][:1]
    headline = [m for m in headline if m in net and goodness(m) is not None]
    baselines = [b for b in roles.baselines if any(m in per_subject.get(b, {}) for m in headline)]
    if not headline or not baselines:
        return ""
    clauses, beaten = [], {b: True for b in baselines}
    n = max(summarize(net[m])["n"] for m in headline)
    for m in headline:
        info, key = metric_info(m), goodness(m)
        unit = f" {info.unit}" if info.unit else ""
        shown = column_decimals(
            m, (summarize(v[m])["mean"] for v in per_subject.values() if m in v)
        )
        parts = []
        for b in (b for b in baselines if m in per_subject[b]):
            mine, theirs, wins, pairs = _compare(net[m], per_subject[b][m], m)
            beaten[b] &= key(mine) > key(theirs)
            won = f" (better on {wins} of {pairs})" if pairs >= 2 else ""
            if info.better == ZERO:  # a difference of biases says nothing: give both
                a, b_ = (format_value(x, decimals=shown, sign=True) for x in (mine, theirs))
                parts.append(f"{a}{unit} vs {b_}{unit} for {b}{won}")
            else:
                diff = format_value(mine - theirs, decimals=shown, sign=True)
                parts.append(f"{diff}{unit} vs {b}{won}")
        hint = {LOWER: " (lower is better)", ZERO: " (closer to 0 is better)"}.get(
            info.better or "", ""
        )
        clauses.append(f"{info.label}{hint} " + ", ".join(parts))
    labels = " and ".join(metric_info(m).label for m in headline)
    subjects = f"{n} {split} subject" + ("s" if n != 1 else "")
    return (
        f"{_verdict(roles.network, beaten)} in {labels}: " + "; ".join(clauses) + f" ({subjects})."
    )


def _compare(a: Sequence[float], b: Sequence[float], metric: str) -> tuple[float, float, int, int]:
    """The two means (as in the table), and on how many of the subjects that both have ``a``
    is better."""
    av, bv = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both = np.isfinite(av) & np.isfinite(bv) if av.shape == bv.shape else np.zeros(0, bool)
    key = goodness(metric)
    wins = sum(key(x) > key(y) for x, y in zip(av[both], bv[both], strict=True))
    return summarize(a)["mean"], summarize(b)["mean"], int(wins), int(both.sum())


def _verdict(network: str, beaten: Mapping[str, bool]) -> str:
    won = [b for b, ok in beaten.items() if ok]
    lost = [b for b, ok in beaten.items() if not ok]
    if not lost:
        which = {1: won[0], 2: "both baselines"}.get(len(won), f"all {len(won)} baselines")
        return f"{network} beats {which}"
    if not won:
        which = lost[0] if len(lost) == 1 else "any baseline"
        return f"{network} does not beat {which}"
    return f"{network} beats {_join(won)} but not {_join(lost)}"


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
