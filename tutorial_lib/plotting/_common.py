"""Small helpers shared by the plotting modules."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from tutorial_lib.data.checks import DataValidationError

#: Colours used across the course's figures.
COLORS = {
    "control": "#7f7f7f",
    "real": "#1f77b4",
    "pred": "#d62728",
    "genes": "#b0b0b0",
    "degs": "#d62728",
}


def get_ax(ax: Axes | None, figsize: tuple[float, float] = (4.5, 4.5)) -> Axes:
    """``ax`` itself, or the axes of a new figure."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


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
