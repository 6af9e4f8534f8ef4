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
    """True when ``x`` holds integers above 20 only: raw UMI counts, not log1p-normalised values."""
    values = _sample_values(x)
    return bool(values.size) and bool(np.allclose(values, np.round(values))) and float(values.max()) > 20


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
            f"{what}: {raw} look like raw counts (integers above 20) while {other} do not; expected all on "
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


def check_log_normalised(x, what: str = "X") -> None:
    """Raise unless ``x`` looks like log1p-normalised expression (non-integer, max below 20)."""
    check_finite_nonnegative(x, what)
    values = _sample_values(x)
    if values.size == 0:
        return
    is_integer = np.allclose(values, np.round(values))
    if is_integer and values.max() > 20:
        raise DataValidationError(
            f"{what} holds integers up to {float(values.max()):.0f}; expected log-normalised expression. "
            "It looks like raw counts: run tutorial_lib.data.normalise_log first"
        )
    if values.max() > 30:
        raise DataValidationError(
            f"{what} has values up to {float(values.max()):.3g}; log1p-normalised expression stays below ~15"
        )
