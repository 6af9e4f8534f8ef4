"""Paired verdicts over matched runs and the method x setting interaction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_tools.verdicts import (
    MIN_RANK_UNITS,
    PRIMARY,
    RUN_INTERVAL_LEVEL,
    Margin,
    PrimaryQuestion,
    cell_sampling_sd,
    contrast,
    describe_verdict,
    holm,
    holm_levels,
    interaction,
    min_units_for_rank_test,
    paired_difference,
    paired_ratio,
    paired_t,
    paired_verdict,
    primary_units,
    primary_verdicts,
    verdict_table,
)
from tutorial_lib.data.checks import DataValidationError


def _table(values: dict[str, list[float]], metric: str = "pearson_delta", setting: str = "s", **extra) -> pd.DataFrame:
    rows = []
    for method, vals in values.items():
        for seed, v in enumerate(vals):
            rows.append(
                {
                    "method": method,
                    "setting": setting,
                    "seed": seed,
                    "metric": metric,
                    "gene_set": "all",
                    "value": v,
                    **extra,
                }
            )
    return pd.DataFrame(rows)


def test_paired_verdict_uses_the_matched_differences_and_the_direction():
    # A beats B by exactly 0.1 in every run although both vary a lot between seeds: paired, it is clear
    b = [0.5, 0.9, 0.6, 0.8, 0.7]
    t = _table({"A": [x + 0.1 for x in b], "B": b})
    v = paired_verdict(t, "A", "B", "pearson_delta")
    assert v["n"] == 5 and v["estimate"] == pytest.approx(0.1) and v["scale"] == "difference"
    assert v["ci_low"] == pytest.approx(0.1) and v["ci_high"] == pytest.approx(0.1)
    assert v["verdict"] == "A better" and v["direction"] == "higher"
    assert paired_verdict(t, "B", "A", "pearson_delta")["verdict"] == "A better"
    # lower is better for the E-distance: the larger A is then worse
    e = _table({"A": [x + 0.1 for x in b], "B": b}, metric="e_distance")
    assert paired_verdict(e, "A", "B", "e_distance")["verdict"] == "B better"
    # noisy differences around zero: no clear difference; the interval is the paired t
    d = np.array([0.05, -0.04, 0.02, -0.03, 0.01])
    t = _table({"A": list(0.5 + d), "B": [0.5] * 5})
    v = paired_verdict(t, "A", "B", "pearson_delta")
    half = 2.7764451051977987 * d.std(ddof=1) / np.sqrt(5)  # t quantile, 4 df
    assert (v["ci_low"], v["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert v["verdict"] == "no clear difference"
    assert "over 5 matched runs -> no clear difference" in describe_verdict(v)


def test_paired_verdict_matches_runs_and_refuses_to_judge_too_few():
    t = _table({"A": [0.9, 0.8, np.nan], "B": [0.5, 0.4, 0.6]})
    t = pd.concat([t, _table({"B": [0.1]}, setting="other")])  # B alone in another setting: unmatched
    v = paired_verdict(t, "A", "B", "pearson_delta")
    assert v["n"] == 2 and v["verdict"] == "too few matched runs to judge (n=2, need 3)"
    assert v["mean_b"] == pytest.approx(0.45)  # over the matched runs only
    with pytest.raises(DataValidationError, match="method 'C' is not in the table"):
        paired_verdict(t, "A", "C", "pearson_delta")
    with pytest.raises(DataValidationError, match="no rows for metric 'mmd'"):
        paired_verdict(t, "A", "B", "mmd")
    with pytest.raises(DataValidationError, match="lacks the columns"):
        paired_verdict(t.drop(columns="seed"), "A", "B", "pearson_delta")
    with pytest.raises(DataValidationError, match="several rows per"):
        paired_verdict(pd.concat([t, t]), "A", "B", "pearson_delta")
    with pytest.raises(DataValidationError, match="settings \\['nope'\\]"):
        paired_verdict(t, "A", "B", "pearson_delta", settings="nope")


def test_paired_interval_covers_the_true_difference_95_percent():
    """Simulation: 5 seeds, a shared per-seed effect plus noise, true mean difference 0.03."""
    rng = np.random.default_rng(0)
    covered, n_rep = [], 400
    for _ in range(n_rep):
        shared = rng.normal(0.8, 0.05, 5)  # what both methods share in a seed (the held-out cells, genes)
        t = _table({"A": list(shared + 0.03 + rng.normal(0, 0.02, 5)), "B": list(shared + rng.normal(0, 0.02, 5))})
        v = paired_verdict(t, "A", "B", "pearson_delta")
        covered.append(v["ci_low"] <= 0.03 <= v["ci_high"])
    assert 0.90 <= np.mean(covered) <= 0.99


def test_verdict_table_over_pairs_settings_and_metrics():
    b = [0.5, 0.9, 0.6]
    t = pd.concat(
        [
            _table({"A": [x + 0.1 for x in b], "B": b, "C": b}, setting="s1"),
            _table({"A": b, "B": b}, setting="s2"),
            _table(
                {"A": [1.0, 1.1, 1.2], "B": [2.0, 2.2, 2.1], "C": [1.0, 1.1, 1.2]}, metric="e_distance", setting="s1"
            ),
        ]
    )
    tab = verdict_table(t, [("pearson_delta", "all"), ("e_distance", "all")])
    assert list(tab.columns[:3]) == ["setting", "method_a", "method_b"]
    got = tab.set_index(["setting", "method_a", "method_b", "metric"])["verdict"]
    assert got[("s1", "A", "B", "pearson_delta")] == "A better"
    assert got[("s1", "A", "B", "e_distance")] == "A better"
    assert got[("s2", "A", "B", "pearson_delta")] == "identical up to rounding"  # diff 0, zero-width interval
    assert ("s2", "A", "C", "pearson_delta") not in got.index  # C did not run in s2
    pooled = verdict_table(t, [("pearson_delta", "all")], pairs=[("A", "B")], by=())
    # pooled over two settings: the units are the settings (seed means), too few to judge
    assert len(pooled) == 1 and pooled["n"].item() == 2 and pooled["unit"].item() == "setting"
    assert pooled["estimate"].item() == pytest.approx(0.05)
    assert pooled["verdict"].item() == "too few blocks by setting to judge (n=2, need 3)"


def test_pooled_settings_are_the_units_each_the_mean_of_its_seeds():
    # three settings with different gaps (0.1, 0.2, 0.6), s3 with two seeds only: each setting weighs the same
    b = [0.5, 0.9, 0.6]
    t = pd.concat(
        [
            _table({"A": [x + 0.1 for x in b], "B": b}, setting="s1"),
            _table({"A": [x + 0.2 for x in b], "B": b}, setting="s2"),
            _table({"A": [x + 0.6 for x in b[:2]], "B": b[:2]}, setting="s3"),
        ]
    )
    v = paired_verdict(t, "A", "B", "pearson_delta")
    lo_hi = paired_difference([0.1, 0.2, 0.6], [0.0, 0.0, 0.0])
    assert v["n"] == 3 and v["unit"] == "setting" and v["estimate"] == pytest.approx(0.3)
    assert (v["ci_low"], v["ci_high"]) == pytest.approx(lo_hi[1:])  # t over the 3 setting means, 2 df
    assert v["mean_a"] - v["mean_b"] == pytest.approx(v["estimate"])
    assert "over 3 blocks by setting (each the mean of its seeds)" in describe_verdict(v)
    # one setting alone: its seeds are the units, as before
    one = paired_verdict(t, "A", "B", "pearson_delta", settings="s1")
    assert one["n"] == 3 and one["unit"] == "run" and "over 3 matched runs" in describe_verdict(one)


def test_pooled_interval_covers_the_mean_over_cell_types_and_the_exchangeable_one_does_not():
    """Simulation: 8 held-out cell types, each with its own true gap (sd 0.05 around 0.03), 5 seeds each
    (seed noise sd 0.02). The verdict's interval over cell-type means covers the mean gap of cell types
    like these about 95% of the time; treating the 40 runs as exchangeable covers it far less often."""
    rng = np.random.default_rng(3)
    n_types, n_seeds, n_rep = 8, 5, 250
    keys = pd.DataFrame(
        {"setting": np.repeat([f"type{k}" for k in range(n_types)], n_seeds), "seed": np.tile(range(n_seeds), n_types)}
    )
    covered, exchangeable = [], []
    for _ in range(n_rep):
        shared = rng.normal(0.8, 0.05, n_types * n_seeds)
        d = np.repeat(0.03 + rng.normal(0, 0.05, n_types), n_seeds) + rng.normal(0, 0.02, n_types * n_seeds)
        t = pd.concat([keys.assign(method="A", value=shared + d), keys.assign(method="B", value=shared)])
        v = paired_verdict(t.assign(metric="pearson_delta", gene_set="all"), "A", "B", "pearson_delta")
        assert v["n"] == n_types and v["unit"] == "setting"
        covered.append(v["ci_low"] <= 0.03 <= v["ci_high"])
        _, lo, hi = paired_difference(shared + d, shared)  # the 40 runs as if independent
        exchangeable.append(lo <= 0.03 <= hi)
    assert 0.90 <= np.mean(covered) <= 0.99
    assert np.mean(exchangeable) < 0.85


def test_interaction_is_a_difference_of_paired_differences():
    rows = []
    rng = np.random.default_rng(1)
    for cell_type in ["t1", "t2", "t3"]:
        for seed in range(3):
            base = rng.normal(1.0, 0.2)
            for design, penalty in [("balanced", 0.0), ("stim20", 0.3)]:
                rows += [
                    {
                        "method": "A",
                        "held_out": cell_type,
                        "design": design,
                        "setting": f"{cell_type}/{design}",
                        "seed": seed,
                        "metric": "e_distance",
                        "gene_set": "all",
                        "value": base + penalty + 0.01 * seed,
                    },
                    {
                        "method": "B",
                        "held_out": cell_type,
                        "design": design,
                        "setting": f"{cell_type}/{design}",
                        "seed": seed,
                        "metric": "e_distance",
                        "gene_set": "all",
                        "value": base + 0.1,
                    },
                ]
    t = pd.DataFrame(rows)
    v = interaction(t, "A", "B", "e_distance", factor="design", levels=("stim20", "balanced"), scale="difference")
    assert v["n"] == 3 and v["unit"] == "held_out"  # three cell types, each the mean of its 3 seeds
    assert v["interaction"] == pytest.approx(0.3) and v["scale"] == "difference"
    assert v["contrast_1"] == pytest.approx(-0.1 + 0.01)  # mean over seeds 0, 1, 2 of 0.01 * seed - 0.1
    # A - B is larger at stim20, and lower is better: A fares better against B when balanced
    assert v["verdict"] == "A fares better against B at balanced" and v["direction"] == "lower"
    # a distance's default scale: the ratio of the ratios A / B per cell type (of its seed means), geometric mean
    r = interaction(t, "A", "B", "e_distance", factor="design", levels=("stim20", "balanced"))
    means = t.groupby(["held_out", "design", "method"])["value"].mean().unstack("method")
    ratio = (means["A"] / means["B"]).unstack("design")
    assert r["scale"] == "ratio"
    assert r["interaction"] == pytest.approx(np.exp(np.log(ratio["stim20"] / ratio["balanced"]).mean()))
    assert r["contrast_0"] == pytest.approx(np.exp(np.log(ratio["stim20"]).mean()))
    assert r["verdict"] == "A fares better against B at balanced"
    up = interaction(
        t.assign(metric="pearson_delta"), "A", "B", "pearson_delta", factor="design", levels=("stim20", "balanced")
    )
    assert up["interaction"] == pytest.approx(0.3) and up["verdict"] == "A fares better against B at stim20"
    few = interaction(
        t[t["held_out"] == "t1"].query("seed < 2"),
        "A",
        "B",
        "e_distance",
        factor="design",
        levels=("stim20", "balanced"),
    )
    assert few["verdict"].startswith("too few matched units")
    with pytest.raises(DataValidationError, match="no rows with design == 'x'"):
        interaction(t, "A", "B", "e_distance", factor="design", levels=("x", "balanced"))
    # within one cell type the seeds share the test cells: the interval adds the four scores' cell parts
    one = _with_intervals(t[t["held_out"] == "t1"], {"A": 0.02, "B": 0.01})
    inside = interaction(one, "A", "B", "e_distance", factor="design", levels=("stim20", "balanced"))
    assert inside["unit"] == "run" and inside["cell_sd"] == pytest.approx(2 * (0.02 + 0.01))
    seeds_only = interaction(
        one, "A", "B", "e_distance", factor="design", levels=("stim20", "balanced"), cell_sampling=False
    )
    assert np.isnan(seeds_only["cell_sd"]) and inside["interaction"] == pytest.approx(seeds_only["interaction"])
    assert inside["ci_high"] - inside["ci_low"] > seeds_only["ci_high"] - seeds_only["ci_low"]
    assert np.isnan(r["cell_sd"])  # pooled over cell types: nothing added


def test_paired_verdict_can_compare_two_settings_of_one_method():
    t = pd.concat(
        [_table({"A": [0.8, 0.7, 0.9]}, setting="balanced"), _table({"A": [0.6, 0.55, 0.7]}, setting="unbalanced")]
    )
    v = paired_verdict(t, "unbalanced", "balanced", "pearson_delta", compare="setting", match_on=("seed",))
    assert v["n"] == 3 and v["estimate"] == pytest.approx(-0.55 / 3)
    assert v["verdict"] == "balanced better"


def test_runs_scored_within_groups_are_matched_per_group():
    groups = ("B", "NK", "DC")
    t = pd.concat([_table({"A": [0.9, 0.8, 0.85], "B": [0.5, 0.4, 0.6]}, score_group=g) for g in groups])
    v = paired_verdict(t, "A", "B", "pearson_delta")  # score_group joins the match by default
    assert v["n"] == 3 and v["unit"] == "score_group" and v["verdict"] == "A better"
    assert paired_verdict(t[t["score_group"] == "B"], "A", "B", "pearson_delta")["n"] == 3  # one group: its seeds
    with pytest.raises(DataValidationError, match="several rows per"):
        paired_verdict(t, "A", "B", "pearson_delta", match_on=("setting", "seed"))


def test_holm_on_a_known_example():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (monotone)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # 0.5 x 2 capped at 1; 0.9 kept monotone above it
    np.testing.assert_allclose(holm([0.2, 0.01]), [0.2, 0.02])
    # an untested comparison stays NaN, counts in the family and comes last
    out = holm([0.01, np.nan, 0.02])
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.03) and out[2] == pytest.approx(0.04)
    # each comparison's interval level is the level of its step: 1 - alpha / (m - rank)
    np.testing.assert_allclose(
        holm_levels([0.01, 0.04, 0.03, 0.005]), [1 - 0.05 / 3, 1 - 0.05, 1 - 0.05 / 2, 1 - 0.05 / 4]
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])


def test_rank_test_needs_six_units_at_five_percent():
    assert MIN_RANK_UNITS == min_units_for_rank_test(0.05) == 6  # 2 / 2**6 = 0.031; 2 / 2**5 = 0.0625
    assert min_units_for_rank_test(0.25) == 4  # 3 units reach 0.25, not below it


def _cell_types(values: dict[str, dict[str, list[float]]], metric: str, design: str = "balanced") -> pd.DataFrame:
    """values[cell type][method] = one value per seed; a grid-like table of one design."""
    return pd.concat(
        [
            _table(per_method, metric=metric, setting=f"loco/{ct}/{design}", held_out=ct, design=design)
            for ct, per_method in values.items()
        ],
        ignore_index=True,
    )


def test_distances_pool_as_log_ratios_of_the_seed_means():
    """Cell types an order of magnitude apart: the pooled contrast is the geometric mean of the ratios."""
    values = {
        "small": {"A": [0.5, 0.7], "B": [1.0, 1.2]},  # seed means 0.6 vs 1.1
        "mid": {"A": [3.0, 5.0], "B": [2.0, 2.0]},  # 4 vs 2
        "large": {"A": [20.0, 24.0], "B": [40.0, 36.0]},  # 22 vs 38
    }
    t = _cell_types(values, "e_distance")
    v = paired_verdict(t, "A", "B", "e_distance")
    logs = np.log([0.6 / 1.1, 4 / 2, 22 / 38])
    half = stats_t(2) * logs.std(ddof=1) / np.sqrt(3)
    assert v["scale"] == "ratio" and v["n"] == 3 and v["unit"] == "setting"
    assert v["estimate"] == pytest.approx(np.exp(logs.mean()))
    assert (v["ci_low"], v["ci_high"]) == pytest.approx((np.exp(logs.mean() - half), np.exp(logs.mean() + half)))
    assert paired_ratio([0.6, 4, 22], [1.1, 2, 38]) == pytest.approx((v["estimate"], v["ci_low"], v["ci_high"]))
    assert "scgen" not in describe_verdict(v) and "A / B = ×" in describe_verdict(v)
    # on the raw scale the large cell type would decide alone: -16 of the mean difference -4.83
    raw = paired_verdict(t, "A", "B", "e_distance", scale="difference")
    assert raw["estimate"] == pytest.approx(np.mean([0.6 - 1.1, 4 - 2, 22 - 38]))
    # a ratio needs positive values
    with pytest.raises(DataValidationError, match="values > 0"):
        contrast([1.0, 0.0], [1.0, 1.0], "ratio")


def stats_t(df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


def test_margins_and_the_equivalence_rule():
    pd_margin = Margin("pearson_delta", "top100_degs", "difference", 0.02)
    assert pd_margin.contains(-0.01, 0.015) and not pd_margin.contains(-0.01, 0.025)
    assert not pd_margin.contains(np.nan, 0.0)
    e_margin = Margin("e_distance", "all", "ratio", 1.1)
    assert e_margin.contains(0.95, 1.05) and not e_margin.contains(0.9, 1.05)  # 1/1.1 = 0.909
    assert pd_margin.describe() == "±0.02" and e_margin.describe() == "×/÷1.1"
    with pytest.raises(ValueError, match="> 1"):
        Margin("e_distance", "all", "ratio", 0.9)
    with pytest.raises(ValueError, match="cannot also be a model"):
        PrimaryQuestion(models=("mean_shift",))


def _primary_table(gaps: dict[str, tuple[float, float]], n_types: int = 8, noise: float = 0.002, seed: int = 0):
    """A balanced design: per model (pearson_delta gap, e_distance ratio) to mean_shift, 8 types x 3 seeds."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_types):
        base_pd, base_e = 0.8 + 0.01 * k, 0.5 * 2.0 ** (k % 4)  # E-distance 0.5 to 4 between cell types
        for s in range(3):
            for method, (gap, ratio) in {"mean_shift": (0.0, 1.0), **gaps}.items():
                for metric, gene_set, value in (
                    ("pearson_delta", "top100_degs", base_pd + gap + rng.normal(0, noise)),
                    ("e_distance", "all", base_e * ratio * np.exp(rng.normal(0, noise))),
                ):
                    rows.append(
                        {
                            "method": method,
                            "setting": f"loco/t{k}/balanced",
                            "held_out": f"t{k}",
                            "design": "balanced",
                            "seed": s,
                            "metric": metric,
                            "gene_set": gene_set,
                            "value": value,
                        }
                    )
    return pd.DataFrame(rows)


