"""Figures of the benchmarking modules (03 and 04): benchmark summaries and Optuna studies.

Benchmark figures read the tables of :mod:`course_tools.benchmark`:

- :func:`method_by_setting_heatmap` draws :func:`~course_tools.benchmark.summarise`'s output
  as a method x setting grid (e.g. method x held-out cell type), each cell "mean ± std over seeds";
- :func:`seed_spread_plot` draws a per-seed table (:func:`~course_tools.benchmark.run_benchmark`'s
  output, or any table with a value per method and seed): mean over seeds as a bar, the
  standard deviation as an error bar, and every seed as a dot;
- :func:`paired_difference_plot` (seaborn) draws the paired difference between two methods,
  matched run by matched run (pairs as in :mod:`course_tools.verdicts`), with its mean and
  interval and the zero line, per setting.

Every panel of a metric says whether lower or higher is better (y label or colour bar).

Optuna figures wrap ``optuna.visualization.matplotlib`` (its experimental warning is silenced)
and guard against studies too small for a figure: :func:`optimisation_history`,
:func:`param_importances`, :func:`top_params`, :func:`slice_top_params`, :func:`contour_top_params`.
Every function returns the Axes (or Figure) it drew on.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from course_tools.verdicts import _match_on, _matched, _paired_summary, replication_units
from tutorial_lib._renames import deprecated_alias
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics.evaluate import LOWER_IS_BETTER
from tutorial_lib.plotting._common import (
    direction_label,
    get_ax,
    is_lower_better,
    require_columns,
    select_rows,
    with_direction,
)

if TYPE_CHECKING:  # pragma: no cover
    import optuna


def summary_grid(
    summary: pd.DataFrame,
    metric: str,
    gene_set: str | None = "all",
    *,
    value: str = "mean",
    methods: Sequence[str] | None = None,
    settings: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A method x setting table of one column (``"mean"`` or ``"std"``) of a summary.

    ``summary`` is :func:`~course_tools.benchmark.summarise`'s output. Rows and columns follow
    ``methods``/``settings`` (default: their order of appearance); a missing pair is NaN.
    """
    require_columns(summary, ["method", "setting", value], "the summary")
    sub = select_rows(summary, metric, gene_set)
    if sub.duplicated(["method", "setting"]).any():
        raise DataValidationError("several rows per (method, setting): pass a summary over seeds (summarise())")
    methods = list(dict.fromkeys(sub["method"])) if methods is None else list(methods)
    settings = list(dict.fromkeys(sub["setting"])) if settings is None else list(settings)
    grid = sub.pivot(index="method", columns="setting", values=value)
    return grid.reindex(index=methods, columns=settings).astype(float)


def method_by_setting_heatmap(
    summary: pd.DataFrame,
    metric: str,
    gene_set: str | None = "all",
    *,
    methods: Sequence[str] | None = None,
    settings: Sequence[str] | None = None,
    ax: Axes | None = None,
    cmap: str | None = None,
    annotate: bool = True,
    digits: int = 2,
    title: str | None = None,
    xlabel: str = "setting",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Axes:
    """Heatmap of one metric: methods as rows, settings (e.g. held-out cell types) as columns.

    ``summary`` is :func:`~course_tools.benchmark.summarise`'s output. Each cell reads
    ``mean`` and, when more than one seed defined it, ``± std`` over seeds. The colour map runs
    so that darker is better (reversed for metrics in :data:`LOWER_IS_BETTER`, where lower is
    better); undefined cells are grey and read "n/a". ``vmin``/``vmax`` fix the colour scale, so
    that two heatmaps of the same metric (e.g. two experiments) can share one.
    """
    means = summary_grid(summary, metric, gene_set, methods=methods, settings=settings)
    has_std = "std" in summary.columns
    stds = summary_grid(summary, metric, gene_set, value="std", methods=methods, settings=settings) if has_std else None
    lower = metric in LOWER_IS_BETTER
    cmap = cmap or ("viridis" if lower else "viridis_r")
    vals = means.to_numpy(float)
    n_rows, n_cols = vals.shape
    ax = get_ax(ax, figsize=(1.2 * n_cols + 2.5, 0.6 * n_rows + 1.8))
    colormap = plt.get_cmap(cmap).with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(vals), cmap=colormap, aspect="auto", vmin=vmin, vmax=vmax)
    cbar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label(f"{metric} ({'lower' if lower else 'higher'} is better)", fontsize=8)
    ax.set_xticks(range(n_cols))
    ax.set_xticklabels([str(c) for c in means.columns], rotation=35, ha="right")
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels([str(r) for r in means.index])
    ax.set_xlabel(xlabel)
    if annotate:
        mid = float(np.mean([im.norm.vmin, im.norm.vmax])) if np.isfinite(vals).any() else 0.0
        for i in range(n_rows):
            for j in range(n_cols):
                v = vals[i, j]
                if not np.isfinite(v):
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="#555555")
                    continue
                text = f"{v:.{digits}f}"
                if stds is not None and np.isfinite(stds.iat[i, j]):
                    text += f"\n±{stds.iat[i, j]:.{digits}f}"
                dark = (v > mid) if cmap.endswith("_r") else (v < mid)
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_title(title or f"{metric}" + (f" ({gene_set})" if gene_set else ""), fontsize=9)
    return ax


