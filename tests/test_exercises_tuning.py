"""Notebook 04's exercises on selection bias: the checks follow the run's numbers and explain them.

The right answers are computed here with plain numpy/scipy (the way a learner would); the checks
compute theirs with course_tools.
"""

from __future__ import annotations

import time

import numpy as np
import optuna
import pandas as pd
import pytest
from scipy import stats

from course_tools.exercises import tuning as ex

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _interval(fresh, reported):
    d = np.asarray(fresh) - reported
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    return d.mean() - half, d.mean() + half


# ---- 04-1: predict, then run


@pytest.mark.parametrize(
    ("fresh", "run_says"),
    [
        ([2.50, 2.52, 2.49], "worse"),  # the pick loses its luck on fresh seeds
        ([2.00, 2.50, 2.30], "the same"),  # too noisy to tell
        ([1.90, 1.91, 1.92], "better"),
    ],
)
def test_fresh_seeds_guess_is_judged_by_the_run(fresh, run_says):
    low, high = _interval(fresh, 2.2)
    assert run_says == ("the same" if low <= 0 <= high else ("worse" if low > 0 else "better"))
    right = ex.check_fresh_seeds_guess(run_says, 2.2, fresh, n_candidates=3)
    assert right, right
    assert f"[{low:+.3f}, {high:+.3f}]" in right.message and "best of 3 completed trials" in right.message
    assert "winner's curse" in right.message
    for other in {"better", "the same", "worse"} - {run_says}:
        wrong = ex.check_fresh_seeds_guess(other.upper(), 2.2, fresh, n_candidates=3)
        assert not wrong and "the run says otherwise" in wrong.message
    if run_says == "the same":
        assert "cannot tell that luck from seed noise" in right.message


def test_fresh_seeds_guess_asks_for_a_guess_and_enough_seeds():
    assert "write your guess first" in ex.check_fresh_seeds_guess(..., 2.2, [2.3, 2.4, 2.5], 3).message
    assert "at least 3" in ex.check_fresh_seeds_guess("worse", 2.2, [2.3, 2.4], 3).message
    assert "one number" in ex.check_fresh_seeds_guess("worse", ..., [2.3, 2.4, 2.5], 3).message


# ---- 04-2: the selection effect


def test_selection_effect_explains_zero_and_a_preferred_other_candidate():
    zero = ex.check_selection_effect(0.0, [3.1, 2.9, 3.4], 2.9)
    assert zero and "selection effect 0" in zero.message and "never positive" in zero.message
    other = ex.check_selection_effect(2.7 - 2.9, [3.1, 2.7, 2.9], 2.9)
    assert other and "-0.2000" in other.message and "exercise 04-1" in other.message
    assert "sign" in ex.check_selection_effect(0.2, [3.1, 2.7, 2.9], 2.9).message


# ---- 04-3: change a setting, rerun, interpret


def test_simulated_flattery_of_equal_candidates_is_the_expected_largest_normal():
    """Equal candidates: the flattery is sd times the mean of the largest of k standard normals."""
    rng = np.random.default_rng(1)
    # E[max of k N(0, 1)]: 1/sqrt(pi) for k = 2; 1.02938 for k = 4 (order statistics)
    for k, expected in [(1, 0.0), (2, 1 / np.sqrt(np.pi)), (4, 1.029375)]:
        sims = ex.simulate_flattery([5.0], 0.3, k, 200_000, rng)
        assert sims.mean() == pytest.approx(0.3 * expected, abs=0.005)
    # two candidates far apart: only a search that drew the same one twice (probability 1/2) selects on noise
    sims = ex.simulate_flattery([1.0, 9.0], 0.01, 2, 50_000, rng)
    assert sims.mean() == pytest.approx(0.5 * 0.01 / np.sqrt(np.pi), abs=3e-4)


def _simulate(true_scores, noise_sd, ks, n_rep, pick=np.argmin):
    rng = np.random.default_rng(0)
    out = {}
    for k in ks:
        truth = rng.choice(np.asarray(true_scores), size=(n_rep, k))
        observed = truth + rng.normal(0, noise_sd, size=truth.shape)
        chosen = pick(observed, axis=1)
        rows = np.arange(n_rep)
        out[k] = float((truth[rows, chosen] - observed[rows, chosen]).mean())
    return out


