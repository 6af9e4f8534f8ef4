"""Checks of AnnData inputs, with errors that say what is wrong and what was expected."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

CONDITION_KEY = "condition"
CELL_TYPE_KEY = "cell_type"
DONOR_KEY = "donor"
CONTROL = "control"
STIMULATED = "stimulated"

LOG_TARGET_SUM = 1e4
"""Counts per cell after :func:`tutorial_lib.data.normalise_log`: the most a cell's ``expm1`` values sum to."""


class DataValidationError(ValueError):
    """Input data do not have the form a function expects."""


def require_obs_keys(adata: AnnData, keys: Iterable[str]) -> None:
    """Raise if any of ``keys`` is not a column of ``adata.obs``."""
    missing = [k for k in keys if k not in adata.obs.columns]
    if missing:
        names = ", ".join(map(repr, missing))
        raise DataValidationError(f"adata.obs has no column {names}; available columns: {list(adata.obs.columns)}")


def require_values(adata: AnnData, key: str, values: Iterable[str], what: str = "value") -> None:
    """Raise if any of ``values`` does not occur in ``adata.obs[key]``."""
    known = sorted(map(str, adata.obs[key].unique()))
    unknown = [v for v in values if v not in known]
    if unknown:
        raise DataValidationError(f"Unknown {what} {unknown[0]!r} in obs[{key!r}]; known: {known}")


def require_conditions(adata: AnnData, condition_key: str = CONDITION_KEY) -> None:
    """Raise if ``obs[condition_key]`` holds labels other than control/stimulated."""
    require_obs_keys(adata, [condition_key])
    bad = sorted(set(map(str, adata.obs[condition_key].unique())) - {CONTROL, STIMULATED})
    if bad:
        expected = f"expected only {CONTROL!r} and {STIMULATED!r} (map other labels with harmonise)"
        raise DataValidationError(f"obs[{condition_key!r}] holds {bad}; {expected}")


def _stored_values(x) -> np.ndarray:
    return np.asarray(x.data if sp.issparse(x) else x)


def _nonzero_values(x, max_values: int = 2_000_000) -> np.ndarray:
    """The non-zero values of ``x``, evenly thinned to at most ``max_values``."""
    data = _stored_values(x).ravel()
    data = data[data != 0]
    return data[:: data.size // max_values + 1]


def looks_like_counts(x) -> bool:
    """True when every non-zero value of ``x`` (one at least) is a whole number: counts, never log1p values."""
    values = _nonzero_values(x)
    return bool(values.size) and bool(np.all(values == np.round(values)))


def check_counts(x, what: str = "counts") -> None:
    """Raise unless ``x`` looks like raw UMI counts: finite, non-negative whole numbers."""
    data, values = _stored_values(x), _nonzero_values(x)
    if not np.all(np.isfinite(data)) or (data.size and data.min() < 0):
        raise DataValidationError(f"{what} contains NaN, infinite or negative values; expected raw counts")
    if not np.allclose(values, np.round(values)):
        raise DataValidationError(
            f"{what} holds non-integer values: it looks log-normalised; expected raw counts (or declare log data "
            "with harmonise(..., x_kind='log'))"
        )


def _cell_totals(x, rows: int = 4096) -> np.ndarray:
    """Per-cell sums of ``expm1(x)`` in float64 (inf where it overflows), in chunks of rows."""
    x = sp.csr_matrix(x, dtype=np.float64) if sp.issparse(x) else x
    with np.errstate(over="ignore"):
        chunks = (x[i : i + rows] for i in range(0, x.shape[0], rows))  # generators: one chunk in memory at a time
        expm1 = (c.expm1() if sp.issparse(c) else np.expm1(np.asarray(c, dtype=np.float64)) for c in chunks)
        return np.concatenate([np.asarray(c.sum(axis=1)).ravel() for c in expm1])


def check_log_normalised(x, what: str = "X", *, cell_totals: bool = True) -> None:
    """Raise unless ``x`` (cells x any genes) looks like :func:`~tutorial_lib.data.normalise_log`'s output.

    The models' check of the expression scale: numeric and finite; not raw counts
    (:func:`looks_like_counts`), however small; non-negative (centred or z-scored data are not);
    with ``cell_totals``, each cell's ``expm1`` values sum to at most :data:`LOG_TARGET_SUM` (1%
    slack for float32), which normalised data that were not log-transformed exceed.
    """
    values = _stored_values(x)
    expected = "; expected log1p-normalised expression (tutorial_lib.data.normalise_log's output)"
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise DataValidationError(f"{what} holds NaN, infinite or non-numeric values{expected}")
    if looks_like_counts(x):
        raise DataValidationError(f"{what} holds whole numbers only (up to {values.max():.0f}): raw counts{expected}")
    if (values < 0).any():
        raise DataValidationError(
            f"{what} contains negative values (min {values.min():.3g}); centred or scaled data (e.g. z-scored "
            f"with sc.pp.scale) are not supported{expected}"
        )
    if cell_totals and x.shape[0] and (total := _cell_totals(x).max()) > LOG_TARGET_SUM * 1.01:
        raise DataValidationError(
            f"{what}: a cell's expm1 values sum to {total:.4g}, above the {LOG_TARGET_SUM:,.0f} of "
            f"log1p(normalize_total): normalised but not log-transformed, or to another total{expected}"
        )
