"""Paired verdicts: whether method A is better than method B, and whether that depends on the setting.

Both compare *matched runs*: rows of a tidy results table (:func:`course_tools.benchmark.run_benchmark`
or the grid) with the same setting and seed, hence the same held-out cells, genes and training
randomness. The intervals cover seed-to-seed and setting-to-setting variation and, within one
setting, the sampling of its test cells (:func:`cell_sampling_sd`).

Rule (one rule everywhere): a paired contrast of A and B per unit, its mean over ``n`` units with a
paired-t interval ``mean ± t_{n-1, 0.975} sd / sqrt(n)`` and the two-sided p-value of "no difference".
When the interval excludes no-difference the verdict names the better method, using the metric's
direction (:data:`course_tools.scoring.registry.LOWER_IS_BETTER`); otherwise it says "no clear difference".
With fewer than :data:`MIN_RUNS` units it does not judge.

**The scale of the contrast** (:func:`comparison_scale`). For most metrics the contrast is the
difference ``A - B``. For distances (:func:`is_distance`: E-distance, MMD, the KDE distance and the
MSE, all >= 0 and lower is better) pooled over several settings it is the log ratio ``log(A / B)``:
a distance's size varies by an order of magnitude between cell types (a strong response is far
from the controls), so raw differences pooled over cell types would mostly be those of the cell
types with the largest distances. The mean log ratio and its interval are reported back on the
ratio scale (``exp``): the geometric mean ratio ``A / B`` with its interval; no difference is a
ratio of 1. Within one setting (the units are its seeds) the scale is that setting's, and the
contrast stays the difference, in the metric's units.

**The unit of replication.** Within one setting (one held-out cell type, one score group) the
units are the matched runs, i.e. the seeds: the verdict is about that setting, and the interval
covers seed-to-seed variation. When the matched runs span several settings (e.g. every held-out
cell type of a design pooled), the seeds of one setting are repeats of one experiment, not
independent draws of the question "is A better than B on a cell type like these": treating the
pooled runs as exchangeable would count each cell type five times and give an interval far too
narrow for that question. So A and B are first averaged over the seeds (:data:`REPLICATE`) within
each *block* (the match columns other than the seed that vary: ``setting``, ``score_group``, or
``held_out`` for design-vs-design comparisons), the contrast is taken per block (for distances:
the log ratio of the two seed means), and the blocks are the units: ``n`` counts them (column
``unit`` names them), each weighs the same, and the interval (``n - 1`` degrees of freedom) is about
the mean over blocks like these. The coverage of both kinds of interval is checked by simulation in
``tests/test_verdicts.py`` and ``tests/test_coverage_realistic.py``.

**The sampling of test cells.** The seeds of one setting share its test cells, so their spread says
nothing about how the scores would move on another sample of cells of that type: a verdict about
one setting whose interval covered the seeds only would be too sure of itself wherever the cells,
not the training, make the scores uncertain. Within one setting (:data:`RUN_UNIT`; for
:func:`interaction` too, at both levels) the interval therefore adds the test cells' part, read
from each run's own bootstrap interval (``ci_low``, ``ci_high``): ``mean ± t_df sqrt(sd_seeds^2 / n
+ c^2)`` with ``c = sd_A + sd_B`` (:func:`cell_sampling_sd`) and Welch-Satterthwaite's ``df``
(:func:`paired_t`). The table keeps no resamples, so the two methods' resamples cannot be paired;
``sd_A + sd_B`` bounds the sd of their difference whatever the correlation of the two (it can be
negative: a resample with a stronger response helps a method that overshoots and hurts one that
undershoots), so this part is conservative. Pooled over blocks nothing is added: each block was
scored on its own cells, so the spread between blocks already holds their sampling.

**The primary question** (:data:`PRIMARY`, :func:`primary_verdicts`) is declared here, in code,
before any table is read: four comparisons with Holm's correction (Holm 1979) and margins of
practical equivalence (:class:`Margin`), so that its verdicts read "better", "worse", "equivalent
within ±m" or "inconclusive". Every other verdict is exploratory (no multiplicity control).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from tutorial_lib.data.checks import DataValidationError

#: The verdict of two methods (or settings) whose scores agree to rounding in every unit (:data:`ROUNDING`).
IDENTICAL = "identical up to rounding"

#: Fewest units (matched runs, or blocks of them: see the module docstring) a verdict needs; below
#: it the verdict says so instead of judging.
MIN_RUNS = 3

#: The match column whose values repeat one experiment (the seed). Matched runs that differ only in it
#: form one block; when runs of several blocks are pooled, the blocks are the verdict's units.
REPLICATE = "seed"

#: The ``unit`` of a verdict whose units are the matched runs themselves.
RUN_UNIT = "run"

#: Columns that identify one run of one method (matched runs share all but ``method``); ``score_group``
#: is added when the table has it (settings scored within cell types).
MATCH_ON = ("setting", "seed")

Scale = Literal["difference", "ratio"]
#: The scales of a contrast (module docstring).
SCALES: tuple[str, ...] = ("difference", "ratio")


def _match_on(results: pd.DataFrame, match_on: Sequence[str] | None) -> list[str]:
    if match_on is not None:
        return list(match_on)
    return [*MATCH_ON, *(["score_group"] if "score_group" in results.columns else [])]


VERDICT_COLUMNS = [
    "method_a",
    "method_b",
    "metric",
    "gene_set",
    "n",
    "unit",
    "mean_a",
    "mean_b",
    "scale",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "direction",
    "verdict",
    "cell_sd",
]

#: Coverage of each run's own interval (``ci_low``, ``ci_high``): the default of
#: :func:`course_tools.scoring.evaluate.evaluate`.
RUN_INTERVAL_LEVEL = 0.95

#: Column of a results table: the sampling sd of each row's score over its test cells (:func:`run_sampling_sd`).
SAMPLING_SD = "sampling_sd"


def run_sampling_sd(results: pd.DataFrame) -> pd.Series:
    """Each row's sd over resamples of its test cells, from its interval: ``(ci_high - ci_low) / (2 z)``.

    ``z`` is the normal quantile of :data:`RUN_INTERVAL_LEVEL`. The basic, percentile and
    subsample intervals of the same resamples have the same width, so the sd holds whichever
    scheme made the interval (and after a bound was withdrawn or clipped, if it was kept before:
    :func:`course_tools.grid_results.label_intervals`). NaN where a row has no interval.
    """
    if not {"ci_low", "ci_high"} <= set(results.columns):
        return pd.Series(np.nan, index=results.index)
    z = stats.norm.ppf(0.5 + RUN_INTERVAL_LEVEL / 2)
    low = pd.to_numeric(results["ci_low"], errors="coerce")
    high = pd.to_numeric(results["ci_high"], errors="coerce")
    return (high - low) / (2 * z)


def better_direction(metric: str) -> str:
    """``"lower"`` or ``"higher"``: which values of ``metric`` are better (from the metric registry)."""
    from course_tools.scoring.registry import is_lower_better

    return "lower" if is_lower_better(metric) else "higher"


def is_distance(metric: str) -> bool:
    """Whether ``metric`` is a distance: a registered metric where lower is better.

    Those are the distances and errors between real and predicted cells or per-gene summaries
    (``e_distance``, ``mmd``, ``mean_var_kde_distance``, ``mse_mean``): all >= 0, 0 for a perfect
    prediction, and of a size that grows with the cell type's response. Pooled over cell types they
    are compared as ratios (:func:`comparison_scale`); their interval bounds are >= 0.
    """
    return better_direction(metric) == "lower"


def comparison_scale(metric: str, unit: str = "setting") -> Scale:
    """How units are contrasted: ``"ratio"`` for a distance (:func:`is_distance`) pooled over blocks.

    ``unit`` is what the units are (:func:`replication_units`): with :data:`RUN_UNIT` (the seeds of
    one setting) the contrast is always ``"difference"``; with blocks (e.g. held-out cell types)
    a distance is contrasted as a ratio (module docstring).
    """
    return "ratio" if is_distance(metric) and unit != RUN_UNIT else "difference"


def _check(results: pd.DataFrame, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in results.columns]
    if missing:
        raise DataValidationError(
            f"the results table lacks the columns {missing}; pass run_benchmark()'s or the grid's tidy table"
        )


def _metric_rows(results: pd.DataFrame, metric: str, gene_set: str) -> pd.DataFrame:
    rows = results[(results["metric"] == metric) & (results["gene_set"] == gene_set)]
    if rows.empty:
        known = sorted(set(zip(results["metric"], results["gene_set"])))
        raise DataValidationError(f"no rows for metric {metric!r} on gene set {gene_set!r}; the table has {known}")
    return rows


def _matched(rows: pd.DataFrame, a: str, b: str, match_on: Sequence[str], compare: str = "method") -> pd.DataFrame:
    """One row per matched run with columns ``a`` and ``b`` (runs where either is undefined dropped)."""
    for m in (a, b):
        if not (rows[compare] == m).any():
            raise DataValidationError(f"{compare} {m!r} is not in the table; it has {sorted(rows[compare].unique())}")
    sub = rows[rows[compare].isin([a, b])]
    dup = sub.duplicated([compare, *match_on])
    if dup.any():
        raise DataValidationError(
            f"several rows per ({compare}, {', '.join(match_on)}): {sub[dup].iloc[0][[compare, *match_on]].to_dict()}; "
            "pass match_on= columns that identify one run"
        )
    wide = sub.pivot_table(index=list(match_on), columns=compare, values="value", aggfunc="first", dropna=False)
    wide = wide.reindex(columns=[a, b])
    return wide.dropna()


def replication_units(wide: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The units a verdict counts, from matched runs indexed by their match columns.

    The matched runs themselves (``unit`` :data:`RUN_UNIT`) when they belong to one block (they
    agree on every match column other than :data:`REPLICATE`), or when there is no seed column to
    average over; else one row per block, the mean of its runs (``unit``: the block columns that
    vary, joined by ``+``). Every column of ``wide`` (e.g. A and B, at one or two levels) is averaged
    alike; contrasts are taken afterwards.
    """
    names = [n for n in wide.index.names if n is not None]
    if REPLICATE not in names or wide.empty:
        return wide, RUN_UNIT
    # the block columns that vary among these runs (a constant one, e.g. score_group "all", names nothing)
    blocks = [n for n in names if n != REPLICATE and wide.index.get_level_values(n).nunique() > 1]
    if not blocks:
        return wide, RUN_UNIT
    return wide.groupby(level=blocks, sort=False, observed=True).mean(), "+".join(blocks)


