"""Preprocessing: library-size normalisation with log1p, and gene selection without leakage."""

from __future__ import annotations

import numpy as np
import scanpy as sc
from anndata import AnnData

from tutorial_lib.config import check_whole_number
from tutorial_lib.data.checks import DataValidationError, check_counts, require_nonempty


def normalise_log(adata: AnnData) -> AnnData:
    """Set ``X`` to log1p(counts / cell total * 1e4) from ``layers["counts"]``, in place.

    Each cell is normalised by its own counts, so nothing leaks between cells or splits. As with
    scanpy, ``uns["log1p"]`` marks the result as log data; data so marked are not normalised again.
    """
    if "log1p" in adata.uns:
        raise DataValidationError("X is already log-normalised (uns['log1p'] is set); do not normalise twice")
    if "counts" not in adata.layers:
        raise DataValidationError(
            f"No layer 'counts' with raw counts; available layers: {list(adata.layers)}. "
            "Load the data with tutorial_lib.data.load_kang2018 or harmonise(...)"
        )
    check_counts(adata.layers["counts"], "layers['counts']")
    adata.X = adata.layers["counts"].copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.X = adata.X.astype(np.float32)
    return adata


def select_hvg(adata: AnnData, *, n_top_genes: int = 2000, train_mask: np.ndarray | None = None) -> AnnData:
    """A copy with the ``n_top_genes`` most variable genes (scanpy's "seurat" flavour) of the training cells.

    ``train_mask`` marks the training cells (default ``obs["split"] == "train"``): held-out cells
    never influence the choice. Adds ``var["highly_variable_rank"]`` and ``uns["hvg"]``.
    """
    if train_mask is None:
        if "split" not in adata.obs:
            raise DataValidationError(
                "select_hvg needs the training cells: pass train_mask or assign obs['split'] first "
                "(tutorial_lib.data.assign_holdout); selecting genes on all cells would leak the held-out cells"
            )
        train_mask = (adata.obs["split"] == "train").to_numpy()
    train_mask = np.asarray(train_mask, dtype=bool)
    if train_mask.shape != (adata.n_obs,):
        raise DataValidationError(f"train_mask has shape {train_mask.shape}, expected ({adata.n_obs},)")
    require_nonempty(adata[train_mask], "The training set")
    n_top_genes = check_whole_number(n_top_genes, "n_top_genes", 1, adata.n_vars)
    stats = sc.pp.highly_variable_genes(adata[train_mask], n_top_genes=n_top_genes, flavor="seurat", inplace=False)
    stats.index = adata.var_names
    out = adata[:, stats["highly_variable"].to_numpy()].copy()
    rank = stats["dispersions_norm"].rank(ascending=False, method="first")
    out.var["highly_variable_rank"] = rank.loc[out.var_names].to_numpy()
    out.uns["hvg"] = {"n_top_genes": n_top_genes, "n_train_cells": int(train_mask.sum())}
    return out
