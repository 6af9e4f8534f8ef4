"""Notebook 03's "What we found": every finding holds on the committed table, fails on one that contradicts it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_tools import findings as fd
from course_tools.grid_results import DEVELOPMENT_CELL_TYPES, load_grid
from course_tools.verdicts import format_estimate, primary_verdicts


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    return load_grid()


def _scale(table: pd.DataFrame, method: str, metric: str, new_value, design: str = "balanced") -> pd.DataFrame:
    """A copy where ``method``'s ``metric`` in ``design`` is ``new_value(own, mean_shift's)``, run by run."""
    out = table.copy()
    keys = ["setting", "seed", "score_group", "gene_set"]
    rows = (out["design"] == design) & (out["metric"] == metric)
    base = out[rows & (out["method"] == "mean_shift")].set_index(keys)["value"]
    target = rows & (out["method"] == method)
    idx = pd.MultiIndex.from_frame(out.loc[target, keys])
    out.loc[target, "value"] = new_value(out.loc[target, "value"].to_numpy(), base.reindex(idx).to_numpy())
    return out


def test_every_finding_holds_on_the_committed_table(grid):
    found = fd.what_we_found(grid)
    assert len(found) == 6
    for finding in found:
        assert finding.holds, str(finding)
    assert found.holds
    markdown = found._repr_markdown_()
    assert markdown.count("\n- **") == len(found) - 1 and "not supported" not in markdown


def test_statements_carry_the_tables_numbers(grid):
    primary = primary_verdicts(grid)
    pearson = fd.pearson_delta_finding(grid)
    for r in primary[primary["metric"] == "pearson_delta"].to_dict("records"):
        assert format_estimate(r["estimate"], r["ci_low"], r["ci_high"], r["scale"]) in pearson.statement
        assert pearson.evidence[f"{r['model']}_estimate"] == pytest.approx(r["estimate"])
    # the per-cell-type counts, recomputed here from the raw rows: mean E-distance over seeds per held-out type
    e = grid[(grid["design"] == "balanced") & (grid["metric"] == "e_distance") & (grid["gene_set"] == "all")]
    means = e.groupby(["held_out", "method"])["value"].mean().unstack()
    finding = fd.e_distance_finding(grid)
    for model in ("scgen", "scpram"):
        k = int((means[model] > means["mean_shift"]).sum())
        assert finding.evidence[f"{model}_worse_types"] == k
        assert f"farther in {k} of" in finding.statement
    assert "8 held-out cell types" in finding.statement


def test_training_finding_counts_runs_at_the_cap(grid):
    runs = grid[(grid["design"] == "balanced") & (grid["method"] == "scgen")].drop_duplicates(["setting", "seed"])
    finding = fd.training_finding(grid)
    assert finding.evidence["scgen_runs"] == len(runs)
    assert finding.evidence["cap"] == runs["train_steps"].max()
    assert f"{len(runs)} of {len(runs)} scGen runs" in finding.statement


def test_pearson_delta_finding_fails_when_scgen_loses(grid):
    flipped = _scale(grid, "scgen", "pearson_delta", lambda own, base: 2 * base - own)  # scgen - base negated
    finding = fd.pearson_delta_finding(flipped)
    assert not finding.holds
    assert finding.evidence["scgen_estimate"] == pytest.approx(
        -fd.pearson_delta_finding(grid).evidence["scgen_estimate"]
    )
    assert "not supported by this table" in finding._repr_markdown_()
    assert not fd.what_we_found(flipped).holds


def test_e_distance_finding_fails_when_the_cell_types_agree(grid):
    closer = _scale(grid, "scgen", "e_distance", lambda own, base: 0.5 * base)
    finding = fd.e_distance_finding(closer)
    assert not finding.holds and finding.evidence["scgen_worse_types"] == 0


def test_models_finding_fails_when_one_model_is_clearly_ahead(grid):
    out = grid.copy()
    rows = (out["design"] == "balanced") & (out["metric"] == "pearson_delta") & (out["method"] == "scpram")
    scgen = grid[(grid["design"] == "balanced") & (grid["metric"] == "pearson_delta") & (grid["method"] == "scgen")]
    keys = ["setting", "seed", "score_group", "gene_set"]
    idx = pd.MultiIndex.from_frame(out.loc[rows, keys])
    out.loc[rows, "value"] = scgen.set_index(keys)["value"].reindex(idx).to_numpy() - 0.05
    finding = fd.models_finding(out)
    assert fd.models_finding(grid).holds and not finding.holds
    assert finding.evidence["pearson_delta_estimate"] == pytest.approx(0.05)


def test_development_finding_fails_when_leaving_them_out_changes_a_verdict(grid):
    dev = list(DEVELOPMENT_CELL_TYPES)
    other = ~grid["held_out"].isin(dev)
    # scGen's E-distance 0.8 x mean shift's in every run of the other five cell types: without the
    # development types the ratio is 0.8 with no spread ("better"); with them it stays inconclusive
    changed = _scale(grid[other], "scgen", "e_distance", lambda own, base: 0.8 * base)
    table = pd.concat([grid[~other], changed])
    full = primary_verdicts(table).set_index(["model", "metric"])["verdict"]
    without = primary_verdicts(table, exclude=dev).set_index(["model", "metric"])["verdict"]
    assert full[("scgen", "e_distance")] == "inconclusive" and without[("scgen", "e_distance")] == "better"
    assert fd.development_finding(grid).holds and not fd.development_finding(table).holds


def test_training_finding_fails_when_a_run_stopped_early(grid):
    out = grid.copy()
    run = (out["design"] == "balanced") & (out["method"] == "scpram") & (out["setting"] == out["setting"].iloc[0])
    run &= out["seed"] == out.loc[run, "seed"].min()
    out.loc[run, ["stopped_early", "train_steps"]] = [1, 2000]
    finding = fd.training_finding(out)
    assert not finding.holds and finding.evidence["scpram_stopped_early"] == 1


def test_imbalance_finding_follows_the_table(grid):
    finding = fd.imbalance_finding(grid)
    assert finding.holds and finding.evidence["same_gene_panels"] == 1 and finding.evidence["cell_types"] == 8
    assert "One gene panel" in finding.statement or "one gene panel" in finding.statement
    # scGen's unbalanced runs made clearly worse on Pearson-delta: the claim "no key metric moved" fails
    worse = grid.copy()
    hit = (worse["design"] == "stim20") & (worse["method"] == "scgen") & (worse["metric"] == "pearson_delta")
    worse.loc[hit, "value"] -= 0.2
    contradicted = fd.imbalance_finding(worse)
    assert not contradicted.holds and contradicted.evidence["effects_moved"] >= 1
    # without a recorded gene panel the designs cannot be compared: the claim is that the table cannot answer
    unrecorded = fd.imbalance_finding(grid.drop(columns=["gene_panel"]))
    assert unrecorded.holds and "other gene panels" in unrecorded.statement
    assert fd.imbalance_finding(grid[grid["design"] != "stim20"]).holds  # no unbalanced design: nothing to say
    # the statement says how many seeds the unbalanced runs cover, and calls fewer than the balanced ones partial
    stim = grid[grid["design"] == "stim20"]
    seeds = stim.groupby("held_out")["seed"].nunique()
    n_seeds = grid.loc[grid["design"] == "balanced", "seed"].nunique()
    covered = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
    assert (f"cover {covered} of the {n_seeds} seeds" in finding.statement) == (seeds.min() < n_seeds)
    one_seed = grid[(grid["design"] != "stim20") | (grid["seed"] == 0)]
    assert "cover 1 of the 5 seeds per cell type, so this is a partial" in fd.imbalance_finding(one_seed).statement


def test_imbalance_finding_says_what_the_models_interactions_say(grid):
    from course_tools.grid_results import imbalance_interactions, scored_in_both

    finding = fd.imbalance_finding(grid)
    levels = ("stim20", "balanced")
    in_both = scored_in_both(grid, fd.key_metrics(grid), levels)
    between = imbalance_interactions(grid, in_both, [("scgen", "scpram")], levels=levels)
    clear = between[between["hurt"] != "no clear difference"]
    assert finding.evidence["model_interactions_clear"] == len(clear)
    for r in clear.to_dict("records"):  # each clear interaction is in the sentence, with its own interval
        worse = "scGen than for scPRAM" if r["hurt"].endswith("scgen than for scpram") else "scPRAM than for scGen"
        estimate = format_estimate(r["interaction"], r["ci_low"], r["ci_high"], r["scale"])
        assert f"worse for {worse} on {fd.name(r['metric'])}" in finding.statement and estimate in finding.statement
    if clear.empty:
        assert "Nor was it clearly worse for one model than for the other." in finding.statement
    # scGen's unbalanced Pearson-delta lowered by the interaction itself: scGen's change now equals scPRAM's
    pearson = between.set_index("metric").loc["pearson_delta"]
    shifted = grid.copy()
    hit = (shifted["design"] == "stim20") & (shifted["method"] == "scgen") & (shifted["metric"] == "pearson_delta")
    shifted.loc[hit, "value"] -= pearson["interaction"]
    level = fd.imbalance_finding(shifted)
    assert level.evidence["model_interactions_clear"] == len(clear) - (pearson["hurt"] != "no clear difference")
    if level.evidence["model_interactions_clear"] == 0:
        assert "Nor was it clearly worse for one model than for the other." in level.statement


def test_names_and_rendering():
    assert fd.name("scgen") == "scGen" and fd.name("top100_degs") == "top-100 DEGs" and fd.name("other") == "other"
    f = fd.Finding("Topic", "A claim.", True, {"x": 1.0})
    assert f._repr_markdown_() == "- **Topic.** A claim." and str(f) == "Topic: A claim."
    g = fd.Finding("Topic", "A claim.", False, {})
    assert "not supported by this table" in g._repr_markdown_() and "NOT SUPPORTED" in str(g)
    both = fd.Findings((f, g))
    assert not both.holds and list(both) == [f, g] and np.isclose(both.items[0].evidence["x"], 1.0)


def test_count_verdicts_counts_each_pairs_verdicts(grid):
    from course_tools.verdicts import verdict_table

    balanced = grid[grid["design"] == "balanced"]
    v = verdict_table(balanced, [("e_distance", "all")], [("scgen", "mean_shift")], by=("held_out",))
    counts = v["verdict"].value_counts()
    line = fd.count_verdicts(v)
    assert line == (
        f"scgen vs mean_shift, e_distance (all): scgen better in {counts.get('scgen better', 0)}, "
        f"no clear difference in {counts.get('no clear difference', 0)}, "
        f"mean_shift better in {counts.get('mean_shift better', 0)} of {len(v)} held-out cell types"
    )


def test_stopped_early_read_as_text_or_numbers(grid):
    as_text = grid.assign(stopped_early=grid["stopped_early"].map({0.0: "False", 1.0: "True"}))
    assert fd.training_finding(as_text).evidence == fd.training_finding(grid).evidence
    assert fd.imbalance_finding(as_text).evidence == fd.imbalance_finding(grid).evidence
