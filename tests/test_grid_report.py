"""The grid report: the results page's generated blocks, and the markdown they are made of.

The synthetic tables come from ``test_grid_results._grid`` (the grid's schema, known effects).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from test_grid_results import _grid

from course_tools import grid_report as rep
from course_tools.grid_results import GRID_FILE, load_grid
from course_tools.verdicts import PRIMARY, primary_units, primary_verdicts
from tutorial_lib.config import REPO_ROOT
from tutorial_lib.data.checks import DataValidationError

PAGE = REPO_ROOT / "book" / "results.md"


def test_results_page_block_is_the_committed_tables_report():
    """The page's numbers are the committed table's: regenerate with ``benchmarks/report_grid.py --write``."""
    assert rep.page_report(PAGE) == rep.grid_report(load_grid(GRID_FILE)), (
        "book/results.md is stale: run `python benchmarks/report_grid.py --write book/results.md`"
    )


def _table():
    table = _grid({"scpram": -0.1}, gene_set="top20_degs", noise=0.0)
    return _with_training(table)


def _with_training(table):
    table["train_steps"] = np.where(table["method"].isin(["scgen", "scpram"]), 3000.0, np.nan)
    table["best_val_loss"] = np.where(table["train_steps"].notna(), 90.0, np.nan)
    table["stopped_early"] = False
    return table


def _primary_table():
    """The primary question's metrics (top-100 DEGs, E-distance), and a withdrawn DEG-overlap metric."""
    parts = [
        _grid({"scpram": -0.1}, gene_set="top100_degs", noise=0.0),
        _grid({}, metric="e_distance", gene_set="all", noise=0.02),
        _grid({}, metric="deg_jaccard", gene_set="top100_degs", noise=0.01),
    ]
    return _with_training(pd.concat(parts, ignore_index=True))


def test_report_opens_with_the_primary_question_and_its_corrected_verdicts():
    table = _primary_table()
    report = rep.grid_report(table)
    assert report.startswith("### In words\n")  # the findings in words, then the question itself
    assert "\n### The primary question\n\n" + PRIMARY.describe() in report
    primary = rep.markdown_primary(primary_verdicts(table))
    assert primary in report and report.index(primary) < report.index("### What the table holds")
    rows = [ln for ln in primary.splitlines()[2:]]
    assert len(rows) == 4 and all(ln.count("|") == 11 for ln in rows)  # model, metric, estimate, Holm p, verdict, ...
    # scgen beats mean_shift by exactly 0.05 on Pearson-delta in every cell type: better, beyond the margin
    assert (
        "| scgen | mean_shift | pearson_delta (top100_degs) | 3 | model − baseline: +0.050 [+0.050, +0.050] |" in report
    )
    assert rows[0].endswith("| ±0.02 | **better** |")
    # E-distance as the geometric mean ratio, and its per-cell-type ratios
    assert "| scgen | mean_shift | e_distance (all) | 3 | model / baseline: ×" in report
    units = rep.markdown_primary_units(primary_units(table))
    assert units in report and "| scgen / mean_shift (e_distance) |" in units
    # the development cell type B is marked, and the family is repeated without it (2 types: too few)
    assert "| B | defaults |" in units and "| A | no |" in units
    dev = report.split("**Validation units are test units.**")[1].split("###")[0]
    assert "without them (2 cell types: A, C)" in dev and dev.count("inconclusive (too few") == 4
    # the rest is exploratory
    rest = report.split("### Exploratory verdicts")[1]
    assert "**exploratory**" in rest and "| verdict (exploratory) |" in rest


def test_withdrawn_metrics_are_named_once_and_give_no_verdict():
    report = rep.grid_report(_primary_table())
    assert "**Withdrawn from this page:** the verdicts on `deg_jaccard`:" in report
    assert "ranks a deterministic shift by ties and sparsity" in report
    assert "deg_jaccard (" not in report  # no verdict row, pooled, per cell type or per donor group
    assert all(m not in [mg[0] for mg in rep.report_metrics(_primary_table())] for m in ("deg_overlap_count",))


