"""Agreement of per-gene summaries (means or variances) of real and predicted cells.

Each function takes 1-D vectors with one entry per gene and returns a float, ``nan`` where the
value is undefined (a constant vector).
"""

from __future__ import annotations

import numpy as np

from tutorial_lib.data.checks import DataValidationError

#: Relative tolerance under which a vector counts as constant (its spread is rounding noise).
CONSTANT_RTOL = 1e-9


def _vectors(*vs: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(v, dtype=np.float64).ravel() for v in vs]
    if len({v.size for v in out}) != 1:
        raise DataValidationError(f"per-gene vectors must have the same length, got {[v.size for v in out]}")
    if out[0].size == 0:
        raise DataValidationError("per-gene vectors are empty: no genes")
    if not all(np.all(np.isfinite(v)) for v in out):
        raise DataValidationError("per-gene vector contains NaN or infinite values")
    return out


def is_constant(v: np.ndarray, scale: float | None = None) -> bool:
    """Whether ``max(v) - min(v) <= CONSTANT_RTOL * max(1, scale)`` (``scale``: default ``max|v|``).

    Means summed in another cell order differ by rounding; that is not a signal.
    """
    v = np.asarray(v, dtype=np.float64)
    if scale is None:
        scale = float(np.abs(v).max()) if v.size else 0.0
    return bool(v.size < 2 or np.ptp(v) <= CONSTANT_RTOL * max(1.0, scale))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    r"""Pearson correlation :math:`r = \sum (x_g-\bar x)(y_g-\bar y) / \sqrt{\sum (x_g-\bar x)^2 \sum (y_g-\bar y)^2}`.

    ``nan`` when ``x`` or ``y`` is constant.
    """
    x, y = _vectors(x, y)
    if is_constant(x) or is_constant(y):
        return float("nan")
    xc = x - x.mean()
    yc = y - y.mean()
    return float(np.clip(float(xc @ yc / np.sqrt((xc @ xc) * (yc @ yc))), -1.0, 1.0))


def r2_pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    r"""Squared Pearson correlation of per-gene values, :math:`r(y_\mathrm{true}, y_\mathrm{pred})^2`.

    The "R²" of scGen (Lotfollahi et al. 2019) and scPRAM (Jiang et al. 2024). It ignores scale
    and offset: ``2 * y_true + 5`` scores 1. ``nan`` when either vector is constant.
    """
    r = pearson(y_true, y_pred)
    return r * r


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    r"""Coefficient of determination :math:`1 - \sum_g (y_g - \hat y_g)^2 / \sum_g (y_g - \bar y)^2`.

    Unlike :func:`r2_pearson` it penalises scale and offset errors, and it is negative when the
    prediction is worse than ``mean(y_true)`` for every gene. ``nan`` when ``y_true`` is constant.
    """
    y_true, y_pred = _vectors(y_true, y_pred)
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
    if is_constant(y_true) or ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(((y_true - y_pred) ** 2).sum()) / ss_tot


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    r"""Mean squared error over genes, :math:`\frac{1}{G}\sum_g (y_g - \hat y_g)^2`."""
    y_true, y_pred = _vectors(y_true, y_pred)
    return float(((y_true - y_pred) ** 2).mean())


def delta_scale(real_mean: np.ndarray, pred_mean: np.ndarray, ctrl_mean: np.ndarray) -> float:
    """The scale against which :func:`pearson_delta` judges a change constant: the largest ``|mean|``."""
    return float(max(np.abs(ctrl_mean).max(), np.abs(pred_mean).max(), np.abs(real_mean).max()))


def pearson_delta(real_mean: np.ndarray, pred_mean: np.ndarray, ctrl_mean: np.ndarray) -> float:
    r"""Pearson correlation of predicted and real changes from control over genes.

    .. math::
        r\big(\bar x^{\mathrm{pred}} - \bar x^{\mathrm{ctrl}},\ \bar x^{\mathrm{real}} - \bar x^{\mathrm{ctrl}}\big)

    with :math:`\bar x` the per-gene means. Copying the controls scores well on
    :func:`r2_pearson` of means (most genes barely change) but predicts no change at all, so it
    gets ``nan`` here, as does a constant real change.
    """
    real_mean, pred_mean, ctrl_mean = _vectors(real_mean, pred_mean, ctrl_mean)
    scale = delta_scale(real_mean, pred_mean, ctrl_mean)
    d_pred = pred_mean - ctrl_mean
    d_real = real_mean - ctrl_mean
    if is_constant(d_pred, scale) or is_constant(d_real, scale):
        return float("nan")
    return pearson(d_pred, d_real)
