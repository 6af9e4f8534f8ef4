"""What a small study can show: sampler phases, pruning per parameter value, and flattery verdicts."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from course_tools.tuning import report as tr

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(n_trials: int, n_startup: int = 10, prune_small: bool = True, enqueue: int = 0) -> optuna.Study:
    """A toy study: n_hidden in {128, 1000}, x in [0, 1]; trials with n_hidden 128 are pruned when asked."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=n_startup))
    for _ in range(enqueue):
        study.enqueue_trial({"n_hidden": 1000, "x": 0.5})

    def objective(trial):
        n_hidden = trial.suggest_categorical("n_hidden", [128, 1000])
        x = trial.suggest_float("x", 0.0, 1.0)
        if prune_small and n_hidden == 128:
            raise optuna.TrialPruned()
        return x

    study.optimize(objective, n_trials=n_trials)
    return study


def test_a_study_shorter_than_the_startup_phase_is_a_random_search():
    study = _study(6)
    phases = tr.sampler_phases(study)
    assert phases["phase"].eq("random start-up").all() and len(phases) == 6
    assert list(phases["finished_before"]) == list(range(6))
    text = tr.describe_sampler_phases(study)
    assert "n_startup_trials = 10" in text and "6 random start-up" in text and "seeded random search" in text


def test_phases_after_the_startup_and_enqueued_trials():
    study = _study(7, n_startup=3, enqueue=2)
    phases = tr.sampler_phases(study)
    assert list(phases["phase"]) == ["enqueued"] * 2 + ["random start-up"] + ["TPE model"] * 4
    text = tr.describe_sampler_phases(study)
    assert "1 random start-up, 4 TPE model, 2 enqueued" in text and "random search" not in text


def test_pruning_by_value_and_caveats_name_the_pruned_values():
    study = _study(12)
    table = tr.pruning_by_value(study)
    assert set(table["parameter"]) == {"n_hidden"}  # x is continuous
    small = table.set_index("value").loc[128]
    n_small = sum(t.params["n_hidden"] == 128 for t in study.trials)
    assert small["trials"] == n_small and small["pruned"] == n_small and small["pruned_share"] == 1.0
    caveats = tr.importance_caveats(study)
    assert any("every trial with [128] was pruned" in c for c in caveats)
    assert any("all have n_hidden = 1000" in c for c in caveats)
    assert tr.importance_caveats(_study(12, prune_small=False)) == []


@pytest.mark.parametrize(
    ("fresh", "expected"),
    [
        ([1.3, 1.35, 1.32, 1.31], "supported: the reported value flatters"),
        ([1.0, 1.02, 0.99, 1.01], "refuted: the fresh runs are better than the reported value"),
        ([1.0, 1.4, 1.1, 1.3], "no clear difference"),
        ([1.3, 1.35], "too few fresh runs to judge (n=2, need 3)"),
    ],
)
def test_flattery_verdicts(fresh, expected):
    f = tr.flattery(1.2, fresh)
    assert f["verdict"] == expected
    assert f["diff"] == pytest.approx(np.mean(fresh) - 1.2)
    if len(fresh) >= 3:
        d = np.asarray(fresh) - 1.2
        from scipy import stats

        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        assert f["ci_low"] == pytest.approx(d.mean() - half) and f["ci_high"] == pytest.approx(d.mean() + half)
    # higher is better: the same numbers read the other way round
    if expected.startswith("supported"):
        assert tr.flattery(1.2, fresh, lower_is_better=False)["verdict"].startswith("refuted")
    assert "reported 1.200" in tr.describe_flattery(f, "fresh runs")
