"""Checks of notebook 03 (benchmarking: paired differences over seeds, verdicts pooled over cell types)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from course_tools.exercises.feedback import Feedback, _as_float, _close, _no, _ok
from course_tools.verdicts import is_distance, paired_difference, paired_units
from tutorial_lib.data.checks import DataValidationError


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


def _per_cell_type(
    table: pd.DataFrame, a: str, b: str, metric: str, gene_set: str, scale: str
) -> tuple[pd.DataFrame | None, str]:
    """Per held-out cell type: the seed means of A and B and their contrast (``paired_units``); or a problem."""
    if not isinstance(table, pd.DataFrame) or not {"design", "held_out", "setting"} <= set(table.columns):
        return (
            None,
            "pass the benchmark table's runs of one design (e.g. balanced = grid[grid['design'] == 'balanced']).",
        )
    designs = sorted(table["design"].unique())
    if len(designs) != 1:
        return None, f"pass the runs of one design (e.g. grid[grid['design'] == 'balanced']); these hold {designs}."
    try:
        units, unit = paired_units(table, a, b, metric, gene_set, scale=scale)
    except (DataValidationError, ValueError) as exc:
        return None, f"the table cannot compare {a} and {b} on {metric} ({exc})."
    if unit != "setting":
        return None, "the table must hold several held-out cell types (one setting each) to pool over."
    held = table.drop_duplicates("setting").set_index("setting")["held_out"]
    units = units.rename(index=held.to_dict())
    units.index.name = "held_out"
    return units, ""


def check_cell_type_wins(
    guess,
    table: pd.DataFrame,
    model: str = "scgen",
    baseline: str = "mean_shift",
    *,
    metric: str = "e_distance",
    gene_set: str = "all",
) -> Feedback:
    """Exercise 03-3 (predict, then run): the number of held-out cell types where ``model`` beats ``baseline``.

    "Beat" compares the two methods' means over the seeds of each held-out cell type of ``table``
    (one design's runs), in the metric's direction. ``guess`` is the learner's count, written
    before the cell is run; the feedback gives the count, the cell types on each side and why a
    pooled verdict over cell types that disagree is inconclusive.
    """
    units, problem = _per_cell_type(table, model, baseline, metric, gene_set, "difference")
    if units is None:
        return _no(problem)
    n = len(units)
    if isinstance(guess, bool) or not isinstance(guess, (int, np.integer)) or not 0 <= guess <= n:
        return _no(f"write your guess first: a whole number from 0 to {n}; got {guess!r}.")
    lower = is_distance(metric)
    wins = units[model] < units[baseline] if lower else units[model] > units[baseline]
    k = int(wins.sum())
    ratio = units[model] / units[baseline]
    detail = (
        f"{model}'s {metric} (mean over seeds) is {'lower' if lower else 'higher'} than {baseline}'s in {k} of {n} "
        f"held-out cell types ({', '.join(units.index[wins]) or 'none'}) and not in the other {n - k} "
        f"({', '.join(units.index[~wins]) or 'none'}); the ratio {model} / {baseline} runs from "
        f"×{ratio.min():.2f} to ×{ratio.max():.2f}"
    )
    why = (
        "A method that wins on some cell types and loses on others has no clear pooled advantage: the interval over "
        "cell types is wide when they disagree, however little the seeds of each cell type vary."
        if 0 < k < n
        else "Every cell type points the same way, so the pooled interval can exclude no difference."
    )
    if int(guess) == k:
        return _ok(f"{detail}. {why}")
    return _no(f"you guessed {int(guess)}; the table says {k}: {detail}. {why}")


def check_raw_pooling(
    raw,
    reading,
    table: pd.DataFrame,
    model: str = "scpram",
    baseline: str = "mean_shift",
    *,
    metric: str = "e_distance",
    gene_set: str = "all",
) -> Feedback:
    """Exercise 03-4 (change a setting, rerun, interpret): E-distance pooled on the raw scale.

    ``raw`` is :func:`course_tools.verdicts.paired_verdict` of ``model`` against ``baseline`` on
    ``table`` (one design's runs) with ``scale="difference"``; ``reading`` names the held-out cell
    type that dominates the raw mean: the one with the largest absolute difference of seed means.
    The feedback compares the raw estimate's direction with the ratio's and says why they differ.
    """
    ratio_units, problem = _per_cell_type(table, model, baseline, metric, gene_set, "ratio")
    if ratio_units is None:
        return _no(problem)
    if not isinstance(raw, dict) or "scale" not in raw or "estimate" not in raw:
        return _no(f"raw must be what paired_verdict(balanced, {model!r}, {baseline!r}, {metric!r}, ...) returns.")
    if raw["scale"] != "difference":
        return _no('raw is still pooled as a ratio: change the one setting, scale="difference".')
    if (raw.get("method_a"), raw.get("method_b"), raw.get("metric")) != (model, baseline, metric):
        return _no(f"compare {model} (first) with {baseline} on {metric}, as the ratio line does.")
    units, _ = _per_cell_type(table, model, baseline, metric, gene_set, "difference")
    d = units["contrast"]  # per held-out cell type: the difference of the two seed means
    if not _close(float(raw["estimate"]), float(d.mean())):
        return _no(f"raw should pool this table's runs: the mean of the per-cell-type differences is {d.mean():+.3f}.")
    if not isinstance(reading, str) or reading.strip().lower() not in {c.lower() for c in d.index}:
        return _no(f"reading must name one held-out cell type of the table, one of {list(d.index)}; got {reading!r}.")
    dominant = str(d.abs().idxmax())
    geo = float(np.exp(np.log(ratio_units["contrast"]).mean()))
    lower = is_distance(metric)

    def ahead(contrast_favours_model: bool) -> str:
        return model if contrast_favours_model == lower else baseline

    others = d.drop(dominant)
    weight = "outweighs" if abs(d[dominant]) > abs(others.sum()) else "is the largest of"
    smallest = str(units[baseline].idxmin())
    detail = (
        f"Pooled as ratios, {model} / {baseline} = ×{geo:.2f} ({ahead(geo < 1)} ahead); on the raw scale "
        f"{model} − {baseline} = {d.mean():+.3f} ({ahead(d.mean() < 0)} ahead): the direction "
        f"{'flips' if (geo < 1) != (d.mean() < 0) else 'stays'}. The difference of {dominant}, {d[dominant]:+.2f}, "
        f"{weight} the other {len(others)} together ({others.sum():+.2f}): {baseline}'s {metric} is about "
        f"{units.loc[dominant, baseline]:.1f} there and {units.loc[smallest, baseline]:.1f} in {smallest}. A raw mean "
        "weighs each cell type by the size of its distances; a mean of log ratios weighs each the same."
    )
    if reading.strip().lower() == dominant.lower():
        return _ok(detail)
    named = next(c for c in d.index if c.lower() == reading.strip().lower())
    return _no(
        f"the raw difference of {named} is {d[named]:+.2f} (its ratio ×{ratio_units.loc[named, 'contrast']:.2f}): "
        f"a raw mean is decided by the largest differences, not the largest ratios. {detail}"
    )


#: This notebook's exercises (see :data:`course_tools.exercises.EXERCISES`).
EXERCISES: dict[str, dict[str, str]] = {
    "03-1": {
        "notebook": "03_benchmarking_part1",
        "kind": "compute",
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
        "kind": "compute",
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
    "03-3": {
        "notebook": "03_benchmarking_part1",
        "kind": "predict, then run",
        "question": (
            "Predict, then run: pooled over the held-out cell types, scGen's E-distance is no clearly better or "
            "worse than mean shift's. In how many of the held-out cell types is scGen's E-distance (mean over its "
            "seeds) lower than mean shift's? Write your guess before you run the cell."
        ),
        "scaffold": (
            "guess = ...  # your guess, written before you run this cell: a whole number of cell types\n"
            'e = balanced[(balanced["metric"] == "e_distance") & (balanced["gene_set"] == "all")]\n'
            'per_type = e[e["method"].isin(["scgen", "mean_shift"])].groupby(["held_out", "method"])["value"]'
            ".mean().unstack()\n"
            "print(per_type.round(3))"
        ),
        "check": "check_cell_type_wins(guess, balanced)",
        "solution": (
            'e = balanced[(balanced["metric"] == "e_distance") & (balanced["gene_set"] == "all")]\n'
            'per_type = e[e["method"].isin(["scgen", "mean_shift"])].groupby(["held_out", "method"])["value"]'
            ".mean().unstack()\n"
            'guess = int((per_type["scgen"] < per_type["mean_shift"]).sum())   # lower is better'
        ),
    },
    "03-4": {
        "notebook": "03_benchmarking_part1",
        "kind": "change a setting, rerun, interpret",
        "question": (
            "Change a setting, rerun, interpret: the primary question pools E-distance over the held-out cell "
            'types as ratios. Pool scPRAM against mean shift on the raw scale instead (scale="difference"), '
            "compare the direction of the two estimates, and name the held-out cell type that decides the raw one."
        ),
        "scaffold": (
            "from course_tools.verdicts import describe_verdict, paired_verdict\n\n"
            'as_ratio = paired_verdict(balanced, "scpram", "mean_shift", "e_distance", "all")   # the default\n'
            'raw = paired_verdict(balanced, "scpram", "mean_shift", "e_distance", "all", scale="ratio")   '
            '# change this one setting to "difference"\n'
            "print(describe_verdict(as_ratio))\n"
            "print(describe_verdict(raw))\n"
            "reading = ...  # after the rerun: the held-out cell type that dominates the raw mean"
        ),
        "check": "check_raw_pooling(raw, reading, balanced)",
        "solution": (
            "from course_tools.verdicts import paired_units, paired_verdict\n\n"
            'raw = paired_verdict(balanced, "scpram", "mean_shift", "e_distance", "all", scale="difference")\n'
            'units, _ = paired_units(balanced, "scpram", "mean_shift", "e_distance", "all", scale="difference")\n'
            'largest = units["contrast"].abs().idxmax()   # the setting whose difference outweighs the others\n'
            'reading = balanced.loc[balanced["setting"] == largest, "held_out"].iloc[0]'
        ),
    },
}
