"""Figures of the course's evaluation: each function takes ``ax=None`` and returns its Axes/Figure."""

from tutorial_lib.plotting.bars import metric_bar_grid, metric_bars
from tutorial_lib.plotting.dotplot import deg_dotplot
from tutorial_lib.plotting.embedding import embedding_plot
from tutorial_lib.plotting.heatmap import distance_heatmap, shared_scale_heatmaps
from tutorial_lib.plotting.overview import (
    ISG_GENES,
    attention_heatmap,
    delta_spread_hist,
    ot_matching_plot,
    response_by_cell_type,
    response_heatmap,
    training_curves,
    umap_overview,
)
from tutorial_lib.plotting.scatter import mean_scatter, summary_scatter, var_scatter

__all__ = [
    "ISG_GENES",
    "attention_heatmap",
    "delta_spread_hist",
    "ot_matching_plot",
    "response_by_cell_type",
    "response_heatmap",
    "training_curves",
    "umap_overview",
    "deg_dotplot",
    "distance_heatmap",
    "shared_scale_heatmaps",
    "embedding_plot",
    "mean_scatter",
    "metric_bar_grid",
    "metric_bars",
    "summary_scatter",
    "var_scatter",
]
