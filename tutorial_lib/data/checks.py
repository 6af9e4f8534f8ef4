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
MAX_PREDICTED_VALUE = 2 * float(np.log1p(LOG_TARGET_SUM))
"""Largest log-scale prediction: twice log1p(1e4) = 9.2, the value of a cell with all its counts in one gene."""
MAX_NEGATIVE_WEIGHT = 1 / 3
"""Largest sum of |negative values| over sum of positive ones accepted with ``allow_negative``.

Control cells shifted by the real mean change without clipping at 0 weigh 0.09 to 0.14 on the
course's data; centred or z-scored data 0.64 to 1.66.
"""


class DataValidationError(ValueError):
    """Input data do not have the form a function expects."""


def require_obs_keys(adata: AnnData, keys: Iterable[str]) -> None:
    """Raise if any of ``keys`` is not a column of ``adata.obs``."""
    missing = [k for k in keys if k not in adata.obs.columns]
    if missing:
        raise DataValidationError(
            f"adata.obs has no column {missing[0]!r}"
            + (f" (also missing: {missing[1:]})" if len(missing) > 1 else "")
            + f"; available columns: {list(adata.obs.columns)}"
        )


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
        raise DataValidationError(
            f"obs[{condition_key!r}] holds {bad}; expected only {CONTROL!r} and {STIMULATED!r} "
            "(use tutorial_lib.data.harmonise to map other labels)"
        )


def require_nonempty(adata: AnnData, what: str) -> None:
    """Raise if ``adata`` has no cells."""
    if adata.n_obs == 0:
        raise DataValidationError(f"{what} is empty: no cells match")


def _stored_values(x) -> np.ndarray:
    return np.asarray(x.data if sp.issparse(x) else x)


