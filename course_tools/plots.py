"""Figures of the benchmarking modules (03 and 04): benchmark summaries and Optuna studies.

Benchmark figures read the tables of :mod:`course_tools.benchmark`:

- :func:`method_by_setting_heatmap` draws :func:`~course_tools.benchmark.summarise`'s output
  as a method x setting grid (e.g. method x held-out cell type), each cell "mean ± std over seeds";
- :func:`seed_spread_plot` draws a per-seed table (:func:`~course_tools.benchmark.run_benchmark`'s
  output, or any table with a value per method and seed): mean over seeds as a bar, the
  standard deviation as an error bar, and every seed as a dot;
- :func:`paired_difference_plot` (seaborn) draws a verdict of :mod:`course_tools.verdicts`: its
  units' contrasts (differences, or ratios for distances pooled over settings), its estimate and
  interval, and the line of no difference, per setting;
- :func:`primary_forest_plot` draws the primary question's verdicts
  (:func:`~course_tools.verdicts.primary_verdicts`): each model's estimate against the baseline with
  its Holm-level interval, the line of no difference and the margin of equivalence, per metric
  (ratios on a log axis), with the per-cell-type values behind it;
- :func:`verdict_heatmap` draws a table of paired verdicts per group (e.g. per held-out cell type)
  as cells coloured by which method is better and annotated with the effect.

Every panel of a metric says whether lower or higher is better (y label or colour bar).

Optuna figures wrap ``optuna.visualization.matplotlib`` (its experimental warning is silenced)
and guard against studies too small for a figure: :func:`optimisation_history`,
:func:`param_importances`, :func:`top_params`, :func:`slice_top_params`, :func:`contour_top_params`;
:func:`importance_spread_plot` draws the committed study's importances with their bootstrap spread.
Every function returns the Axes (or Figure) it drew on.

Helpers shared by these figures: :func:`select_rows` of a scores table, :func:`with_direction`
(the "lower/higher is better" words of a panel), and :func:`overlapping_texts`, a check for
colliding labels that the tests run on the figures.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, NullFormatter

from course_tools.scoring.registry import is_lower_better
from course_tools.verdicts import PRIMARY, PrimaryQuestion, paired_units, paired_verdict
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.plotting import get_ax

if TYPE_CHECKING:  # pragma: no cover
    import optuna


def require_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise if ``table`` lacks any of ``columns``, naming them and the columns it has."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataValidationError(f"{what} has no column(s) {missing}; columns are {list(table.columns)}")


def select_rows(table: pd.DataFrame, metric: str | None, gene_set: str | None) -> pd.DataFrame:
    """Rows of a tidy scores table for ``metric`` and ``gene_set`` (``None``: any); an error lists what exists."""
    sub = table
    if metric is not None:
        require_columns(table, ["metric"], "the table")
        sub = sub[sub["metric"] == metric]
    if gene_set is not None and "gene_set" in sub.columns:
        sub = sub[sub["gene_set"] == gene_set]
    if sub.empty:
        have = sorted(set(zip(table.get("metric", []), table.get("gene_set", []))))
        raise DataValidationError(f"no rows for metric {metric!r}, gene_set {gene_set!r}; available: {have[:12]}")
    return sub


def panel_direction(metric: str | None, lower_is_better: bool | None = None) -> bool | None:
    """Whether a panel of ``metric`` shows lower values as better.

    ``lower_is_better`` if given (e.g. a score the library does not register), else
    :func:`~course_tools.scoring.registry.is_lower_better` of ``metric``; ``None`` when there is no metric.
    """
    if lower_is_better is not None:
        return bool(lower_is_better)
    return None if metric is None else is_lower_better(metric)


def direction_label(lower: bool | None) -> str:
    """The words a panel carries about its metric's direction ("" when unknown)."""
    if lower is None:
        return ""
    return "lower is better ↓" if lower else "higher is better ↑"


def with_direction(label: str, lower: bool | None) -> str:
    r"""``label`` with the direction on a second line, e.g. ``"e_distance\n(lower is better ↓)"``."""
    words = direction_label(lower)
    return f"{label}\n({words})" if words else label