def test_the_deg_overlap_by_predicted_change_is_reported_with_its_chance_level():
    by_change = _grid({}, metric="deg_jaccard_by_change", gene_set="top100_degs", noise=0.01).assign(chance=0.026)
    table = _with_training(pd.concat([_primary_table(), by_change], ignore_index=True))
    report = rep.grid_report(table)
    assert "| balanced | scgen | mean_shift | deg_jaccard_by_change (top100_degs) | higher | 3 | setting |" in report
    assert "deg_jaccard_by_change (top100_degs) of a random list of genes: 0.026 (chance level)" in report
    assert "deg_jaccard (" not in report  # the withdrawn one still gives no verdict


def test_report_has_every_section_with_the_effects_put_in():
    report = rep.grid_report(_table())
    for heading in (
        "### The primary question",
        "### What the table holds",
        "### Exploratory verdicts",
        "#### Design `balanced`: 3 held-out cell types",
        "#### Design `stim20`: 3 held-out cell types",
        "#### Design `donors`: per cell type of the held-out donors",
        "#### Imbalance: `stim20` against `balanced`",
    ):
        assert heading in report
    # this table lacks E-distance and the top-100 DEGs: the primary question says so instead of judging
    assert "This table cannot answer it: it lacks pearson_delta on top100_degs, e_distance on all." in report
    # balanced, pooled over the 3 held-out types x 4 seeds: scgen 0.85 vs mean_shift 0.80, no noise;
    # the units are the 3 cell types (each the mean of its seeds)
    assert (
        "| balanced | scgen | mean_shift | pearson_delta (top20_degs) | higher | 3 | setting | 0.850 | 0.800 |"
        in report
    )
    # donors: one row per cell type and pair, never a pooled one; every verdict "on these donors"
    donors = report.split("#### Design `donors`")[1].split("####")[0]
    donor_rows = [ln for ln in donors.splitlines() if ln.startswith("| B | scgen | mean_shift")]
    assert len(donor_rows) == 1 and "| NK cells | scgen | mean_shift" in donors
    assert donor_rows[0].endswith(" on these donors |")
    # per held-out type tables only where a design has several types; no_change's undefined metric left out
    assert "| A | scgen | mean_shift | pearson_delta" in report
    assert "| scgen | no_change | r2_pearson_mean" not in report  # only pearson_delta in this table
    assert "| no_change | pearson_delta" not in report and "| no_change | stim20 |" not in report
    # training summary: one row per design and model
    assert "| balanced | scgen    |     12 |" in report


def test_imbalance_is_withdrawn_without_one_gene_panel_and_not_testable_with_three_types():
    table = _table()
    withdrawn = rep.grid_report(table).split("#### Imbalance")[1]
    assert f"**{rep.PANELS_WITHDRAWN}.**" in withdrawn and "imbalance hurts" not in withdrawn
    assert "| scpram | stim20 | balanced |" not in withdrawn
    # the same runs scored on one panel per held-out cell type and seed: the comparisons are printed,
    # but 3 cell types cannot reach 5% with a rank test
    loco = table["design"] != "donors"
    table.loc[loco, "gene_panel"] = table.loc[loco, "held_out"] + "-" + table.loc[loco, "seed"].astype(str)
    shown = rep.grid_report(table).split("#### Imbalance")[1]
    assert rep.PANELS_WITHDRAWN not in shown
    assert (
        "| scpram | stim20 | balanced | pearson_delta (top20_degs) | higher | 3 | held_out | 0.720 | 0.820 | -0.100"
        in shown
    )
    assert "not testable (n=3 blocks by held_out" in shown
    assert "- pearson_delta (top20_degs): not testable" in shown


