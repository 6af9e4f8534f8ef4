"""The grid report: the results page's generated block, and the markdown it is made of.

The synthetic tables come from ``test_grid_results._grid`` (the grid's schema, known effects).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from test_grid_results import _grid

from tutorial_lib import grid_report as rep
from tutorial_lib.config import REPO_ROOT
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.grid_results import GRID_FILE, load_grid

PAGE = REPO_ROOT / "book" / "results.md"


def test_results_page_block_is_the_committed_tables_report():
    """The page's numbers are the committed table's: regenerate with ``benchmarks/report_grid.py --write``."""
    assert rep.page_report(PAGE) == rep.grid_report(load_grid(GRID_FILE)), (
        "book/results.md is stale: run `python benchmarks/report_grid.py --write book/results.md`"
    )


def _table():
    table = _grid({"scpram": -0.1}, gene_set="top20_degs", noise=0.0)
    table["train_steps"] = np.where(table["method"].isin(["scgen", "scpram"]), 3000.0, np.nan)
    table["best_val_loss"] = np.where(table["train_steps"].notna(), 90.0, np.nan)
    table["stopped_early"] = False
    return table


def test_report_has_every_section_with_the_effects_put_in():
    report = rep.grid_report(_table())
    for heading in (
        "### What the table holds",
        "### Design `balanced`: 3 held-out cell types",
        "### Design `stim20`: 3 held-out cell types",
        "### Design `donors`: per cell type of the held-out donors",
        "### Imbalance: `stim20` against `balanced`",
    ):
        assert heading in report
    # balanced, pooled over the 3 held-out types x 4 seeds: scgen 0.85 vs mean_shift 0.80, no noise;
    # the units are the 3 cell types (each the mean of its seeds)
    assert (
        "| balanced | scgen | mean_shift | pearson_delta (top20_degs) | higher | 3 | setting | 0.850 | 0.800 |"
        in report
    )
    # stim20 lowers scpram by 0.1 and nobody else: its change and its interaction with scgen
    assert (
        "| scpram | stim20 | balanced | pearson_delta (top20_degs) | higher | 3 | held_out | 0.720 | 0.820 | -0.100"
        in report
    )
    lines = [ln for ln in report.splitlines() if ln.startswith("| scpram | scgen | pearson_delta")]
    assert len(lines) == 1 and "imbalance is worse for scpram than for scgen" in lines[0]
    assert "- pearson_delta (top20_degs): **SUPPORTED**" in report
    # donors: one row per cell type and pair, never a pooled one
    donors = report.split("### Design `donors`")[1].split("###")[0]
    donor_rows = [ln for ln in donors.splitlines() if ln.startswith("| B | scgen | mean_shift")]
    assert len(donor_rows) == 1 and "| NK cells | scgen | mean_shift" in donors
    # per held-out type tables only where a design has several types; no_change's undefined metric left out
    assert "| A | scgen | mean_shift | pearson_delta" in report
    assert "| scgen | no_change | r2_pearson_mean" not in report  # only pearson_delta in this table
    assert "| no_change | pearson_delta" not in report and "| no_change | stim20 |" not in report
    # training summary: one row per design and model
    assert "| balanced | scgen    |     12 |" in report


def test_training_summary_counts_runs_and_early_stops():
    table = _table()
    table.loc[(table["method"] == "scpram") & (table["seed"] == 0), ["train_steps", "stopped_early"]] = (2200.0, True)
    s = rep.training_summary(table).set_index(["design", "method"])
    row = s.loc[("balanced", "scpram")]
    assert row["runs"] == 12 and row["steps_min"] == 2200 and row["stopped_early"] == 3
    assert row["steps_mean"] == pytest.approx((9 * 3000 + 3 * 2200) / 12)
    assert s.loc[("balanced", "scgen"), "stopped_early"] == 0
    with pytest.raises(DataValidationError, match="train_steps"):
        rep.training_summary(table.drop(columns=["train_steps"]))


def test_a_table_without_unbalanced_runs_has_no_imbalance_section():
    table = _table()
    report = rep.grid_report(table[table["design"] != "stim20"])
    assert "### Imbalance" not in report and "### Design `balanced`" in report


def test_write_report_replaces_only_the_block_and_check_finds_stale_pages(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\nintro\n\n{rep.BEGIN}\nold numbers\n{rep.END}\n\nafter\n")
    assert rep.write_report(page, "| new | table |\n") is True
    text = page.read_text()
    assert text.startswith("# Title\n\nintro\n\n") and text.endswith(f"{rep.END}\n\nafter\n")
    assert "old numbers" not in text and rep.page_report(page) == "| new | table |\n"
    assert rep.write_report(page, "| new | table |\n") is False  # unchanged: not rewritten
    assert not list(tmp_path.glob("*.part"))
    page.write_text("no markers here\n")
    with pytest.raises(DataValidationError, match="exactly one generated block"):
        rep.write_report(page, "x")
    assert page.read_text() == "no markers here\n"  # nothing lost


def test_report_cli_checks_and_writes_a_page(tmp_path):
    table_path = tmp_path / "grid.csv.gz"
    _table().to_csv(table_path, index=False, compression="gzip")
    page = tmp_path / "page.md"
    page.write_text(f"{rep.BEGIN}\n{rep.END}\n")
    script = str(REPO_ROOT / "benchmarks" / "report_grid.py")

    def run(*args):
        return subprocess.run([sys.executable, script, str(table_path), *args], capture_output=True, text=True)

    stale = run("--check", str(page))
    assert stale.returncode == 1 and "stale" in stale.stdout
    assert run("--write", str(page)).returncode == 0
    assert run("--check", str(page)).returncode == 0
    assert rep.page_report(page) == run().stdout
    missing = subprocess.run([sys.executable, script, str(tmp_path / "none.csv.gz")], capture_output=True, text=True)
    assert missing.returncode == 2 and "python -m tutorial_lib.grid" in missing.stderr
