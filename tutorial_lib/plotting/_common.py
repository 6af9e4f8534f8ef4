"""Small helpers shared by the plotting modules."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics import is_lower_better

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


def panel_direction(metric: str | None, lower_is_better: bool | None = None) -> bool | None:
    """Whether a panel of ``metric`` shows lower values as better.

    ``lower_is_better`` if given (e.g. a score the library does not register), else
    :func:`tutorial_lib.metrics.is_lower_better` of ``metric``; ``None`` when there is no metric.
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
