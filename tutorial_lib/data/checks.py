"""Validation of AnnData inputs, with errors that say what is wrong and what was expected."""

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
    labels = set(map(str, adata.obs[condition_key].unique()))
    bad = sorted(labels - {CONTROL, STIMULATED})
    if bad:
        raise DataValidationError(
            f"obs[{condition_key!r}] holds {bad}; expected only {CONTROL!r} and {STIMULATED!r} "
            "(use tutorial_lib.data.harmonise to map other labels)"
        )


def require_nonempty(adata: AnnData, what: str) -> None:
    """Raise if ``adata`` has no cells."""
    if adata.n_obs == 0:
        raise DataValidationError(f"{what} is empty: no cells match")


def _sample_values(x, max_values: int = 200_000) -> np.ndarray:
    data = x.data if sp.issparse(x) else np.asarray(x).ravel()
    data = np.asarray(data)
    if data.size > max_values:
        step = data.size // max_values + 1
        data = data[::step]
    return data


#: Counts per cell after the course's normalisation (the default ``target_sum`` of
#: :func:`tutorial_lib.data.normalise_log`): the expm1 of a log1p-normalised cell sums to this on
#: all genes, and to less on a subset of genes.
LOG_TARGET_SUM = 1e4
#: Relative slack on that sum: float32 rounding of the log values moves it by about 1e-6.
_TOTAL_SLACK = 0.01
#: Largest value of a prediction that still counts as log-scale: twice the largest log1p-normalised
#: value, log1p(LOG_TARGET_SUM) = 9.2 (a cell with all its counts in one gene). Predictions are not
#: normalised, so they are bounded by value rather than by cell total; e^18 counts per 1e4 is no
#: overshoot but another scale.
MAX_PREDICTED_VALUE = 2 * float(np.log1p(LOG_TARGET_SUM))
#: Largest weight of the negative values, relative to the positive ones (sum of |negative values|
#: over sum of positive values), in data that may hold some (``allow_negative=True``). Centring or
#: z-scoring (``sc.pp.scale``) makes them weigh as much as the positive ones over the data it was
#: applied to: 0.64 to 1.66 within one cell type and condition of the course's data (50 to 2,000
#: genes). A few undershoots weigh far less: 0.09 to 0.14 for control cells shifted by the real mean
#: change without clipping at 0, although 39-50% of their values are negative.
MAX_NEGATIVE_WEIGHT = 1 / 3
_ROW_CHUNK = 4096


