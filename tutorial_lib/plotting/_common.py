"""Small helpers shared by the plotting modules."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

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
