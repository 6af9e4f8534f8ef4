"""Reading the benchmark table: loading, description, imbalance verdicts and the live comparison.

The tables here are synthetic, with the grid's schema and known effects, so each verdict can be
checked against the effect that was put in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_tools import grid_results as gr
from tutorial_lib.data.checks import DataValidationError

CELL_TYPES = ["A", "B", "C"]
SEEDS = [0, 1, 2, 3]


def _grid(effects: dict[str, float], metric: str = "pearson_delta", gene_set: str = "top20_degs", noise: float = 0.01):
    """A grid table: per method a base value plus ``effects[method]`` in the stim20 design, and a donor setting."""
    rng = np.random.default_rng(0)
    base = {"no_change": np.nan, "mean_shift": 0.8, "scgen": 0.85, "scpram": 0.82}
    rows = []
    for method, b in base.items():
        for ct in CELL_TYPES:
            for design in ("balanced", "stim20"):
                for seed in SEEDS:
                    value = b + (effects.get(method, 0.0) if design == "stim20" else 0.0) + rng.normal(0, noise)
                    rows.append((method, f"loco/{ct}/{design}", seed, "all", ct, design, value))
        for group in ("B", "NK cells"):
            for seed in SEEDS:
                rows.append((method, "donors/1+2", seed, group, "1+2", "donors", b + rng.normal(0, noise)))
    table = pd.DataFrame(rows, columns=["method", "setting", "seed", "score_group", "held_out", "design", "value"])
    table["metric"], table["gene_set"] = metric, gene_set
    table["ci_low"], table["ci_high"] = table["value"] - 0.05, table["value"] + 0.05
    table["key"] = table["method"] + "|" + table["setting"] + "|" + table["seed"].astype(str)
    table["git_commit"], table["machine"], table["device"] = "abc123", "vm", "CPU: x86_64, 2 cores"
    table["versions"] = '{"torch": "2.13.0", "tutorial_lib": "0.1.0"}'
    table["finished_at"] = "2026-12-01T10:00:00+00:00"
    table["fit_predict_s"], table["evaluate_s"] = 30.0, 10.0
    table["run_wall_s"] = 40.0
    return table


def test_load_grid_reads_a_table_and_names_the_command_when_missing(tmp_path, monkeypatch):
    table = _grid({})
    path = tmp_path / "grid.csv.gz"
    table.to_csv(path, index=False, compression="gzip")
    back = gr.load_grid(path)
    assert len(back) == len(table) and back["held_out"].dtype == object
    monkeypatch.setenv(gr.GRID_ENV, str(path))
    assert len(gr.load_grid()) == len(table)
    with pytest.raises(FileNotFoundError, match="python -m course_tools.grid") as err:
        gr.load_grid(tmp_path / "nope.csv.gz")
    assert "nope.csv.gz" in str(err.value)
    table.drop(columns=["design"]).to_csv(path, index=False, compression="gzip")
    with pytest.raises(DataValidationError, match="design"):
        gr.load_grid(path)


def test_old_percentile_intervals_are_withdrawn_and_others_labelled(tmp_path):
    """Rows without ``ci_kind`` (older tables): per-gene intervals withdrawn, distance ones labelled."""
    old = pd.concat([_grid({}, metric="r2_pearson_mean"), _grid({}, metric="e_distance", gene_set="all")])
    new = _grid({}, metric="r2_pearson_mean").assign(ci_kind="basic", note="")
    path = tmp_path / "grid.csv.gz"
    pd.concat([old, new]).to_csv(path, index=False, compression="gzip")
    back = gr.load_grid(path)
    n = len(new)
    had = old["ci_low"].notna().to_numpy()[:n]  # no_change has no value, so no interval, to withdraw
    assert had.any() and not had.all()
    was_r2 = back.iloc[:n]
    assert was_r2["ci_low"].isna().all() and was_r2["ci_high"].isna().all()
    assert (was_r2["ci_kind"][had] == "percentile (withdrawn)").all() and (was_r2["ci_kind"][~had] == "").all()
    assert was_r2["note"][had].str.contains("withdrawn").all()
    # the width of a withdrawn interval is kept: the same for either scheme of the same resamples
    width = (old["ci_high"] - old["ci_low"]).to_numpy()[:n]
    np.testing.assert_allclose(was_r2["sampling_sd"][had], width[had] / (2 * 1.959963984540054))
    np.testing.assert_allclose(was_r2["value"], old["value"].iloc[:n])  # the values stay
    distance = back.iloc[n : 2 * n][had]
    assert (distance["ci_kind"] == "subsample").all() and distance["ci_low"].notna().all()
    labelled = back.iloc[2 * n :]
    assert (labelled["ci_kind"] == "basic").all()
    np.testing.assert_allclose(labelled["ci_low"], new["ci_low"])


def test_distance_lower_bounds_are_clipped_at_zero_when_read(tmp_path):
    table = pd.concat([_grid({}, metric="e_distance", gene_set="all"), _grid({}, metric="pearson_delta")])
    table["ci_kind"] = np.where(table["metric"] == "e_distance", "subsample", "basic")
    table["ci_low"] = table["value"] - 1.0  # below 0 for every distance (values about 0.8)
    path = tmp_path / "grid.csv.gz"
    table.to_csv(path, index=False, compression="gzip")
    back = gr.load_grid(path)
    dist = back[(back["metric"] == "e_distance") & back["value"].notna()]
    assert (dist["ci_low"] == 0.0).all() and dist["note"].str.contains(gr.CLIPPED_NOTE, regex=False).all()
    # the sampling sd is read from the interval before it was clipped
    np.testing.assert_allclose(dist["sampling_sd"], (dist["ci_high"] - (dist["value"] - 1.0)) / (2 * 1.959963984540054))
    other = back[(back["metric"] == "pearson_delta") & back["value"].notna()]
    assert (other["ci_low"] < 0).all() and not other["note"].str.contains("clipped").any()  # a correlation can be < 0
    summary = gr.interval_bias(back).set_index("metric")
    assert summary.loc["e_distance", "clipped"] == len(dist) and summary.loc["pearson_delta", "clipped"] == 0


def test_interval_bias_counts_intervals_that_exclude_their_estimate():
    table = _grid({}).assign(ci_kind="basic", note="")
    defined = table["value"].notna()
    shifted = defined & (table["seed"] == 0)  # these intervals lie above their estimate, by 0.02 to 0.06
    table.loc[shifted, "ci_low"] = table.loc[shifted, "value"] + 0.02
    table.loc[shifted, "ci_high"] = table.loc[shifted, "value"] + 0.06
    out = gr.interval_bias(table).iloc[0]
    assert out["intervals"] == defined.sum() and out["outside"] == shifted.sum()
    # basic interval above the estimate: the resamples lie below it, bias = estimate - midpoint = -0.04
    assert out["bias_median"] == pytest.approx(-0.04) and out["half_width_median"] == pytest.approx(0.02)
    assert gr.interval_bias(_grid({}).assign(ci_low=np.nan)).empty


def test_imbalance_needs_one_gene_panel_for_both_designs():
    table = _grid({})
    levels = ("stim20", "balanced")
    assert not gr.same_gene_panels(table, levels)  # not recorded: cannot be shown
    loco = table["design"] != "donors"
    table.loc[loco, gr.PANEL_COLUMN] = table.loc[loco, "held_out"] + "-" + table.loc[loco, "seed"].astype(str)
    assert gr.same_gene_panels(table, levels)
    own = table.copy()
    own.loc[own["design"] == "stim20", gr.PANEL_COLUMN] += "-own"  # each design chose its own genes
    assert not gr.same_gene_panels(own, levels)


def test_describe_grid_counts_what_the_table_holds():
    table = _grid({})
    text = gr.describe_grid(table)
    n_runs = table["key"].nunique()
    assert f"{n_runs} runs" in text
    assert "seeds: 0, 1, 2, 3" in text
    assert "design 'stim20': held out A, B, C" in text and "scored within 2 groups" in text
    # compute: 40 s per run, summed over runs (not rows)
    hours, rest = divmod(40 * n_runs, 3600)
    assert hours >= 1 and f"total compute (sum of run_wall_s over runs): {hours} h {rest // 60:02d} min" in text
    assert "commits: abc123" in text and "torch 2.13.0" in text


def test_seeds_are_listed_per_held_out_cell_type_when_they_differ():
    table = _grid({})
    assert gr.describe_seeds(table[table["design"] == "balanced"]) == "seeds 0, 1, 2, 3"
    assert "    seeds" not in gr.describe_grid(table)
    # a grid committed part-way: C has seeds 0-1 in the balanced design only, B seed 0
    drop = (table["design"] == "balanced") & (
        ((table["held_out"] == "C") & (table["seed"] >= 2)) | ((table["held_out"] == "B") & (table["seed"] >= 1))
    )
    part = table[~drop]
    balanced = part[part["design"] == "balanced"]
    assert gr.describe_seeds(balanced) == "seeds 0, 1, 2, 3 (A); 0, 1 (C); 0 (B)"
    lines = gr.describe_grid(part).splitlines()
    at = lines.index(next(line for line in lines if line.startswith("design 'balanced'")))
    assert lines[at + 1] == "    seeds 0, 1, 2, 3 (A); 0, 1 (C); 0 (B)"
    assert not lines[lines.index(next(x for x in lines if x.startswith("design 'stim20'"))) + 1].startswith("    seeds")


def test_gene_set_and_design_are_read_from_the_table():
    table = _grid({})
    assert gr.top_degs_gene_set(table) == "top20_degs"
    assert gr.imbalance_design(table) == "stim20"
    balanced_only = table[table["design"] != "stim20"]
    assert gr.imbalance_design(balanced_only) is None
    with pytest.raises(DataValidationError, match="no unbalanced design"):
        gr.imbalance_effects(balanced_only, [("e_distance", "all")], ["scgen"])
    two = pd.concat([table, table[table["design"] == "stim20"].assign(design="stim50")])
    with pytest.raises(DataValidationError, match="one unbalanced design"):
        gr.imbalance_design(two)


def test_imbalance_effects_find_the_effect_put_in():
    table = _grid({"scgen": -0.2, "scpram": 0.0, "mean_shift": 0.1})
    # 3 held-out cell types: no rank test can reach 5%, so by default nothing is judged
    default = gr.imbalance_effects(table, [("pearson_delta", "top20_degs")]).set_index("method")
    assert (
        default.loc["scgen", "effect"] == "not testable (n=3 blocks by held_out; a rank test needs 6 to reach p < 0.05)"
    )
    eff = gr.imbalance_effects(table, [("pearson_delta", "top20_degs")], min_units=3).set_index("method")
    assert "no_change" not in eff.index  # undefined metric: no verdict
    assert eff.loc["scgen", "effect"] == "imbalance hurts"
    assert eff.loc["mean_shift", "effect"] == "imbalance helps"
    assert eff.loc["scpram", "effect"] == "no clear change"
    # several held-out cell types: each is one unit, the mean of its seeds
    assert eff.loc["scgen", "n"] == len(CELL_TYPES) and eff.loc["scgen", "unit"] == "held_out"
    assert eff.loc["scgen", "estimate"] == pytest.approx(-0.2, abs=0.02)


def test_interactions_read_the_direction_of_the_metric():
    # higher is better: a drop of scgen's pearson_delta hurts scgen
    table = _grid({"scgen": -0.2})
    inter = gr.imbalance_interactions(table, [("pearson_delta", "top20_degs")], [("scgen", "mean_shift")], min_units=3)
    assert inter.loc[0, "hurt"] == "imbalance is worse for scgen than for mean_shift"
    assert inter.loc[0, "interaction"] == pytest.approx(-0.2, abs=0.02)
    # lower is better: a rise of scgen's E-distance hurts scgen; a fall hurts the other method relatively
    up = gr.imbalance_interactions(
        _grid({"scgen": 0.3}, "e_distance", "all"), [("e_distance", "all")], [("scgen", "scpram")], min_units=3
    )
    assert up.loc[0, "hurt"] == "imbalance is worse for scgen than for scpram" and up.loc[0, "scale"] == "ratio"
    assert up.loc[0, "interaction"] == pytest.approx((0.85 + 0.3) / 0.85 / 1.0, abs=0.02)  # ratio of ratios
    down = gr.imbalance_interactions(
        _grid({"scgen": -0.3}, "e_distance", "all"), [("e_distance", "all")], [("scgen", "scpram")], min_units=3
    )
    assert down.loc[0, "hurt"] == "imbalance is worse for scpram than for scgen"
    same = gr.imbalance_interactions(_grid({}), [("pearson_delta", "top20_degs")], [("scgen", "scpram")], min_units=3)
    assert same.loc[0, "hurt"] == "no clear difference"
    assert (
        gr.imbalance_interactions(_grid({}), [("pearson_delta", "top20_degs")], [("scgen", "scpram")])
        .loc[0, "hurt"]
        .startswith("not testable (n=3 blocks by held_out")
    )
    # a method undefined on the metric is left out
    none = gr.imbalance_interactions(_grid({}), [("pearson_delta", "top20_degs")], [("scgen", "no_change")])
    assert none.empty


@pytest.mark.parametrize(
    ("effects", "expected"),
    [
        ({"scpram": -0.3}, "supported"),
        ({"scgen": -0.3}, "refuted"),
        ({}, "no clear difference"),
        ({"scpram": -0.3, "scgen": -0.3}, "no clear difference"),
    ],
)
def test_expectation_most_hurt(effects, expected):
    metrics = [("pearson_delta", "top20_degs")]
    pairs = [("scpram", "scgen"), ("scpram", "mean_shift")]
    inter = gr.imbalance_interactions(_grid(effects), metrics, pairs, min_units=3)
    out = gr.expectation_most_hurt(inter, "scpram", "pearson_delta", "top20_degs")
    assert out["verdict"] == expected and len(out["lines"]) == 2
    # with the default rule, 3 cell types cannot test it whatever the effects
    untested = gr.imbalance_interactions(_grid(effects), metrics, pairs)
    assert gr.expectation_most_hurt(untested, "scpram", "pearson_delta", "top20_degs")["verdict"] == "not testable"


def test_expectation_can_leave_out_a_method():
    metrics = [("pearson_delta", "top20_degs")]
    pairs = [("scpram", "scgen"), ("scpram", "mean_shift")]
    inter = gr.imbalance_interactions(_grid({"scpram": -0.3, "mean_shift": -0.6}), metrics, pairs, min_units=3)
    assert gr.expectation_most_hurt(inter, "scpram", *metrics[0])["verdict"] == "refuted"
    kept = gr.expectation_most_hurt(inter, "scpram", *metrics[0], others=["scgen"])
    assert kept["verdict"] == "supported" and len(kept["lines"]) == 1


def test_expectation_with_too_few_runs_does_not_judge():
    table = _grid({"scpram": -0.3})
    small = table[table["held_out"].eq("A") & table["seed"].isin([0, 1])]
    inter = gr.imbalance_interactions(small, [("pearson_delta", "top20_degs")], [("scpram", "scgen")])
    assert (
        gr.expectation_most_hurt(inter, "scpram", "pearson_delta", "top20_degs")["verdict"] == "too few runs to judge"
    )


def test_describe_verdicts_names_direction_and_skips_undefined():
    from course_tools.verdicts import verdict_table

    table = _grid({}, "e_distance", "all")
    vt = verdict_table(
        table[table["design"] == "donors"], [("e_distance", "all")], [("scgen", "mean_shift")], by=("score_group",)
    )
    text = gr.describe_verdicts(vt, by=("score_group",))
    # within one cell type (units: its seeds) a distance is compared as a difference, in its units
    assert text.count("\n") == 1 and text.startswith("B: e_distance (all, lower is better): scgen - mean_shift = +")
    pooled = verdict_table(
        table[table["design"] == "balanced"], [("e_distance", "all")], [("scgen", "mean_shift")], by=()
    )
    row = pooled.iloc[0]  # pooled over cell types: the geometric mean ratio, with its interval
    assert row["scale"] == "ratio" and row["unit"] == "setting"
    assert (
        f"scgen / mean_shift = ×{row['estimate']:.3f} [×{row['ci_low']:.3f}, ×{row['ci_high']:.3f}] over 3 blocks"
        in (gr.describe_verdicts(pooled))
    )
    vt2 = verdict_table(_grid({}), [("pearson_delta", "top20_degs")], [("scgen", "no_change")], by=("design",))
    assert "not compared" in gr.describe_verdicts(vt2, by=("design",))


def test_per_seed_lines_up_methods_by_seed():
    table = _grid({})
    wide = gr.per_seed(table, ["scgen", "mean_shift"], "pearson_delta", "top20_degs", "loco/A/balanced")
    assert list(wide.index) == SEEDS and list(wide.columns) == ["scgen", "mean_shift"]
    want = table.query("method == 'scgen' and setting == 'loco/A/balanced'").sort_values("seed")["value"]
    np.testing.assert_allclose(wide["scgen"], want)


def test_compare_live_checks_each_value_against_the_interval():
    table = _grid({})
    setting = "loco/A/balanced"
    live = table[(table["setting"] == setting) & (table["seed"] == 0)].copy()
    live = live[["method", "setting", "seed", "score_group", "metric", "gene_set", "value", "key"]]
    out = gr.compare_live(live, table)
    assert len(out) == 3  # no_change's undefined pearson_delta is dropped
    assert out["within"].tolist() == [True] * 3 and out["same_run"].all()
    assert out["same_value"].all() and out["table_within"].all()
    text = gr.describe_live(out)
    assert "3 of 3 live values lie within" in text and "same data" in text and "3 of 3 live values equal" in text
    # a live value outside the interval, from a run with another configuration
    moved = live.assign(value=live["value"] + 0.1, key="other")
    out = gr.compare_live(moved, table)
    assert out["within"].tolist() == [False] * 3 and not out["same_run"].any()
    text = gr.describe_live(out)
    assert text.startswith("not comparable") and "0 of 3 live values lie" in text and text.count("outside:") == 3
    assert not out["same_value"].any() and "0 of 3 live values equal" in text
    # the table's own value outside its interval is flagged
    shifted = table.assign(ci_low=table["value"] + 0.01, ci_high=table["value"] + 0.2)
    flagged = gr.compare_live(live, shifted)
    assert not flagged["table_within"].any()
    assert gr.describe_live(flagged).count("own value lies outside its interval") == 3
    # the same run with other values (trained on another machine) names the methods, once each
    nudged = live.assign(value=np.where(live["method"] == "scgen", live["value"] + 1e-3, live["value"]))
    nudged_out = gr.compare_live(nudged, table)
    text = gr.describe_live(nudged_out)
    n_scgen = int((nudged_out["method"] == "scgen").sum())
    assert f"{3 - n_scgen} of 3 live values equal" in text and "same run, other value: scgen." in text
    assert "same run, other value" not in gr.describe_live(out) and "other value" not in gr.describe_live(flagged)
    # scores the table does not have
    assert gr.describe_live(gr.compare_live(live.assign(setting="elsewhere"), table)).startswith("not comparable")


def test_tally_counts_verdicts_per_pair_and_metric():
    from course_tools.verdicts import verdict_table

    table = _grid({})
    balanced = table[table["design"] == "balanced"].copy()
    # scgen = mean_shift +- 0.01 (alternating by seed: no clear difference), and clearly better in cell type A
    ms = balanced[balanced["method"] == "mean_shift"].set_index(["held_out", "seed"])["value"]
    is_scgen = balanced["method"] == "scgen"
    idx = pd.MultiIndex.from_frame(balanced.loc[is_scgen, ["held_out", "seed"]])
    wiggle = np.where(balanced.loc[is_scgen, "seed"] % 2 == 0, 0.01, -0.01)
    balanced.loc[is_scgen, "value"] = ms.reindex(idx).to_numpy() + wiggle
    balanced.loc[is_scgen & (balanced["held_out"] == "A"), "value"] += 1.0
    vt = verdict_table(balanced, [("pearson_delta", "top20_degs")], [("scgen", "mean_shift")], by=("held_out",))
    tally = gr.tally_verdicts(vt)
    assert len(tally) == 1 and tally.loc[0, "groups"] == len(CELL_TYPES)
    assert tally.loc[0, "scgen better"] == 1 and tally.loc[0, "no clear difference"] == 2
    assert "mean_shift better" not in tally.columns


def test_grid_config_reads_the_scoring_options():
    table = pd.concat([_grid({}), _grid({}, "e_distance", "all")], ignore_index=True)
    table["n_genes"] = np.where(table["gene_set"] == "all", 1500, 20)
    table["n_bootstrap"] = 50
    deg = _grid({}, "deg_jaccard", "top20_degs").assign(n_genes=20, n_bootstrap=7)
    config = gr.grid_config(pd.concat([table, deg], ignore_index=True))
    assert (config.n_top_genes, config.n_top_degs, config.n_bootstrap, config.n_bootstrap_degs) == (1500, 20, 50, 7)
    assert config.max_epochs is None and not config.method_kwargs
    assert gr.grid_config(table).n_bootstrap_degs == 0
    with pytest.raises(DataValidationError, match="n_bootstrap"):
        gr.grid_config(table.drop(columns=["n_bootstrap"]))
    with pytest.raises(DataValidationError, match="all genes"):
        gr.grid_config(table[table["gene_set"] != "all"])


def test_scored_in_both_keeps_the_metrics_of_both_designs_in_their_order():
    import pandas as pd

    from course_tools.grid_results import scored_in_both

    table = pd.DataFrame(
        {
            "design": ["balanced", "stim20", "balanced", "balanced", "stim20", "donors"],
            "metric": ["e_distance", "e_distance", "new_metric", "pearson_delta", "pearson_delta", "new_metric"],
            "gene_set": ["all", "all", "all", "top100_degs", "top100_degs", "all"],
        }
    )
    wanted = [("pearson_delta", "top100_degs"), ("new_metric", "all"), ("e_distance", "all"), ("absent", "all")]
    assert scored_in_both(table, wanted, ("stim20", "balanced")) == [
        ("pearson_delta", "top100_degs"),
        ("e_distance", "all"),
    ]
    assert scored_in_both(table, wanted, ("donors", "balanced")) == [("new_metric", "all")]
