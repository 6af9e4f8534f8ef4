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


def duplicated_genes(names: Sequence[str] | pd.Index) -> list[str]:
    """The gene names that occur more than once in ``names``, each once, in order of first occurrence."""
    names = pd.Index(names)
    return list(names[names.duplicated()].unique())


def _raise_duplicates(what: str, dup: list[str]) -> None:
    raise DataValidationError(
        f"{what} has duplicated gene names: {dup[:5]}"
        + (f" ({len(dup)} in all)" if len(dup) > 5 else "")
        + "; expected one column per gene: drop or rename the duplicates (e.g. adata.var_names_make_unique())"
    )


def require_unique_genes(adata: AnnData, what: str) -> None:
    """Raise if ``adata`` has duplicated gene names: a gene must name one column, or selecting it is ambiguous."""
    dup = duplicated_genes(adata.var_names)
    if dup:
        _raise_duplicates(what, dup)


def dense_x(adata: AnnData, var_names: Sequence[str] | pd.Index | None = None, *, what: str = "adata") -> np.ndarray:
    """``adata.X`` as a dense float32 array, with genes in the order of ``var_names``.

    Raises :class:`DataValidationError` (naming ``adata`` as ``what``) if genes of ``var_names``
    are missing from ``adata``, or occur in it more than once (which copy to use would be a
    guess); duplicated names of other genes do not matter.
    """
    x = adata.X
    if var_names is not None:
        var_names = pd.Index(var_names)
        if not adata.var_names.equals(var_names):
            dup = [g for g in duplicated_genes(adata.var_names) if g in set(var_names)]
            if dup:
                _raise_duplicates(what, dup)
            missing = var_names.difference(adata.var_names)
            if len(missing):
                raise DataValidationError(
                    f"{what} lacks {len(missing)} of the model's {len(var_names)} genes (e.g. {list(missing[:5])}); "
                    "use the same genes as the training data"
                )
            if adata.var_names.is_unique:
                x = adata[:, var_names].X
            else:  # duplicated names of genes the model does not use: select the others by position
                unique = ~adata.var_names.duplicated(keep=False)
                positions = np.flatnonzero(unique)[adata.var_names[unique].get_indexer(var_names)]
                x = adata.X[:, positions]
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    return np.ascontiguousarray(x, dtype=np.float32)


def require_control_targets(adata: AnnData, condition_key: str, ctrl_key: str, what: str = "adata_to_predict") -> None:
    """Raise if ``adata`` (the cells to predict from) holds cells of another condition than ``ctrl_key``.

    A prediction shifts control cells to their stimulated state; a stimulated cell among them
    would be shifted too and returned as "predicted". Without ``obs[condition_key]`` nothing is
    known about the condition and nothing is checked.
    """
    if condition_key not in adata.obs.columns:
        return
    labels = adata.obs[condition_key].astype(str)
    other = labels[labels != ctrl_key].value_counts()
    if len(other):
        found = ", ".join(f"{n} {label!r}" for label, n in other.items())
        raise DataValidationError(
            f"{what}.obs[{condition_key!r}] holds {found} cell(s) besides {int((labels == ctrl_key).sum())} "
            f"{ctrl_key!r} cell(s); expected only {ctrl_key!r} cells: a prediction shifts each cell it is given "
            f"and returns it as 'predicted'. Pass adata[adata.obs[{condition_key!r}] == {ctrl_key!r}]"
        )


def rows_in(
    x: np.ndarray, rows: np.ndarray, labels_x: pd.DataFrame | None = None, labels_rows: pd.DataFrame | None = None
) -> np.ndarray:
    """Boolean mask of the rows of ``x`` equal, value for value, to some row of ``rows`` (same columns).

    With ``labels_x`` and ``labels_rows`` (one row of annotations per row of ``x``/``rows``, the
    same columns), a row matches only when its annotations, compared as text, are equal too.
    """
    if x.shape[1] != rows.shape[1]:
        raise ValueError(f"x and rows must have the same columns, got {x.shape[1]} and {rows.shape[1]}")

    def keys(a: np.ndarray, labels: pd.DataFrame | None) -> list[tuple]:
        a = np.ascontiguousarray(a, dtype=np.float32) + np.float32(0)  # -0.0 becomes 0.0
        text = [()] * len(a) if labels is None else list(labels.astype(str).itertuples(index=False, name=None))
        return [(row.tobytes(), label) for row, label in zip(a, text)]

    wanted = set(keys(rows, labels_rows))
    return np.fromiter((k in wanted for k in keys(x, labels_x)), dtype=bool, count=x.shape[0])


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
