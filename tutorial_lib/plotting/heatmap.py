"""Heatmap of distances between groups of cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.plotting._common import get_ax


def distance_heatmap(
    distances: pd.DataFrame,
    ax: Axes | None = None,
    annotate: bool = True,
    cmap: str = "viridis",
    title: str = "E-distance",
) -> Axes:
    """Heatmap of a square table of distances, e.g. from :func:`~tutorial_lib.metrics.pairwise_e_distance`.

    Each cell is annotated with its value when ``annotate`` is true; a colour bar is added.
    """
    if distances.shape[0] != distances.shape[1] or list(distances.index) != list(distances.columns):
        raise DataValidationError("distances must be a square table with the same labels on rows and columns")
    ax = get_ax(ax, figsize=(1.0 * len(distances) + 2, 0.9 * len(distances) + 1.5))
    vals = distances.to_numpy(float)
    im = ax.imshow(vals, cmap=cmap)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    labels = [str(x) for x in distances.index]
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    if annotate:
        mid = np.nanmean(vals)
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
