"""Heatmaps of square tables (distances or correlations between groups of cells).

:func:`distance_heatmap` draws one table; :func:`shared_scale_heatmaps` draws several side by
side on one colour scale with one colour bar, so that equal colours mean equal values in every
panel (two heatmaps with their own scales cannot be compared by eye).
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.plotting._common import get_ax


def distance_heatmap(
    distances: pd.DataFrame,
    ax: Axes | None = None,
    annotate: bool = True,
    cmap: str = "viridis",
    title: str = "E-distance",
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
) -> Axes:
    """Heatmap of a square table of distances, e.g. from :func:`~tutorial_lib.metrics.pairwise_e_distance`.

    Each cell is annotated with its value when ``annotate`` is true; a colour bar is added unless
    ``colorbar`` is false. ``vmin``/``vmax`` fix the colour scale (default: this table's range);
    :func:`shared_scale_heatmaps` uses them to put several tables on one scale.
    """
    _check_square(distances, "distances")
    ax = get_ax(ax, figsize=(1.0 * len(distances) + 2, 0.9 * len(distances) + 1.5))
    vals = distances.to_numpy(float)
    im = ax.imshow(vals, cmap=cmap, vmin=vmin, vmax=vmax)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    labels = [str(x) for x in distances.index]
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    if annotate:
        low, high = im.norm.vmin, im.norm.vmax
        mid = (low + high) / 2 if np.isfinite([low, high]).all() else np.nanmean(vals)
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{vals[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if vals[i, j] < mid else "black",
                )
    ax.set_title(title, fontsize=9)
    return ax


def _check_square(table: pd.DataFrame, what: str) -> None:
    if table.shape[0] != table.shape[1] or list(table.index) != list(table.columns):
        raise DataValidationError(f"{what} must be a square table with the same labels on rows and columns")


def shared_scale_heatmaps(
    tables: Mapping[str, pd.DataFrame],
    *,
    cmap: str = "viridis",
    annotate: bool = True,
    label: str = "",
    vmin: float | None = None,
    vmax: float | None = None,
    panel_size: float | None = None,
) -> Figure:
    """Square tables side by side on one colour scale, with one colour bar.

    ``tables`` maps each panel's title to a square table (e.g. the correlations of predicted and
    of real responses between cell types). The scale runs from the smallest to the largest finite
    value over all tables unless ``vmin``/``vmax`` are given; ``label`` names the colour bar.
    """
    if not tables:
        raise DataValidationError("tables is empty: pass at least one square table")
    for name, table in tables.items():
        _check_square(table, f"table {name!r}")
    values = np.concatenate([t.to_numpy(float).ravel() for t in tables.values()])
    finite = values[np.isfinite(values)]
    if finite.size == 0 and (vmin is None or vmax is None):
        raise DataValidationError("every value is NaN: nothing to draw")
    vmin = float(finite.min()) if vmin is None else float(vmin)
    vmax = float(finite.max()) if vmax is None else float(vmax)
    n = max(len(t) for t in tables.values())
    size = panel_size or (0.75 * n + 2.0)
    fig, axes = plt.subplots(
        1, len(tables), figsize=(size * len(tables) + 1.0, size), squeeze=False, layout="constrained"
    )
    for ax, (name, table) in zip(axes[0], tables.items()):
        distance_heatmap(table, ax=ax, annotate=annotate, cmap=cmap, title=name, vmin=vmin, vmax=vmax, colorbar=False)
    cbar = fig.colorbar(axes[0][0].images[0], ax=list(axes[0]), fraction=0.046 / len(tables), pad=0.02)
    cbar.set_label(label or "shared colour scale", fontsize=8)
    return fig