def test_primary_verdicts_read_better_worse_equivalent_and_inconclusive():
    table = _primary_table({"scgen": (0.1, 0.5), "scpram": (0.005, 1.0)})
    # make scpram's E-distance ratio vary a lot between cell types: inconclusive
    noisy = (table["method"] == "scpram") & (table["metric"] == "e_distance")
    spread = np.exp(np.where(table.loc[noisy, "held_out"].str[1:].astype(int) % 2 == 0, 1.0, -1.0))
    table.loc[noisy, "value"] *= spread
    out = primary_verdicts(table)
    assert len(out) == PRIMARY.family_size == 4
    got = out.set_index(["model", "metric"])
    assert got.loc[("scgen", "pearson_delta"), "verdict"] == "better"  # +0.1, far beyond the margin
    assert got.loc[("scgen", "e_distance"), "verdict"] == "better"  # half the baseline's distance, lower is better
    assert got.loc[("scgen", "e_distance"), "estimate"] == pytest.approx(0.5, rel=0.01)
    assert got.loc[("scpram", "pearson_delta"), "verdict"] == "equivalent within ±0.02"  # +0.005 with a tight interval
    assert got.loc[("scpram", "e_distance"), "verdict"] == "inconclusive"
    # Holm across the family; each interval at the level of its step
    np.testing.assert_allclose(out["p_holm"], holm(out["p_value"]))
    np.testing.assert_allclose(out["level"], holm_levels(out["p_value"]))
    v = paired_verdict(
        table, "scgen", "mean_shift", "pearson_delta", "top100_degs", level=got.loc[("scgen", "pearson_delta"), "level"]
    )
    assert got.loc[("scgen", "pearson_delta"), "ci_low"] == pytest.approx(v["ci_low"])
    # worse: the model's E-distance is twice the baseline's
    worse = primary_verdicts(_primary_table({"scgen": (0.1, 2.0), "scpram": (0.1, 2.0)}))
    assert set(worse.loc[worse["metric"] == "e_distance", "verdict"]) == {"worse"}
    # leaving cell types out: fewer units, same family
    part = primary_verdicts(table, exclude=["t0", "t1", "t2"])
    assert (part["n"] == 5).all() and len(part) == 4
    few = primary_verdicts(table, exclude=[f"t{k}" for k in range(6)])
    assert few["verdict"].str.startswith("inconclusive (too few").all()
    with pytest.raises(DataValidationError, match="no runs of design"):
        primary_verdicts(table, exclude=[f"t{k}" for k in range(8)])


