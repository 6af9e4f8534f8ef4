"""Bar charts of metrics across models or settings, with bootstrap error bars."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.plotting._common import get_ax, panel_direction, require_columns, select_rows, with_direction


def _select(table: pd.DataFrame, metric: str, gene_set: str | None, method_col: str) -> pd.DataFrame:
    require_columns(
        table,
        ["metric", "value", "ci_low", "ci_high", method_col],
        f"the table (the output of evaluate() with a {method_col!r} column added)",
    )
    return select_rows(table, metric, gene_set)


def metric_bars(
    table: pd.DataFrame,
    metric: str,
    gene_set: str | None = "all",
    method_col: str = "method",
    hue: str | None = None,
    ax: Axes | None = None,
    order: Sequence[str] | None = None,
    *,
    lower_is_better: bool | None = None,
) -> Axes:
    """One bar per method (``table[method_col]``): ``value`` with error bars ``[ci_low, ci_high]``.

    ``table`` is the output of :func:`~tutorial_lib.metrics.evaluate` with a ``method`` column
    added (or several such tables concatenated). ``hue`` names an optional column (e.g. a
    setting) drawn as side-by-side bars within each method. A NaN value is drawn as an empty
    slot labelled "undefined" (its reason is in the table's ``note``). The y label says whether
    lower or higher is better (``lower_is_better``, by default from the metric's name).
    """
    sub = _select(table, metric, gene_set, method_col)
    methods = list(order) if order is not None else list(dict.fromkeys(sub[method_col]))
    hues = list(dict.fromkeys(sub[hue])) if hue else [None]
    keys = [method_col] + ([hue] if hue else [])
    if sub.duplicated(keys).any():
        raise DataValidationError(
            f"several rows per {keys} for metric {metric!r}, gene_set {gene_set!r}: filter the table or pass hue"
        )
    ax = get_ax(ax, figsize=(max(3.5, 0.9 * len(methods) * len(hues) + 1.5), 3.5))
    width = 0.8 / len(hues)
    xs = np.arange(len(methods))
    for j, h in enumerate(hues):
        part = sub if h is None else sub[sub[hue] == h]
        part = part.set_index(method_col).reindex(methods)
        val = part["value"].to_numpy(float)
        lo = part["ci_low"].to_numpy(float)
        hi = part["ci_high"].to_numpy(float)
        err = np.vstack([np.where(np.isfinite(lo), val - lo, 0), np.where(np.isfinite(hi), hi - val, 0)])
        # the bootstrap mean of identical resamples can exceed their percentile by rounding
        err = np.clip(err, 0.0, None)
        pos = xs - 0.4 + width * (j + 0.5)
        ax.bar(
            pos,
            np.nan_to_num(val),
            width=width * 0.95,
            yerr=np.nan_to_num(err),
            capsize=3,
            label=None if h is None else str(h),
        )
        for p, v in zip(pos, val):
            if not np.isfinite(v):
                ax.text(p, 0, "undefined", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(xs)
    ax.set_xticklabels(methods, rotation=30, ha="right")
    ax.set_ylabel(with_direction(metric, panel_direction(metric, lower_is_better)), fontsize=8)
    ax.set_title(metric + (f" ({gene_set})" if gene_set else ""), fontsize=9)
    if hue:
        ax.legend(fontsize=7, title=hue)
    return ax


def metric_bar_grid(
    table: pd.DataFrame,
    metrics: Sequence[tuple[str, str | None]] | None = None,
    method_col: str = "method",
    hue: str | None = None,
    ncols: int = 3,
) -> Figure:
    """A grid of :func:`metric_bars`, one panel per ``(metric, gene_set)`` (default: all in ``table``)."""
    if metrics is None:
        metrics = list(dict.fromkeys(zip(table["metric"], table["gene_set"])))
    n = len(metrics)
    if n == 0:
        raise DataValidationError("no metrics to plot")
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.5 * nrows), squeeze=False)
    for ax, (m, gs) in zip(axes.ravel(), metrics):
        metric_bars(table, m, gs, method_col=method_col, hue=hue, ax=ax)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
