"""Dot plot of genes across groups of cells."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from matplotlib.axes import Axes

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics._inputs import CellsLike, aligned_matrices
from tutorial_lib.plotting._common import get_ax


def deg_dotplot(
    groups: Mapping[str, CellsLike],
    genes: Sequence[str],
    threshold: float = 0.0,
    ax: Axes | None = None,
    cmap: str = "Reds",
    max_size: float = 150.0,
    var_names: Sequence[str] | None = None,
) -> Axes:
    """Dot plot of genes (columns) x groups (rows).

    Dot size = fraction of cells with expression > ``threshold``, colour = mean expression.

    ``groups`` maps labels (e.g. "control", "real stimulated", "scGen") to AnnData or matrices on
    the same genes. Predictions are continuous, so "expressing" means above ``threshold``.
    """
    if not groups:
        raise DataValidationError("deg_dotplot needs at least one group")
    genes = [str(g) for g in genes]
    if not genes:
        raise DataValidationError("deg_dotplot needs at least one gene")
    mats, names = aligned_matrices(dict(groups), var_names=var_names)
    pos = {g: i for i, g in enumerate(names)}
    missing = [g for g in genes if g not in pos]
    if missing:
        raise DataValidationError(f"{len(missing)} gene(s) not in the data: {missing[:5]}")
    cols = [pos[g] for g in genes]
    frac = np.zeros((len(mats), len(genes)))
    mean = np.zeros_like(frac)
    for i, x in enumerate(mats.values()):
        sub = x[:, cols]
        sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub, dtype=float)
        frac[i] = (sub > threshold).mean(axis=0)
        mean[i] = sub.mean(axis=0)
    ax = get_ax(ax, figsize=(0.35 * len(genes) + 2.5, 0.45 * len(mats) + 1.5))
    gx, gy = np.meshgrid(np.arange(len(genes)), np.arange(len(mats)))
    sc = ax.scatter(
        gx.ravel(), gy.ravel(), s=frac.ravel() * max_size, c=mean.ravel(), cmap=cmap, edgecolors="k", linewidths=0.3
    )
    ax.figure.colorbar(sc, ax=ax, label="mean expression", fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(genes)))
    ax.set_xticklabels(genes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(mats)))
    ax.set_yticklabels(list(mats))
    ax.set_xlim(-0.6, len(genes) - 0.4)
    ax.set_ylim(len(mats) - 0.5, -0.5)
    for f in (0.25, 0.5, 1.0):
        ax.scatter([], [], s=f * max_size, c="w", edgecolors="k", label=f"{int(f * 100)}%")
    ax.legend(
        title="expressing", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.25, 1.0), frameon=False
    )
    return ax