def test_training_by_design_counts_runs_and_early_stops():
    table = _table()
    table.loc[(table["method"] == "scpram") & (table["seed"] == 0), ["train_steps", "stopped_early"]] = (2200.0, True)
    s = rep.training_by_design(table).set_index(["design", "method"])
    row = s.loc[("balanced", "scpram")]
    assert row["runs"] == 12 and row["steps_min"] == 2200 and row["stopped_early"] == 3
    assert row["steps_mean"] == pytest.approx((9 * 3000 + 3 * 2200) / 12)
    assert s.loc[("balanced", "scgen"), "stopped_early"] == 0
    with pytest.raises(DataValidationError, match="train_steps"):
        rep.training_by_design(table.drop(columns=["train_steps"]))


def test_a_table_without_unbalanced_runs_has_no_imbalance_section():
    table = _table()
    report = rep.grid_report(table[table["design"] != "stim20"])
    assert "#### Imbalance" not in report and "#### Design `balanced`" in report


def _page_with_blocks(first: str = "", second: str = "") -> str:
    (pb, pe), (vb, ve) = rep.markers("primary"), rep.markers("verdicts")
    return f"# Title\n\nintro\n\n{pb}\n{first}\n{pe}\n\nmiddle\n\n{vb}\n{second}\n{ve}\n\nafter\n"


def test_write_report_replaces_only_the_blocks_and_check_finds_stale_pages(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(_page_with_blocks("old question", "old numbers"))
    blocks = {"primary": "the question\n", "verdicts": "| new | table |\n"}
    assert rep.write_report(page, blocks) is True
    text = page.read_text()
    assert text.startswith("# Title\n\nintro\n\n") and text.endswith(f"{rep.markers('verdicts')[1]}\n\nafter\n")
    assert "\n\nmiddle\n\n" in text and "old" not in text
    assert rep.page_report(page) == "the question\n\n| new | table |\n"  # the blocks in report order
    assert rep.write_report(page, blocks) is False  # unchanged: not rewritten
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(ValueError, match="verdicts"):
        rep.write_report(page, {"primary": "x"})  # every block is needed
    with pytest.raises(ValueError, match="unknown block"):
        rep.markers("other")
    page.write_text("no markers here\n")
    with pytest.raises(DataValidationError, match="exactly one generated block 'primary'"):
        rep.write_report(page, blocks)
    assert page.read_text() == "no markers here\n"  # nothing lost


def test_the_page_opens_with_the_findings_and_the_primary_question():
    """The results page's first section is the primary block: the findings in words, then the question."""
    text = PAGE.read_text(encoding="utf-8")
    first_section = text.split("\n## ", 2)[1]
    assert first_section.startswith("What the benchmark found") and rep.markers("primary")[0] in first_section
    blocks = rep.report_blocks(load_grid(GRID_FILE))
    assert blocks["primary"].startswith("### In words") and "### The primary question" in blocks["primary"]
    assert "### The primary question" not in blocks["verdicts"]
    assert rep.grid_report(load_grid(GRID_FILE)) == blocks["primary"] + "\n" + blocks["verdicts"]


def test_report_cli_checks_and_writes_a_page(tmp_path):
    table_path = tmp_path / "grid.csv.gz"
    _table().to_csv(table_path, index=False, compression="gzip")
    page = tmp_path / "page.md"
    page.write_text(_page_with_blocks())
    script = str(REPO_ROOT / "benchmarks" / "report_grid.py")

    def run(*args):
        return subprocess.run([sys.executable, script, str(table_path), *args], capture_output=True, text=True)

    stale = run("--check", str(page))
    assert stale.returncode == 1 and "stale" in stale.stdout
    assert run("--write", str(page)).returncode == 0
    assert run("--check", str(page)).returncode == 0
    assert rep.page_report(page) == run().stdout
    missing = subprocess.run([sys.executable, script, str(tmp_path / "none.csv.gz")], capture_output=True, text=True)
    assert missing.returncode == 2 and "python -m course_tools.grid" in missing.stderr
