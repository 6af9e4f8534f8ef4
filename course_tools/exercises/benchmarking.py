"""Checks of notebook 03 (benchmarking, seeds and paired differences)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from course_tools.exercises.feedback import Feedback, _as_float, _close, _no, _ok
from course_tools.verdicts import paired_difference


def check_paired_difference(
    estimate, interval, a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> Feedback:
    """Exercise 03-1: mean paired difference ``a - b`` over seeds and its 95% t interval."""
    try:
        mean, low, high = paired_difference(a, b, level)
    except (TypeError, ValueError) as exc:
        return _no(f"a and b must be equal-length sequences of numbers, one score per seed ({exc}).")
    got = _as_float(estimate)
    try:
        g_low, g_high = (float(v) for v in interval)
    except (TypeError, ValueError):
        return _no(f"interval must be a pair (low, high) of numbers; got {interval!r}.")
    if got is None:
        return _no(f"estimate must be one number; got {estimate!r}.")
    if _close(got, -mean):
        return _no("the sign is flipped: compute a - b (first method minus second), seed by seed.")
    if not _close(got, mean):
        return _no("the estimate is the mean over seeds of (score of a - score of b) for the same seed.")
    if _close(g_low, low) and _close(g_high, high):
        return _ok(f"difference {mean:.4f}, {level:.0%} interval [{low:.4f}, {high:.4f}].")
    da, db = np.asarray(a, float), np.asarray(b, float)
    n = da.size
    unpaired = stats.t.ppf(0.5 + level / 2, n - 1) * np.sqrt((da.var(ddof=1) + db.var(ddof=1)) / n)
    if _close(g_high - g_low, 2 * unpaired):
        return _no(
            "your interval treats the two methods as independent; pair them: the spread of the differences a - b."
        )
    z_half = stats.norm.ppf(0.5 + level / 2) * np.std(da - db, ddof=1) / np.sqrt(n)
    if _close(g_high - g_low, 2 * z_half):
        return _no(f"with {n} seeds use the t quantile with {n - 1} degrees of freedom (scipy.stats.t.ppf), not 1.96.")
    return _no("interval = mean ± t quantile × sd of the differences (ddof=1) / sqrt(number of seeds).")


VERDICTS = ("a better", "b better", "no clear difference")


def check_verdict(
    answer: str, a: Sequence[float], b: Sequence[float], *, lower_is_better: bool, level: float = 0.95
) -> Feedback:
    """Exercise 03-2: "a better", "b better" or "no clear difference" from paired scores by seed.

    A method is better only when the interval of the paired difference excludes zero (the rule of
    the course); otherwise the verdict is "no clear difference".
    """
    if not isinstance(answer, str) or answer.strip().lower() not in VERDICTS:
        return _no(f"answer with one of {VERDICTS}; got {answer!r}.")
    try:
        mean, low, high = paired_difference(a, b, level)
    except (TypeError, ValueError) as exc:
        return _no(f"a and b must be equal-length sequences of numbers, one score per seed ({exc}).")
    if low <= 0.0 <= high:
        want = "no clear difference"
    else:
        a_lower = high < 0.0
        want = "a better" if a_lower == lower_is_better else "b better"
    got = answer.strip().lower()
    detail = f"a - b = {mean:.4f}, {level:.0%} interval [{low:.4f}, {high:.4f}]"
    if got == want:
        return _ok(f"{want} ({detail}).")
    if want == "no clear difference":
        return _no(f"the interval of the paired difference includes zero ({detail}): the seeds cannot tell them apart.")
    if got == "no clear difference":
        return _no(f"the interval excludes zero ({detail}), so one method is better.")
    direction = "lower" if lower_is_better else "higher"
    return _no(f"this metric is {direction}-is-better; read the sign of a - b again ({detail}).")


#: This notebook's exercises (see :data:`course_tools.exercises.EXERCISES`).
EXERCISES: dict[str, dict[str, str]] = {
    "03-1": {
        "notebook": "03_benchmarking_part1",
        "question": (
            "From the per-seed E-distances of scGen (a) and mean shift (b), "
            "compute the paired difference a - b and its 95% interval."
        ),
        "scaffold": (
            "a = ...  # scGen's E-distance per seed, in seed order\nb = ...  # mean_shift's, same seeds\n"
            "estimate, interval = ..., (..., ...)"
        ),
        "check": "check_paired_difference(estimate, interval, a, b)",
        "solution": (
            "from scipy import stats\n\n"
            "d = np.asarray(a) - np.asarray(b)                 # paired by seed\n"
            "estimate = d.mean()\n"
            "half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))\n"
            "interval = (estimate - half, estimate + half)"
        ),
    },
    "03-2": {
        "notebook": "03_benchmarking_part1",
        "question": (
            'Which is better on E-distance (lower is better): "a better", "b better" or "no clear difference"?'
        ),
        "scaffold": "answer = ...",
        "check": "check_verdict(answer, a, b, lower_is_better=True)",
        "solution": (
            "low, high = interval\n"
            'answer = "no clear difference" if low <= 0 <= high else ("a better" if high < 0 else "b better")'
        ),
    },
}
