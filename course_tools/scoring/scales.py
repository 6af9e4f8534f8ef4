"""Scale checks of the scoring table's inputs: predictions and synthetic data on the log1p scale.

Stricter checks than the models' (:func:`tutorial_lib.data.checks.check_log_normalised`) would
refuse inputs the table scores on purpose: a shift of control cells not clipped at 0 (a few
negative values) and predictions, which are not normalised per cell.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tutorial_lib.data.checks import LOG_TARGET_SUM, DataValidationError, check_log_normalised, looks_like_counts

MAX_PREDICTED_VALUE = 2 * float(np.log1p(LOG_TARGET_SUM))
"""Largest log-scale prediction: twice log1p(1e4) = 9.2, the value of a cell with all its counts in one gene."""
MAX_NEGATIVE_WEIGHT = 1 / 3
"""Largest sum of |negative values| over sum of positive ones accepted.

Control cells shifted by the real mean change without clipping at 0 weigh 0.09 to 0.14 on the
course's data; centred or z-scored data 0.64 to 1.66.
"""


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


def check_scored_input(x, what: str, *, prediction: bool = False) -> None:
    """Raise unless ``x`` is log1p-scale expression as the scoring table accepts it.

    As :func:`~tutorial_lib.data.checks.check_log_normalised`, except that negative values
    weighing at most :data:`MAX_NEGATIVE_WEIGHT` of the positive ones pass (checked as 0), and a
    ``prediction`` is bounded by value (:data:`MAX_PREDICTED_VALUE`) rather than by cell total.
    """
    values = np.asarray(x.data if sp.issparse(x) else x)
    numeric = np.issubdtype(values.dtype, np.number)
    if numeric and np.isfinite(values).all() and (negative := values < 0).any():
        positive = float(values[values > 0].sum(dtype=np.float64))
        weight = -float(values[negative].sum(dtype=np.float64)) / positive if positive > 0 else np.inf
        if weight > MAX_NEGATIVE_WEIGHT:
            share = float(negative.sum()) / (x.shape[0] * x.shape[1])
            raise DataValidationError(
                f"{what} contains negative values ({share:.1%} of them, min {float(values.min()):.3g}, weighing "
                f"{weight:.0%} of the positive ones (up to {MAX_NEGATIVE_WEIGHT:.0%} is accepted, as from a shift "
                "not clipped at 0)); expected log1p-normalised expression, which is non-negative: centred or "
                "scaled data (e.g. z-scored with sc.pp.scale) are not supported"
            )
        x = x.maximum(0) if sp.issparse(x) else np.maximum(x, 0)
    check_log_normalised(x, what, cell_totals=not prediction)
    top = float(values.max()) if numeric and values.size else 0.0
    if prediction and top > MAX_PREDICTED_VALUE:
        raise DataValidationError(
            f"{what} has values up to {top:.4g}; log1p-normalised expression stays below log1p("
            f"{LOG_TARGET_SUM:,.0f}) = {np.log1p(LOG_TARGET_SUM):.1f} (predictions up to {MAX_PREDICTED_VALUE:.1f} "
            "are accepted): it looks like counts or normalised expression that was not log-transformed"
        )
