"""Simple baselines every model must beat. AnnData in, AnnData out, like the models' ``predict``.

All take ``train_adata`` (training cells: every cell type's controls, stimulated cells of the
non-held-out types) and ``adata_to_predict`` (the control cells to predict from). The perturbation
effect is learnt from the training cell types with both conditions, *excluding* ``cell_type``
(the held-out type, whose stimulated cells are unseen). Both inputs are checked as the models
check theirs: log1p-normalised expression (finite, non-negative, not raw counts, on any number of
genes), each training gene once in the targets, and control cells only among the targets.

* :func:`no_change`: the control cells themselves.
* :func:`mean_shift`: controls + (mean stimulated − mean control) in gene space, clipped at 0.
* :func:`pca_arithmetic`: the scGen paper's PCA + vector arithmetic baseline: PCA fitted on the
  training cells, ``delta`` = mean PC score (stimulated) − mean PC score (control), target PC
  scores + delta mapped back to genes, clipped at 0.
"""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from sklearn.decomposition import PCA

from tutorial_lib.data.checks import (
    CELL_TYPE_KEY,
    CONDITION_KEY,
    CONTROL,
    STIMULATED,
    check_log_normalised,
    require_conditions,
)
from tutorial_lib.models.base import (
    dense_x,
    obs_labels,
    prediction_adata,
    require_control_targets,
    require_unique_genes,
    shared_cell_types,
)
from tutorial_lib.models.vae import check_int


def _checked_targets(
    train_adata: AnnData, adata_to_predict: AnnData, condition_key: str, ctrl_key: str = CONTROL
) -> np.ndarray:
    """``adata_to_predict``'s expression in the training gene order, once both inputs are checked.

    Both must be log1p-normalised (:func:`~tutorial_lib.data.checks.check_log_normalised`: finite,
    non-negative, not raw counts, on any number of genes), as for the models: a NaN control cell
    would give a NaN prediction, raw controls a count matrix plus a log-scale shift. The targets
    must be control cells only and hold each training gene once.
    """
    require_unique_genes(train_adata, "train_adata")
    check_log_normalised(train_adata.X, "train_adata.X")
    require_control_targets(adata_to_predict, condition_key, ctrl_key)
    x = dense_x(adata_to_predict, train_adata.var_names, what="adata_to_predict")
    check_log_normalised(x, "adata_to_predict.X")
    return x


def _effect_cells(
    train_adata: AnnData, cell_type: str | None, condition_key: str, cell_type_key: str, ctrl_key: str, stim_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (control, stimulated) of the training cells the effect is learnt from."""
    require_conditions(train_adata, condition_key)
    types, conds = obs_labels(train_adata, cell_type_key), obs_labels(train_adata, condition_key)
    keep = np.isin(
        types,
        shared_cell_types(types, conds, ctrl_key=ctrl_key, stim_key=stim_key, exclude=[cell_type] if cell_type else []),
    )
    return keep & (conds == ctrl_key), keep & (conds == stim_key)


def _output(
    x: np.ndarray,
    adata_to_predict: AnnData,
    var_names,
    method: str,
    cell_type: str | None,
    condition_key: str,
    cell_type_key: str,
) -> AnnData:
    return prediction_adata(
        x,
        adata_to_predict,
        var_names,
        method=method,
        condition_key=condition_key,
        cell_type_key=cell_type_key,
        cell_type=cell_type,
    )


def no_change(
    train_adata: AnnData,
    adata_to_predict: AnnData,
    *,
    cell_type: str | None = None,
    condition_key: str = CONDITION_KEY,
    cell_type_key: str = CELL_TYPE_KEY,
) -> AnnData:
    """The control cells as the prediction (genes in the training order)."""
    x = _checked_targets(train_adata, adata_to_predict, condition_key)
    return _output(x, adata_to_predict, train_adata.var_names, "no_change", cell_type, condition_key, cell_type_key)


def mean_shift(
    train_adata: AnnData,
    adata_to_predict: AnnData,
    *,
    cell_type: str | None = None,
    condition_key: str = CONDITION_KEY,
    cell_type_key: str = CELL_TYPE_KEY,
    ctrl_key: str = CONTROL,
    stim_key: str = STIMULATED,
) -> AnnData:
    """Controls + (mean stimulated − mean control of the training cell types other than ``cell_type``), clipped at 0."""
    x_targets = _checked_targets(train_adata, adata_to_predict, condition_key, ctrl_key)
    ctrl_mask, stim_mask = _effect_cells(train_adata, cell_type, condition_key, cell_type_key, ctrl_key, stim_key)
    x_train = dense_x(train_adata)
    delta = x_train[stim_mask].mean(axis=0) - x_train[ctrl_mask].mean(axis=0)
    x = np.clip(x_targets + delta, 0.0, None)
    return _output(x, adata_to_predict, train_adata.var_names, "mean_shift", cell_type, condition_key, cell_type_key)


def pca_arithmetic(
    train_adata: AnnData,
    adata_to_predict: AnnData,
    *,
    cell_type: str | None = None,
    n_components: int = 50,
    seed: int = 0,
    condition_key: str = CONDITION_KEY,
    cell_type_key: str = CELL_TYPE_KEY,
    ctrl_key: str = CONTROL,
    stim_key: str = STIMULATED,
) -> AnnData:
    """Vector arithmetic in the space of the first ``n_components`` PCs of the training cells, clipped at 0.

    ``n_components`` is capped at ``min(n_cells, n_genes)``; ``seed`` seeds the randomised SVD.
    """
    check_int("n_components", n_components, 1)
    x_targets = _checked_targets(train_adata, adata_to_predict, condition_key, ctrl_key)
    ctrl_mask, stim_mask = _effect_cells(train_adata, cell_type, condition_key, cell_type_key, ctrl_key, stim_key)
    x_train = dense_x(train_adata)
    pca = PCA(n_components=min(n_components, *x_train.shape), random_state=seed).fit(x_train)
    scores = pca.transform(x_train)
    delta = scores[stim_mask].mean(axis=0) - scores[ctrl_mask].mean(axis=0)
    target = pca.transform(x_targets)
    x = np.clip(pca.inverse_transform(target + delta), 0.0, None)
    return _output(
        x, adata_to_predict, train_adata.var_names, "pca_arithmetic", cell_type, condition_key, cell_type_key
    )
