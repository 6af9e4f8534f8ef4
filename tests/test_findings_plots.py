"""Notebook 03's figures of the verdicts draw what the benchmark table says."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from course_tools.grid_results import DEVELOPMENT_CELL_TYPES, load_grid  # noqa: E402
from course_tools.plots import HEATMAP_CATEGORIES, overlapping_texts, primary_forest_plot, verdict_heatmap  # noqa: E402
from course_tools.verdicts import PRIMARY, PrimaryQuestion, primary_units, primary_verdicts, verdict_table  # noqa: E402
from tutorial_lib.data.checks import DataValidationError  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    return load_grid()


def _by_gid(ax, gid):
    return [a for a in (*ax.lines, *ax.patches) if a.get_gid() == gid]


def test_forest_plot_draws_the_primary_verdicts(grid):
    primary = primary_verdicts(grid)
    units = primary_units(grid)
    without = primary_verdicts(grid, exclude=list(DEVELOPMENT_CELL_TYPES))
    fig = primary_forest_plot(primary, units, sensitivity=without, sensitivity_label="without development types")
    assert len(fig.axes) == len(PRIMARY.margins)
    for ax, margin in zip(fig.axes, PRIMARY.margins):
        rows = primary[primary["metric"] == margin.metric].set_index("model").loc[list(PRIMARY.models)]
        ratio = margin.scale == "ratio"
        assert ax.get_xscale() == ("log" if ratio else "linear")
        est = [line.get_xdata()[0] for line in _by_gid(ax, "estimate")]
        np.testing.assert_allclose(est, rows["estimate"])
        bounds = [tuple(line.get_xdata()) for line in _by_gid(ax, "interval")]
        np.testing.assert_allclose(bounds, rows[["ci_low", "ci_high"]].to_numpy())
        (no_diff,) = _by_gid(ax, "no_difference")
        assert no_diff.get_xdata()[0] == (1.0 if ratio else 0.0)
        (span,) = _by_gid(ax, "margin")
        x0, x1 = sorted(span.get_path().transformed(span.get_patch_transform()).vertices[:, 0][[0, 2]])
        want = (1 / margin.value, margin.value) if ratio else (-margin.value, margin.value)
        np.testing.assert_allclose((x0, x1), want)
        ticks = _by_gid(ax, "units")
        assert [len(t.get_xdata()) for t in ticks] == [grid.loc[grid["design"] == "balanced", "held_out"].nunique()] * 2
        mine = units[(units["metric"] == margin.metric) & (units["model"] == PRIMARY.models[0])]["contrast"]
        np.testing.assert_allclose(sorted(ticks[0].get_xdata()), sorted(mine))
        hollow = [line for line in _by_gid(ax, "sensitivity") if line.get_marker() == "o"]
        wrows = without[without["metric"] == margin.metric]
        np.testing.assert_allclose([h.get_xdata()[0] for h in hollow], wrows["estimate"])
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == [f"{m}\n{v}" for m, v in zip(rows.index, rows["verdict"])]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "without development types" in legend and "margin of equivalence" in legend
    assert overlapping_texts(fig) == []


def test_forest_plot_needs_a_margin_for_every_metric(grid):
    primary = primary_verdicts(grid)
    other = PrimaryQuestion(margins=PRIMARY.margins[:1])
    with pytest.raises(DataValidationError, match="no margin for e_distance"):
        primary_forest_plot(primary, question=other)
    with pytest.raises(DataValidationError, match="no column"):
        primary_forest_plot(primary.drop(columns="level"))


def test_heatmap_colours_each_cell_by_its_verdict(grid):
    balanced = grid[grid["design"] == "balanced"]
    metrics = [("pearson_delta", "top100_degs"), ("e_distance", "all")]
    pairs = [("scgen", "mean_shift"), ("scgen", "no_change"), ("scgen", "scpram")]
    verdicts = verdict_table(balanced, metrics, pairs, by=("held_out",))
    fig = verdict_heatmap(verdicts)
    categories = list(HEATMAP_CATEGORIES)
    groups = list(dict.fromkeys(verdicts["held_out"]))
    for ax, (metric, _) in zip(fig.axes, metrics):
        rows = verdicts[(verdicts["metric"] == metric) & (verdicts["n"] > 0)]
        shown = list(dict.fromkeys(zip(rows["method_a"], rows["method_b"])))
        # pearson_delta is undefined for no_change: that pair has no column there
        assert (("scgen", "no_change") in shown) == (metric == "e_distance")
        codes = np.asarray(ax.images[0].get_array())
        assert codes.shape == (len(groups), len(shown))
        for r in rows.to_dict("records"):
            if r["verdict"] == f"{r['method_a']} better":
                want = "first better"
            elif r["verdict"] == f"{r['method_b']} better":
                want = "second better"
            else:
                want = r["verdict"]
            cell = codes[groups.index(r["held_out"]), shown.index((r["method_a"], r["method_b"]))]
            assert categories[cell] == want
        # the effect in the metric's units (differences within one cell type, not ratios)
        want = sorted(f"{e:+.2f}" if abs(e) >= 0.995 else f"{e:+.3f}" for e in rows["estimate"])
        assert sorted(t.get_text() for t in ax.texts) == want
    assert overlapping_texts(fig) == []


def test_heatmap_refuses_a_table_without_matched_runs(grid):
    balanced = grid[grid["design"] == "balanced"]
    verdicts = verdict_table(balanced, [("e_distance", "all")], [("scgen", "mean_shift")], by=("held_out",))
    with pytest.raises(DataValidationError, match="no row with a matched run"):
        verdict_heatmap(verdicts.assign(n=0))
    with pytest.raises(DataValidationError, match="no column"):
        verdict_heatmap(verdicts, by="score_group")
