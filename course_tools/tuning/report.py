"""What a small tuning study can and cannot show, computed from the study (notebook 04).

- :func:`sampler_phases` / :func:`describe_sampler_phases`: which trials the TPE sampler drew at
  random (its start-up phase, ``n_startup_trials``), which from its model, and which were queued
  with fixed parameters; a study that never leaves the start-up phase is a seeded random search.
- :func:`pruning_by_value` / :func:`importance_caveats`: how many trials of each value of a
  discrete parameter were pruned; the importances and the slice/contour plots use completed
  trials only, so a value whose trials were all pruned is invisible to them.
- :func:`flattery`: whether a number selected as the best of several on the test set is better
  than what fresh runs give (paired rule of :mod:`course_tools.verdicts`: mean difference with a
  t interval, a verdict only with at least :data:`course_tools.verdicts.MIN_RUNS` fresh runs).

Reads studies and numbers; trains nothing and changes no study.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import optuna
import pandas as pd

from course_tools.verdicts import MIN_RUNS, paired_difference

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def n_startup_trials(study: optuna.Study) -> int:
    """The number of random start-up trials of the study's TPE sampler (Optuna's default if not readable)."""
    n = getattr(study.sampler, "_n_startup_trials", None)
    if n is None:  # pragma: no cover - a private attribute renamed by a future Optuna
        import inspect

        n = inspect.signature(optuna.samplers.TPESampler).parameters["n_startup_trials"].default
    return int(n)


def sampler_phases(study: optuna.Study) -> pd.DataFrame:
    """Per trial: how its parameters were chosen.

    ``phase`` is ``"enqueued"`` (parameters fixed before it started: by ``enqueue_trial``, e.g. a
    replayed trial, or by Optuna's retry of a trial whose worker stopped, which copies the failed
    trial's parameters and records its number as ``failed_trial``), ``"random start-up"`` (fewer
    than ``n_startup_trials`` finished trials existed when it started: TPE samples at random) or
    ``"TPE model"``. Trials are taken in number order, as one worker runs them; with several
    workers a trial may have started before an earlier-numbered one finished, so the split is then
    approximate.

    Returns
    -------
    pandas.DataFrame
        ``number, state, finished_before, phase``.
    """
    n_startup = n_startup_trials(study)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    rows, finished = [], 0
    for t in trials:
        if "fixed_params" in t.system_attrs or "failed_trial" in t.system_attrs:
            phase = "enqueued"
        elif finished < n_startup:
            phase = "random start-up"
        else:
            phase = "TPE model"
        rows.append((t.number, t.state.name, finished, phase))
        finished += t.state in _FINISHED
    return pd.DataFrame(rows, columns=["number", "state", "finished_before", "phase"])


def describe_sampler_phases(study: optuna.Study) -> str:
    """One or two lines: ``n_startup_trials`` against the study's trials, and how many were in each phase."""
    n_startup = n_startup_trials(study)
    phases = sampler_phases(study)
    counts = phases["phase"].value_counts()
    parts = ", ".join(f"{counts[p]} {p}" for p in ("random start-up", "TPE model", "enqueued") if p in counts)
    line = f"TPE sampler: n_startup_trials = {n_startup}; this study has {len(phases)} trials: {parts or 'none'}"
    if len(phases) and counts.get("TPE model", 0) == 0 and counts.get("random start-up", 0) > 0:
        line += (
            f"\nno trial was proposed by the TPE model: with {len(phases)} trials and {n_startup} start-up trials "
            "this study is a seeded random search"
        )
    return line


def _discrete(dist) -> bool:
    return isinstance(dist, optuna.distributions.CategoricalDistribution) or (
        isinstance(dist, optuna.distributions.IntDistribution) and not dist.log and dist.high - dist.low <= 10
    )


