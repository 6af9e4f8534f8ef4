"""AnnData helpers shared by the models and the baselines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from tutorial_lib.data.checks import CONTROL, STIMULATED, DataValidationError, require_obs_keys

PREDICTED = "predicted"
METHOD_KEY = "method"


def dense_x(adata: AnnData, var_names: Sequence[str] | pd.Index | None = None) -> np.ndarray:
    """``adata.X`` as a dense float32 array, with genes in the order of ``var_names``.

    Raises :class:`DataValidationError` if genes of ``var_names`` are missing from ``adata``.
    """
    x = adata.X
    if var_names is not None:
        var_names = pd.Index(var_names)
        if not adata.var_names.equals(var_names):
            missing = var_names.difference(adata.var_names)
            if len(missing):
                raise DataValidationError(
                    f"adata lacks {len(missing)} of the model's {len(var_names)} genes (e.g. {list(missing[:5])}); "
                    "use the same genes as the training data"
                )
            x = adata[:, var_names].X
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    return np.ascontiguousarray(x, dtype=np.float32)


def obs_labels(adata: AnnData, key: str) -> np.ndarray:
    """``adata.obs[key]`` as an array of ``str``."""
    require_obs_keys(adata, [key])
    return adata.obs[key].astype(str).to_numpy()


def shared_cell_types(
    cell_types: np.ndarray,
    conditions: np.ndarray,
    *,
    ctrl_key: str = CONTROL,
    stim_key: str = STIMULATED,
    exclude: Iterable[str] = (),
    restrict_to: Iterable[str] | None = None,
) -> list[str]:
    """Cell types with both control and stimulated cells, minus ``exclude``.

    These are the cell types from which a perturbation effect can be learnt: a held-out
    type has control cells only and drops out automatically.
    """
    ctrl = set(cell_types[conditions == ctrl_key])
    stim = set(cell_types[conditions == stim_key])
    types = sorted((ctrl & stim) - set(exclude))
    if restrict_to is not None:
        types = [t for t in types if t in set(restrict_to)]
    if not types:
        raise DataValidationError(
            f"No cell type has both {ctrl_key!r} and {stim_key!r} cells (after excluding {sorted(set(exclude))}); "
            "cannot learn a perturbation effect"
        )
    return types


def prediction_adata(
    x: np.ndarray,
    source: AnnData,
    var_names: Sequence[str] | pd.Index,
    *,
    method: str,
    condition_key: str,
    cell_type_key: str,
    cell_type: str | None = None,
    obsm: dict[str, np.ndarray] | None = None,
) -> AnnData:
    """Predicted cells as AnnData.

    ``obs`` copies the source (control) cells' annotations, with ``obs[condition_key] =
    "predicted"``, ``obs[cell_type_key]`` (from the source, else ``cell_type``),
    ``obs["method"]`` and ``obs["source_cell"]`` (the control cell each prediction comes
    from); obs names get a ``-pred`` suffix so that predictions and controls can be
    concatenated.
    """
    obs = source.obs.copy()
    obs["source_cell"] = source.obs_names.to_numpy()
    obs.index = pd.Index([f"{name}-pred" for name in source.obs_names])
    obs[condition_key] = PREDICTED
    if cell_type_key not in obs.columns:
        if cell_type is None:
            raise DataValidationError(f"adata.obs has no column {cell_type_key!r} and no cell_type was given")
        obs[cell_type_key] = cell_type
    obs[cell_type_key] = obs[cell_type_key].astype(str)
    obs[METHOD_KEY] = method
    out = AnnData(X=np.asarray(x, dtype=np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(var_names, dtype=str)))
    for key, value in (obsm or {}).items():
        out.obsm[key] = value
    return out