def seed_spread_plot(
    table: pd.DataFrame,
    metric: str | None = None,
    gene_set: str | None = "all",
    *,
    method_col: str = "method",
    hue: str | None = "setting",
    order: Sequence[str] | None = None,
    hue_order: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    ylabel: str | None = None,
    lower_is_better: bool | None = None,
) -> Axes:
    """Mean over seeds (bar), standard deviation over seeds (error bar) and each seed (dot).

    ``table`` has one row per run: columns ``method_col``, ``value`` and, if ``hue`` is given,
    ``hue`` (e.g. ``"setting"``: side-by-side bars per method). ``metric``/``gene_set`` filter the
    tidy output of :func:`~course_tools.benchmark.run_benchmark`; pass ``metric=None`` for a table
    that holds one metric only. Undefined (NaN) runs are left out of the mean; a group whose runs
    are all undefined is an empty slot labelled "undefined". The y label says whether lower or
    higher is better: ``lower_is_better`` if given, else from ``metric`` (or from the table's one
    ``metric``), else nothing.
    """
    require_columns(table, [method_col, "value"], "the table")
    sub = select_rows(table, metric, gene_set) if metric is not None else table
    named = metric
    if named is None and "metric" in sub.columns and sub["metric"].nunique() == 1:
        named = str(sub["metric"].iloc[0])
    lower = is_lower_better(named, lower_is_better)
    if hue is not None and hue not in sub.columns:
        hue = None
    methods = list(order) if order is not None else list(dict.fromkeys(sub[method_col]))
    hues = (list(hue_order) if hue_order is not None else list(dict.fromkeys(sub[hue]))) if hue else [None]
    ax = get_ax(ax, figsize=(max(4.0, 0.8 * len(methods) * len(hues) + 2.0), 3.6))
    width = 0.8 / len(hues)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    xs = np.arange(len(methods))
    for j, h in enumerate(hues):
        part = sub if h is None else sub[sub[hue] == h]
        pos = xs - 0.4 + width * (j + 0.5)
        color = colors[j % len(colors)]
        means, stds = [], []
        for m in methods:
            v = part.loc[part[method_col] == m, "value"].to_numpy(float)
            v = v[np.isfinite(v)]
            means.append(v.mean() if v.size else np.nan)
            stds.append(v.std(ddof=1) if v.size > 1 else 0.0)
        means_arr = np.asarray(means)
        ax.bar(
            pos,
            np.nan_to_num(means_arr),
            width=width * 0.9,
            yerr=stds,
            capsize=3,
            color=color,
            alpha=0.55,
            label=None if h is None else str(h),
        )
        for p, m, mean in zip(pos, methods, means_arr):
            v = part.loc[part[method_col] == m, "value"].to_numpy(float)
            v = v[np.isfinite(v)]
            if v.size:
                jitter = np.linspace(-width * 0.2, width * 0.2, v.size) if v.size > 1 else np.zeros(1)
                ax.scatter(p + jitter, v, s=14, color=color, edgecolor="k", linewidth=0.4, zorder=3)
            elif not np.isfinite(mean):
                ax.text(p, 0, "undefined", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(xs)
    ax.set_xticklabels(methods, rotation=30, ha="right")
    label = metric or "value"
    ax.set_ylabel(with_direction(ylabel or label, lower), fontsize=8)
    ax.set_title(
        title or label + (f" ({gene_set})" if metric and gene_set else "") + ": mean ± sd over seeds", fontsize=9
    )
    if hue:
        ax.legend(fontsize=7, title=hue, title_fontsize=7)
    return ax


def paired_differences(
    table: pd.DataFrame,
    a: str,
    b: str,
    metric: str | None = None,
    gene_set: str | None = "all",
    *,
    method_col: str = "method",
    pair_col: str = "seed",
    by: str | None = None,
    match_on: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Differences ``a - b`` of matched runs, paired exactly as :mod:`course_tools.verdicts` pairs them.

    Runs of ``a`` and ``b`` are matched by the verdicts' own matching (``verdicts._matched``):
    on ``match_on`` if given, else on the verdicts' columns that the table has (``setting``,
    ``seed``, ``score_group``) plus ``pair_col``; ``by`` is always one of them. So the mean of
    the differences (of one ``by`` group) is the ``diff`` of :func:`~course_tools.verdicts.paired_verdict`
    (of :func:`~course_tools.verdicts.verdict_table` with ``by=(by,)``) on the same table: a plot
    and a verdict pair the same runs. Several rows for one matched run are an error, not averaged.
    Runs where either method is missing or undefined (NaN) are dropped. Columns: the match
    columns (``by`` first), then ``difference``.
    """
    if match_on is None:
        keys = [c for c in _match_on(table, None) if c in table.columns]
        keys += [pair_col] if pair_col not in keys else []
    else:
        keys = list(match_on)
    if by:
        keys = [by, *(k for k in keys if k != by)]
    require_columns(table, [method_col, "value", *keys], "the table")
    sub = select_rows(table, metric, gene_set) if metric is not None else table
    for m in (a, b):
        if not (sub[method_col] == m).any():
            raise DataValidationError(f"no rows for method {m!r}; methods are {sorted(sub[method_col].unique())}")
    wide = _matched(sub, a, b, keys, compare=method_col)
    diff = (wide[a] - wide[b]).rename("difference").reset_index()
    if diff.empty:
        raise DataValidationError(f"{a!r} and {b!r} share no defined run to pair (matched on {keys})")
    return diff


def paired_difference_plot(
    table: pd.DataFrame,
    a: str,
    b: str,
    metric: str | None = None,
    gene_set: str | None = "all",
    *,
    method_col: str = "method",
    pair_col: str = "seed",
    by: str | None = None,
    match_on: Sequence[str] | None = None,
    order: Sequence[str] | None = None,
    level: float = 0.95,
    lower_is_better: bool | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Paired difference ``a - b`` per matched run (dots), its mean and ``level`` t interval, and zero.

    Runs are paired by :func:`paired_differences` (``pair_col``, ``match_on``), as the verdicts pair
    them. One column per ``by`` group (e.g. ``"setting"``), or one column. The interval is the verdict's
    (:func:`course_tools.verdicts.paired_verdict`): the Student-t interval of the mean paired
    difference over its units (the matched runs of one setting; when a column pools several
    settings, one mean per setting), drawn only with at least two units; where it includes zero the
    runs cannot tell the methods apart. The dots are the matched runs. The y label
    says which sign favours ``a`` (from ``lower_is_better``, by default from ``metric``).
    Drawn with seaborn (``stripplot``); returns the Axes.
    """
    import seaborn as sns

    diff = paired_differences(
        table, a, b, metric, gene_set, method_col=method_col, pair_col=pair_col, by=by, match_on=match_on
    )
    group = by or "_group"
    if by is None:
        diff[group] = f"{a} - {b}"
    if order is not None:
        groups = list(order)
    else:  # the order of the input table, not the sorted order of the pivot
        groups = [g for g in dict.fromkeys(table[by]) if g in set(diff[group])] if by else [f"{a} - {b}"]
    ax = get_ax(ax, figsize=(max(3.2, 1.1 * len(groups) + 2.0), 3.6))
    sns.stripplot(
        data=diff,
        x=group,
        y="difference",
        order=groups,
        ax=ax,
        color="#4c72b0",
        size=5,
        jitter=0.12,
        edgecolor="k",
        linewidth=0.4,
        zorder=3,
    )
    keys = [c for c in diff.columns if c not in ("difference", "_group")]
    for i, g in enumerate(groups):
        part = diff.loc[diff[group] == g]
        # the verdict's units: the matched runs of one setting, or one mean per setting when pooled
        d = (
            replication_units(part.set_index(keys)[["difference"]])[0]["difference"].to_numpy(float)
            if len(part)
            else np.array([])
        )
        if d.size == 0:
            ax.text(i, 0, "no pairs", ha="center", va="bottom", fontsize=7)
            continue
        mean, low, high = _paired_summary(d, level)  # the verdict's t interval
        if d.size >= 2:
            ax.errorbar(
                i + 0.28,
                mean,
                yerr=high - mean,
                fmt="o",
                color="#c44e52",
                capsize=4,
                ms=5,
                zorder=4,
                label=f"mean, {level:.0%} interval" if i == 0 else None,
            )
        else:
            ax.plot(
                i + 0.28,
                mean,
                "o",
                color="#c44e52",
                ms=5,
                zorder=4,
                label="mean (1 pair: no interval)" if i == 0 else None,
            )
    ax.axhline(0, color="k", lw=0.8, ls="--")
    # one slot per group, whatever state seaborn's categorical axis was left in: the first label
    # then never reaches the y tick labels
    ax.set_xlim(-0.5, len(groups) - 0.5)
    lower = is_lower_better(metric, lower_is_better)
    label = f"{a} - {b}" + (f"\n{metric}" if metric else "")
    if lower is not None:
        label += f"\n(below 0 favours {a})" if lower else f"\n(above 0 favours {a})"
    ax.set_ylabel(label, fontsize=8)
    ax.set_xlabel(by or "")
    if by is None:
        ax.set_xticks([])
    elif max(len(str(g)) for g in groups) > 12:  # long names: slanted, so that they do not collide
        ax.tick_params(axis="x", labelrotation=30)
        for t in ax.get_xticklabels():
            t.set_ha("right")
            t.set_rotation_mode("anchor")
    words = direction_label(lower)
    ax.set_title(title or f"Paired difference by {pair_col}" + (f" ({words})" if words else ""), fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return ax


# ---------------------------------------------------------------------------------------------
# Optuna studies


def _complete_trials(study: optuna.Study) -> list:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _optuna_plot(fn, *args, **kwargs):
    """Call an Optuna figure function without its experimental warning or its style leaking.

    The style it sets (ggplot) does not leak into the figures drawn after it.
    """
    import optuna

    # Not plt.rc_context(): it would also restore "interactive", which the inline backend of a
    # notebook switches on when the first figure is made, and later figures would not be shown.
    keep = ("backend", "interactive")
    saved = {k: v for k, v in plt.rcParams.items() if k not in keep}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            return fn(*args, **kwargs)
    finally:
        dict.update(plt.rcParams, saved)  # raw update: the saved values were valid already


def optimisation_history(study: optuna.Study, *, title: str | None = None) -> Axes:
    """Objective value of every completed trial and the best value so far (Optuna's figure)."""
    from optuna.visualization.matplotlib import plot_optimization_history

    if not _complete_trials(study):
        raise ValueError(f"study {study.study_name!r} has no completed trial yet")
    ax = _optuna_plot(plot_optimization_history, study)
    ax.set_title(title or f"Optimisation history: {study.study_name}", fontsize=9)
    ax.figure.tight_layout()
    return ax


#: The old, American spelling of :func:`optimisation_history` (warns ``FutureWarning``).
optimization_history = deprecated_alias(optimisation_history, "optimization_history")


def param_importances(study: optuna.Study, *, seed: int = 0, title: str | None = None) -> Axes:
    """Hyperparameter importances (fANOVA on the completed trials, seeded).

    Raises ``ValueError`` when the study has fewer than two completed trials (no importance can
    be estimated from one point).
    """
    import optuna
    from optuna.visualization.matplotlib import plot_param_importances

    n = len(_complete_trials(study))
    if n < 2:
        raise ValueError(f"parameter importances need at least 2 completed trials; study has {n}")
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    ax = _optuna_plot(plot_param_importances, study, evaluator=evaluator)
    ax.set_title(title or f"Hyperparameter importances ({n} completed trials)", fontsize=9)
    ax.figure.tight_layout()
    return ax


def top_params(study: optuna.Study, k: int = 2, *, seed: int = 0) -> list[str]:
    """The ``k`` most important parameters (fANOVA), or the first ``k`` searched.

    The first ``k`` searched are returned when the completed trials are too few (< 2) or too
    uniform to rank them.
    """
    import optuna

    trials = _complete_trials(study)
    if not trials:
        raise ValueError(f"study {study.study_name!r} has no completed trial yet")
    names = list(dict.fromkeys(name for t in trials for name in t.params))
    if len(trials) >= 2:
        try:
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ranked = list(optuna.importance.get_param_importances(study, evaluator=evaluator))
            names = ranked + [n for n in names if n not in ranked]
        except (RuntimeError, ValueError):  # e.g. every completed trial has the same parameters
            pass
    return names[:k]


def slice_top_params(study: optuna.Study, params: Sequence[str] | None = None, *, k: int = 2):
    """Objective value against each of the top parameters (Optuna's slice plot); returns its Axes."""
    from optuna.visualization.matplotlib import plot_slice

    params = list(params) if params is not None else top_params(study, k)
    axes = _optuna_plot(plot_slice, study, params=params)
    first = np.ravel(axes)[0] if isinstance(axes, np.ndarray) else axes
    first.figure.suptitle(f"Objective against {', '.join(params)}", fontsize=9)
    return axes


def contour_top_params(study: optuna.Study, params: Sequence[str] | None = None):
    """Contour of the objective over the two most important parameters (or ``params``).

    Raises ``ValueError`` with fewer than two completed trials or fewer than two parameters.
    """
    from optuna.visualization.matplotlib import plot_contour

    n = len(_complete_trials(study))
    if n < 2:
        raise ValueError(f"a contour plot needs at least 2 completed trials; study has {n}")
    params = list(params) if params is not None else top_params(study, 2)
    if len(params) != 2:
        raise ValueError(f"a contour plot needs exactly two parameters, got {params}")
    ax = _optuna_plot(plot_contour, study, params=params)
    ax.set_title(f"Objective over {params[0]} and {params[1]}", fontsize=9)
    return ax