def _text_box(text, renderer) -> tuple[np.ndarray, float, float, float]:
    """Centre, width, height and angle (radians) of the rectangle a text covers on the canvas."""
    box = text.get_window_extent(renderer)  # axis-aligned: its centre is the rectangle's centre
    angle = text.get_rotation()
    if angle % 180:
        text.set_rotation(0)
        flat = text.get_window_extent(renderer)
        text.set_rotation(angle)
        w, h = flat.width, flat.height
    else:
        w, h = box.width, box.height
    return np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]), w, h, np.deg2rad(angle)


def _boxes_overlap(a, b, margin: float = 0.5) -> bool:
    """Separating-axis test of two rotated rectangles (``_text_box`` tuples); touching is not overlap."""
    (ca, wa, ha, ta), (cb, wb, hb, tb) = a, b
    axes = []
    for t in (ta, tb):
        axes += [np.array([np.cos(t), np.sin(t)]), np.array([-np.sin(t), np.cos(t)])]

    def radius(w, h, t, n):
        u, v = np.array([np.cos(t), np.sin(t)]), np.array([-np.sin(t), np.cos(t)])
        return w / 2 * abs(u @ n) + h / 2 * abs(v @ n)

    return all(abs((ca - cb) @ n) < radius(wa, ha, ta, n) + radius(wb, hb, tb, n) - margin for n in axes)


def overlapping_texts(fig) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty texts of ``fig`` that overlap on the canvas.

    Texts are tick labels, axis labels and titles, rotated labels as rotated rectangles: a check
    for colliding labels.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    items = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts = [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label, ax.yaxis.label, ax.title]
        for t in texts:
            if t.get_visible() and t.get_text().strip():
                items.append((t.get_text(), _text_box(t, renderer)))
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        items.append((suptitle.get_text(), _text_box(suptitle, renderer)))
    return [
        (items[i][0], items[j][0])
        for i in range(len(items))
        for j in range(i + 1, len(items))
        if _boxes_overlap(items[i][1], items[j][1])
    ]


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
    so that darker is better (reversed where lower is better); undefined cells are grey and read
    "n/a". ``vmin``/``vmax`` fix the colour scale, so that two heatmaps of the same metric (e.g.
    two experiments) can share one.
    """
    means = summary_grid(summary, metric, gene_set, methods=methods, settings=settings)
    has_std = "std" in summary.columns
    stds = summary_grid(summary, metric, gene_set, value="std", methods=methods, settings=settings) if has_std else None
    lower = is_lower_better(metric)
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
    lower = panel_direction(named, lower_is_better)
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


def _groups(table: pd.DataFrame, by: str | None) -> list[tuple[str, pd.DataFrame]]:
    """``(label, rows)`` per ``by`` group in table order (one group, labelled ``""``, without ``by``)."""
    if by is None:
        return [("", table)]
    require_columns(table, [by], "the table")
    return [(g, table[table[by] == g]) for g in dict.fromkeys(table[by])]


def paired_differences(
    table: pd.DataFrame,
    a: str,
    b: str,
    metric: str,
    gene_set: str = "all",
    *,
    method_col: str = "method",
    by: str | None = None,
    match_on: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The units of the verdict ``a`` vs ``b`` and their contrasts, per ``by`` group.

    For each group (one per value of ``by``, e.g. ``"setting"``; the whole table without ``by``)
    the units are :func:`course_tools.verdicts.paired_units`'s, so a plot and a verdict
    (:func:`~course_tools.verdicts.verdict_table` with ``by=(by,)``) pair the same runs: the matched
    runs of one setting, or, when a group pools several settings, one block per setting (each the
    mean of its seeds). The contrast is on the verdict's scale
    (:func:`~course_tools.verdicts.comparison_scale`): the difference ``a - b``, or the ratio
    ``a / b`` for a distance pooled over blocks. Runs where either method is undefined are dropped;
    several rows for one matched run are an error, not averaged.

    Returns
    -------
    pandas.DataFrame
        One row per unit: ``by`` (if given), the unit's index columns (match or block columns),
        ``a``'s and ``b``'s values (columns named after them), ``contrast``, ``scale`` and ``unit``.
    """
    out = []
    for group, part in _groups(table, by):
        if by is not None and not {a, b} <= set(part[method_col]):
            continue  # as in verdict_table: a group without both methods has no verdict
        units, unit = paired_units(part, a, b, metric, gene_set, match_on=match_on, compare=method_col)
        frame = units.reset_index().assign(scale=units.attrs["scale"], unit=unit)
        if by is not None:
            frame = frame.drop(columns=[by], errors="ignore")
            frame.insert(0, by, group)
        out.append(frame)
    result = pd.concat(out, ignore_index=True) if out else pd.DataFrame()
    if result.empty:
        raise DataValidationError(f"{a!r} and {b!r} share no defined run to pair")
    return result