def _nonzero_values(x, max_values: int = 2_000_000) -> np.ndarray:
    """The non-zero values of ``x``, evenly thinned to at most ``max_values``."""
    data = _stored_values(x).ravel()
    data = data[data != 0]
    return data[:: data.size // max_values + 1] if data.size > max_values else data


def looks_like_counts(x) -> bool:
    """True when every non-zero value of ``x`` is a whole number (and one at least is): raw counts.

    ``log1p(c * 1e4 / total)`` is never a whole number for a count ``c > 0``; an all-zero matrix
    counts as log-scale.
    """
    values = _nonzero_values(x)
    return bool(values.size) and bool(np.all(values == np.round(values)))


def check_same_scale(matrices: dict, what: str = "inputs") -> None:
    """Raise when some of the named ``matrices`` look like raw counts and others do not."""
    counts = {name: looks_like_counts(x) for name, x in matrices.items()}
    if any(counts.values()) and not all(counts.values()):
        raw = [n for n, c in counts.items() if c]
        other = [n for n, c in counts.items() if not c]
        raise DataValidationError(
            f"{what}: {raw} look like raw counts (whole numbers only) while {other} do not; expected all on "
            "one scale, log1p-normalised (tutorial_lib.data.normalise_log)"
        )


def check_counts(x, what: str = "counts") -> None:
    """Raise unless ``x`` looks like raw UMI counts: finite, non-negative whole numbers."""
    data = _stored_values(x)
    if not np.all(np.isfinite(data)):
        raise DataValidationError(f"{what} contains NaN or infinite values; expected finite expression values")
    if data.size and data.min() < 0:
        raise DataValidationError(
            f"{what} contains negative values (min {float(data.min()):.3g}); expected counts or log1p-normalised "
            "expression, which are non-negative (scaled or centred data are not supported)"
        )
    values = _nonzero_values(x)
    if not np.allclose(values, np.round(values)):
        raise DataValidationError(
            f"{what} holds non-integer values (e.g. {float(values[values != np.round(values)][0]):.4g}); "
            "expected raw counts. It looks log-normalised: pass counts, or declare it with "
            "harmonise(..., x_kind='log')"
        )


def _cell_totals(x, rows: int = 4096) -> np.ndarray:
    """Per-cell sums of ``expm1(x)`` in float64 (inf where it overflows), in chunks of rows."""
    x = sp.csr_matrix(x) if sp.issparse(x) else x
    totals = []
    with np.errstate(over="ignore"):
        for start in range(0, x.shape[0], rows):
            chunk = x[start : start + rows]
            if sp.issparse(chunk):
                chunk = sp.csr_matrix(chunk, dtype=np.float64).expm1()
            else:
                chunk = np.expm1(np.asarray(chunk, dtype=np.float64))
            totals.append(np.asarray(chunk.sum(axis=1)).ravel())
    return np.concatenate(totals)


def check_log_normalised(x, what: str = "X", *, allow_negative: bool = False, prediction: bool = False) -> None:
    """Raise unless ``x`` (cells x genes, any genes) looks like :func:`~tutorial_lib.data.normalise_log`'s output.

    The one check of the expression scale for models, baselines and metrics:

    * finite values only;
    * not raw counts (:func:`looks_like_counts`), however small;
    * no negative values; with ``allow_negative`` (scoring shifts not clipped at 0) negative values
      weighing at most :data:`MAX_NEGATIVE_WEIGHT` of the positive ones;
    * each cell's ``expm1`` values sum to at most :data:`LOG_TARGET_SUM` (1% slack for float32),
      which normalised data that were not log-transformed exceed; a ``prediction`` is not
      normalised, so it is bounded by value instead (:data:`MAX_PREDICTED_VALUE`).
    """
    values = _stored_values(x)
    if not np.issubdtype(values.dtype, np.number):
        raise DataValidationError(f"{what} is not numeric (dtype {values.dtype}); expected log1p-normalised expression")
    finite = np.isfinite(values)
    if not finite.all():
        raise DataValidationError(
            f"{what} contains {int(finite.size - finite.sum())} NaN or infinite value(s); expected finite "
            "log1p-normalised expression"
        )
    if looks_like_counts(x):
        raise DataValidationError(
            f"{what} holds whole numbers only (up to {float(values.max()):.0f}): it looks like raw counts; expected "
            "log1p-normalised expression, which is never a whole number except 0: run "
            "tutorial_lib.data.normalise_log first"
        )
    negative = values < 0
    if negative.any():
        positive = float(values[values > 0].sum(dtype=np.float64))
        weight = -float(values[negative].sum(dtype=np.float64)) / positive if positive > 0 else np.inf
        if not allow_negative or weight > MAX_NEGATIVE_WEIGHT:
            share = float(negative.sum()) / (x.shape[0] * x.shape[1])
            allowed = (
                f", weighing {weight:.0%} of the positive ones (up to {MAX_NEGATIVE_WEIGHT:.0%} is accepted, as from "
                "a shift not clipped at 0)"
                if allow_negative
                else ""
            )
            raise DataValidationError(
                f"{what} contains negative values ({share:.1%} of them, min {float(values.min()):.3g}{allowed}); "
                "expected log1p-normalised expression, which is non-negative: centred or scaled data (e.g. "
                "z-scored with sc.pp.scale) are not supported"
            )
    if prediction:
        top = float(values.max()) if values.size else 0.0
        if top > MAX_PREDICTED_VALUE:
            raise DataValidationError(
                f"{what} has values up to {top:.4g}; log1p-normalised expression stays below log1p("
                f"{LOG_TARGET_SUM:,.0f}) = {np.log1p(LOG_TARGET_SUM):.1f} (predictions up to {MAX_PREDICTED_VALUE:.1f} "
                "are accepted): it looks like counts or normalised expression that was not log-transformed"
            )
        return
    if x.shape[0] == 0:
        return
    totals = _cell_totals(x)
    worst = int(np.argmax(totals))
    if totals[worst] > LOG_TARGET_SUM * 1.01:
        raise DataValidationError(
            f"{what}: the expm1 of row {worst}'s values sums to {totals[worst]:.4g}; log1p(normalize_total to "
            f"{LOG_TARGET_SUM:,.0f}) gives at most {LOG_TARGET_SUM:,.0f} per cell (less on a subset of genes). It "
            "looks normalised but not log-transformed, or normalised to another total; expected "
            "tutorial_lib.data.normalise_log's output"
        )
