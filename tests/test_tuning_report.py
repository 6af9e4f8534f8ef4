"""What a small study can show: sampler phases, pruning per parameter value, and flattery verdicts."""

from __future__ import annotations

import warnings

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


def test_a_trial_retried_after_its_worker_stopped_counts_as_enqueued():
    # what a storage's stale-trial callback does when a worker is killed: fail the trial, queue a copy
    study = _study(3, n_startup=2, prune_small=False)
    stale = study.ask({"n_hidden": optuna.distributions.CategoricalDistribution([128, 1000])})
    stale.suggest_float("x", 0.0, 1.0)
    study.tell(stale, state=optuna.trial.TrialState.FAIL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", optuna.storages.RetryFailedTrialCallback)
        retry()(study, study.trials[-1])
    study.optimize(
        lambda trial: trial.suggest_float("x", 0.0, 1.0) + 0 * trial.suggest_categorical("n_hidden", [128, 1000]),
        n_trials=1,
    )
    retried = study.trials[-1]
    assert retried.system_attrs["failed_trial"] == stale.number and retried.params == study.trials[stale.number].params
    phases = tr.sampler_phases(study)
    assert list(phases["phase"]) == ["random start-up"] * 2 + ["TPE model", "TPE model", "enqueued"]
    assert list(phases["state"]) == ["COMPLETE"] * 3 + ["FAIL", "COMPLETE"]


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


# ---- notebook 04's "What we found", built from a toy run


def _scored(values: dict[int, float]) -> optuna.Study:
    """A study with one completed trial per ``{n_hidden: value}`` and one pruned trial."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    dist = {"n_hidden": CategoricalDistribution([128, 256, 512, 1000])}
    for n_hidden, value in values.items():
        study.add_trial(create_trial(params={"n_hidden": n_hidden}, distributions=dist, value=value))
    study.add_trial(create_trial(params={"n_hidden": 128}, distributions=dist, state=TrialState.PRUNED))
    return study


def _final(default: list[float], tuned: list[float]):
    import pandas as pd

    n = len(default)
    return pd.DataFrame(
        {
            "method": ["default"] * n + ["tuned on validation"] * n,
            "seed": list(range(n)) * 2,
            "value": [*default, *tuned],
        }
    )


def test_findings_count_the_trials_and_say_what_a_random_search_cannot_show():
    from course_tools.tuning.findings import tuning_findings

    study = _study(8)  # 8 trials, 10 start-up trials: all random; n_hidden 128 pruned
    n_pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    wrong = _scored({1000: 2.0, 256: 2.4})
    f = tuning_findings(
        study,
        _final([0.4, 0.5, 0.45], [0.42, 0.47, 0.5]),
        wrong,
        [2.1, 2.3, 2.2],
        [2.1, 2.3, 2.2],
        test_cell_type="CD4+ T cells",
    )
    assert (f.n_finished, f.n_pruned, f.n_complete) == (8, n_pruned, 8 - n_pruned)
    assert (f.n_random, f.n_model, f.n_startup_trials) == (8, 0, 10)
    text = f.trials_statement()
    assert f"finished 8 trials: {8 - n_pruned} completed and {n_pruned} pruned" in text
    assert "seeded random search" in text and "cannot say which hyperparameters matter" in text
    assert f"rest on its {8 - n_pruned} completed trials" in text
    replayed = tuning_findings(
        _study(6, enqueue=2),
        _final([0.4, 0.5, 0.45], [0.42, 0.47, 0.5]),
        wrong,
        [2.1, 2.3, 2.2],
        [2.1, 2.3, 2.2],
        test_cell_type="CD4+ T cells",
    )
    assert (replayed.n_enqueued, replayed.n_random, replayed.n_model) == (2, 4, 0)
    assert (
        "4 were drawn at random and 2 enqueued, so this study is a seeded random search" in replayed.trials_statement()
    )
    # once the sampler models, the words say how many trials it proposed
    modelled = tuning_findings(
        _study(9, n_startup=3),
        _final([0.4, 0.5, 0.45], [0.42, 0.47, 0.5]),
        wrong,
        [2.1, 2.3, 2.2],
        [2.1, 2.3, 2.2],
        test_cell_type="CD4+ T cells",
    )
    assert modelled.n_model > 0 and modelled.n_random + modelled.n_model == modelled.n_finished
    assert f"{modelled.n_model} proposed by the TPE model" in modelled.trials_statement()
    assert "random search" not in modelled.trials_statement()


@pytest.mark.parametrize(
    ("default", "tuned", "words"),
    [
        ([0.40, 0.50, 0.45], [1.30, 1.40, 1.20], "the defaults are better"),
        ([0.40, 0.50, 0.45], [0.30, 0.41, 0.34], "the tuned settings are better"),
        ([0.40, 0.50, 0.45], [0.52, 0.38, 0.47], "no clear difference: the interval includes 0"),
    ],
)
def test_findings_gain_words_follow_the_paired_interval(default, tuned, words):
    from scipy import stats

    from course_tools.tuning.findings import tuning_findings

    study = _scored({1000: 3.0, 256: 3.5})
    f = tuning_findings(study, _final(default, tuned), study, [3.1, 3.0, 3.2], [3.1, 3.0, 3.2], test_cell_type="B")
    d = np.subtract(tuned, default)
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    assert f.gain == pytest.approx(d.mean())
    assert (f.gain_low, f.gain_high) == pytest.approx((d.mean() - half, d.mean() + half))
    text = f.gain_statement()
    assert words in text and "(B)" in text and "over 3 seeds" in text
    assert f"{d.mean():+.3f} [{d.mean() - half:+.3f}, {d.mean() + half:+.3f}]" in text
    assert (f.gain_low <= 0 <= f.gain_high) == ("no clear difference" in text)


def test_findings_selection_words_follow_fresh_seeds_and_the_winners():
    from course_tools.tuning.findings import tuning_findings

    honest = _scored({1000: 3.0, 256: 3.5})  # the honest study picks n_hidden = 1000
    final = _final([0.4, 0.5, 0.45], [0.42, 0.47, 0.5])
    same = tuning_findings(
        honest, final, _scored({1000: 2.0, 256: 2.4}), [2.3, 2.35, 2.32], [2.3, 2.35, 2.32], test_cell_type="B"
    )
    assert same.same_winner and same.selection_effect == 0.0 and same.n_candidates == 2
    text = same.selection_statement()
    assert "reports 2.000, the best of 2 completed trials" in text and "score 2.323" in text
    assert "the reported value flatters" in text and "same setting" in text and "+0.000" in text
    # the test cells prefer another candidate: a negative selection effect, and both fresh comparisons
    other = tuning_findings(
        honest, final, _scored({1000: 2.4, 256: 2.1}), [2.0, 2.4, 2.2], [2.5, 2.55, 2.6], test_cell_type="B"
    )
    assert not other.same_winner and other.selection_effect == pytest.approx(2.1 - 2.4)
    text = other.selection_statement()
    assert "different setting" in text and f"{2.1 - 2.4:+.3f}" in text
    assert "no clear difference" in text  # the wrong-way pick on fresh seeds: 2.2 ± noise vs 2.1
    assert other.honest.verdict.startswith("supported") and "score 2.550 on fresh seeds" in text
    md = other._repr_markdown_()
    assert md.startswith("**What we found**") and all(s in md for s in other.statements())
    assert str(other).splitlines()[1:] == [f"- {s}" for s in other.statements()] and len(other.statements()) == 3


def test_findings_refuse_a_table_without_methods_and_seeds():
    import pandas as pd

    from course_tools.tuning.findings import tuning_findings

    study = _scored({1000: 3.0})
    with pytest.raises(ValueError, match="lacks the columns"):
        tuning_findings(study, pd.DataFrame({"value": [1.0]}), study, [1.0] * 3, [1.0] * 3, test_cell_type="B")
