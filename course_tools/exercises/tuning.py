"""Checks of notebook 04 (tuning without leakage): exercises on selection bias.

- 04-1, predict, then run (:func:`check_fresh_seeds_guess`): the wrong-way study's pick, retrained
  with fresh seeds: better, the same or worse than the value it reported?
- 04-2 (:func:`check_selection_effect`): the selection effect at the search's seed.
- 04-3, change a setting, rerun, interpret (:func:`check_flattery_by_k`): how the flattery of the
  best of k noisy candidates depends on k, simulated from the run's scores and seed noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from course_tools.exercises.feedback import Feedback, _as_float, _close, _guess, _no, _ok
from course_tools.verdicts import MIN_RUNS


def check_selection_effect(value, test_scores: Sequence[float], honest_score: float) -> Feedback:
    """Exercise 04-2: selection effect = best (lowest) test score among candidates - honest score.

    ``test_scores`` are the test-set E-distances (lower is better) of the candidates a wrong-way
    search judged on the test set; ``honest_score`` is the test score of the candidate chosen on
    the validation cell type. The effect is <= 0 when the honest candidate is among them.
    """
    try:
        scores = np.asarray(test_scores, dtype=np.float64)
        honest_score = float(honest_score)
    except (TypeError, ValueError):
        return _no(f"test_scores must be numbers and honest_score one number; got {test_scores!r}, {honest_score!r}.")
    if scores.ndim != 1 or scores.size == 0 or not np.all(np.isfinite(scores)):
        return _no("test_scores must be a non-empty 1-D sequence of finite numbers.")
    want = float(scores.min() - float(honest_score))
    got = _as_float(value)
    if got is None:
        return _no(f"expected one number; got {value!r}.")
    if _close(got, want):
        never = "It is never positive: the smallest test score over the candidates includes the honest candidate's."
        if _close(want, 0.0):
            return _ok(
                "selection effect 0: no candidate scored lower on the test cells than the honest winner, so choosing "
                f"on the test cells picked the same setting here. {never} The more candidates a search judges on the "
                "test set, the more likely one of them beats the honest pick by luck (exercise 04-3)."
            )
        return _ok(
            f"selection effect {want:+.4f}: the test cells preferred another candidate, and its score is what a "
            f"search on the test set would report, {-want:.4f} below the honest winner's. {never} Part of that lead "
            "is luck at the search's seed, which fresh seeds do not repeat (exercise 04-1)."
        )
    if _close(got, -want):
        return _no("the sign is flipped: reported (wrong-way) minus honest.")
    if _close(got, float(scores.max() - honest_score)):
        return _no("E-distance is lower-is-better: the wrong-way search reports the *smallest* test score.")
    return _no("take the smallest test score over the candidates and subtract the honest candidate's test score.")


#: Monte Carlo repetitions behind the check of exercise 04-3 (its own simulation, seeded).
CHECK_REPS = 40_000


def check_fresh_seeds_guess(guess, reported: float, fresh: Sequence[float], n_candidates: int) -> Feedback:
    """Exercise 04-1 (predict, then run): the wrong-way pick on fresh seeds against the value it reported.

    ``reported`` is the best test score (E-distance, lower is better) of ``n_candidates``
    completed trials judged on the test cells with one seed; ``fresh`` are the test scores of the
    same settings retrained with seeds the search did not use. The run's answer is the paired
    rule of :func:`~course_tools.tuning.report.flattery` on ``fresh - reported``: "worse" when the
    interval lies above 0, "better" below, "the same" when it includes 0. ``guess`` is compared
    with it, and the check explains the winner's curse (selection picks luck as well as quality).
    """
    from course_tools.tuning.report import flattery

    choices = ("better", "the same", "worse")
    got = _guess(guess, choices)
    if got is None:
        return _no(f"write your guess first, one of {choices}; got {guess!r}.")
    try:
        reported = float(reported)
        scores = np.asarray(fresh, dtype=np.float64)
    except (TypeError, ValueError):
        return _no(f"reported must be one number and fresh a list of numbers; got {reported!r}, {fresh!r}.")
    if scores.ndim != 1 or scores.size < MIN_RUNS or not np.all(np.isfinite(scores)):
        return _no(f"fresh must hold at least {MIN_RUNS} finite test scores, one per fresh seed.")
    f = flattery(reported, scores)
    want = {"no clear difference": "the same"}.get(f["verdict"], "worse" if f["ci_low"] > 0 else "better")
    detail = (
        f"the pick reported {reported:.3f} (best of {n_candidates} completed trials on the test cells); retrained "
        f"with {f['n']} fresh seeds it scores {f['fresh_mean']:.3f}: fresh - reported = {f['diff']:+.3f} "
        f"[{f['ci_low']:+.3f}, {f['ci_high']:+.3f}], so on fresh seeds it scores {want} (lower is better)"
    )
    why = (
        "Expect 'worse' on average: a score is quality plus luck, and the search picked the candidate with the "
        "luckiest-looking score; fresh seeds keep the quality but not the luck (regression to the mean, the "
        "winner's curse). The more candidates judged on the test set, the larger the luck of the winner"
    )
    if want == "the same":
        why += (
            f"; with {n_candidates} candidates and {f['n']} seeds this run cannot tell that luck from seed noise "
            "(exercise 04-3 shows how it grows with the number of candidates)."
        )
    elif want == "better":
        why += "; here the fresh seeds happened to do better, which seed noise alone can produce."
    else:
        why += "."
    if got == want:
        return _ok(f"{detail}. {why}")
    return _no(f"the run says otherwise: {detail}. {why}")


def simulate_flattery(
    true_scores: Sequence[float], noise_sd: float, k: int, n_rep: int, rng: np.random.Generator
) -> np.ndarray:
    """Flattery of the best of ``k`` noisy candidates, ``n_rep`` times: its true minus its observed score.

    Each repetition draws ``k`` candidates' true scores from ``true_scores`` (with replacement),
    observes each once with Gaussian noise of sd ``noise_sd``, and picks the lowest observed
    (lower is better). The pick's true score minus its observed one is what fresh runs would
    add to the reported value: > 0 means the reported value flatters.
    """
    truth = rng.choice(np.asarray(true_scores, dtype=np.float64), size=(n_rep, k))
    observed = truth + rng.normal(0.0, noise_sd, size=truth.shape)
    pick = observed.argmin(axis=1)
    rows = np.arange(n_rep)
    return truth[rows, pick] - observed[rows, pick]


def check_flattery_by_k(flattery_by_k, reading, true_scores: Sequence[float], noise_sd: float, n_rep: int) -> Feedback:
    """Exercise 04-3 (change a setting, rerun, interpret): the expected flattery of the best of k candidates.

    ``flattery_by_k`` maps each number of candidates ``k`` to the learner's simulated mean
    flattery (:func:`simulate_flattery`, ``n_rep`` repetitions); the check runs its own seeded
    simulation with :data:`CHECK_REPS` repetitions and accepts a value within 4 Monte Carlo
    standard errors of both. ``reading`` ("grows", "shrinks" or "stays the same") says how the
    flattery depends on k; the right reading is the one the check's own numbers show.
    """
    try:
        scores = np.asarray(true_scores, dtype=np.float64)
        sd = float(noise_sd)
        n_rep = int(n_rep)
    except (TypeError, ValueError):
        return _no(
            f"true_scores must be numbers, noise_sd one number, n_rep a whole number; got {true_scores!r}, "
            f"{noise_sd!r}, {n_rep!r}."
        )
    if scores.ndim != 1 or scores.size == 0 or not np.all(np.isfinite(scores)):
        return _no("true_scores must be a non-empty 1-D sequence of finite numbers (the candidates' test scores).")
    if not (np.isfinite(sd) and sd > 0) or n_rep < 100:
        return _no(f"noise_sd must be a positive number and n_rep at least 100; got {sd!r} and {n_rep}.")
    if not isinstance(flattery_by_k, dict) or not flattery_by_k:
        return _no(f"flattery_by_k must be a dict {{k: mean flattery}}; got {flattery_by_k!r}.")
    try:
        got = {int(k): float(v) for k, v in flattery_by_k.items()}
    except (TypeError, ValueError):
        return _no("flattery_by_k must map whole numbers k to one number each.")
    if any(k < 1 for k in got):
        return _no("k is a number of candidates: 1 or more.")
    rng = np.random.default_rng(0)
    want, tolerance = {}, {}
    for k in sorted(got):
        sims = simulate_flattery(scores, sd, k, CHECK_REPS, rng)
        want[k] = float(sims.mean())
        spread = float(sims.std(ddof=1))
        tolerance[k] = 4 * spread * np.sqrt(1 / CHECK_REPS + 1 / n_rep) + 1e-12
    for k in sorted(got):
        if abs(got[k] - want[k]) > tolerance[k]:
            hint = (
                "the sign is flipped: flattery is the pick's true score minus its observed (reported) score, "
                "and the pick is the lowest observed score (E-distance: lower is better)"
                if abs(-got[k] - want[k]) <= tolerance[k]
                else "pick the lowest observed score in each repetition and average its true minus observed score"
            )
            return _no(f"for k = {k} the simulation gives about {want[k]:+.4f}, you have {got[k]:+.4f}: {hint}.")
    table = ", ".join(f"k = {k}: {want[k]:+.3f}" for k in sorted(want))
    detail = f"expected flattery (fresh - reported, E-distance) {table}, with seed-to-seed sd {sd:.3f}"
    if len(got) < 2:
        return _no(
            f"your number is right ({table}), but one k cannot show how the flattery depends on k: "
            "set ks = [2, 4, 8, 32] and run the cell again."
        )
    ks = sorted(want)
    change = want[ks[-1]] - want[ks[0]]
    margin = tolerance[ks[-1]] + tolerance[ks[0]]
    right = "grows" if change > margin else ("shrinks" if change < -margin else "stays the same")
    choices = ("grows", "shrinks", "stays the same")
    said = _guess(reading, choices)
    if said is None:
        return _no(f"your numbers are right: {detail}. Now write your reading, one of {choices}.")
    at_100 = float(simulate_flattery(scores, sd, 100, CHECK_REPS, rng).mean())
    why = (
        "The reported value is the lowest of k noisy scores: the more candidates, the luckier the draw of the one "
        "that wins, so the number a search on the test set reports falls further below what its pick really "
        "scores (for equally good candidates, by sd times the expected largest of k standard normal draws: it "
        "keeps growing with k, ever more slowly). This run's wrong-way study judged "
        f"{scores.size} completed candidates; one of 100 candidates would flatter by about {at_100:+.3f}."
    )
    if said == right:
        return _ok(f"{detail}: the flattery {right} with k. {why}")
    return _no(f"read the numbers again: {detail}. {why}")


#: This notebook's exercises (see :data:`course_tools.exercises.EXERCISES`).
EXERCISES: dict[str, dict[str, str]] = {
    "04-1": {
        "notebook": "04_benchmarking_part2",
        "kind": "predict, then run",
        "question": (
            "Predict, then run: the wrong-way study picks the best of its completed trials by their test score "
            '(seed 0). Retrained with fresh seeds, will that pick score "better", "the same" (no clear '
            'difference over the fresh seeds) or "worse" than the value it reported?'
        ),
        "scaffold": (
            'guess = ...  # "better", "the same" or "worse" than reported\n'
            "start = time.perf_counter()\n"
            "wrong_fresh = retrain(leaky.best_params)  # the wrong-way pick, with seeds the search did not use\n"
            'print(f"{len(wrong_fresh)} retrainings in {time.perf_counter() - start:.0f} s")'
        ),
        "check": "check_fresh_seeds_guess(guess, leaky.best_value, wrong_fresh, n_candidates=len(completed))",
        "solution": (
            "from scipy import stats\n\n"
            "d = np.asarray(wrong_fresh) - leaky.best_value  # fresh - reported, one per fresh seed (lower is better)\n"
            "half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))\n"
            "low, high = d.mean() - half, d.mean() + half\n"
            "# expected before the run: worse; the pick won partly by luck at seed 0, which fresh seeds do not repeat\n"
            'guess = "the same" if low <= 0 <= high else ("worse" if low > 0 else "better")'
        ),
    },
    "04-2": {
        "notebook": "04_benchmarking_part2",
        "kind": "compute",
        "question": (
            "Compute the selection effect at the search's seed: the best wrong-way test score minus the honest "
            "winner's test score in the same trainings. Why can it never be positive?"
        ),
        "scaffold": "test_scores = ...  # test E-distance of each wrong-way candidate\nhonest = ...\nvalue = ...",
        "check": "check_selection_effect(value, test_scores, honest)",
        "solution": (
            "value = min(test_scores) - honest   # E-distance: lower is better, so the search reports the minimum"
        ),
    },
    "04-3": {
        "notebook": "04_benchmarking_part2",
        "kind": "change a setting, rerun, interpret",
        "question": (
            "Change a setting, rerun, interpret: simulate searches that judge k candidates on the test set, each "
            "observed once with seed noise, and report the best. Run it with ks = [2], then with ks = [2, 4, 8, 32]: "
            "how does the expected flattery (fresh - reported) change as k grows: it "
            '"grows", "shrinks" or "stays the same"?'
        ),
        "scaffold": (
            "rng = np.random.default_rng(0)\n"
            "true_scores = np.asarray(test_scores)  # the completed candidates' test scores, taken as true scores\n"
            'noise_sd = float(np.sqrt(final.groupby("method")["value"].var().mean()))  # seed-to-seed sd (section 5)\n'
            "N_REP = 5000  # simulated searches per k\n"
            "ks = [2]  # the setting to change: [2, 4, 8, 32]\n"
            "flattery_by_k = {}\n"
            "for k in ks:\n"
            "    truth = rng.choice(true_scores, size=(N_REP, k))  # k candidates per search\n"
            "    observed = truth + rng.normal(0, noise_sd, size=truth.shape)  # each seen once, with seed noise\n"
            "    pick = observed.argmin(axis=1)  # the search reports its lowest observed score\n"
            "    rows = np.arange(N_REP)\n"
            "    flattery_by_k[k] = float((truth[rows, pick] - observed[rows, pick]).mean())  # fresh - reported\n"
            "print({k: round(v, 3) for k, v in flattery_by_k.items()})\n"
            'reading = ...  # after the rerun: "grows", "shrinks" or "stays the same"'
        ),
        "check": "check_flattery_by_k(flattery_by_k, reading, true_scores, noise_sd, N_REP)",
        "solution": (
            "rng = np.random.default_rng(0)\n"
            "true_scores = np.asarray(test_scores)\n"
            'noise_sd = float(np.sqrt(final.groupby("method")["value"].var().mean()))\n'
            "N_REP = 5000\n"
            "ks = [2, 4, 8, 32]\n"
            "flattery_by_k = {}\n"
            "for k in ks:\n"
            "    truth = rng.choice(true_scores, size=(N_REP, k))\n"
            "    observed = truth + rng.normal(0, noise_sd, size=truth.shape)\n"
            "    pick = observed.argmin(axis=1)\n"
            "    rows = np.arange(N_REP)\n"
            "    flattery_by_k[k] = float((truth[rows, pick] - observed[rows, pick]).mean())\n"
            "values = [flattery_by_k[k] for k in sorted(flattery_by_k)]\n"
            "# the lowest of more noisy scores is luckier, so the flattery grows with k\n"
            'reading = "grows" if values[-1] > values[0] else "shrinks"'
        ),
    },
}
