"""Tables and one-line summaries of a tuning study, as notebook 04 shows them.

Reads an Optuna study and the search spaces of :mod:`course_tools.tuning.study`; changes nothing.
"""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd

from course_tools.tuning.study import default_params, search_spaces

#: Columns of :func:`trials_table` before the parameters.
TRIAL_ATTRS = ("number", "value", "state", "params", "duration")


def search_space_table(method: str) -> pd.DataFrame:
    """The search space of ``method``: one row per parameter with its kind, range or choices, and default.

    Columns ``parameter, kind, values (low, high, log) or choices, default``; the defaults are the
    model's own (:func:`~course_tools.tuning.study.default_params`).
    """
    spaces = search_spaces()
    if method not in spaces:
        raise KeyError(f"no search space for {method!r}; methods with one: {sorted(spaces)}")
    defaults = default_params(method)
    return pd.DataFrame(
        [(name, kind, spec, defaults[name]) for name, (kind, spec) in spaces[method].items()],
        columns=["parameter", "kind", "values (low, high, log) or choices", "default"],
    )


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: ``number, value, state``, one column per parameter, ``duration`` in seconds.

    Differs from ``study.trials_dataframe()`` in two ways: parameter columns lose their ``params_``
    prefix, and a pruned trial's ``value`` is NaN (Optuna stores there the last intermediate value
    it reported, a validation *loss*, not the objective). Durations are rounded to 0.1 s.
    """
    trials = study.trials_dataframe(attrs=TRIAL_ATTRS)
    if trials.empty:
        return pd.DataFrame(columns=["number", "value", "state", "duration"])
    trials["duration"] = trials["duration"].dt.total_seconds().round(1)
    trials.columns = [c.removeprefix("params_") for c in trials.columns]
    trials.loc[trials["state"] == "PRUNED", "value"] = np.nan
    return trials


def describe_trials(study: optuna.Study, trials: pd.DataFrame | None = None, value_name: str = "value") -> str:
    """Two lines: how many trials in each state, and the best trial with its value and parameters.

    ``value_name`` names the objective (e.g. ``"validation E-distance"``); ``trials`` defaults to
    :func:`trials_table` of ``study``.
    """
    trials = trials_table(study) if trials is None else trials
    states = trials["state"].value_counts()
    first = f"{len(trials)} trials: " + ", ".join(f"{n} {s.lower()}" for s, n in states.items())
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        return first + "\nbest: none yet (no completed trial)"
    best = study.best_trial
    return first + f"\nbest: trial {best.number}, {value_name} {best.value:.3f}, params {best.params}"