def _nonzero_values(x, max_values: int = 2_000_000) -> np.ndarray:
    """The non-zero values of ``x`` (evenly thinned to at most ``max_values``)."""
    if sp.issparse(x):
        data = np.asarray(x.data)
        data = data[data != 0]
    else:
        data = np.asarray(x).ravel()
        data = data[data != 0]
    if data.size > max_values:
        data = data[:: data.size // max_values + 1]
    return data


def _stored_values(x) -> np.ndarray:
    return np.asarray(x.data if sp.issparse(x) else x)


def check_finite_nonnegative(x, what: str = "X") -> None:
    """Raise on NaN, infinite or negative entries."""
    data = x.data if sp.issparse(x) else np.asarray(x)
    if not np.all(np.isfinite(data)):
        raise DataValidationError(f"{what} contains NaN or infinite values; expected finite expression values")
    if data.size and data.min() < 0:
        raise DataValidationError(
            f"{what} contains negative values (min {float(data.min()):.3g}); expected counts or log1p-normalised "
            "expression, which are non-negative (scaled or centred data are not supported)"
        )


def looks_like_counts(x) -> bool:
    """True when every non-zero value of ``x`` is a whole number (and one at least is): raw counts.

    Log1p-normalised values are never whole numbers except 0 (``log1p(c * 1e4 / total)`` is
    irrational for every count ``c > 0``), whatever the number of genes; raw counts always are.
    An all-zero matrix is both, and counts as log-scale.
    """
    values = _nonzero_values(x)
    return bool(values.size) and bool(np.all(values == np.round(values)))


def check_same_scale(matrices: dict, what: str = "inputs") -> None:
    """Raise when some of the named ``matrices`` look like raw counts and others do not.

    Comparing a raw-count prediction with log1p-normalised cells (or the reverse) gives numbers
    that mean nothing, without any other error; this names the odd input(s) and what was expected.
    """
    counts = {name: looks_like_counts(x) for name, x in matrices.items()}
    if any(counts.values()) and not all(counts.values()):
        raw = [n for n, c in counts.items() if c]
        other = [n for n, c in counts.items() if not c]
        raise DataValidationError(
            f"{what}: {raw} look like raw counts (whole numbers only) while {other} do not; expected all on "
            "one scale, log1p-normalised (tutorial_lib.data.normalise_log)"
        )


def check_counts(x, what: str = "counts") -> None:
    """Raise unless ``x`` looks like raw UMI counts (non-negative integers)."""
    check_finite_nonnegative(x, what)
    values = _sample_values(x)
    if values.size and not np.allclose(values, np.round(values)):
        raise DataValidationError(
            f"{what} holds non-integer values (e.g. {float(values[values != np.round(values)][0]):.4g}); "
            "expected raw counts. It looks log-normalised: pass counts, or declare it with "
            "harmonise(..., x_kind='log')"
        )


def _cell_totals(x) -> np.ndarray:
    """Per-cell (row) sums of ``expm1(x)`` in float64, computed in chunks of rows; inf where it overflows."""
    if sp.issparse(x):
        x = sp.csr_matrix(x)
    n = x.shape[0]
    totals = np.empty(n, dtype=np.float64)
    with np.errstate(over="ignore"):
        for start in range(0, n, _ROW_CHUNK):
            chunk = x[start : start + _ROW_CHUNK]
            if sp.issparse(chunk):
                chunk = sp.csr_matrix(
                    (np.expm1(chunk.data.astype(np.float64)), chunk.indices, chunk.indptr), shape=chunk.shape
                )
                totals[start : start + _ROW_CHUNK] = np.asarray(chunk.sum(axis=1)).ravel()
            else:
                totals[start : start + _ROW_CHUNK] = np.expm1(np.asarray(chunk, dtype=np.float64)).sum(axis=1)
    return totals


def check_log_normalised(x, what: str = "X", *, allow_negative: bool = False, prediction: bool = False) -> None:
    """Raise unless ``x`` (cells x genes) looks like log1p-normalised expression, on any number of genes.

    The one check of the expression scale, shared by the models (training data, targets of
    ``predict``, input of ``get_latent``/``reconstruct``), the baselines and ``evaluate``. It
    follows what :func:`tutorial_lib.data.normalise_log` produces, ``log1p(counts / total * 1e4)``,
    restricted to any subset of genes (e.g. a panel of highly variable genes) and of cells:

    * finite values only (NaN or inf would give NaN latents, predictions or scores);
    * not raw counts: log1p-normalised values are never whole numbers except 0, so a matrix whose
      non-zero values are all whole numbers holds counts (:func:`looks_like_counts`), however
      small they are (on a 50-gene panel every count may be at most 20);
    * no negative values (log1p of non-negative numbers); with ``allow_negative`` (``evaluate``,
      which also scores synthetic data and shifts not clipped at 0), negative values that weigh at
      most :data:`MAX_NEGATIVE_WEIGHT` of the positive ones: centring or z-scoring makes them weigh
      about as much;
    * each cell's ``expm1`` values sum to at most :data:`LOG_TARGET_SUM`: normalised data that were
      not log-transformed (or were normalised to a larger total) exceed it in any cell with one
      value above log1p(1e4) = 9.2. A ``prediction`` is not normalised, so it is bounded by value
      instead (:data:`MAX_PREDICTED_VALUE`).

    Raises
    ------
    DataValidationError
        Naming ``what``, the problem found and what was expected.
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
    if totals[worst] > LOG_TARGET_SUM * (1 + _TOTAL_SLACK):
        raise DataValidationError(
            f"{what}: the expm1 of row {worst}'s values sums to {totals[worst]:.4g}; log1p(normalize_total to "
            f"{LOG_TARGET_SUM:,.0f}) gives at most {LOG_TARGET_SUM:,.0f} per cell (less on a subset of genes). It "
            "looks normalised but not log-transformed, or normalised to another total; expected "
            "tutorial_lib.data.normalise_log's output"
        )
