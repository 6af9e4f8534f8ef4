"""The scGen paper's PCA baseline, an extra of the benchmark grid.

``no_change`` and ``mean_shift``, which every evaluation shows, are in :mod:`tutorial_lib.baselines`.

:func:`pca_arithmetic`: PCA fitted on the training cells, ``delta`` = mean PC score (stimulated) −
mean PC score (control) of the training cell types other than the held-out one, the target cells'
PC scores + delta mapped back to genes, clipped at 0.
"""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from sklearn.decomposition import PCA

from tutorial_lib.baselines import checked_targets, effect_cells, output
from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED
from tutorial_lib.models.base import dense_x
from tutorial_lib.models.vae import check_int


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
    x_targets = checked_targets(train_adata, adata_to_predict, condition_key, ctrl_key)
    ctrl_mask, stim_mask = effect_cells(train_adata, cell_type, condition_key, cell_type_key, ctrl_key, stim_key)
    x_train = dense_x(train_adata)
    pca = PCA(n_components=min(n_components, *x_train.shape), random_state=seed).fit(x_train)
    scores = pca.transform(x_train)
    delta = scores[stim_mask].mean(axis=0) - scores[ctrl_mask].mean(axis=0)
    x = np.clip(pca.inverse_transform(pca.transform(x_targets) + delta), 0.0, None)
    return output(x, adata_to_predict, train_adata, "pca_arithmetic", cell_type, condition_key, cell_type_key)