def pruning_by_value(study: optuna.Study) -> pd.DataFrame:
    """For each value of each discrete parameter: finished trials, completed, pruned, pruned share.

    Continuous parameters are left out (each trial has its own value). Only finished trials
    (completed or pruned) count.

    Returns
    -------
    pandas.DataFrame
        ``parameter, value, trials, complete, pruned, pruned_share``.
    """
    rows = []
    trials = [t for t in study.get_trials(deepcopy=False) if t.state in _FINISHED]
    names = list(dict.fromkeys(n for t in trials for n in t.params))
    for name in names:
        dists = [t.distributions[name] for t in trials if name in t.distributions]
        if not dists or not _discrete(dists[0]):
            continue
        values = [t.params[name] for t in trials if name in t.params]
        states = [t.state for t in trials if name in t.params]
        frame = pd.DataFrame({"value": values, "pruned": [s == optuna.trial.TrialState.PRUNED for s in states]})
        for value, part in frame.groupby("value", sort=True):
            n, p = len(part), int(part["pruned"].sum())
            rows.append((name, value, n, n - p, p, p / n))
    return pd.DataFrame(rows, columns=["parameter", "value", "trials", "complete", "pruned", "pruned_share"])


def importance_caveats(study: optuna.Study) -> list[str]:
    """Warnings, computed from the study, about parameters whose importance the completed trials cannot measure.

    The importances (fANOVA) and the slice/contour plots see completed trials only. For each
    discrete parameter, a caveat when some of its tried values have no completed trial (every
    trial with them was pruned), and when the completed trials hold a single value of it (then
    they cannot show any effect of it). An empty list means no such caveat.
    """
    table = pruning_by_value(study)
    out = []
    for name, part in table.groupby("parameter", sort=False):
        unseen = part.loc[part["complete"] == 0, "value"].tolist()
        seen = part.loc[part["complete"] > 0, "value"].tolist()
        if unseen:
            n = int(part.loc[part["complete"] == 0, "trials"].sum())
            out.append(
                f"{name}: every trial with {unseen} was pruned ({n} trials), so the importances and plots, which use "
                f"completed trials only, see {name} only at {seen}; they say nothing about the pruned values"
            )
        if len(seen) == 1:
            out.append(
                f"{name}: the completed trials all have {name} = {seen[0]}, so its importance cannot be measured"
            )
    return out


def flattery(
    reported: float,
    fresh: Sequence[float],
    *,
    lower_is_better: bool = True,
    level: float = 0.95,
    min_runs: int = MIN_RUNS,
) -> dict:
    """Is a selected score better than what fresh runs give? The mean of ``fresh - reported`` with a t interval.

    ``reported`` is one number chosen as the best of several (e.g. the best test score of a search
    run on the test set); ``fresh`` are scores obtained without that selection (e.g. the same
    settings retrained with other seeds, or the honestly chosen settings). The interval is the
    one-sample Student-t interval of the mean of ``fresh - reported`` (``reported`` is a fixed
    number here).

    Returns
    -------
    dict
        ``n, reported, fresh_mean, diff`` (mean of ``fresh - reported``), ``ci_low, ci_high`` and
        ``verdict``: ``"supported: the reported value flatters"`` (fresh runs are clearly worse),
        ``"refuted: the fresh runs are better than the reported value"``, ``"no clear difference"``
        or a sentence saying there are too few fresh runs to judge.
    """
    fresh = np.asarray(fresh, dtype=np.float64)
    n = int(fresh.size)
    if n >= 2:
        diff, lo, hi = paired_difference(fresh, np.full(n, float(reported)), level)
    else:
        diff, lo, hi = (float(fresh.mean() - reported) if n else float("nan")), float("nan"), float("nan")
    if n < min_runs:
        verdict = f"too few fresh runs to judge (n={n}, need {min_runs})"
    elif lo <= 0 <= hi:
        verdict = "no clear difference"
    else:
        fresh_worse = (lo > 0) == lower_is_better
        verdict = (
            "supported: the reported value flatters"
            if fresh_worse
            else "refuted: the fresh runs are better than the reported value"
        )
    return {
        "n": n,
        "reported": float(reported),
        "fresh_mean": float(fresh.mean()) if n else float("nan"),
        "diff": diff,
        "ci_low": lo,
        "ci_high": hi,
        "verdict": verdict,
    }


def describe_flattery(f: dict, what: str, digits: int = 3) -> str:
    """One line for a :func:`flattery` result; ``what`` names the fresh runs."""
    ci = f"[{f['ci_low']:+.{digits}f}, {f['ci_high']:+.{digits}f}]" if np.isfinite(f["ci_low"]) else "[no interval]"
    return (
        f"{what}: mean {f['fresh_mean']:.{digits}f} over {f['n']} runs vs reported {f['reported']:.{digits}f}; "
        f"difference {f['diff']:+.{digits}f} {ci} -> {f['verdict']}"
    )