def test_primary_units_are_the_seed_means_per_cell_type():
    table = _primary_table({"scgen": (0.1, 0.5), "scpram": (0.0, 1.0)})
    units = primary_units(table)
    assert len(units) == 4 * 8 and set(units["seeds"]) == {3}
    row = units[(units["model"] == "scgen") & (units["metric"] == "e_distance") & (units["held_out"] == "t3")].iloc[0]
    means = table[(table["held_out"] == "t3") & (table["metric"] == "e_distance")].groupby("method")["value"].mean()
    assert row["contrast"] == pytest.approx(means["scgen"] / means["mean_shift"]) and row["scale"] == "ratio"
    # the pooled estimate is the geometric mean of these per-type ratios
    pooled = primary_verdicts(table).set_index(["model", "metric"]).loc[("scgen", "e_distance"), "estimate"]
    per = units[(units["model"] == "scgen") & (units["metric"] == "e_distance")]["contrast"]
    assert pooled == pytest.approx(np.exp(np.log(per).mean()))


def test_scores_equal_up_to_rounding_are_identical_not_better():
    """A method scored twice on the same predictions and cells (e.g. no_change in two designs that share a
    gene panel) differs only by floating-point rounding; its degenerate interval must not read as a win."""
    from course_tools.verdicts import IDENTICAL, paired_verdict

    rng = np.random.default_rng(0)
    value = rng.uniform(1, 10, 8)
    rows = [
        {"method": m, "setting": f"s{i}", "seed": 0, "metric": "e_distance", "gene_set": "all", "value": v}
        for i, x in enumerate(value)
        for m, v in (("a", x), ("b", x * (1 + 1e-9 + 1e-10 * i)))
    ]
    v = paired_verdict(pd.DataFrame(rows), "a", "b", "e_distance")
    assert v["verdict"] == IDENTICAL
    rows_apart = [{**r, "value": r["value"] * (1.01 if r["method"] == "b" else 1)} for r in rows]
    assert paired_verdict(pd.DataFrame(rows_apart), "a", "b", "e_distance")["verdict"] == "a better"


