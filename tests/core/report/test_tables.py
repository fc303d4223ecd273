"""The results say the outcome: a methods × metrics table with the best of each column in bold
(in the right direction, never a reference), one sentence whose numbers are the table's, and
no spread or paired tests for a single subject."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from evaluated import BEST, NIQE, SCORES, html_tables, make_run

from mrilearn.metrics.naming import HIGHER, LOWER, ZERO, goodness, metric_info
from mrilearn.report.evaluation import results_table
from mrilearn.report.tables import Roles, outcome_sentence, wide_markdown, wide_tables

METHODS = ["zero-filled", "tricubic", "MDCSRN", "HR"]
METRICS = ["psnr", "nrmse", "t1_bias_pct", "runtime_s", "niqe"]


@pytest.mark.parametrize(
    ("name", "label", "unit", "better"),
    [
        ("psnr", "PSNR", "dB", HIGHER),
        ("bright_ssim", "bright SSIM", "", HIGHER),
        ("dsc_left_kidney", "DSC left kidney", "", HIGHER),
        ("jaccard_mean", "Jaccard mean", "", HIGHER),
        ("U_nrmse", "U NRMSE", "", LOWER),
        ("hd95_liver", "HD95 liver", "mm", LOWER),
        ("msd_mean", "MSD mean", "mm", LOWER),
        ("niqe", "NIQE", "", LOWER),
        ("brisque", "BRISQUE", "", LOWER),
        ("runtime_s", "runtime", "s", LOWER),
        ("t1_blood_bias_pct", "T1 blood bias", "%", ZERO),
        ("wasserstein", "wasserstein", "", None),
    ],
)
def test_metric_names_say_label_unit_and_direction(name, label, unit, better):
    info = metric_info(name)
    assert (info.label, info.unit, info.better) == (label, unit, better)
    if better is not None:
        best = max([-2.0, 0.5, 3.0], key=goodness(name))
        assert best == {HIGHER: 3.0, LOWER: -2.0, ZERO: 0.5}[better]


def _md_table(text: str) -> list[list[str]]:
    lines = text[text.index("| method | n |") :].split("\n\n")[0].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if "---" not in line]


def test_wide_table_is_methods_by_metrics_with_best_in_bold(tmp_path):
    run = make_run(tmp_path / "run3", 3)
    rows = _md_table((run / "results.md").read_text())
    assert rows[0][:2] == ["method", "n"] and len(rows[0]) == 2 + len(METRICS)
    assert rows[0][2:] == ["PSNR (dB) ↑", "NRMSE ↓", "T1 bias (%) →0", "runtime (s) ↓", "NIQE ↓"]
    assert [r[0] for r in rows[1:]] == ["zero-filled", "tricubic", "MDCSRN", "HR (reference)"]
    assert all(len(r) == len(rows[0]) for r in rows)
    for col, metric in enumerate(METRICS, start=2):
        bold = [r[0] for r in rows[1:] if r[col].startswith("**")]
        assert bold == [BEST[metric]], metric
    # mean ± std over the 3 subjects with the table's digits; HR only has NIQE
    assert rows[3][2] == "**31.20 ± 0.16**" and rows[3][1] == "3"
    assert rows[4][2] == "" and rows[4][-1] == "3.100 ± 0.082"

    page = html_tables((run / "report.html").read_text())
    wide = page.tables[page.classes.index("wide")]
    assert [c[0] for c in wide[0]] == ["method", "n", *rows[0][2:]]
    for col, metric in enumerate(METRICS, start=2):
        assert [r[0][0] for r in wide[1:] if r[col][1]] == [
            BEST[metric].replace("HR", "HR (reference)")
        ]
    assert [[c[0] for c in r] for r in wide[1:]] == [[c.strip("*") for c in r] for r in rows[1:]]


def test_outcome_sentence_states_the_tables_differences(tmp_path):
    run = make_run(tmp_path / "run3", 3)
    result = json.loads((run / "evaluation.json").read_text())
    sentence = result["outcome"]
    assert sentence.startswith("MDCSRN beats tricubic but not zero-filled in PSNR and NRMSE: ")
    assert sentence.endswith("(3 test subjects).")
    assert sentence in (run / "results.md").read_text()
    assert sentence in (run / "report.html").read_text()
    means = {(r["method"], r["metric"]): r["mean"] for r in result["table"]}
    found = re.findall(r"(PSNR|NRMSE)[^;]*", sentence)
    assert found == ["PSNR", "NRMSE"]
    for metric, clause in zip(
        ("psnr", "nrmse"), sentence.split(": ", 1)[1].split("; "), strict=True
    ):
        diffs = re.findall(r"([+-]\d+\.\d+)(?: dB)? vs ([\w-]+) \(better on (\d) of 3\)", clause)
        assert [d[1] for d in diffs] == ["zero-filled", "tricubic"]
        for diff, baseline, wins in diffs:
            expected = means["MDCSRN", metric] - means[baseline, metric]
            assert float(diff) == pytest.approx(expected, abs=0.5 * 10 ** -len(diff.split(".")[1]))
            per = (
                np.array(result["per_subject"]["MDCSRN"][metric])
                - result["per_subject"][baseline][metric]
            )
            assert int(wins) == int(np.sum(per * (1 if metric == "psnr" else -1) > 0))


def test_outcome_sentence_verdicts():
    per_subject = {"net": {"psnr": [30.0]}, "a": {"psnr": [29.0]}, "b": {"psnr": [31.5]}}
    beats_a = outcome_sentence(per_subject, Roles("net", ("a",)), "test")
    assert beats_a == "net beats a in PSNR: PSNR +1.00 dB vs a (1 test subject)."
    both = outcome_sentence(per_subject, Roles("net", ("a", "b")), "val")
    assert both.startswith("net beats a but not b in PSNR: PSNR +1.00 dB vs a, -1.50 dB vs b")
    assert outcome_sentence(per_subject, Roles("net", ("b",)), "test").startswith(
        "net does not beat b"
    )
    bias = {"net": {"t1_bias_pct": [-0.5]}, "U0": {"t1_bias_pct": [2.0]}}
    assert outcome_sentence(bias, Roles("net", ("U0",)), "test") == (
        "net beats U0 in T1 bias: T1 bias (closer to 0 is better) -0.500 % vs +2.000 % for U0 "
        "(1 test subject)."
    )


def test_single_subject_shows_no_spread_and_no_paired_tests(tmp_path):
    run = make_run(tmp_path / "run1", 1)
    md = (run / "results.md").read_text()
    page = (run / "report.html").read_text()
    assert not any("±" in cell for row in _md_table(md) for cell in row)
    assert "| MDCSRN | psnr | 31 | 31 | 31 | 31 | 1 |" in md  # the long table: no ± either
    assert "No paired tests: they need at least 2 subjects, and this split has 1." in md
    assert "No paired tests: they need at least 2 subjects, and this split has 1." in page
    assert "Paired tests</h3>" not in page and "need at least 2 paired values" not in page
    tables = html_tables(page)
    assert not any("±" in c[0] for t in tables.tables for r in t[1:] for c in r)
    several = (make_run(tmp_path / "run3", 3) / "report.html").read_text()
    assert "Paired tests</h3>" in several and "No paired tests" not in several


def test_tables_follow_roles_and_rank_only_network_and_baselines():
    per_subject = {
        m: {k: [base] for k, (base, _) in metrics.items()} for m, metrics in SCORES.items()
    }
    per_subject["HR"] = {}
    for method, value in NIQE.items():
        per_subject[method]["niqe"] = [value]
    rows = results_table(per_subject)
    roles = Roles(
        "MDCSRN", ("tricubic",), tables={"quality": ["psnr", "niqe"], "bias": ["t1_bias_pct"]}
    )
    quality, bias = wide_tables(rows, roles)
    assert (quality.title, quality.metrics, bias.metrics) == (
        "quality",
        ["psnr", "niqe"],
        ["t1_bias_pct"],
    )
    assert quality.methods == ["tricubic", "MDCSRN", "zero-filled", "HR"]  # ranked, then references
    assert quality.references == ["zero-filled", "HR"]
    assert quality.best == {"psnr": {"MDCSRN"}, "niqe": {"MDCSRN"}} and bias.best[
        "t1_bias_pct"
    ] == {"tricubic"}
    assert "**MDCSRN**" not in wide_markdown(quality) and "| HR (reference) | 1 |" in wide_markdown(
        quality
    )
    (everything,) = wide_tables(rows, None)  # no roles: one table, every method ranked
    assert everything.best["psnr"] == {"MDCSRN"} and everything.best["nrmse"] == {"zero-filled"}