def test_flattery_by_k_checks_the_numbers_then_the_reading():
    scores, sd, n_rep = [2.27, 2.41, 2.55], 0.19, 5000
    by_k = _simulate(scores, sd, [2, 4, 8, 32], n_rep)
    assert by_k[2] < by_k[4] < by_k[8] < by_k[32]  # the lowest of more noisy scores is luckier
    right = ex.check_flattery_by_k(by_k, "grows", scores, sd, n_rep)
    assert right and "the flattery grows with k" in right.message and "100 candidates" in right.message
    assert "k = 32: +" in right.message
    assert "read the numbers again" in ex.check_flattery_by_k(by_k, "shrinks", scores, sd, n_rep).message
    assert "Now write your reading" in ex.check_flattery_by_k(by_k, ..., scores, sd, n_rep).message
    one = ex.check_flattery_by_k(_simulate(scores, sd, [2], n_rep), ..., scores, sd, n_rep)
    assert not one and "ks = [2, 4, 8, 32]" in one.message
    flipped = ex.check_flattery_by_k({k: -v for k, v in by_k.items()}, "grows", scores, sd, n_rep)
    assert not flipped and "sign is flipped" in flipped.message
    by_max = ex.check_flattery_by_k(_simulate(scores, sd, [2, 32], n_rep, np.argmax), "grows", scores, sd, n_rep)
    assert not by_max and "lowest observed score" in by_max.message


def test_flattery_by_k_names_bad_inputs():
    assert "dict" in ex.check_flattery_by_k(..., "grows", [1.0], 0.1, 5000).message
    assert "positive" in ex.check_flattery_by_k({2: 0.1}, "grows", [1.0], 0.0, 5000).message
    assert "non-empty" in ex.check_flattery_by_k({2: 0.1}, "grows", [], 0.1, 5000).message
    assert "1 or more" in ex.check_flattery_by_k({0: 0.1}, "grows", [1.0], 0.1, 5000).message


# ---- every 04 scaffold and solution, in a namespace like the notebook's


@pytest.fixture
def notebook_names():
    """What notebook 04 leaves behind before its exercises, from a toy wrong-way study."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    leaky = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    dist = {"n_hidden": CategoricalDistribution([256, 1000])}
    for n_hidden, value in [(1000, 2.27), (256, 2.41)]:
        leaky.add_trial(create_trial(params={"n_hidden": n_hidden}, distributions=dist, value=value))
    completed = leaky.trials
    final = pd.DataFrame(
        {
            "method": ["default"] * 3 + ["tuned on validation"] * 3,
            "seed": [0, 1, 2] * 2,
            "value": [0.37, 0.57, 0.48, 1.48, 1.45, 1.04],
        }
    )

    def retrain(params):
        return [2.31, 2.52, 2.44] if params == {"n_hidden": 1000} else [2.6, 2.7, 2.65]

    return {
        "np": np,
        "time": time,
        "leaky": leaky,
        "completed": completed,
        "retrain": retrain,
        "final": final,
        "test_scores": [t.value for t in completed],
        "honest": 2.27,
        **{
            name: getattr(ex, name)
            for name in ("check_fresh_seeds_guess", "check_selection_effect", "check_flattery_by_k")
        },
    }


@pytest.mark.parametrize("key", ["04-1", "04-2", "04-3"])
def test_scaffolds_answer_not_yet_and_solutions_pass(key, notebook_names):
    item = ex.EXERCISES[key]
    scaffold = dict(notebook_names)
    exec(item["scaffold"].replace("test_scores = ...", "test_scores = test_scores"), scaffold)
    first = eval(item["check"], scaffold)
    assert not first, f"{key}: an unfilled scaffold passed"
    solved = dict(notebook_names)
    if key == "04-1":
        exec(item["scaffold"].replace("guess = ...", "guess = None"), solved)  # the run the guess waits for
    exec(item["solution"], solved)
    feedback = eval(item["check"], solved)
    assert feedback, f"{key}: {feedback}"


def test_the_exercises_are_the_ones_on_selection_bias():
    assert set(ex.EXERCISES) == {"04-1", "04-2", "04-3"}
    assert ex.EXERCISES["04-1"]["question"].startswith("Predict, then run")
    assert ex.EXERCISES["04-3"]["question"].startswith("Change a setting, rerun, interpret")
    for item in ex.EXERCISES.values():
        assert callable(getattr(ex, item["check"].split("(")[0]))