def _with_intervals(t: pd.DataFrame, sd: dict[str, float]) -> pd.DataFrame:
    """``t`` with each run's 95% interval: value ± z times its method's cell-sampling sd."""
    z = 1.959963984540054
    half = t["method"].map(sd) * z
    return t.assign(ci_low=t["value"] - half, ci_high=t["value"] + half)


def test_a_verdict_within_one_setting_adds_the_test_cells_sampling():
    # A beats B by 0.1 in every seed: on the seeds alone the interval has no width
    b = [0.5, 0.9, 0.6, 0.8, 0.7]
    t = _with_intervals(_table({"A": [x + 0.1 for x in b], "B": b}), {"A": 0.04, "B": 0.03})
    assert RUN_INTERVAL_LEVEL == 0.95
    v = paired_verdict(t, "A", "B", "pearson_delta")
    # the cells' part is bounded by sd_A + sd_B; the seeds add nothing, so the quantile is the normal one
    assert v["cell_sd"] == pytest.approx(0.07)
    assert (v["ci_low"], v["ci_high"]) == pytest.approx((0.1 - 1.959964 * 0.07, 0.1 + 1.959964 * 0.07))
    assert v["verdict"] == "no clear difference"  # 0.1 is within 1.96 * 0.07 of 0
    off = paired_verdict(t, "A", "B", "pearson_delta", cell_sampling=False)
    assert np.isnan(off["cell_sd"]) and off["ci_low"] == pytest.approx(0.1) and off["verdict"] == "A better"
    # a table without intervals: the seeds only, and cell_sd says that nothing was added
    plain = paired_verdict(_table({"A": [x + 0.1 for x in b], "B": b}), "A", "B", "pearson_delta")
    assert np.isnan(plain["cell_sd"]) and plain["verdict"] == "A better"
    # one method without any interval (e.g. DEG overlap scored without resamples): nothing is added either
    missing = t.assign(ci_low=np.where(t["method"] == "B", np.nan, t["ci_low"]))
    assert np.isnan(paired_verdict(missing, "A", "B", "pearson_delta")["cell_sd"])
    # a run without an interval: the sd is the mean over the runs that have one
    some = t.assign(ci_low=np.where((t["method"] == "B") & (t["seed"] == 0), np.nan, t["ci_low"]))
    assert paired_verdict(some, "A", "B", "pearson_delta")["cell_sd"] == pytest.approx(0.07)


