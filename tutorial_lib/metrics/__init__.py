"""Scores of predicted cells: per-gene agreement, distances between cells, DEG overlap.

Each formula is documented once, in the function that computes it. The course's scoring table
(every metric with bootstrap intervals) is built from these functions by ``course_tools.scoring``.
"""

from dataclasses import dataclass

from tutorial_lib.metrics._inputs import gene_means, gene_vars
from tutorial_lib.metrics.degs import deg_jaccard, deg_overlap_count, deg_scores, rank_degs, top_k
from tutorial_lib.metrics.distances import e_distance, pairwise_e_distance
from tutorial_lib.metrics.means import is_constant, mse, pearson, pearson_delta, r2_pearson, r2_score
from tutorial_lib.metrics.space import SharedSpace, fit_shared_pca


@dataclass(frozen=True)
class KeyMetric:
    """One of the metrics the course reads first, on one gene set, with the question it answers."""

    metric: str
    gene_set: str
    question: str


#: The course's four key metrics, in the order the notebooks show them (top-100 DEGs of real data).
KEY_METRICS = (
    KeyMetric("pearson_delta", "top100_degs", "Does the prediction move the responding genes in the right direction?"),
    KeyMetric("r2_pearson_mean", "top100_degs", "Does it get the mean expression of the responding genes right?"),
    KeyMetric("e_distance", "all", "How far are the predicted cells, as a population, from the real ones?"),
    KeyMetric(
        "deg_overlap_by_change",
        "top100_degs",
        "How many of the 100 real top responders are among the 100 genes it changes most?",
    ),
)

__all__ = ["KEY_METRICS", "KeyMetric", "SharedSpace", "deg_jaccard", "deg_overlap_count", "deg_scores"]
__all__ += ["e_distance", "fit_shared_pca", "gene_means", "gene_vars", "is_constant", "mse"]
__all__ += ["pairwise_e_distance", "pearson", "pearson_delta", "r2_pearson", "r2_score", "rank_degs", "top_k"]
