"""Per-gene scatter of predicted against real means (or variances)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from matplotlib.axes import Axes

from tutorial_lib.metrics import r2_pearson, r2_score
from tutorial_lib.metrics._inputs import CellsLike, aligned_matrices, gene_means, gene_vars
from tutorial_lib.plotting._common import COLORS, get_ax


def _fmt(v: float) -> str:
    return "undefined" if not np.isfinite(v) else f"{v:.3f}"


def summary_scatter(
    real: CellsLike,
    pred: CellsLike,
    stat: Literal["mean", "var"] = "mean",
    degs: Sequence[str] | None = None,
    n_labels: int = 5,
    ax: Axes | None = None,
    title: str | None = None,
    var_names: Sequence[str] | None = None,
) -> Axes:
    """Scatter of predicted vs real per-gene ``stat`` (mean or variance), one dot per gene.

    All genes in grey, ``degs`` in red with the first ``n_labels`` of them labelled, the line
    y = x, and in the title both R² of :mod:`tutorial_lib.metrics` (``r2_pearson``: squared
    Pearson, the scGen/scPRAM convention; ``r2_score``: coefficient of determination) on all
    genes and on the DEGs.
    """
    mats, genes = aligned_matrices({"real": real, "pred": pred}, var_names=var_names)
    f = gene_means if stat == "mean" else gene_vars
    x, y = f(mats["real"]), f(mats["pred"])
    ax = get_ax(ax)
    is_deg = np.isin(genes, list(degs)) if degs else np.zeros(genes.size, bool)
    ax.scatter(x[~is_deg], y[~is_deg], s=6, c=COLORS["genes"], alpha=0.6, label="all genes", rasterized=True)
    lines = [f"all: R²(Pearson²) = {_fmt(r2_pearson(x, y))}, R²(CoD) = {_fmt(r2_score(x, y))}"]
    if is_deg.any():
        ax.scatter(x[is_deg], y[is_deg], s=14, c=COLORS["degs"], label=f"top {int(is_deg.sum())} DEGs")
        lines.append(
            f"DEGs: R²(Pearson²) = {_fmt(r2_pearson(x[is_deg], y[is_deg]))}, "
            f"R²(CoD) = {_fmt(r2_score(x[is_deg], y[is_deg]))}"
        )
        pos = {g: i for i, g in enumerate(genes)}
        for g in [g for g in degs if g in pos][:n_labels]:
            ax.annotate(str(g), (x[pos[g]], y[pos[g]]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lo = float(min(x.min(), y.min()))
    hi = float(max(x.max(), y.max()))
    ax.plot([lo, hi], [lo, hi], ls="--", lw=0.8, c="k", label="y = x")
    word = "mean" if stat == "mean" else "variance"
    ax.set_xlabel(f"real {word} per gene")
    ax.set_ylabel(f"predicted {word} per gene")
    ax.set_title((title + "\n" if title else "") + "\n".join(lines), fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    return ax


def mean_scatter(
    real: CellsLike,
    pred: CellsLike,
    degs: Sequence[str] | None = None,
    n_labels: int = 5,
    ax: Axes | None = None,
    title: str | None = None,
    var_names: Sequence[str] | None = None,
) -> Axes:
    """:func:`summary_scatter` of per-gene means."""
    return summary_scatter(real, pred, "mean", degs, n_labels, ax, title, var_names)


def var_scatter(
    real: CellsLike,
    pred: CellsLike,
    degs: Sequence[str] | None = None,
    n_labels: int = 5,
    ax: Axes | None = None,
    title: str | None = None,
    var_names: Sequence[str] | None = None,
) -> Axes:
    """:func:`summary_scatter` of per-gene variances."""
    return summary_scatter(real, pred, "var", degs, n_labels, ax, title, var_names)
