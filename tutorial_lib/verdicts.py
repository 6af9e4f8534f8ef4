"""Paired verdicts: whether method A is better than method B, and whether that depends on the setting.

Both compare *matched runs*: rows of a tidy results table (:func:`tutorial_lib.benchmark.run_benchmark`
or the grid) with the same setting and seed, hence the same held-out cells, genes and training
randomness. The cell-level bootstrap intervals of each run are not used (they describe one run's
cell sampling, not the seed-to-seed and setting-to-setting variation that a ranking must survive).

Rule (one rule everywhere, replacing the earlier "beyond the seed sd" and "gap larger than the
bootstrap half-width" rules): the mean paired difference ``A - B`` over ``n`` units with a
paired-t interval ``mean ± t_{n-1, 0.975} sd / sqrt(n)``. When the interval excludes 0 the
verdict names the better method, using the metric's direction
(:data:`tutorial_lib.metrics.LOWER_IS_BETTER`); otherwise it says "no clear difference". With
fewer than :data:`MIN_RUNS` units it does not judge.

**The unit of replication.** Within one setting (one held-out cell type, one score group) the
units are the matched runs, i.e. the seeds: the verdict is about that setting, and the interval
covers seed-to-seed variation. When the matched runs span several settings (e.g. every held-out
cell type of a design pooled), the seeds of one setting are repeats of one experiment, not
independent draws of the question "is A better than B on a cell type like these": treating the
pooled runs as exchangeable would count each cell type five times and give an interval far too
narrow for that question (and one that mixes the cell types' spread into the seed noise for the
question about these cell types alone). So the paired differences are first averaged over the
seeds (:data:`REPLICATE`) within each *block* (the match columns other than the seed that vary:
``setting``, ``score_group``, or ``held_out`` for design-vs-design comparisons), and the blocks are the
units: ``n`` counts them (column ``unit`` names them), each weighs the same, and the interval
(``n - 1`` degrees of freedom) is about the mean over blocks like these. With 3 held-out cell types
it is wide; that is what 3 cell types can say. The coverage of both kinds of interval is checked
by simulation in ``tests/test_verdicts.py`` (the exchangeable pooled interval is shown to fail there).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from tutorial_lib.data.checks import DataValidationError

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
    "diff",
    "ci_low",
    "ci_high",
    "direction",
    "verdict",
]


def _direction(metric: str) -> str:
    from tutorial_lib.metrics import LOWER_IS_BETTER

    return "lower" if metric in LOWER_IS_BETTER else "higher"


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
    vary, joined by ``+``). Every column of ``wide`` (e.g. A and B, or two paired differences) is
    averaged alike.
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


def _paired_summary(d: np.ndarray, level: float) -> tuple[float, float, float]:
    n = d.size
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of the paired differences ``a - b`` (matched runs, e.g. by seed) and its Student-t interval.

    The interval of :func:`paired_verdict`, for two plain sequences. Returns ``(mean, low, high)``;
    needs at least two finite pairs.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.ndim != 1 or d.size < 2 or not np.all(np.isfinite(d)):
        raise ValueError("need at least two finite paired scores per method, as 1-D sequences of equal length")
    return _paired_summary(d, level)


def _too_few(n: int, unit: str, min_runs: int, runs: str = "matched runs") -> str:
    what = runs if unit == RUN_UNIT else f"blocks by {unit}"
    return f"too few {what} to judge (n={n}, need {min_runs})"


def _words(a: str, b: str, n: int, unit: str, lo: float, hi: float, direction: str, min_runs: int) -> str:
    if n < min_runs:
        return _too_few(n, unit, min_runs)
    if lo > 0 or hi < 0:
        a_higher = lo > 0
        return f"{a} better" if a_higher == (direction == "higher") else f"{b} better"
    return "no clear difference"


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
    level: float = 0.95,
    min_runs: int = MIN_RUNS,
) -> dict:
    """Compare two methods over matched runs (same setting and seed) on one metric.

    Parameters
    ----------
    results
        Tidy results with columns ``method, metric, gene_set, value`` and the ``match_on`` columns.
    method_a, method_b
        The two methods; ``diff`` is ``A - B``.
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
    level
        Coverage of the paired-t interval.
    min_runs
        Fewest units needed to judge (default :data:`MIN_RUNS`).

    Returns
    -------
    dict
        ``method_a, method_b, metric, gene_set``, ``n`` (units where both are defined: matched
        runs, or blocks of them when several settings are pooled; see the module docstring) and
        ``unit`` (:data:`RUN_UNIT` or the block columns), ``mean_a, mean_b`` (their means over those
        units), ``diff, ci_low, ci_high`` (mean paired difference A - B and its interval),
        ``direction`` ("higher"/"lower" is better) and ``verdict``: ``"<A> better"``, ``"<B>
        better"``, ``"no clear difference"`` or a sentence saying there are too few units to judge.
    """
    if method_a == method_b:
        raise ValueError(f"compare two different methods, got {method_a!r} twice")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    match_on = _match_on(results, match_on)
    _check(results, [compare, "metric", "gene_set", "value", *match_on])
    rows = _metric_rows(results, metric, gene_set)
    if settings is not None:
        wanted = [settings] if isinstance(settings, str) else list(settings)
        unknown = sorted(set(wanted) - set(rows["setting"]))
        if unknown:
            raise DataValidationError(
                f"settings {unknown} are not in the table; it has {sorted(rows['setting'].unique())}"
            )
        rows = rows[rows["setting"].isin(wanted)]
    wide, unit = replication_units(_matched(rows, method_a, method_b, match_on, compare))
    d = (wide[method_a] - wide[method_b]).to_numpy(dtype=np.float64)
    mean, lo, hi = _paired_summary(d, level)
    direction = _direction(metric)
    return {
        "method_a": method_a,
        "method_b": method_b,
        "metric": metric,
        "gene_set": gene_set,
        "n": int(d.size),
        "unit": unit,
        "mean_a": float(wide[method_a].mean()) if d.size else float("nan"),
        "mean_b": float(wide[method_b].mean()) if d.size else float("nan"),
        "diff": mean,
        "ci_low": lo,
        "ci_high": hi,
        "direction": direction,
        "verdict": _words(method_a, method_b, int(d.size), unit, lo, hi, direction, min_runs),
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
) -> pd.DataFrame:
    """:func:`paired_verdict` for method pairs x groups x metrics, as one tidy table.

    Parameters
    ----------
    metrics
        ``(metric, gene_set)`` pairs.
    pairs
        ``(method_a, method_b)`` pairs; default every pair of the table's methods in table order.
    by
        Columns whose groups get separate verdicts (default one per ``setting``; ``()`` pools
        every run of the table). Their values lead each row.

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
                row = paired_verdict(part, a, b, metric, gene_set, match_on=match_on, level=level, min_runs=min_runs)
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
    level: float = 0.95,
    min_runs: int = MIN_RUNS,
) -> dict:
    """Method x setting interaction: whether A's advantage over B changes between two levels of a factor.

    For each matched unit (same ``match_on`` values, e.g. the same held-out cell type and seed) the
    paired difference ``A - B`` at ``levels[0]`` minus the one at ``levels[1]`` (a difference of
    paired differences), then its mean with a paired-t interval over the units (matched runs within
    one held-out cell type; when several are pooled, one mean per cell type, as for
    :func:`paired_verdict`: see the module docstring). Example: with
    ``factor="design"``, ``levels=("stim20", "balanced")`` it says whether imbalance hurts A more
    than B.

    Returns
    -------
    dict
        ``method_a, method_b, metric, gene_set, factor, levels`` (as ``"l0 vs l1"``), ``n`` (units
        where all four values are defined) and ``unit`` (what they are), ``diff_0`` and ``diff_1``
        (mean A - B at each level),
        ``interaction, ci_low, ci_high`` (signed: read them with the metric's ``direction``) and
        ``verdict``: ``"A fares better against B at <level>"`` (the level where A's standing
        relative to B is better, in the metric's direction; e.g. for E-distance, lower is better,
        a negative interaction means A gains on B at ``levels[0]``), ``"no clear interaction"``,
        or a sentence saying there are too few units to judge.
    """
    _check(results, ["method", "metric", "gene_set", "value", factor, *match_on])
    rows = _metric_rows(results, metric, gene_set)
    l0, l1 = levels
    diffs = []
    for lev in (l0, l1):
        part = rows[rows[factor] == lev]
        if part.empty:
            raise DataValidationError(f"no rows with {factor} == {lev!r}; it has {sorted(rows[factor].unique())}")
        wide = _matched(part, method_a, method_b, match_on)
        diffs.append((wide[method_a] - wide[method_b]).rename(lev))
    both, unit = replication_units(pd.concat(diffs, axis=1, join="inner").dropna())
    d = (both[l0] - both[l1]).to_numpy(dtype=np.float64)
    mean, lo, hi = _paired_summary(d, level)
    # in the metric's direction: a larger A - B favours A when higher is better, B when lower is
    higher = _direction(metric) == "higher"
    if d.size < min_runs:
        verdict = _too_few(d.size, unit, min_runs, runs="matched units")
    elif lo > 0 or hi < 0:
        at = l0 if (lo > 0) == higher else l1
        verdict = f"{method_a} fares better against {method_b} at {at}"
    else:
        verdict = "no clear interaction"
    return {
        "method_a": method_a,
        "method_b": method_b,
        "metric": metric,
        "gene_set": gene_set,
        "factor": factor,
        "levels": f"{l0} vs {l1}",
        "n": int(d.size),
        "unit": unit,
        "diff_0": float(both[l0].mean()) if d.size else float("nan"),
        "diff_1": float(both[l1].mean()) if d.size else float("nan"),
        "interaction": mean,
        "ci_low": lo,
        "ci_high": hi,
        "direction": _direction(metric),
        "verdict": verdict,
    }


def describe_verdict(v: dict, digits: int = 3) -> str:
    """One line for a :func:`paired_verdict` result."""
    if np.isfinite(v["ci_low"]):
        ci = f"[{v['ci_low']:+.{digits}f}, {v['ci_high']:+.{digits}f}]"
    else:
        ci = "[no interval]"
    return (
        f"{v['metric']} ({v['gene_set']}, {v['direction']} is better): {v['method_a']} - {v['method_b']} = "
        f"{v['diff']:+.{digits}f} {ci} over {describe_units(v['n'], v.get('unit', RUN_UNIT))} -> {v['verdict']}"
    )
