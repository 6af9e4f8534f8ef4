"""Preprocessing: library-size normalisation, log1p, and leak-free gene selection."""

from __future__ import annotations

import numpy as np
import scanpy as sc
from anndata import AnnData

from tutorial_lib.config import check_whole_number
from tutorial_lib.data.checks import DataValidationError, check_counts, require_nonempty


def normalise_log(adata: AnnData, *, target_sum: float = 1e4, counts_layer: str = "counts") -> AnnData:
    """Set ``X`` to log1p(counts / total * ``target_sum``), in place; the count layer is kept.

    Per-cell normalisation uses each cell's own counts only, so it cannot leak information
    between cells or splits. As in scanpy, ``uns["log1p"]`` marks the result as log data (the
    course reads it: data with that key are not normalised again).
    """
    if "log1p" in adata.uns:
        raise DataValidationError("X is already log-normalised (uns['log1p'] is set); do not normalise twice")
    if counts_layer not in adata.layers:
        raise DataValidationError(
            f"No layer {counts_layer!r} with raw counts; available layers: {list(adata.layers)}. "
            "Load the data with tutorial_lib.data.load_kang2018 or harmonise(...)"
        )
    counts = adata.layers[counts_layer]
    check_counts(counts, f"layers[{counts_layer!r}]")
    adata.X = counts.copy()
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)
    adata.X = adata.X.astype(np.float32)
    return adata


def select_hvg(
    adata: AnnData,
    *,
    n_top_genes: int = 2000,
    train_mask: np.ndarray | None = None,
    split_key: str = "split",
    train_label: str = "train",
    flavor: str = "seurat",
    keep_genes: list[str] | None = None,
) -> AnnData:
    """Keep the ``n_top_genes`` highly variable genes, **chosen on training cells only**.

    Parameters
    ----------
    adata
        Log-normalised data (see :func:`normalise_log`).
    n_top_genes
        Number of genes to keep: a whole number from 1 to the number of genes.
    train_mask
        Boolean mask of training cells; default ``obs[split_key] == train_label``. Held-out
        cells never influence which genes are selected.
    keep_genes
        Genes kept whatever their variability (e.g. genes a figure needs); must exist.

    Returns
    -------
    A new AnnData restricted to the selected genes, with ``var["highly_variable_rank"]``.
    """
    if train_mask is None:
        if split_key not in adata.obs:
            raise DataValidationError(
                f"select_hvg needs the training cells: pass train_mask or assign obs[{split_key!r}] first "
                "(tutorial_lib.data.assign_holdout); selecting genes on all cells would leak the held-out cells"
            )
        train_mask = (adata.obs[split_key] == train_label).to_numpy()
    train_mask = np.asarray(train_mask, dtype=bool)
    if train_mask.shape != (adata.n_obs,):
        raise DataValidationError(f"train_mask has shape {train_mask.shape}, expected ({adata.n_obs},)")
    train = adata[train_mask]
    require_nonempty(train, "The training set")
    n_top_genes = check_whole_number(n_top_genes, "n_top_genes", 1, adata.n_vars)
    stats = sc.pp.highly_variable_genes(train, n_top_genes=n_top_genes, flavor=flavor, inplace=False)
    stats.index = adata.var_names
    rank = stats["dispersions_norm"].rank(ascending=False, method="first")
    selected = stats.index[stats["highly_variable"].to_numpy()]
    if keep_genes:
        unknown = [g for g in keep_genes if g not in adata.var_names]
        if unknown:
            raise DataValidationError(f"keep_genes not in var_names: {unknown[:5]}")
        selected = selected.union(keep_genes, sort=False)
    mask = adata.var_names.isin(selected)
    out = adata[:, mask].copy()
    out.var["highly_variable_rank"] = rank.loc[out.var_names].to_numpy()
    out.uns["hvg"] = {"n_top_genes": int(n_top_genes), "n_train_cells": int(train_mask.sum())}
    return out
