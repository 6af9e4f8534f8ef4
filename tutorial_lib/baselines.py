"""The baselines every model must beat (AnnData in, AnnData out, like the models' ``predict``).

The effect is learnt from the training cell types with both conditions other than ``cell_type``
(the held-out type). Inputs are checked as the models check theirs (log1p scale, control targets).
"""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from tutorial_lib.data import checks
from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED
from tutorial_lib.models import base


def checked_targets(train: AnnData, targets: AnnData, condition_key: str, ctrl_key: str = CONTROL) -> np.ndarray:
    """``targets``' expression in the training gene order, once both are checked (log1p, controls only)."""
    base.require_unique_genes(train, "train_adata")
    checks.check_log_normalised(train.X, "train_adata.X")
    base.require_control_targets(targets, condition_key, ctrl_key)
    x = base.dense_x(targets, train.var_names, what="adata_to_predict")
    checks.check_log_normalised(x, "adata_to_predict.X")
    return x


def effect_cells(train: AnnData, cell_type, condition_key, cell_type_key, ctrl_key, stim_key) -> tuple:
    """Masks (control, stimulated) of the training cells of the types with both conditions, minus ``cell_type``."""
    checks.require_conditions(train, condition_key)
    types, conds = base.obs_labels(train, cell_type_key), base.obs_labels(train, condition_key)
    exclude = [cell_type] if cell_type else []
    keep = np.isin(types, base.shared_cell_types(types, conds, ctrl_key=ctrl_key, stim_key=stim_key, exclude=exclude))
    return keep & (conds == ctrl_key), keep & (conds == stim_key)


def output(x, targets: AnnData, train: AnnData, method: str, cell_type, condition_key, cell_type_key) -> AnnData:
    """A baseline's prediction as AnnData (:func:`~tutorial_lib.models.base.prediction_adata`)."""
    kwargs = {"condition_key": condition_key, "cell_type_key": cell_type_key, "cell_type": cell_type}
    return base.prediction_adata(x, targets, train.var_names, method=method, **kwargs)


def no_change(
    train_adata: AnnData,
    adata_to_predict: AnnData,
    *,
    cell_type: str | None = None,
    condition_key: str = CONDITION_KEY,
    cell_type_key: str = CELL_TYPE_KEY,
) -> AnnData:
    """The control cells themselves: the floor any model must clear."""
    x = checked_targets(train_adata, adata_to_predict, condition_key)
    return output(x, adata_to_predict, train_adata, "no_change", cell_type, condition_key, cell_type_key)


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
    """Controls + (mean stimulated − mean control) of the other training cell types, in gene space, clipped at 0."""
    x = checked_targets(train_adata, adata_to_predict, condition_key, ctrl_key)
    ctrl, stim = effect_cells(train_adata, cell_type, condition_key, cell_type_key, ctrl_key, stim_key)
    x_train = base.dense_x(train_adata)
    delta = x_train[stim].mean(axis=0) - x_train[ctrl].mean(axis=0)
    x = np.clip(x + delta, 0.0, None)
    return output(x, adata_to_predict, train_adata, "mean_shift", cell_type, condition_key, cell_type_key)