def paired_difference_plot(
    table: pd.DataFrame,
    a: str,
    b: str,
    metric: str,
    gene_set: str = "all",
    *,
    method_col: str = "method",
    by: str | None = None,
    match_on: Sequence[str] | None = None,
    order: Sequence[str] | None = None,
    level: float = 0.95,
    lower_is_better: bool | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """The verdict ``a`` vs ``b`` drawn: its units (dots), its estimate and interval, and no difference.

    One column per ``by`` group (e.g. ``"setting"``), or one column. The dots are the units of
    :func:`paired_differences`; the point and bar are the verdict's estimate and ``level``
    interval (:func:`course_tools.verdicts.paired_verdict` on that group: the mean difference, or
    the geometric mean ratio for a distance pooled over settings; within one setting the interval
    also holds the test cells' sampling, which the dots do not show), drawn only with at least two
    units; the dashed line is no difference (0, or 1 for a ratio). Where the interval crosses it
    the runs cannot tell the methods apart. The y label says which side favours ``a`` (from
    ``lower_is_better``, by default from ``metric``). Drawn with seaborn (``stripplot``).
    """
    import seaborn as sns

    units = paired_differences(table, a, b, metric, gene_set, method_col=method_col, by=by, match_on=match_on)
    scales = set(units["scale"])
    if len(scales) > 1:
        raise DataValidationError(
            f"the groups of {by!r} are contrasted on different scales ({sorted(scales)}): some pool several "
            "settings, some do not; plot them apart"
        )
    scale = scales.pop()
    ratio = scale == "ratio"
    symbol = "/" if ratio else "-"
    column = by or "_group"
    if by is None:
        units[column] = f"{a} {symbol} {b}"
    groups = list(order) if order is not None else list(dict.fromkeys(units[column]))
    ax = get_ax(ax, figsize=(max(3.2, 1.1 * len(groups) + 2.0), 3.6))
    sns.stripplot(
        data=units,
        x=column,
        y="contrast",
        order=groups,
        ax=ax,
        color="#4c72b0",
        size=5,
        jitter=0.12,
        edgecolor="k",
        linewidth=0.4,
        zorder=3,
    )
    for i, g in enumerate(groups):
        part = table if by is None else table[table[by] == g]
        if not (units[column] == g).any():
            ax.text(i, 1.0 if ratio else 0.0, "no pairs", ha="center", va="bottom", fontsize=7)
            continue
        v = paired_verdict(part, a, b, metric, gene_set, match_on=match_on, compare=method_col, level=level)
        if v["n"] >= 2:
            ax.errorbar(
                i + 0.28,
                v["estimate"],
                yerr=[[v["estimate"] - v["ci_low"]], [v["ci_high"] - v["estimate"]]],
                fmt="o",
                color="#c44e52",
                capsize=4,
                ms=5,
                zorder=4,
                label=f"verdict: estimate, {level:.0%} interval" if i == 0 else None,
            )
        else:
            ax.plot(
                i + 0.28,
                v["estimate"],
                "o",
                color="#c44e52",
                ms=5,
                zorder=4,
                label="estimate (1 unit: no interval)" if i == 0 else None,
            )
    ax.axhline(1.0 if ratio else 0.0, color="k", lw=0.8, ls="--")
    # one slot per group, whatever state seaborn's categorical axis was left in: the first label
    # then never reaches the y tick labels
    ax.set_xlim(-0.5, len(groups) - 0.5)
    lower = panel_direction(metric, lower_is_better)
    label = f"{a} {symbol} {b}\n{metric}"
    if lower is not None:
        side = "below" if lower else "above"
        label += f"\n({side} {1 if ratio else 0} favours {a})"
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
    what = "Paired ratio" if ratio else "Paired difference"
    ax.set_title(title or what + (f" ({words})" if words else ""), fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return ax


# ---------------------------------------------------------------------------------------------
# Verdicts as figures (notebook 03's findings)

#: Colours of the verdicts: the primary question's words, and the exploratory verdicts' direction.
VERDICT_COLORS = {
    "better": "#1b9e77",
    "worse": "#d95f02",
    "inconclusive": "#7f7f7f",
    "equivalent": "#7570b3",
    "first better": "#1b9e77",
    "no clear difference": "#e0e0e0",
    "second better": "#d95f02",
    "no verdict": "#ffffff",
}
#: The categories of :func:`verdict_heatmap`, in the order of their colour codes, with their legend labels.
HEATMAP_CATEGORIES = {
    "first better": "first method of the pair better",
    "no clear difference": "no clear difference",
    "second better": "second method better",
    "no verdict": "no verdict (too few runs)",
}


def _primary_color(verdict: str) -> str:
    word = str(verdict).split()[0]
    return VERDICT_COLORS.get(word, VERDICT_COLORS["inconclusive"])


def primary_forest_plot(
    verdicts: pd.DataFrame,
    units: pd.DataFrame | None = None,
    *,
    sensitivity: pd.DataFrame | None = None,
    sensitivity_label: str = "sensitivity check",
    question: PrimaryQuestion = PRIMARY,
    title: str | None = None,
):
    """Forest plot of the primary question: one row per model, one panel per metric.

    Each row draws a model's estimate against the baseline (``verdicts`` is
    :func:`course_tools.verdicts.primary_verdicts`' output) with its interval at the Holm level of
    its comparison (column ``level``), coloured by its verdict; the line of no difference (0 for a
    difference, 1 for a ratio, drawn on a log axis) and the margin of practical equivalence that
    ``question`` declares for the metric, shaded.
    ``units`` (:func:`course_tools.verdicts.primary_units`) adds the per-cell-type contrasts as small
    grey ticks, so that one sees what the pooled interval summarises; ``sensitivity`` (the same
    family judged on other units, e.g. ``primary_verdicts(..., exclude=...)``) adds a hollow marker
    and interval just above each row, labelled ``sensitivity_label`` in the legend.

    Returns the Figure; its artists carry the gids ``estimate``, ``interval``, ``margin``,
    ``no_difference``, ``units`` and ``sensitivity``.
    """
    require_columns(
        verdicts,
        [
            "model",
            "baseline",
            "metric",
            "gene_set",
            "scale",
            "estimate",
            "ci_low",
            "ci_high",
            "level",
            "margin",
            "verdict",
        ],
        "the primary verdicts",
    )
    metrics = list(dict.fromkeys(zip(verdicts["metric"], verdicts["gene_set"])))
    models = list(dict.fromkeys(verdicts["model"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 1.9 + 0.9 * len(models)), squeeze=False)
    for ax, (metric, gene_set) in zip(axes[0], metrics):
        rows = verdicts[(verdicts["metric"] == metric) & (verdicts["gene_set"] == gene_set)]
        scale = rows["scale"].iloc[0]
        baseline = rows["baseline"].iloc[0]
        ratio = scale == "ratio"
        margin = next((m.value for m in question.margins if (m.metric, m.gene_set) == (metric, gene_set)), None)
        if margin is None:
            raise DataValidationError(f"the question declares no margin for {metric} ({gene_set})")
        no_diff = 1.0 if ratio else 0.0
        lo_m, hi_m = (1 / margin, margin) if ratio else (-margin, margin)
        ax.axvspan(
            lo_m,
            hi_m,
            color=VERDICT_COLORS["equivalent"],
            alpha=0.15,
            lw=0,
            gid="margin",
            label="margin of equivalence",
        )
        ax.axvline(no_diff, color="black", lw=1, ls="--", gid="no_difference", label="no difference")
        labels = []
        for y, model in enumerate(models):
            r = rows[rows["model"] == model]
            if r.empty:
                labels.append(model)
                continue
            r = r.iloc[0]
            color = _primary_color(r["verdict"])
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=color, lw=2.5, gid="interval")
            ax.plot([r["estimate"]], [y], "o", color=color, ms=8, gid="estimate")
            labels.append(f"{model}\n{r['verdict']}")
            if units is not None:
                u = units[(units["model"] == model) & (units["metric"] == metric) & (units["gene_set"] == gene_set)]
                ax.plot(
                    u["contrast"],
                    np.full(len(u), y + 0.22),
                    "|",
                    color="#555555",
                    ms=9,
                    mew=1.2,
                    gid="units",
                    label="held-out cell types (mean of seeds)" if y == 0 else None,
                )
            if sensitivity is not None:
                s = sensitivity[(sensitivity["model"] == model) & (sensitivity["metric"] == metric)]
                if len(s):
                    s = s.iloc[0]
                    ax.plot([s["ci_low"], s["ci_high"]], [y - 0.25, y - 0.25], color=color, lw=1, gid="sensitivity")
                    ax.plot(
                        [s["estimate"]],
                        [y - 0.25],
                        "o",
                        mfc="white",
                        color=color,
                        ms=6,
                        gid="sensitivity",
                        label=sensitivity_label if y == 0 else None,
                    )
        if ratio:
            _ratio_axis(ax)
        ax.set_yticks(range(len(models)), labels)
        ax.set_ylim(len(models) - 0.5, -0.6)
        lower = is_lower_better(metric)
        better = "left" if lower else "right"
        what = f"model / {baseline} (ratio, log axis)" if ratio else f"model − {baseline}"
        ax.set_xlabel(f"{what}\nmodel better to the {better}")
        levels = ", ".join(f"{lv:.2%}" for lv in rows["level"])
        ax.set_title(f"{metric} ({gene_set})\nintervals at Holm levels {levels}", fontsize=10)
    handles = {}
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label.split(" ±")[0].split(" ×")[0], h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title or f"Primary question: each model against {verdicts['baseline'].iloc[0]}", fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _ratio_axis(ax: Axes) -> None:
    """A log x axis with ticks at powers of 2 labelled as ratios (``×0.5``, ``×1``, ``×2``)."""
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ticks = [2.0**k for k in range(-8, 9) if lo <= 2.0**k <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"×{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _heatmap_code(row: dict) -> int:
    """The colour code of a verdict: its position in :data:`HEATMAP_CATEGORIES`."""
    words = {f"{row['method_a']} better": 0, "no clear difference": 1, f"{row['method_b']} better": 2}
    return words.get(row["verdict"], 3)


def _short(estimate: float, scale: str) -> str:
    """An effect in a heatmap cell: ``×0.56`` (ratio), ``+0.131`` or, from 1 up, ``-4.24`` (difference)."""
    if not np.isfinite(estimate):
        return "–"
    if scale == "ratio":
        return f"×{estimate:.2f}"
    return f"{estimate:+.2f}" if abs(estimate) >= 0.995 else f"{estimate:+.3f}"


def verdict_heatmap(verdicts: pd.DataFrame, *, by: str = "held_out", title: str | None = None):
    """Paired verdicts per group as a heatmap: rows the groups, columns the method pairs, one panel per metric.

    ``verdicts`` is :func:`course_tools.verdicts.verdict_table`'s output with ``by=(by,)`` (e.g. one
    verdict per held-out cell type). Each cell is coloured by the verdict's direction (the pair's
    first method better, no clear difference, the second better, or no verdict:
    :data:`HEATMAP_CATEGORIES`) and annotated with the estimate (``A − B``, or ``×`` the ratio
    ``A / B``). Rows with no matched run are left out. Returns the Figure; the colour codes of each
    panel are its image's array, the annotations its texts.
    """
    require_columns(
        verdicts,
        [by, "method_a", "method_b", "metric", "gene_set", "n", "scale", "estimate", "verdict", "direction"],
        "the verdict table",
    )
    rows = verdicts[verdicts["n"] > 0]
    if rows.empty:
        raise DataValidationError("the verdict table has no row with a matched run")
    metrics = list(dict.fromkeys(zip(rows["metric"], rows["gene_set"])))
    groups = list(dict.fromkeys(rows[by]))
    pairs = {}
    for metric, gene_set in metrics:
        sub = rows[(rows["metric"] == metric) & (rows["gene_set"] == gene_set)]
        pairs[(metric, gene_set)] = list(dict.fromkeys(zip(sub["method_a"], sub["method_b"])))
    widths = [len(pairs[mg]) for mg in metrics]
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(1.3 * sum(widths) + 2.5, 0.45 * len(groups) + 2.4),
        gridspec_kw={"width_ratios": widths},
        squeeze=False,
    )
    cmap = ListedColormap([VERDICT_COLORS[c] for c in HEATMAP_CATEGORIES])
    codes_of = list(HEATMAP_CATEGORIES)
    norm = BoundaryNorm(np.arange(-0.5, len(HEATMAP_CATEGORIES)), cmap.N)
    for i, (ax, (metric, gene_set)) in enumerate(zip(axes[0], metrics)):
        sub = rows[(rows["metric"] == metric) & (rows["gene_set"] == gene_set)]
        codes = np.full((len(groups), len(pairs[(metric, gene_set)])), 3)
        for r in sub.to_dict("records"):
            y, x = groups.index(r[by]), pairs[(metric, gene_set)].index((r["method_a"], r["method_b"]))
            codes[y, x] = _heatmap_code(r)
            ax.text(x, y, _short(r["estimate"], r["scale"]), ha="center", va="center", fontsize=7.5)
        ax.imshow(codes, cmap=cmap, norm=norm, aspect="auto")
        ax.set_xticks(range(codes.shape[1]), [f"{a}\nvs {b}" for a, b in pairs[(metric, gene_set)]], fontsize=8)
        ax.set_yticks(range(len(groups)), groups if i == 0 else [""] * len(groups))
        ax.set_xticks(np.arange(-0.5, codes.shape[1]), minor=True)
        ax.set_yticks(np.arange(-0.5, len(groups)), minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.tick_params(which="minor", length=0)
        ax.set_title(with_direction(f"{metric} ({gene_set})", is_lower_better(metric)), fontsize=9)
    fig.legend(
        handles=[
            Patch(facecolor=VERDICT_COLORS[c], edgecolor="#999999", label=HEATMAP_CATEGORIES[c]) for c in codes_of[:3]
        ],
        loc="lower center",
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title or f"Paired verdicts per {by}", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


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


def importance_spread_plot(importances: dict[str, pd.DataFrame], *, titles: dict[str, str] | None = None):
    """The committed study's importances: one panel per model, a bar per hyperparameter with its spread.

    ``importances`` maps a model to :func:`course_tools.tuning.committed.importance_spread`'s table
    (``param, importance, low, high, n_trials, n_resamples``). The bar is the fANOVA importance on
    all the trials, the whisker the middle 95% of the importances over bootstrap resamples of the
    trials: a wide whisker means another draw of trials could rank the parameter differently.
    Parameters are sorted by importance, the most important on top; the x axis (share of the
    variation) runs from 0 to 1 in every panel so that panels compare. Returns the Figure; bars and
    whiskers carry the gids ``importance`` and ``spread``.
    """
    if not importances:
        raise ValueError("no importances to draw: pass {model: importance_spread(study)}")
    for model, table in importances.items():
        require_columns(table, ["param", "importance", "low", "high", "n_trials"], f"{model}'s importances")
    n_params = max(len(t) for t in importances.values())
    fig, axes = plt.subplots(
        1, len(importances), figsize=(4.6 * len(importances), 0.9 + 0.38 * n_params), squeeze=False, sharex=True
    )
    for ax, (model, table) in zip(axes[0], importances.items()):
        rows = table.sort_values("importance").reset_index(drop=True)  # barh draws bottom-up
        y = np.arange(len(rows))
        ax.barh(y, rows["importance"], color="#4C72B0", gid="importance")
        err = np.vstack([rows["importance"] - rows["low"], rows["high"] - rows["importance"]]).clip(min=0)
        ax.errorbar(rows["importance"], y, xerr=err, fmt="none", ecolor="black", capsize=3, lw=1, gid="spread")
        ax.set_yticks(y, rows["param"])
        ax.set_xlim(0, 1)
        ax.set_xlabel("importance: share of the variation (fANOVA)")
        n = int(rows["n_trials"].iloc[0])
        ax.set_title((titles or {}).get(model, f"{model}: {n} trials"), fontsize=9)
    fig.suptitle(
        "Which hyperparameters matter for the validation E-distance: bars on all trials, whiskers over "
        "bootstrap resamples of them",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
