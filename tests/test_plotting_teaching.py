"""Figures that teach: metric direction on every panel, fixed colour scales, paired differences,
labels that do not collide."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from scipy import stats  # noqa: E402

from course_tools.benchmark import summarise  # noqa: E402
from course_tools.plots import (  # noqa: E402
    method_by_setting_heatmap,
    overlapping_texts,
    paired_difference_plot,
    paired_differences,
    seed_spread_plot,
)
from course_tools.scoring.registry import LOWER_IS_BETTER  # noqa: E402
from course_tools.verdicts import paired_verdict, verdict_table  # noqa: E402
from tutorial_lib.data.checks import DataValidationError  # noqa: E402
from tutorial_lib.plotting import distance_heatmap, metric_bar_grid, metric_bars  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def scores():
    """An evaluate()-like table: 3 methods x 3 metrics, value with an interval."""
    rng = np.random.default_rng(0)
    rows = []
    for method in ("no_change", "mean_shift", "scgen with a long name"):
        for metric, gene_set in (("e_distance", "all"), ("pearson_delta", "top100_degs"), ("mmd", "all")):
            v = float(rng.uniform(0.2, 2))
            rows.append((method, metric, gene_set, v, v - 0.1, v + 0.1))
    return pd.DataFrame(rows, columns=["method", "metric", "gene_set", "value", "ci_low", "ci_high"])


@pytest.fixture(scope="module")
def runs():
    """Per-seed runs: 3 methods x 2 settings x 5 seeds, e_distance, with one seed effect shared by methods."""
    rng = np.random.default_rng(1)
    seed_effect = rng.normal(0, 0.5, 5)
    rows = []
    for method, base in (("mean_shift", 3.0), ("scgen", 2.5), ("no_change", 4.0)):
        for setting, shift in (("balanced", 0.0), ("unbalanced", 0.4)):
            for seed in range(5):
                rows.append(
                    (method, setting, seed, "e_distance", "all", base + shift + seed_effect[seed] + rng.normal(0, 0.05))
                )
    return pd.DataFrame(rows, columns=["method", "setting", "seed", "metric", "gene_set", "value"])


def test_bar_panels_say_which_direction_is_better(scores):
    assert "lower is better" in metric_bars(scores, "e_distance", lower_is_better=LOWER_IS_BETTER).get_ylabel()
    assert (
        "higher is better" in metric_bars(scores, "pearson_delta", "top100_degs", lower_is_better={"mmd"}).get_ylabel()
    )
    assert "higher is better" in metric_bars(scores, "e_distance", lower_is_better=()).get_ylabel()
    assert metric_bars(scores, "e_distance").get_ylabel() == "e_distance"  # no direction given: none claimed
    fig = metric_bar_grid(scores, lower_is_better=LOWER_IS_BETTER)
    labels = [a.get_ylabel() for a in fig.axes]
    assert sum("lower is better" in s for s in labels) == 2 and sum("higher is better" in s for s in labels) == 1
    # or from the table's column
    column = scores.assign(lower_is_better=scores["metric"] != "pearson_delta")
    labels = [a.get_ylabel() for a in metric_bar_grid(column).axes]
    assert sum("lower is better" in s for s in labels) == 2 and sum("higher is better" in s for s in labels) == 1


def test_seed_spread_panels_say_which_direction_is_better(runs):
    assert "lower is better" in seed_spread_plot(runs, "e_distance", "all").get_ylabel()
    # one metric in the table: inferred without naming it
    assert "lower is better" in seed_spread_plot(runs.drop(columns="gene_set"), hue=None).get_ylabel()
    plain = runs[["method", "seed", "value"]]
    assert seed_spread_plot(plain, hue=None, ylabel="test E-distance").get_ylabel() == "test E-distance"
    ax = seed_spread_plot(plain, hue=None, ylabel="test E-distance", lower_is_better=True)
    assert ax.get_ylabel() == "test E-distance\n(lower is better ↓)"


def test_single_heatmaps_take_a_fixed_scale(runs):
    d = pd.DataFrame([[0.0, 2.0], [2.0, 0.0]], index=["a", "b"], columns=["a", "b"])
    ax = distance_heatmap(d, vmin=0, vmax=5)
    assert ax.images[0].get_clim() == (0.0, 5.0)
    assert all(t.get_color() == "white" for t in ax.texts)  # below the middle of the fixed scale
    ax = method_by_setting_heatmap(summarise(runs), "e_distance", "all", vmin=0, vmax=10)
    assert ax.images[0].get_clim() == (0.0, 10.0)


def _t_interval(d):
    half = stats.t.ppf(0.975, len(d) - 1) * np.std(d, ddof=1) / np.sqrt(len(d))
    return d.mean(), half


def test_paired_differences_pair_by_seed(runs):
    diff = paired_differences(runs, "scgen", "mean_shift", "e_distance", by="setting")
    assert len(diff) == 10
    assert list(diff.columns) == ["setting", "seed", "scgen", "mean_shift", "contrast", "scale", "unit"]
    assert set(diff["scale"]) == {"difference"} and set(diff["unit"]) == {"run"}  # one setting: seeds are units
    w = runs.query("setting == 'balanced'").pivot(index="seed", columns="method", values="value")
    got = diff.query("setting == 'balanced'").set_index("seed")["contrast"]
    assert np.allclose(got.to_numpy(), (w["scgen"] - w["mean_shift"]).to_numpy())
    gap = runs.copy()
    gap.loc[(gap.method == "scgen") & (gap.seed == 0), "value"] = np.nan
    assert len(paired_differences(gap, "scgen", "mean_shift", "e_distance", by="setting")) == 8
    with pytest.raises(DataValidationError, match="not in the table"):
        paired_differences(runs, "scgen", "cellot", "e_distance")


def test_paired_differences_pair_the_runs_a_verdict_pairs(runs):
    """Two settings x five seeds: per setting and pooled, the plot's units are the verdict's units."""
    gap = runs.copy()  # two runs of one setting undefined: pooling by seed alone would no longer agree
    gap.loc[(gap.method == "scgen") & (gap.setting == "unbalanced") & gap.seed.isin([0, 1]), "value"] = np.nan
    table = verdict_table(gap, [("e_distance", "all")], [("scgen", "mean_shift")], by=("setting",))
    per = paired_differences(gap, "scgen", "mean_shift", "e_distance", by="setting")
    assert list(table["n"]) == [5, 3] and set(table["scale"]) == {"difference"}
    for row in table.itertuples():
        d = per.loc[per.setting == row.setting, "contrast"].to_numpy()
        mean, half = _t_interval(d)
        assert len(d) == row.n and mean == pytest.approx(row.estimate)
        assert [mean - half, mean + half] == pytest.approx([row.ci_low, row.ci_high])
    # pooled over two settings, the verdict's units are the settings (each the mean of its seeds), and
    # a distance pooled over settings is contrasted as a ratio of those means
    pooled = paired_differences(gap, "scgen", "mean_shift", "e_distance")
    verdict = paired_verdict(gap, "scgen", "mean_shift", "e_distance")
    assert verdict["n"] == 2 and verdict["unit"] == "setting" and verdict["scale"] == "ratio"
    assert list(pooled.columns) == ["setting", "scgen", "mean_shift", "contrast", "scale", "unit"]
    assert len(pooled) == 2 and set(pooled["scale"]) == {"ratio"} and set(pooled["unit"]) == {"setting"}
    means = gap.dropna().query("method in ['scgen', 'mean_shift']")
    means = means[means.groupby(["setting", "seed"])["method"].transform("nunique") == 2]
    means = means.groupby(["setting", "method"])["value"].mean().unstack()
    np.testing.assert_allclose(pooled.set_index("setting")["contrast"], means["scgen"] / means["mean_shift"])
    assert np.exp(np.log(pooled["contrast"]).mean()) == pytest.approx(verdict["estimate"])
    # settings scored within groups (score_group): matched within each group, as the verdicts match
    groups = pd.concat([gap.assign(score_group="g1"), gap.assign(score_group="g2", value=gap.value * 1.5)])
    within = paired_differences(groups, "scgen", "mean_shift", "e_distance", by="setting")
    by_setting = verdict_table(groups, [("e_distance", "all")], [("scgen", "mean_shift")], by=("setting",))
    assert list(by_setting["unit"]) == ["score_group", "score_group"] and list(by_setting["n"]) == [2, 2]
    for row in by_setting.itertuples():
        c = within.loc[within.setting == row.setting, "contrast"].to_numpy()
        assert len(c) == 2 and np.exp(np.log(c).mean()) == pytest.approx(row.estimate)
    verdict = paired_verdict(groups, "scgen", "mean_shift", "e_distance")
    pooled = paired_differences(groups, "scgen", "mean_shift", "e_distance")
    assert len(pooled) == 4 and verdict["n"] == 4 and verdict["unit"] == "setting+score_group"
    assert np.exp(np.log(pooled["contrast"]).mean()) == pytest.approx(verdict["estimate"])
    with pytest.raises(DataValidationError, match="several rows per"):  # never averaged silently
        paired_differences(pd.concat([gap, gap]), "scgen", "mean_shift", "e_distance")


def test_paired_difference_plot_draws_the_verdict_its_units_and_no_difference(runs):
    ax = paired_difference_plot(runs, "scgen", "mean_shift", "e_distance", by="setting")
    dots = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert dots == 10  # within one setting the units are the seeds
    assert "below 0 favours scgen" in ax.get_ylabel() and "lower is better" in ax.get_title()
    assert any(np.allclose(line.get_ydata(), 0) for line in ax.get_lines())  # no difference
    # the drawn point and interval are the verdict's, setting by setting
    table = verdict_table(runs, [("e_distance", "all")], [("scgen", "mean_shift")], by=("setting",))
    for container, row in zip(ax.containers, table.itertuples()):
        assert container.lines[0].get_ydata()[0] == pytest.approx(row.estimate)
        segment = container.lines[2][0].get_segments()[0]
        assert sorted(segment[:, 1]) == pytest.approx([row.ci_low, row.ci_high])
    assert overlapping_texts(ax.figure) == []
    # one column pooling both settings: the verdict's ratio of setting means, its interval, and the line at 1
    pooled = paired_difference_plot(runs, "scgen", "mean_shift", "e_distance", lower_is_better=False)
    v = paired_verdict(runs, "scgen", "mean_shift", "e_distance")
    assert v["scale"] == "ratio" and "scgen / mean_shift" in pooled.get_ylabel()
    assert "above 1 favours scgen" in pooled.get_ylabel()
    assert sum(len(c.get_offsets()) for c in pooled.collections if isinstance(c, PathCollection)) == 2
    assert any(np.allclose(line.get_ydata(), 1) for line in pooled.get_lines())
    segment = pooled.containers[0].lines[2][0].get_segments()[0]
    assert pooled.containers[0].lines[0].get_ydata()[0] == pytest.approx(v["estimate"])
    assert sorted(segment[:, 1]) == pytest.approx([v["ci_low"], v["ci_high"]])
    # groups on different scales (one pools two settings, one does not) are not drawn on one axis
    mixed = pd.concat(
        [runs.assign(family="two settings"), runs[runs.setting == "balanced"].assign(family="one", setting="b2")]
    )
    with pytest.raises(DataValidationError, match="different scales"):
        paired_difference_plot(mixed, "scgen", "mean_shift", "e_distance", by="family")


def test_overlap_check_finds_colliding_labels():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xticks(range(6), [f"a long cell type name {i}" for i in range(6)])  # horizontal, crowded
    assert overlapping_texts(fig)


def test_grid_of_bars_has_no_colliding_labels(scores):
    assert overlapping_texts(metric_bar_grid(scores)) == []


def test_notebook_layouts_have_no_colliding_labels():
    """Module 03's layouts: two method x cell-type heatmaps, and seed plots four to a row."""
    types = ["B", "CD14+ Monocytes", "CD16+ Monocytes", "CD4+ T cells", "CD8+ T cells", "DC", "NK cells", "T"]
    rng = np.random.default_rng(4)
    rows = [
        (m, t, s, metric, gs, rng.uniform(0.5, 5))
        for m in ("no_change", "mean_shift", "scgen", "scpram")
        for t in types
        for s in range(3)
        for metric, gs in (("e_distance", "all"), ("pearson_delta", "top100_degs"))
    ]
    runs = pd.DataFrame(rows, columns=["method", "setting", "seed", "metric", "gene_set", "value"])
    fig, axes = plt.subplots(1, 2, figsize=(6 + 1.6 * len(types), 3.8))
    method_by_setting_heatmap(summarise(runs), "pearson_delta", "top100_degs", ax=axes[0])
    method_by_setting_heatmap(summarise(runs), "e_distance", "all", ax=axes[1])
    fig.tight_layout()
    assert overlapping_texts(fig) == []
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    for ax, metric in zip(axes, ("e_distance", "pearson_delta", "e_distance", "pearson_delta")):
        seed_spread_plot(runs[runs.setting.isin(["B", "DC"])], metric, None, ax=ax)
    fig.tight_layout()
    assert overlapping_texts(fig) == []