def describe_units(n: int, unit: str = RUN_UNIT, runs: str = "matched runs") -> str:
    """``"5 matched runs"`` (``runs`` names them) or ``"3 blocks by held_out (each the mean of its seeds)"``."""
    if unit == RUN_UNIT:
        return f"{n} {runs}"
    return f"{n} blocks by {unit} (each the mean of its seeds)"


def contrast(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, scale: Scale) -> np.ndarray:
    """Per-unit contrast of A and B: ``a - b`` (``"difference"``) or ``log(a / b)`` (``"ratio"``).

    A ratio needs positive values on both sides; a value <= 0 raises ``DataValidationError``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if scale == "difference":
        return a - b
    if scale != "ratio":
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if np.any(a <= 0) or np.any(b <= 0):
        low_a = float(np.min(a)) if a.size else float("nan")
        low_b = float(np.min(b)) if b.size else float("nan")
        raise DataValidationError(
            f"a ratio needs values > 0 on both sides, got min {low_a:.3g} and {low_b:.3g}; "
            "compare on scale='difference'"
        )
    return np.log(a) - np.log(b)


def paired_t(d: np.ndarray, level: float = 0.95, extra_sd: float = 0.0) -> tuple[float, float, float, float]:
    """Mean of the paired contrasts ``d``, its Student-t interval and the two-sided p-value of mean 0.

    ``extra_sd`` is a further standard error of the mean that the contrasts' spread does not show
    (the test cells' sampling shared by every seed: :func:`cell_sampling_sd`), taken as known (it
    rests on the runs' resamples, not on ``n`` contrasts). It is added in quadrature, ``se =
    sqrt(v + extra_sd^2)`` with ``v = sd^2 / n``, and the t quantile has Welch-Satterthwaite's
    degrees of freedom ``(n - 1) (v + extra_sd^2)^2 / v^2`` (``n - 1`` without an extra; the normal
    quantile when the contrasts do not vary). Returns ``(mean, low, high, p)``; with fewer than 2
    values the interval and ``p`` are NaN. When the standard error is 0 (equal contrasts, no extra)
    the interval has zero width and ``p`` is 0 (1 if they are 0).
    """
    d = np.asarray(d, dtype=np.float64)
    n = d.size
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan"), float("nan")
    if not (np.isfinite(extra_sd) and extra_sd >= 0):
        raise ValueError(f"extra_sd must be a finite number >= 0, got {extra_sd}")
    v = float(d.var(ddof=1) / n)
    se = float(np.sqrt(v + extra_sd**2))
    df = (n - 1) * (se**2 / v) ** 2 if v > 0 else (np.inf if extra_sd > 0 else n - 1)
    half = float(stats.t.ppf(0.5 + level / 2, df) * se)
    if se == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / se, df))
    return mean, mean - half, mean + half, p


def _back(mean: float, lo: float, hi: float, scale: Scale) -> tuple[float, float, float]:
    """A contrast's mean and interval on the scale they are reported on (``exp`` for ratios)."""
    if scale == "ratio":
        return float(np.exp(mean)), float(np.exp(lo)), float(np.exp(hi))
    return mean, lo, hi


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of the paired differences ``a - b`` (matched runs, e.g. by seed) and its Student-t interval.

    The interval of :func:`paired_verdict` on the difference scale, for two plain sequences. Returns
    ``(mean, low, high)``; needs at least two finite pairs.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.ndim != 1 or d.size < 2 or not np.all(np.isfinite(d)):
        raise ValueError("need at least two finite paired scores per method, as 1-D sequences of equal length")
    return paired_t(d, level)[:3]


def paired_ratio(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean of the paired ratios ``a / b`` and its interval (exp of the paired-t interval of the logs).

    The interval of :func:`paired_verdict` on the ratio scale, for two plain sequences of positive
    values (e.g. one distance per cell type, each the mean of its seeds). Returns ``(ratio, low, high)``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2 or not np.all(np.isfinite(a) & np.isfinite(b)):
        raise ValueError("need at least two finite paired scores per method, as 1-D sequences of equal length")
    return _back(*paired_t(contrast(a, b, "ratio"), level)[:3], "ratio")


def _too_few(n: int, unit: str, min_runs: int, runs: str = "matched runs") -> str:
    what = runs if unit == RUN_UNIT else f"blocks by {unit}"
    return f"too few {what} to judge (n={n}, need {min_runs})"


#: Contrasts (differences, or log ratios) smaller than this in every unit are floating-point rounding, not a
#: difference: e.g. a method whose predictions and test cells are the same in two settings, scored on
#: another machine's BLAS. Their interval is degenerate and would otherwise exclude 0.
ROUNDING = 1e-6


def _words(
    a: str, b: str, n: int, unit: str, lo: float, hi: float, direction: str, min_runs: int, d: np.ndarray | None = None
) -> str:
    """Verdict words from the interval of the contrast (its log for ratios: no difference is 0)."""
    if n < min_runs:
        return _too_few(n, unit, min_runs)
    if d is not None and d.size and bool(np.all(np.abs(d) < ROUNDING)):
        return IDENTICAL
    if lo > 0 or hi < 0:
        a_higher = lo > 0
        return f"{a} better" if a_higher == (direction == "higher") else f"{b} better"
    return "no clear difference"


def _restrict(rows: pd.DataFrame, column: str, wanted: str | Sequence[str] | None) -> pd.DataFrame:
    if wanted is None:
        return rows
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = sorted(set(wanted) - set(rows[column]))
    if unknown:
        raise DataValidationError(f"{column}s {unknown} are not in the table; it has {sorted(rows[column].unique())}")
    return rows[rows[column].isin(wanted)]


def paired_units(
    results: pd.DataFrame,
    method_a: str,
    method_b: str,
    metric: str,
    gene_set: str = "all",
    *,
    scale: Scale | None = None,
    settings: str | Sequence[str] | None = None,
    match_on: Sequence[str] | None = None,
    compare: str = "method",
) -> tuple[pd.DataFrame, str]:
    """The units of :func:`paired_verdict`: one row per unit with A, B and their contrast.

    Returns ``(units, unit)``: ``units`` is indexed by the match columns (matched runs) or the
    block columns (blocks, each the mean of its seeds), with columns ``method_a``, ``method_b`` and
    ``contrast`` (``A - B``, or ``A / B`` on the ratio scale: for a block, the ratio of the two seed
    means); ``unit`` says what a row is (:func:`replication_units`).
    """
    if method_a == method_b:
        raise ValueError(f"compare two different methods, got {method_a!r} twice")
    if scale is not None and scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    match_on = _match_on(results, match_on)
    _check(results, [compare, "metric", "gene_set", "value", *match_on])
    rows = _metric_rows(results, metric, gene_set)
    if settings is not None:
        _check(rows, ["setting"])
        rows = _restrict(rows, "setting", settings)
    wide, unit = replication_units(_matched(rows, method_a, method_b, match_on, compare))
    scale = comparison_scale(metric, unit) if scale is None else scale
    d = contrast(wide[method_a], wide[method_b], scale)
    out = wide[[method_a, method_b]].copy()
    out["contrast"] = np.exp(d) if scale == "ratio" else d
    out.attrs["scale"] = scale
    return out, unit


def holds_cells(verdict: Mapping) -> bool:
    """Whether a verdict's interval holds the test cells' sampling (its ``cell_sd`` is a number).

    ``verdict``: a :func:`paired_verdict` or :func:`interaction` result, or a row of their tables.
    """
    return bool(pd.notna(verdict.get("cell_sd", float("nan"))))


def cell_sampling_sd(
    results: pd.DataFrame,
    method_a: str,
    method_b: str,
    runs: pd.Index,
    *,
    scale: Scale = "difference",
    match_on: Sequence[str] | None = None,
    compare: str = "method",
) -> float:
    """A bound on the standard error that the sampling of test cells adds to a mean contrast of one setting.

    ``results`` are one metric's rows; ``runs`` the matched runs of A and B (the index of
    :func:`paired_units` for :data:`RUN_UNIT`). Each run's cell-sampling sd is its :data:`SAMPLING_SD`
    column where the table has one (:func:`course_tools.grid_results.load_grid` keeps it), else
    :func:`run_sampling_sd` of its interval; per method
    the sd is averaged over the runs (the runs share their test cells, so averaging does not shrink
    it), and the bound is ``sd_A + sd_B``: the sd of a difference of two estimates whatever their
    correlation (module docstring). On the ratio scale each sd is divided by the method's mean (the
    sd of its log). NaN when the table has no intervals for either method in these runs.
    """
    if len(runs) == 0:
        return float("nan")
    match_on = _match_on(results, match_on)
    rows = results[results[compare].isin([method_a, method_b])].set_index(list(match_on))
    rows = rows[rows.index.isin(runs)]
    sd = pd.to_numeric(rows[SAMPLING_SD], errors="coerce") if SAMPLING_SD in rows.columns else run_sampling_sd(rows)
    per = sd.groupby(rows[compare].to_numpy()).mean()
    if scale == "ratio":
        per = per / pd.to_numeric(rows["value"], errors="coerce").groupby(rows[compare].to_numpy()).mean()
    if per.reindex([method_a, method_b]).isna().any():
        return float("nan")
    return float(per[method_a] + per[method_b])


def paired_verdict(
    results: pd.DataFrame,
    method_a: str,
    method_b: str,
    metric: str,
    gene_set: str = "all",
    *,
    settings: str | Sequence[str] | None = None,
    match_on: Sequence[str] | None = None,
    compare: str = "method",
    scale: Scale | None = None,
    level: float = 0.95,
    min_runs: int = MIN_RUNS,
    cell_sampling: bool = True,
) -> dict:
    """Compare two methods over matched runs (same setting and seed) on one metric.

    Parameters
    ----------
    results
        Tidy results with columns ``method, metric, gene_set, value`` and the ``match_on`` columns.
    method_a, method_b
        The two methods; the contrast is ``A - B`` (or ``A / B``).
    metric, gene_set
        Which score to compare.
    settings
        Restrict to these settings (one name or several; ``None``: every setting in the table,
        pooled, each setting one unit).
    match_on
        Columns that make runs of the two methods a matched pair (default ``("setting", "seed")``,
        plus ``"score_group"`` when the table has it).
    compare
        The column holding ``method_a`` and ``method_b`` (default ``"method"``). E.g.
        ``compare="setting", match_on=("seed",)`` on one method's runs compares two settings of it
        (``method_a``/``method_b`` are then setting names).
    scale
        ``"difference"`` or ``"ratio"``; default :func:`comparison_scale` (ratios for distances pooled
        over settings, differences within one).
    level
        Coverage of the paired-t interval.
    min_runs
        Fewest units needed to judge (default :data:`MIN_RUNS`).
    cell_sampling
        Within one setting (units: its runs), widen the interval by the sampling of the test cells,
        read from the runs' own intervals (:func:`cell_sampling_sd`; conservative). ``False``: the
        seeds' variation only. Pooled verdicts need nothing added (module docstring).

    Returns
    -------
    dict
        ``method_a, method_b, metric, gene_set``, ``n`` (units where both are defined: matched
        runs, or blocks of them when several settings are pooled; see the module docstring) and
        ``unit`` (:data:`RUN_UNIT` or the block columns), ``mean_a, mean_b`` (their means over those
        units), ``scale``, ``estimate, ci_low, ci_high`` (the mean difference ``A - B``, or the
        geometric mean ratio ``A / B``, and its interval), ``p_value`` (paired t, two-sided, of no
        difference), ``direction`` ("higher"/"lower" is better) and ``verdict``: ``"<A> better"``,
        ``"<B> better"``, ``"no clear difference"`` or a sentence saying there are too few units to judge;
        ``cell_sd``: the test cells' part of the standard error that was added (NaN: none added, because
        the units are blocks, ``cell_sampling`` is off or the runs carry no intervals).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    units, unit = paired_units(
        results,
        method_a,
        method_b,
        metric,
        gene_set,
        scale=scale,
        settings=settings,
        match_on=match_on,
        compare=compare,
    )
    scale = units.attrs["scale"]
    d = contrast(units[method_a], units[method_b], scale)
    cell = float("nan")
    if cell_sampling and unit == RUN_UNIT and d.size >= 2:  # one run has no interval to widen
        rows = _metric_rows(results, metric, gene_set)
        cell = cell_sampling_sd(rows, method_a, method_b, units.index, scale=scale, match_on=match_on, compare=compare)
    mean, lo, hi, p = paired_t(d, level, extra_sd=0.0 if np.isnan(cell) else cell)
    direction = better_direction(metric)
    n = int(d.size)
    estimate, ci_low, ci_high = _back(mean, lo, hi, scale)
    return {
        "method_a": method_a,
        "method_b": method_b,
        "metric": metric,
        "gene_set": gene_set,
        "n": n,
        "unit": unit,
        "mean_a": float(units[method_a].mean()) if n else float("nan"),
        "mean_b": float(units[method_b].mean()) if n else float("nan"),
        "scale": scale,
        "estimate": estimate,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_value": p,
        "direction": direction,
        "verdict": _words(method_a, method_b, n, unit, lo, hi, direction, min_runs, d),
        "cell_sd": cell,
    }


def verdict_table(
    results: pd.DataFrame,
    metrics: Sequence[tuple[str, str]],
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    by: Sequence[str] = ("setting",),
    match_on: Sequence[str] | None = None,
    level: float = 0.95,
    min_runs: int = MIN_RUNS,
    cell_sampling: bool = True,
) -> pd.DataFrame:
    """:func:`paired_verdict` for method pairs x groups x metrics, as one tidy table.

    Parameters
    ----------
    metrics
        ``(metric, gene_set)`` pairs; each is compared on its scale (:func:`comparison_scale`).
    pairs
        ``(method_a, method_b)`` pairs; default every pair of the table's methods in table order.
    by
        Columns whose groups get separate verdicts (default one per ``setting``; ``()`` pools
        every run of the table). Their values lead each row.
    cell_sampling
        As in :func:`paired_verdict`: groups of one setting add the test cells' sampling.

    Returns
    -------
    pandas.DataFrame
        Columns ``*by`` then :data:`VERDICT_COLUMNS`; a pair with no matched run in a group is
        left out of that group.
    """
    _check(results, ["method", *by])
    if pairs is None:
        pairs = list(combinations(list(dict.fromkeys(results["method"])), 2))
    groups = results.groupby(list(by), sort=False, observed=True) if by else [((), results)]
    out = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        present = set(part["method"])
        for a, b in pairs:
            if a not in present or b not in present:
                continue
            for metric, gene_set in metrics:
                if not ((part["metric"] == metric) & (part["gene_set"] == gene_set)).any():
                    continue
                row = paired_verdict(
                    part,
                    a,
                    b,
                    metric,
                    gene_set,
                    match_on=match_on,
                    level=level,
                    min_runs=min_runs,
                    cell_sampling=cell_sampling,
                )
                out.append({**dict(zip(by, key)), **row})
    return pd.DataFrame(out, columns=[*by, *VERDICT_COLUMNS])


def interaction(
    results: pd.DataFrame,
    method_a: str,
    method_b: str,
    metric: str,
    gene_set: str = "all",
    *,
    factor: str,
    levels: tuple[str, str],
    match_on: Sequence[str] = ("held_out", "seed"),
    scale: Scale | None = None,
    level: float = 0.95,
    min_runs: int = MIN_RUNS,
    cell_sampling: bool = True,
) -> dict:
    """Method x setting interaction: whether A's advantage over B changes between two levels of a factor.

    For each matched unit (same ``match_on`` values, e.g. the same held-out cell type and seed) the
    contrast of A and B at ``levels[0]`` minus the one at ``levels[1]`` (a difference of paired
    differences; for distances pooled over cell types, of log ratios, reported as a ratio of
    ratios: :func:`comparison_scale`), then its mean with a
    paired-t interval over the units (matched runs within one held-out cell type; when several are
    pooled, one unit per cell type, each value the mean of its seeds, as for :func:`paired_verdict`).
    Example: with ``factor="design"``, ``levels=("stim20", "balanced")`` it says whether imbalance
    hurts A more than B.

    Returns
    -------
    dict
        ``method_a, method_b, metric, gene_set, factor, levels`` (as ``"l0 vs l1"``), ``n`` (units
        where all four values are defined) and ``unit`` (what they are), ``scale``, ``contrast_0``
        and ``contrast_1`` (A - B, or the geometric mean A / B, at each level), ``interaction, ci_low,
        ci_high`` (their difference, or ratio, with its interval: read them with the metric's
        ``direction``), ``p_value``, ``cell_sd`` (as in :func:`paired_verdict`: within one setting the
        interval adds the test cells' sampling at both levels, the sum of the two bounds; NaN when
        pooled, off, or without intervals) and ``verdict``: ``"A fares better against B at <level>"`` (the
        level where A's standing relative to B is better, in the metric's direction; e.g. for
        E-distance, lower is better, a ratio below 1 means A gains on B at ``levels[0]``), ``"no clear
        interaction"``, or a sentence saying there are too few units to judge.
    """
    _check(results, ["method", "metric", "gene_set", "value", factor, *match_on])
    rows = _metric_rows(results, metric, gene_set)
    l0, l1 = levels
    parts, level_rows = [], []
    for lev in (l0, l1):
        part = rows[rows[factor] == lev]
        if part.empty:
            raise DataValidationError(f"no rows with {factor} == {lev!r}; it has {sorted(rows[factor].unique())}")
        wide = _matched(part, method_a, method_b, match_on)
        parts.append(wide.set_axis([f"a{lev}", f"b{lev}"], axis=1))
        level_rows.append(part)
    both, unit = replication_units(pd.concat(parts, axis=1, join="inner").dropna())
    scale = comparison_scale(metric, unit) if scale is None else scale
    c0 = contrast(both[f"a{l0}"], both[f"b{l0}"], scale)
    c1 = contrast(both[f"a{l1}"], both[f"b{l1}"], scale)
    d = c0 - c1
    cell = float("nan")
    if cell_sampling and unit == RUN_UNIT and d.size >= 2:  # one setting: its test cells, at both levels
        cell = sum(
            cell_sampling_sd(part, method_a, method_b, both.index, scale=scale, match_on=match_on)
            for part in level_rows
        )
    mean, lo, hi, p = paired_t(d, level, extra_sd=0.0 if np.isnan(cell) else cell)
    # in the metric's direction: a larger contrast favours A when higher is better, B when lower is
    higher = better_direction(metric) == "higher"
    if d.size < min_runs:
        verdict = _too_few(d.size, unit, min_runs, runs="matched units")
    elif lo > 0 or hi < 0:
        at = l0 if (lo > 0) == higher else l1
        verdict = f"{method_a} fares better against {method_b} at {at}"
    else:
        verdict = "no clear interaction"
    estimate, ci_low, ci_high = _back(mean, lo, hi, scale)
    nan = float("nan")
    return {
        "method_a": method_a,
        "method_b": method_b,
        "metric": metric,
        "gene_set": gene_set,
        "factor": factor,
        "levels": f"{l0} vs {l1}",
        "n": int(d.size),
        "unit": unit,
        "scale": scale,
        "contrast_0": _back(float(c0.mean()), nan, nan, scale)[0] if d.size else nan,
        "contrast_1": _back(float(c1.mean()), nan, nan, scale)[0] if d.size else nan,
        "interaction": estimate,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_value": p,
        "direction": better_direction(metric),
        "verdict": verdict,
        "cell_sd": cell,
    }


def format_estimate(estimate: float, low: float, high: float, scale: Scale, digits: int = 3) -> str:
    """``"+0.087 [+0.049, +0.124]"`` (difference) or ``"×0.812 [×0.503, ×1.311]"`` (ratio); NaN: ``–``."""

    def one(x: float) -> str:
        if pd.isna(x):
            return "–"
        return f"×{x:.{digits}f}" if scale == "ratio" else f"{x:+.{digits}f}"

    ci = f"[{one(low)}, {one(high)}]" if np.isfinite(low) else "[no interval]"
    return f"{one(estimate)} {ci}"


def contrast_name(a: str, b: str, scale: Scale) -> str:
    """``"A - B"`` or ``"A / B"``."""
    return f"{a} / {b}" if scale == "ratio" else f"{a} - {b}"


def describe_verdict(v: dict, digits: int = 3) -> str:
    """One line for a :func:`paired_verdict` result (it names the test cells when their sampling is in the interval)."""
    scale = v.get("scale", "difference")
    what = contrast_name(v["method_a"], v["method_b"], scale)
    how = " (geometric mean ratio)" if scale == "ratio" else ""
    cells = " and their test cells" if holds_cells(v) else ""
    return (
        f"{v['metric']} ({v['gene_set']}, {v['direction']} is better): {what} = "
        f"{format_estimate(v['estimate'], v['ci_low'], v['ci_high'], scale, digits)}{how} "
        f"over {describe_units(v['n'], v.get('unit', RUN_UNIT))}{cells} -> {v['verdict']}"
    )


# ---------------------------------------------------------------------------------------------
# Multiplicity, margins and the primary question


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979, Scand. J. Stat. 6:65-70).

    Sorted ascending, the ``i``-th smallest of ``m`` p-values (``i`` from 1) is multiplied by
    ``m - i + 1``; the adjusted values are made non-decreasing in that order and capped at 1.
    Rejecting where the adjusted p-value is below ``alpha`` controls the family-wise error rate at
    ``alpha`` under any dependence between the tests. NaN p-values (comparisons that could not be
    tested) stay NaN, still count in ``m`` and are ordered last.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p}")
    m = p.size
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.minimum(1.0, np.fmax.accumulate(scaled))
    adjusted[np.isnan(scaled)] = np.nan
    out = np.empty(m)
    out[order] = adjusted
    return out


def holm_levels(p_values: Sequence[float], alpha: float = 0.05) -> np.ndarray:
    """Interval level of each comparison at its step of Holm's procedure: ``1 - alpha / (m - i + 1)``.

    ``i`` is the comparison's rank among the ``m`` p-values (smallest first, NaN last): the level
    at which Holm tests it. Its interval excludes no-difference exactly when its own p-value is
    below that step's threshold.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    m = p.size
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    out = np.empty(m)
    out[order] = 1.0 - alpha / (m - np.arange(m))
    return out


@dataclass(frozen=True)
class Margin:
    """A margin of practical equivalence for one metric.

    Attributes
    ----------
    metric, gene_set
        The score it applies to.
    scale
        ``"difference"``: differences within ``±value`` are negligible; ``"ratio"``: ratios within
        ``[1 / value, value]`` are (``value`` > 1).
    value
        The margin.
    """

    metric: str
    gene_set: str
    scale: Scale
    value: float

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if self.scale == "difference" and not self.value > 0:
            raise ValueError(f"a difference margin must be > 0, got {self.value}")
        if self.scale == "ratio" and not self.value > 1:
            raise ValueError(f"a ratio margin must be > 1 (ratios within [1/m, m] are equivalent), got {self.value}")

    def contains(self, low: float, high: float) -> bool:
        """Whether the interval ``[low, high]`` (on this margin's scale) lies inside the margin."""
        if not (np.isfinite(low) and np.isfinite(high)):
            return False
        if self.scale == "ratio":
            return 1.0 / self.value < low and high < self.value
        return -self.value < low and high < self.value

    def describe(self) -> str:
        """``"±0.02"`` or ``"×/÷1.1"``."""
        return f"×/÷{self.value:g}" if self.scale == "ratio" else f"±{self.value:g}"


@dataclass(frozen=True)
class PrimaryQuestion:
    """The benchmark's primary question, declared before any table is read.

    "Does each model beat the baseline on each metric, pooled over the held-out cell types of the
    design?" With the defaults: does scGen, and does scPRAM, beat the mean shift on Pearson-Δ over
    the top-100 DEGs and on E-distance (all genes), pooled over the 8 held-out cell types of the
    balanced design? Four comparisons (2 models x 2 metrics), one family: Holm's correction at
    family-wise ``alpha`` (:func:`primary_verdicts`).

    Margins of practical equivalence (:class:`Margin`), chosen with the question, before the
    verdicts were computed, from what the metrics measure and not from the scores:

    - **Pearson-Δ, ±0.02.** A correlation between predicted and real per-gene changes; near the
      values a useful prediction reaches (r around 0.9), 0.02 in r moves the share of the real
      changes' variance that the prediction accounts for (r²) by under 4 percentage points
      (``2 r 0.02``): less than a user choosing between two methods would act on.
    - **E-distance, ratio 1.1.** A distance whose size varies by an order of magnitude between cell
      types, so the margin is relative: a prediction within 10% of the baseline's distance, either
      way (ratio in ``[1/1.1, 1.1]``), is as close to the real cells for practical purposes.

    Attributes
    ----------
    models
        The methods judged.
    baseline
        What they must beat.
    margins
        One :class:`Margin` per metric compared (its ``metric``, ``gene_set`` and ``scale``).
    design
        The design whose held-out cell types are pooled (each one unit, the mean of its seeds).
    alpha
        Family-wise error rate.
    """

    models: tuple[str, ...] = ("scgen", "scpram")
    baseline: str = "mean_shift"
    margins: tuple[Margin, ...] = (
        Margin("pearson_delta", "top100_degs", "difference", 0.02),
        Margin("e_distance", "all", "ratio", 1.1),
    )
    design: str = "balanced"
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not self.models or not self.margins:
            raise ValueError("a primary question needs at least one model and one margin")
        if self.baseline in self.models:
            raise ValueError(f"the baseline {self.baseline!r} cannot also be a model")

    @property
    def family_size(self) -> int:
        """Number of comparisons in the family (models x metrics)."""
        return len(self.models) * len(self.margins)

    def describe(self) -> str:
        """The question in one sentence."""
        models = ", ".join(self.models)
        metrics = " and on ".join(f"{m.metric} ({m.gene_set})" for m in self.margins)
        return (
            f"Does each model ({models}) beat {self.baseline} on {metrics}, pooled over the held-out cell types "
            f"of the {self.design} design (each the mean of its seeds)? {self.family_size} comparisons, Holm's "
            f"correction at family-wise {self.alpha:g}; margins of practical equivalence: "
            + ", ".join(f"{m.metric} {m.describe()}" for m in self.margins)
            + "."
        )


#: The course's primary question (:class:`PrimaryQuestion` with its defaults).
PRIMARY = PrimaryQuestion()

#: Columns of :func:`primary_verdicts`.
PRIMARY_COLUMNS = [
    "model",
    "baseline",
    "metric",
    "gene_set",
    "scale",
    "n",
    "unit",
    "mean_model",
    "mean_baseline",
    "estimate",
    "ci_low",
    "ci_high",
    "level",
    "p_value",
    "p_holm",
    "margin",
    "verdict",
]


def _primary_words(p_holm: float, lo: float, hi: float, margin: Margin, direction: str, alpha: float) -> str:
    """``equivalent`` (interval inside the margin), else ``better``/``worse`` (Holm p < alpha), or ``inconclusive``."""
    if margin.contains(lo, hi):
        return f"equivalent within {margin.describe()}"
    if np.isfinite(p_holm) and p_holm < alpha:
        no_diff = 1.0 if margin.scale == "ratio" else 0.0
        model_higher = lo > no_diff
        return "better" if model_higher == (direction == "higher") else "worse"
    return "inconclusive"


#: Columns of :func:`family_verdicts`.
FAMILY_COLUMNS = ["n", "estimate", "ci_low", "ci_high", "level", "p_value", "p_holm", "margin", "verdict"]


def family_verdicts(
    contrasts: Sequence[np.ndarray],
    margins: Sequence[Margin],
    directions: Sequence[str],
    *,
    alpha: float = 0.05,
    min_runs: int = MIN_RUNS,
) -> pd.DataFrame:
    """Judge a family of comparisons from their per-unit contrasts, with Holm's correction and margins.

    Parameters
    ----------
    contrasts
        One array per comparison: the per-unit contrast of model and baseline on the margin's scale
        (differences, or log ratios for a ``"ratio"`` margin).
    margins, directions
        Per comparison, its :class:`Margin` and the metric's direction (``"higher"``/``"lower"`` is better).

    Returns
    -------
    pandas.DataFrame
        One row per comparison (:data:`FAMILY_COLUMNS`): the two-sided paired-t p-value of no
        difference, its Holm-adjusted value within the family, the estimate and interval (ratio
        scale for ratio margins) at the level of the comparison's step of Holm's procedure, and
        the verdict of :func:`primary_verdicts`.
    """
    if not len(contrasts) == len(margins) == len(directions):
        raise ValueError("give one contrast array, one margin and one direction per comparison")
    arrays = [np.asarray(d, dtype=np.float64).ravel() for d in contrasts]
    p = np.array([paired_t(d)[3] if d.size >= min_runs else np.nan for d in arrays])
    p_holm = holm(p)
    levels = holm_levels(p, alpha)
    out = []
    for d, margin, direction, pv, ph, lev in zip(arrays, margins, directions, p, p_holm, levels):
        mean, lo, hi, _ = paired_t(d, lev)
        estimate, ci_low, ci_high = _back(mean, lo, hi, margin.scale)
        if d.size < min_runs:
            verdict = f"inconclusive (too few units to judge: n={d.size}, need {min_runs})"
        else:
            verdict = _primary_words(ph, ci_low, ci_high, margin, direction, alpha)
        out.append([d.size, estimate, ci_low, ci_high, float(lev), pv, float(ph), margin.describe(), verdict])
    return pd.DataFrame(out, columns=FAMILY_COLUMNS)


def primary_verdicts(
    results: pd.DataFrame,
    question: PrimaryQuestion = PRIMARY,
    *,
    exclude: Sequence[str] = (),
    min_runs: int = MIN_RUNS,
) -> pd.DataFrame:
    """The verdicts of the primary question, Holm-corrected within its family.

    Each comparison is a model against the baseline on the runs of ``question.design``, pooled over
    its held-out cell types (each one unit, the mean of its seeds: :func:`paired_units`), on the
    margin's scale (difference, or log ratio reported as the geometric mean ratio). The family's
    two-sided paired-t p-values are adjusted by :func:`holm` (``p_holm``); each interval is computed
    at the level of its step of Holm's procedure (:func:`holm_levels`, column ``level``), so that it
    excludes no-difference when that step rejects (:func:`family_verdicts`). Verdict, from the
    model's side:

    - ``"equivalent within ±m"``: the interval lies inside the margin (whether or not it excludes 0:
      a difference smaller than the margin is negligible by declaration);
    - ``"better"`` / ``"worse"``: otherwise, when ``p_holm < alpha``, in the metric's direction;
    - ``"inconclusive"``: neither; also with fewer than ``min_runs`` cell types.

    Holm controls the family-wise rate of wrong "better"/"worse" verdicts at ``alpha``; an
    "equivalent" verdict rests on an interval of level >= 95%, i.e. two one-sided tests at 2.5%
    or less. Both are checked by simulation in ``tests/test_coverage_realistic.py``.

    Parameters
    ----------
    exclude
        Held-out cell types left out (a sensitivity check); the family is the same four comparisons.

    Returns
    -------
    pandas.DataFrame
        One row per comparison (:data:`PRIMARY_COLUMNS`), models in order, metrics within each.
    """
    _check(results, ["design", "held_out", "method"])
    rows = results[(results["design"] == question.design) & ~results["held_out"].isin(list(exclude))]
    if rows.empty:
        raise DataValidationError(
            f"no runs of design {question.design!r} (after leaving out {list(exclude)}); "
            f"the table has designs {sorted(results['design'].unique())}"
        )
    comparisons = [(model, margin) for model in question.models for margin in question.margins]
    units = []
    for model, m in comparisons:
        u, unit = paired_units(rows, model, question.baseline, m.metric, m.gene_set, scale=m.scale)
        units.append((u, unit))
    judged = family_verdicts(
        [contrast(u[model], u[question.baseline], m.scale) for (model, m), (u, _) in zip(comparisons, units)],
        [m for _, m in comparisons],
        [better_direction(m.metric) for _, m in comparisons],
        alpha=question.alpha,
        min_runs=min_runs,
    )
    out = []
    for (model, m), (u, unit), j in zip(comparisons, units, judged.to_dict("records")):
        out.append(
            {
                "model": model,
                "baseline": question.baseline,
                "metric": m.metric,
                "gene_set": m.gene_set,
                "scale": m.scale,
                "unit": unit,
                "mean_model": float(u[model].mean()) if len(u) else float("nan"),
                "mean_baseline": float(u[question.baseline].mean()) if len(u) else float("nan"),
                **j,
            }
        )
    return pd.DataFrame(out, columns=PRIMARY_COLUMNS)


def primary_units(
    results: pd.DataFrame,
    question: PrimaryQuestion = PRIMARY,
    *,
    by: str = "held_out",
) -> pd.DataFrame:
    """The per-unit values behind :func:`primary_verdicts`: one row per comparison and held-out cell type.

    Columns ``model, baseline, metric, gene_set, scale``, ``by`` (the held-out cell type), ``seeds``
    (matched seeds averaged), ``mean_model, mean_baseline`` (the seed means) and ``contrast``
    (``model - baseline``, or ``model / baseline`` on the ratio scale).
    """
    _check(results, ["design", by, "method", "seed"])
    rows = results[results["design"] == question.design]
    out = []
    for model in question.models:
        for m in question.margins:
            sub = _metric_rows(rows, m.metric, m.gene_set)
            for group, part in sub.groupby(by, sort=False, observed=True):
                wide = _matched(part, model, question.baseline, _match_on(part, None))
                if wide.empty:
                    continue
                a, b = float(wide[model].mean()), float(wide[question.baseline].mean())
                c = contrast(np.array([a]), np.array([b]), m.scale)[0]
                out.append(
                    {
                        "model": model,
                        "baseline": question.baseline,
                        "metric": m.metric,
                        "gene_set": m.gene_set,
                        "scale": m.scale,
                        by: group,
                        "seeds": len(wide),
                        "mean_model": a,
                        "mean_baseline": b,
                        "contrast": float(np.exp(c)) if m.scale == "ratio" else float(c),
                    }
                )
    return pd.DataFrame(out)


def min_units_for_rank_test(alpha: float = 0.05) -> int:
    """Fewest paired units with which an exact two-sided sign-flip (rank) test can reach ``p < alpha``.

    With ``n`` units the smallest two-sided p-value of the Wilcoxon signed-rank (or sign) test is
    ``2 / 2**n`` (every unit favouring the same side): 0.25 with 3 units, 0.0625 with 5, 0.031 with
    6. Below this many units no distribution-free test can answer the question, and a paired-t
    verdict rests on its normality assumption alone.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


#: :func:`min_units_for_rank_test` at 5%: 6.
MIN_RANK_UNITS = min_units_for_rank_test(0.05)