def test_the_cells_part_is_added_in_quadrature_with_satterthwaite_degrees_of_freedom():
    d = np.array([0.05, -0.04, 0.02, -0.03, 0.01]) + 0.1
    v = d.var(ddof=1) / 5
    mean, lo, hi, p = paired_t(d, extra_sd=0.02)
    se = np.sqrt(v + 0.02**2)
    df = 4 * (se**2 / v) ** 2
    from scipy import stats

    assert hi - mean == pytest.approx(stats.t.ppf(0.975, df) * se)
    assert p == pytest.approx(2 * stats.t.sf(mean / se, df))
    assert paired_t(d, extra_sd=0.0) == pytest.approx(paired_t(d))
    with pytest.raises(ValueError, match="extra_sd"):
        paired_t(d, extra_sd=-1.0)


def test_pooled_verdicts_add_nothing_for_the_cells():
    """Each cell type has its own test cells: the spread between them holds their sampling already."""
    rng = np.random.default_rng(0)
    parts = [
        _table({"A": list(0.8 + rng.normal(0, 0.02, 3)), "B": list(0.7 + rng.normal(0, 0.02, 3))}, setting=s)
        for s in ("s1", "s2", "s3", "s4")
    ]
    t = _with_intervals(pd.concat(parts), {"A": 0.05, "B": 0.05})
    v = paired_verdict(t, "A", "B", "pearson_delta")
    assert v["unit"] == "setting" and np.isnan(v["cell_sd"])
    off = paired_verdict(t, "A", "B", "pearson_delta", cell_sampling=False)
    assert (v["ci_low"], v["ci_high"]) == (off["ci_low"], off["ci_high"])
    # verdict_table passes the switch on, and reports the part per row
    table = verdict_table(t, [("pearson_delta", "all")], by=("setting",))
    assert table["cell_sd"].to_numpy() == pytest.approx([0.1] * 4)
    assert verdict_table(t, [("pearson_delta", "all")], by=("setting",), cell_sampling=False)["cell_sd"].isna().all()


def test_the_cells_part_on_the_ratio_scale_is_the_sd_of_the_logs():
    b = [0.5, 0.9, 0.6, 0.8, 0.7]
    t = _with_intervals(_table({"A": [2 * x for x in b], "B": b}, metric="e_distance"), {"A": 0.1, "B": 0.1})
    runs = pd.Index(range(5), name="seed")
    got = cell_sampling_sd(t, "A", "B", runs, scale="ratio", match_on=("seed",))
    assert got == pytest.approx(0.1 / np.mean([2 * x for x in b]) + 0.1 / np.mean(b))
    assert cell_sampling_sd(t, "A", "B", runs[:0], match_on=("seed",)) != cell_sampling_sd(
        t, "A", "B", runs, match_on=("seed",)
    )
