"""Agreement of per-gene summaries (means or variances) between real and predicted cells.

All functions take 1-D vectors of per-gene values (one entry per gene) and return a float.
They return ``nan`` where a value is mathematically undefined (a constant vector); the
evaluation table then says why in its ``note`` column.
"""

from __future__ import annotations

import numpy as np

from tutorial_lib.data.checks import DataValidationError

#: Relative tolerance under which a vector counts as constant (its spread is rounding noise).
CONSTANT_RTOL = 1e-9


def _vectors(*vs: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(v, dtype=np.float64).ravel() for v in vs]
    n = {v.size for v in out}
    if len(n) != 1:
        raise DataValidationError(f"per-gene vectors must have the same length, got {[v.size for v in out]}")
    if out[0].size == 0:
        raise DataValidationError("per-gene vectors are empty: no genes")
    for v in out:
        if not np.all(np.isfinite(v)):
            raise DataValidationError("per-gene vector contains NaN or infinite values")
    return out


def is_constant(v: np.ndarray, scale: float | None = None) -> bool:
    """True when ``v`` is constant up to rounding.

    ``v`` counts as constant when ``max(v) - min(v) <= CONSTANT_RTOL * max(1, scale)``, where
    ``scale`` defaults to ``max|v|``: differences of means computed in another cell order are
    not a real signal.
    """
    v = np.asarray(v, dtype=np.float64)
    if scale is None:
        scale = float(np.abs(v).max()) if v.size else 0.0
    return bool(v.size < 2 or np.ptp(v) <= CONSTANT_RTOL * max(1.0, scale))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    r"""Pearson correlation :math:`r = \sum (x_g-\bar x)(y_g-\bar y) / \sqrt{\sum (x_g-\bar x)^2 \sum (y_g-\bar y)^2}`.

    Returns ``nan`` when ``x`` or ``y`` is constant (the correlation is undefined).
    """
    x, y = _vectors(x, y)
    if is_constant(x) or is_constant(y):
        return float("nan")
    xc = x - x.mean()
    yc = y - y.mean()
    r = float(xc @ yc / np.sqrt((xc @ xc) * (yc @ yc)))
    return float(np.clip(r, -1.0, 1.0))


def r2_pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    r"""Squared Pearson correlation of per-gene values, :math:`R^2 = r(y_\mathrm{true}, y_\mathrm{pred})^2`.

    This is the "R²" of scGen and scPRAM (a linear fit of predicted on real per-gene means).
    It is symmetric and blind to scale and offset: a prediction ``2 * y_true + 5`` scores 1.
    Returns ``nan`` when either vector is constant.
    """
    r = pearson(y_true, y_pred)
    return r * r


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    r"""Coefficient of determination :math:`R^2 = 1 - \sum_g (y_g - \hat y_g)^2 / \sum_g (y_g - \bar y)^2`.

    ``y_true`` are the real per-gene values, ``y_pred`` the predicted ones. Unlike
    :func:`r2_pearson` it penalises scale and offset errors and can be negative (worse than
    predicting the mean of ``y_true`` for every gene). Returns ``nan`` when ``y_true`` is
    constant (:math:`\sum_g (y_g - \bar y)^2 = 0`).
    """
    y_true, y_pred = _vectors(y_true, y_pred)
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
    if is_constant(y_true) or ss_tot == 0.0:
        return float("nan")
    ss_res = float(((y_true - y_pred) ** 2).sum())
    return 1.0 - ss_res / ss_tot


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    r"""Mean squared error over genes, :math:`\frac{1}{G}\sum_g (y_g - \hat y_g)^2`."""
    y_true, y_pred = _vectors(y_true, y_pred)
    return float(((y_true - y_pred) ** 2).mean())


def pearson_delta(real_mean: np.ndarray, pred_mean: np.ndarray, ctrl_mean: np.ndarray) -> float:
    r"""Pearson correlation of predicted and real changes from control.

    .. math::
        r\big(\bar x^{\mathrm{pred}} - \bar x^{\mathrm{ctrl}},\
        \bar x^{\mathrm{real}} - \bar x^{\mathrm{ctrl}}\big)

    over genes, with :math:`\bar x` the per-gene means. A prediction that copies the control
    cells scores well on :func:`r2_pearson` of means (stimulated and control means are close
    for most genes) but has a zero predicted change, so this metric is undefined for it: the
    function returns ``nan`` when the predicted change is constant across genes (or the real
    change is), rather than a number a no-change baseline could pass.
    """
    real_mean, pred_mean, ctrl_mean = _vectors(real_mean, pred_mean, ctrl_mean)
    scale = float(max(np.abs(ctrl_mean).max(), np.abs(pred_mean).max(), np.abs(real_mean).max()))
    d_pred = pred_mean - ctrl_mean
    d_real = real_mean - ctrl_mean
    if is_constant(d_pred, scale) or is_constant(d_real, scale):
        return float("nan")
    return pearson(d_pred, d_real)


def pearson_delta_note(real_mean: np.ndarray, pred_mean: np.ndarray, ctrl_mean: np.ndarray) -> str:
    """Why :func:`pearson_delta` is undefined for these inputs ("" when it is defined)."""
    real_mean, pred_mean, ctrl_mean = _vectors(real_mean, pred_mean, ctrl_mean)
    scale = float(max(np.abs(ctrl_mean).max(), np.abs(pred_mean).max(), np.abs(real_mean).max()))
    if is_constant(pred_mean - ctrl_mean, scale):
        return "undefined: prediction has no change (predicted mean - control mean is constant across genes)"
    if is_constant(real_mean - ctrl_mean, scale):
        return "undefined: real data have no change from control"
    return ""
