"""Evaluation of predicted cells: per-gene agreement, distribution distances, DEG overlap.

Every formula is documented once, in the docstring of the function that computes it. Each metric
of :func:`evaluate` is declared once, as a :class:`Metric` record in :mod:`~tutorial_lib.metrics.registry`;
:func:`evaluate` gathers them all in a tidy table with bootstrap intervals.
"""

from tutorial_lib.metrics._inputs import gene_means, gene_vars
from tutorial_lib.metrics.bootstrap import Interval, bootstrap_weights, interval, resample_indices, subsample_masks
from tutorial_lib.metrics.degs import deg_jaccard, deg_overlap_count, deg_scores, has_no_change, rank_degs, top_k_by_abs
from tutorial_lib.metrics.distances import (
    ENERGY,
    RBF_MMD,
    PairDistance,
    PairwiseCache,
    e_distance,
    e_distance_sq,
    median_heuristic_bandwidths,
    mmd,
    pairwise_e_distance,
)
from tutorial_lib.metrics.evaluate import COLUMNS, GENE_METRICS, INTERVALS, LOWER_IS_BETTER, evaluate
from tutorial_lib.metrics.kde import mean_var_kde_distance
from tutorial_lib.metrics.means import (
    is_constant,
    mse,
    pearson,
    pearson_delta,
    pearson_delta_note,
    r2_pearson,
    r2_score,
)
from tutorial_lib.metrics.registry import (
    KEY_METRICS,
    GeneSummaries,
    KeyMetric,
    Metric,
    get_metric,
    is_lower_better,
    list_metrics,
    register_metric,
    registered,
    unregister_metric,
)
from tutorial_lib.metrics.space import SharedSpace, fit_shared_pca, gene_space

__all__ = [
    "COLUMNS",
    "ENERGY",
    "GENE_METRICS",
    "INTERVALS",
    "KEY_METRICS",
    "LOWER_IS_BETTER",
    "RBF_MMD",
    "GeneSummaries",
    "Interval",
    "KeyMetric",
    "Metric",
    "PairDistance",
    "PairwiseCache",
    "SharedSpace",
    "bootstrap_weights",
    "deg_jaccard",
    "deg_overlap_count",
    "deg_scores",
    "e_distance",
    "e_distance_sq",
    "evaluate",
    "fit_shared_pca",
    "gene_means",
    "gene_space",
    "gene_vars",
    "get_metric",
    "has_no_change",
    "interval",
    "is_constant",
    "is_lower_better",
    "list_metrics",
    "mean_var_kde_distance",
    "median_heuristic_bandwidths",
    "mmd",
    "mse",
    "pairwise_e_distance",
    "pearson",
    "pearson_delta",
    "pearson_delta_note",
    "r2_pearson",
    "r2_score",
    "rank_degs",
    "register_metric",
    "registered",
    "resample_indices",
    "subsample_masks",
    "top_k_by_abs",
    "unregister_metric",
]
