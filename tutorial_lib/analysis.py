"""Analyses the notebooks show beside the metrics: expression changes and batch mixing.

These are descriptive tools (what changes, how similar responses are, how well batches mix),
not the scores of a prediction; those live in :mod:`tutorial_lib.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from tutorial_lib.data.checks import DataValidationError, require_obs_keys
from tutorial_lib.metrics._inputs import gene_means


def mean_change(after: AnnData, before: AnnData) -> pd.Series:
    """Per-gene mean log-expression of ``after`` minus that of ``before`` (same genes required)."""
    if list(after.var_names) != list(before.var_names):
        missing = sorted(set(before.var_names) ^ set(after.var_names))[:5]
        raise DataValidationError(f"after and before must have the same genes in the same order (differ: {missing})")
    return pd.Series(gene_means(after.X) - gene_means(before.X), index=after.var_names, name="change")


def change_correlations(changes: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Pearson correlation between expression-change vectors (e.g. per cell type), as a square table."""
    if len(changes) < 2:
        raise ValueError("need at least two change vectors to correlate")
    frame = pd.DataFrame(dict(changes))
    if frame.isna().any().any():
        raise DataValidationError("change vectors must share the same genes")
    return frame.corr(method="pearson")


def predicted_and_real_changes(
    model,
    adata: AnnData,
    cell_types: Sequence[str],
    *,
    condition_key: str = "condition",
    cell_type_key: str = "cell_type",
    seed: int = 0,
) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """For each cell type: the change a trained model predicts for its controls, and the real change.

    ``adata`` holds control and stimulated cells of these cell types (log-normalised, the model's
    genes). Returns two dicts ``{cell type: per-gene change}`` (predicted, real).
    """
    require_obs_keys(adata, [condition_key, cell_type_key])
    predicted, real = {}, {}
    for cell_type in cell_types:
        in_type = (adata.obs[cell_type_key] == cell_type).to_numpy()
        ctrl = adata[in_type & (adata.obs[condition_key] == "control").to_numpy()]
        stim = adata[in_type & (adata.obs[condition_key] == "stimulated").to_numpy()]
        if ctrl.n_obs == 0 or stim.n_obs == 0:
            raise DataValidationError(f"cell type {cell_type!r} needs control and stimulated cells")
        pred = model.predict(cell_type, adata_to_predict=ctrl, seed=seed)
        predicted[cell_type] = mean_change(pred, ctrl)
        real[cell_type] = mean_change(stim, ctrl)
    return predicted, real


def batch_silhouette(coords: np.ndarray, batches: Sequence[str], *, max_cells: int = 3000, seed: int = 0) -> float:
    """Silhouette width of ``batches`` in ``coords`` (seeded subsample of at most ``max_cells`` cells).

    Near 0: batches are mixed; towards 1: batches form separate clusters. Lower is better for
    batch removal.
    """
    from sklearn.metrics import silhouette_score

    labels = np.asarray(batches).astype(str)
    if len(np.unique(labels)) < 2:
        raise ValueError("need at least two batches")
    return float(silhouette_score(coords, labels, sample_size=min(max_cells, len(labels)), random_state=seed))


def mean_off_diagonal(square: pd.DataFrame) -> float:
    """Mean of the off-diagonal entries of a square table (e.g. between-cell-type correlations)."""
    values = np.asarray(square, dtype=float)
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] < 2:
        raise ValueError(f"need a square table of at least 2 x 2, got shape {values.shape}")
    return float(values[~np.eye(values.shape[0], dtype=bool)].mean())


def delta_spread(deltas: np.ndarray) -> np.ndarray:
    """Per cell: Euclidean distance of its latent delta from the mean delta (0 for a single shared delta)."""
    deltas = np.asarray(deltas, dtype=np.float64)
    if deltas.ndim != 2 or deltas.shape[0] == 0:
        raise ValueError(f"deltas must be a non-empty cells x latent array, got shape {deltas.shape}")
    return np.linalg.norm(deltas - deltas.mean(axis=0), axis=1)


def ot_partner_index(pairs: pd.DataFrame) -> tuple[pd.Index, pd.Index, np.ndarray]:
    """Control cells, their distinct stimulated OT partners, and which partner each control has.

    ``pairs`` is the ``uns["scpram"]["ot_pairs"]`` table of an scPRAM prediction (one row per
    reference control cell: ``ctrl_cell``, ``stim_cell``, ...). Returns ``(ctrl_cells, stim_cells,
    partner)``: the control cell names in row order, the stimulated partners without repeats (in
    order of first appearance; several controls can share one), and ``partner[i]``, the position in
    ``stim_cells`` of control ``i``'s partner; the inputs of
    :func:`~tutorial_lib.plotting.ot_matching_plot` once mapped to latents.
    """
    if not isinstance(pairs, pd.DataFrame):
        raise DataValidationError(
            f"pairs must be a DataFrame (a prediction's uns['scpram']['ot_pairs']), got {type(pairs).__name__}"
        )
    missing = [c for c in ("ctrl_cell", "stim_cell") if c not in pairs.columns]
    if missing:
        raise DataValidationError(
            f"pairs lacks the columns {missing}; pass an scPRAM prediction's uns['scpram']['ot_pairs'] "
            f"(columns found: {list(pairs.columns)})"
        )
    if pairs.empty:
        raise DataValidationError("pairs is empty: no control cell was matched")
    stim_cells = pd.Index(pd.unique(pairs["stim_cell"].to_numpy()))
    partner = stim_cells.get_indexer(pairs["stim_cell"].to_numpy())
    return pd.Index(pairs["ctrl_cell"].to_numpy()), stim_cells, partner
