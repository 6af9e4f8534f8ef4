"""Differentially expressed genes (DEGs) and the overlap of two DEG lists.

Two rankings (``direction``): ``"abs"``, the course's default, takes the top k genes by
``|score|`` so up- and down-regulated genes both count (gene set ``"top{k}_degs"``); ``"up"``
takes the top k by signed score, the "top-100 up-regulated genes" of the scGen and scPRAM papers
(gene set ``"top{k}_up_degs"``; filled with non-positive scores when fewer than k are positive).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from anndata import AnnData

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics._inputs import CellsLike, aligned_matrices

_GROUP = "_deg_group"
DEG_DIRECTIONS = ("abs", "up")


def deg_scores(
    stim: CellsLike, ctrl: CellsLike, method: str = "wilcoxon", var_names: Sequence[str] | None = None
) -> pd.Series:
    """Per-gene statistic of ``stim`` vs ``ctrl`` from ``scanpy.tl.rank_genes_groups``, indexed by gene.

    With ``method="wilcoxon"``: the z-score of the rank-sum statistic, positive where ``stim`` is
    higher. Expression should be log-normalised; genes keep the input order.
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


def top_k(scores: pd.Series, k: int, direction: str = "abs") -> list[str]:
    """The ``k`` genes with the largest ``|score|`` (``"abs"``) or score (``"up"``); ties keep the input order."""
    if direction not in DEG_DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DEG_DIRECTIONS)}; got {direction!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    values = scores.to_numpy()
    order = np.argsort(-np.abs(values) if direction == "abs" else -values, kind="stable")
    return [str(g) for g in scores.index[order[:k]]]


def rank_degs(
    stim: CellsLike,
    ctrl: CellsLike,
    k: int = 100,
    method: str = "wilcoxon",
    var_names: Sequence[str] | None = None,
    direction: str = "abs",
) -> list[str]:
    """Top ``k`` DEGs of ``stim`` vs ``ctrl``: :func:`top_k` of :func:`deg_scores` (Wilcoxon).

    A benchmark ranks them on the real stimulated and control cells of the held-out group, so
    predictions never choose which genes are scored.
    """
    if direction not in DEG_DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DEG_DIRECTIONS)}; got {direction!r}")
    return top_k(deg_scores(stim, ctrl, method=method, var_names=var_names), k, direction)


def deg_overlap_count(degs_a: Sequence[str], degs_b: Sequence[str]) -> int:
    r"""Number of genes in both lists, :math:`|A \cap B|`.

    With ``A`` the real top-k DEGs and ``B`` the k genes of largest predicted change, this is the
    course's "DEG overlap by change"; a random list of k of n genes reaches k²/n on average.
    """
    return len(set(degs_a) & set(degs_b))


def deg_jaccard(degs_a: Sequence[str], degs_b: Sequence[str]) -> float:
    r"""Jaccard index :math:`|A \cap B| / |A \cup B|` of two gene lists (1 for equal sets)."""
    a, b = set(degs_a), set(degs_b)
    if not a and not b:
        raise DataValidationError("both DEG lists are empty")
    return len(a & b) / len(a | b)
