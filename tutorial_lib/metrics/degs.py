"""Differentially expressed genes (DEGs) and the overlap of two DEG lists.

Two ranking conventions (``direction``):

* ``"abs"`` (the course's default): the top k genes by ``|score|``, so up- and down-regulated
  genes both count; gene set name ``"top{k}_degs"``.
* ``"up"`` (the convention of the scGen and scPRAM papers, which report the top-100
  *up-regulated* genes): the top k genes by signed score (largest first); gene set name
  ``"top{k}_up_degs"``. When fewer than k genes have a positive score, the list is filled with
  the next-highest (non-positive) scores.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from anndata import AnnData
from scipy.stats import hypergeom

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics._inputs import CellsLike, aligned_matrices

_GROUP = "_deg_group"
DEG_DIRECTIONS = ("abs", "up")


def deg_scores(
    stim: CellsLike,
    ctrl: CellsLike,
    method: str = "wilcoxon",
    var_names: Sequence[str] | None = None,
) -> pd.Series:
    """Per-gene test statistic of ``stim`` vs ``ctrl`` from ``scanpy.tl.rank_genes_groups``.

    With ``method="wilcoxon"`` the score is the z-score of the Wilcoxon rank-sum statistic
    (positive: higher in ``stim``). Expression should be log-normalised. Returns a Series
    indexed by gene, in the input gene order.
    """
    mats, names = aligned_matrices({"stimulated cells": stim, "control cells": ctrl}, var_names=var_names)
    for what, x in mats.items():
        if x.shape[0] < 2:
            raise DataValidationError(f"{what}: need at least 2 cells to rank genes, got {x.shape[0]}")
    a, b = mats["stimulated cells"], mats["control cells"]
    x = sp.vstack([a, b], format="csr") if sp.issparse(a) or sp.issparse(b) else np.vstack([a, b])
    if not sp.issparse(x):
        x = np.asarray(x, dtype=np.float64)
    labels = np.array(["stim"] * a.shape[0] + ["ctrl"] * b.shape[0])
    ad = AnnData(X=x, obs=pd.DataFrame({_GROUP: pd.Categorical(labels)}, index=[str(i) for i in range(len(labels))]))
    ad.var_names = names
    ad.uns["log1p"] = {"base": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(
            ad, _GROUP, groups=["stim"], reference="ctrl", method=method, n_genes=ad.n_vars, use_raw=False
        )
    res = ad.uns["rank_genes_groups"]
    genes = np.asarray(res["names"]["stim"], dtype=str)
    scores = np.asarray(res["scores"]["stim"], dtype=np.float64)
    return pd.Series(scores, index=genes).reindex(names).fillna(0.0)


def rank_degs(
    stim: CellsLike,
    ctrl: CellsLike,
    k: int = 100,
    method: str = "wilcoxon",
    var_names: Sequence[str] | None = None,
    direction: str = "abs",
) -> list[str]:
    """Top ``k`` DEGs of ``stim`` vs ``ctrl``, ranked by absolute score (or up-regulated only).

    Scores come from :func:`deg_scores` (Wilcoxon via ``scanpy.tl.rank_genes_groups``); with
    ``direction="abs"`` genes are ranked by ``|score|`` so that up- and down-regulated genes both
    count; with ``direction="up"`` by signed score, the papers' "top-100 up-regulated genes"
    (see the module docstring). Ties keep the input gene order. In
    :func:`~tutorial_lib.metrics.evaluate` the scored DEG set is ``rank_degs(real stimulated,
    real control)`` of the held-out group: predictions never influence which genes are scored.
    """
    if direction not in DEG_DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DEG_DIRECTIONS)}; got {direction!r}")
    return top_k(deg_scores(stim, ctrl, method=method, var_names=var_names), k, direction)


def top_k(scores: pd.Series, k: int, direction: str = "abs") -> list[str]:
    """The ``k`` top genes of ``scores`` by ``|score|`` (``"abs"``) or by signed score (``"up"``)."""
    if direction not in DEG_DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DEG_DIRECTIONS)}; got {direction!r}")
    if direction == "abs":
        return top_k_by_abs(scores, k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-scores.to_numpy(), kind="stable")
    return [str(g) for g in scores.index[order[:k]]]


def deg_gene_set_name(k: int, direction: str = "abs") -> str:
    """Name of the top-k DEG gene set in evaluation tables: ``"top{k}_degs"`` or ``"top{k}_up_degs"``."""
    if direction not in DEG_DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DEG_DIRECTIONS)}; got {direction!r}")
    return f"top{k}_degs" if direction == "abs" else f"top{k}_up_degs"


def top_k_by_abs(scores: pd.Series, k: int) -> list[str]:
    """The ``k`` genes (index of ``scores``) with the largest ``|score|``; ties keep the input order."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-np.abs(scores.to_numpy()), kind="stable")
    return [str(g) for g in scores.index[order[:k]]]


#: DEG scores below this in absolute value count as "no difference at all".
NO_CHANGE_SCORE = 1e-8


def has_no_change(scores: pd.Series) -> bool:
    """True when every gene's score is ~0: the two groups do not differ, so no gene ranks above another."""
    return bool(np.all(np.abs(scores.to_numpy()) < NO_CHANGE_SCORE))


def deg_overlap_count(degs_a: Sequence[str], degs_b: Sequence[str]) -> int:
    r"""Number of genes in both lists, :math:`|A \cap B|`."""
    return len(set(degs_a) & set(degs_b))


def deg_jaccard(degs_a: Sequence[str], degs_b: Sequence[str]) -> float:
    r"""Jaccard index :math:`|A \cap B| / |A \cup B|` of two gene lists (1 for equal sets)."""
    a, b = set(degs_a), set(degs_b)
    if not a and not b:
        raise DataValidationError("both DEG lists are empty")
    return len(a & b) / len(a | b)


def chance_overlap(k: int, n_genes: int) -> float:
    """Expected overlap of a random list of ``k`` of ``n_genes`` genes with a fixed list of ``k``: k²/n."""
    return k * k / n_genes


def chance_jaccard(k: int, n_genes: int) -> float:
    """Expected Jaccard index of a random list of ``k`` of ``n_genes`` genes with a fixed list of ``k``.

    The overlap ``o`` is hypergeometric; the index is ``o / (2k - o)``, averaged over its distribution.
    """
    o = np.arange(k + 1)
    pmf = hypergeom(n_genes, k, k).pmf(o)
    return float(np.sum(pmf * o / (2 * k - o)))
