"""Descriptive analyses the notebooks show beside the scores: expression changes and batch mixing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, DataValidationError, require_obs_keys
from tutorial_lib.metrics import gene_means


def mean_change(after: AnnData, before: AnnData) -> pd.Series:
    """Per-gene mean log-expression of ``after`` minus that of ``before`` (same genes, same order)."""
    if list(after.var_names) != list(before.var_names):
        differ = sorted(set(before.var_names) ^ set(after.var_names))[:5]
        raise DataValidationError(f"after and before must have the same genes in the same order (differ: {differ})")
    return pd.Series(gene_means(after.X) - gene_means(before.X), index=after.var_names, name="change")


def change_correlations(changes: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Pearson correlations between change vectors (e.g. one per cell type), as a square table."""
    if len(changes) < 2:
        raise ValueError("need at least two change vectors to correlate")
    frame = pd.DataFrame(dict(changes))
    if frame.isna().any().any():
        raise DataValidationError("change vectors must share the same genes")
    return frame.corr(method="pearson")


def mean_off_diagonal(square: pd.DataFrame) -> float:
    """Mean of the off-diagonal entries of a square table (e.g. between-cell-type correlations)."""
    values = np.asarray(square, dtype=float)
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] < 2:
        raise ValueError(f"need a square table of at least 2 x 2, got shape {values.shape}")
    return float(values[~np.eye(values.shape[0], dtype=bool)].mean())


def predicted_and_real_changes(
    model, adata: AnnData, cell_types: Sequence[str], *, seed: int = 0
) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """Per cell type of ``adata`` (log-normalised, the model's genes): the predicted and the real mean change."""
    require_obs_keys(adata, [CONDITION_KEY, CELL_TYPE_KEY])
    predicted, real = {}, {}
    for cell_type in cell_types:
        in_type = (adata.obs[CELL_TYPE_KEY] == cell_type).to_numpy()
        ctrl = adata[in_type & (adata.obs[CONDITION_KEY] == "control").to_numpy()]
        stim = adata[in_type & (adata.obs[CONDITION_KEY] == "stimulated").to_numpy()]
        if ctrl.n_obs == 0 or stim.n_obs == 0:
            raise DataValidationError(f"cell type {cell_type!r} needs control and stimulated cells")
        predicted[cell_type] = mean_change(model.predict(cell_type, adata_to_predict=ctrl, seed=seed), ctrl)
        real[cell_type] = mean_change(stim, ctrl)
    return predicted, real


def batch_silhouette(coords: np.ndarray, batches: Sequence[str], *, max_cells: int = 3000, seed: int = 0) -> float:
    """Silhouette width of ``batches`` in ``coords`` (seeded subsample): near 0 mixed, towards 1 apart."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(batches).astype(str)
    if len(np.unique(labels)) < 2:
        raise ValueError("need at least two batches")
    return float(silhouette_score(coords, labels, sample_size=min(max_cells, len(labels)), random_state=seed))


def delta_spread(deltas: np.ndarray) -> np.ndarray:
    """Per cell, the Euclidean distance of its latent delta from the mean delta."""
    deltas = np.asarray(deltas, dtype=np.float64)
    if deltas.ndim != 2 or deltas.shape[0] == 0:
        raise ValueError(f"deltas must be a non-empty cells x latent array, got shape {deltas.shape}")
    return np.linalg.norm(deltas - deltas.mean(axis=0), axis=1)
