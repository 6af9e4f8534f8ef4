"""The benchmarking figures draw what they promise on small tables and small Optuna studies."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from course_tools.benchmark import summarise  # noqa: E402
from course_tools.plots import (  # noqa: E402
    contour_top_params,
    method_by_setting_heatmap,
    optimisation_history,
    param_importances,
    seed_spread_plot,
    slice_top_params,
    summary_grid,
    top_params,
)
from tutorial_lib.data.checks import DataValidationError  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def results():
    """A tidy per-seed table like run_benchmark's: 3 methods x 2 settings x 3 seeds x 2 metrics."""
    rng = np.random.default_rng(0)
    rows = []
    for method, base in [("no_change", 0.2), ("mean_shift", 0.6), ("scgen", 0.7)]:
        for setting, shift in [("balanced", 0.0), ("unbalanced", -0.1)]:
            for seed in range(3):
                rows.append((method, setting, seed, "r2_pearson_mean", "all", base + shift + rng.normal(0, 0.02), ""))
                value = np.nan if method == "no_change" else base + rng.normal(0, 0.05)
                note = "no change predicted" if method == "no_change" else ""
                rows.append((method, setting, seed, "pearson_delta", "top100_degs", value, note))
                rows.append((method, setting, seed, "e_distance", "all", 10 * (1 - base) + rng.normal(0, 0.3), ""))
    return pd.DataFrame(rows, columns=["method", "setting", "seed", "metric", "gene_set", "value", "note"])


def test_summary_grid_is_method_by_setting(results):
    grid = summary_grid(summarise(results), "r2_pearson_mean", "all", settings=["unbalanced", "balanced"])
    assert list(grid.index) == ["no_change", "mean_shift", "scgen"]
    assert list(grid.columns) == ["unbalanced", "balanced"]
    want = results.query("method == 'scgen' and setting == 'balanced' and metric == 'r2_pearson_mean'")["value"].mean()
    assert grid.loc["scgen", "balanced"] == pytest.approx(want)


def test_summary_grid_rejects_per_seed_tables_and_unknown_metrics(results):
    with pytest.raises(DataValidationError, match="several rows"):
        summary_grid(results.rename(columns={"value": "mean"}), "r2_pearson_mean", "all")
    with pytest.raises(DataValidationError, match="no rows"):
        summary_grid(summarise(results), "not_a_metric", "all")


def test_heatmap_annotates_mean_and_spread(results):
    summary = summarise(results)
    ax = method_by_setting_heatmap(summary, "r2_pearson_mean", "all", xlabel="held-out cell type")
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 6
    assert all("±" in t for t in texts)
    mean = summary.query("method == 'scgen' and setting == 'balanced' and metric == 'r2_pearson_mean'")["mean"].iloc[0]
    assert any(t.startswith(f"{mean:.2f}") for t in texts)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["no_change", "mean_shift", "scgen"]
    assert ax.get_xlabel() == "held-out cell type"
    assert "higher is better" in ax.figure.axes[-1].get_ylabel()


def test_heatmap_marks_undefined_cells_and_orients_lower_is_better(results):
    summary = summarise(results)
    ax = method_by_setting_heatmap(summary, "pearson_delta", "top100_degs")
    assert sum(t.get_text() == "n/a" for t in ax.texts) == 2  # no_change: undefined in both settings
    ax = method_by_setting_heatmap(summary, "e_distance", "all")
    assert "lower is better" in ax.figure.axes[-1].get_ylabel()


def test_seed_spread_plot_draws_bars_and_one_dot_per_seed(results):
    ax = seed_spread_plot(results, "r2_pearson_mean", "all")
    bars = [p for p in ax.patches if p.get_width() > 0]
    assert len(bars) == 6  # 3 methods x 2 settings
    n_dots = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert n_dots == 18  # every run
    heights = sorted(round(b.get_height(), 6) for b in bars)
    want = results.query("metric == 'r2_pearson_mean'").groupby(["method", "setting"])["value"].mean()
    assert heights == sorted(round(v, 6) for v in want)
    assert ax.get_legend() is not None


def test_seed_spread_plot_handles_undefined_and_plain_tables(results):
    ax = seed_spread_plot(results, "pearson_delta", "top100_degs")
    assert any(t.get_text() == "undefined" for t in ax.texts)
    plain = pd.DataFrame(
        {"method": ["default"] * 3 + ["tuned"] * 3, "seed": [0, 1, 2] * 2, "value": [5.0, 5.5, 6.0, 4.0, 4.2, 4.4]}
    )
    ax = seed_spread_plot(plain, hue=None, ylabel="test E-distance")
    assert ax.get_ylabel() == "test E-distance"
    bars = [p for p in ax.patches if p.get_width() > 0]
    assert [round(b.get_height(), 6) for b in bars] == [5.5, 4.2]
    with pytest.raises(DataValidationError):
        seed_spread_plot(plain.drop(columns="value"))


def _study(n_trials: int, *, prune_all: bool = False) -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), study_name="toy")

    def objective(trial):
        x = trial.suggest_float("x", -2, 2)
        y = trial.suggest_categorical("y", [1, 2, 3])
        z = trial.suggest_float("z", 0, 1)
        if prune_all:
            raise optuna.TrialPruned()
        return (x - 0.5) ** 2 + 0.1 * y + 0.01 * z

    study.optimize(objective, n_trials=n_trials)
    return study


def test_optuna_figures_on_a_small_study():
    study = _study(12)
    ax = optimisation_history(study)
    assert "Optimisation history" in ax.get_title()
    ax = param_importances(study)
    assert "12 completed trials" in ax.get_title()
    top = top_params(study, 2)
    assert len(top) == 2 and set(top) <= {"x", "y", "z"}
    assert top[0] == "x"  # x dominates the objective
    axes = slice_top_params(study)
    assert len(np.ravel(axes)) == 2
    ax = contour_top_params(study)
    assert top[0] in ax.get_title() and top[1] in ax.get_title()


def test_optuna_figures_leave_the_global_style_alone():
    before = dict(plt.rcParams)
    optimisation_history(_study(3))
    assert dict(plt.rcParams) == before


def test_optuna_figures_are_guarded_on_tiny_studies():
    one = _study(1)
    with pytest.raises(ValueError, match="at least 2 completed"):
        param_importances(one)
    with pytest.raises(ValueError, match="at least 2 completed"):
        contour_top_params(one)
    assert top_params(one, 2) == ["x", "y"]  # search order when importances cannot be estimated
    pruned = _study(2, prune_all=True)
    with pytest.raises(ValueError, match="no completed trial"):
        optimisation_history(pruned)
    with pytest.raises(ValueError, match="no completed trial"):
        top_params(pruned)
