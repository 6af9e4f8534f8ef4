"""Library functions that replaced hand-written logic in notebooks 02 and 04."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from course_tools.tuning.study import search_spaces
from course_tools.tuning.tables import describe_trials, search_space_table, trials_table
from tutorial_lib import plotting as tp
from tutorial_lib.analysis import delta_spread


def test_delta_spread_hist_counts_every_cell():
    spread = delta_spread(np.random.default_rng(0).normal(size=(40, 5)))
    ax = tp.delta_spread_hist(spread, bins=8)
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 8 and sum(heights) == 40
    assert "mean delta" in ax.get_xlabel()
    with pytest.raises(ValueError, match="finite"):
        tp.delta_spread_hist(np.array([np.nan, 1.0]))


def _toy_study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.suggest_categorical("k", [1, 2])
        trial.report(10.0 + x, 0)  # an intermediate "loss" on another scale than the objective
        if trial.number == 1:
            raise optuna.TrialPruned()
        return x

    study.optimize(objective, n_trials=4)
    return study


def test_trials_table_blanks_pruned_values_and_strips_prefixes():
    study = _toy_study()
    raw = study.trials_dataframe()
    assert raw.loc[1, "state"] == "PRUNED" and raw.loc[1, "value"] >= 10  # what Optuna stores
    table = trials_table(study)
    assert list(table.columns) == ["number", "value", "state", "k", "x", "duration"]
    assert np.isnan(table.loc[1, "value"])
    complete = table["state"] == "COMPLETE"
    np.testing.assert_allclose(table.loc[complete, "value"], table.loc[complete, "x"])
    assert (table["duration"] >= 0).all()
    text = describe_trials(study, table, value_name="toy x")
    best = table.loc[table.loc[complete, "value"].idxmin()]
    assert text.splitlines() == [
        "4 trials: 3 complete, 1 pruned",
        f"best: trial {best['number']}, toy x {best['value']:.3f}, params {study.best_params}",
    ]


def test_an_empty_study_has_an_empty_table():
    study = optuna.create_study()
    assert trials_table(study).empty
    assert describe_trials(study).endswith("none yet (no completed trial)")


def test_search_space_table_lists_each_parameter_with_an_admissible_default():
    table = search_space_table("scgen")
    assert list(table["parameter"]) == list(search_spaces()["scgen"])
    for _, row in table.iterrows():
        spec = row["values (low, high, log) or choices"]
        if row["kind"] == "categorical":
            assert row["default"] in spec
        else:
            assert spec[0] <= row["default"] <= spec[1]
    with pytest.raises(KeyError, match="no search space"):
        search_space_table("nope")
