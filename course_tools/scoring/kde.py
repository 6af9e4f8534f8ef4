"""Distance between the per-gene (mean, variance) clouds of real and predicted cells."""

from __future__ import annotations

from typing import Literal

import numpy as np

from tutorial_lib.data.checks import DataValidationError

#: Smallest bandwidth, as a fraction of the grid step, so that a degenerate cloud stays visible.
_MIN_BW_STEPS = 0.5


def _cloud(mean: np.ndarray, var: np.ndarray, what: str) -> np.ndarray:
    pts = np.column_stack([np.asarray(mean, np.float64).ravel(), np.asarray(var, np.float64).ravel()])
    if pts.shape[0] < 2:
        raise DataValidationError(f"{what}: need at least 2 genes for a density, got {pts.shape[0]}")
    if not np.all(np.isfinite(pts)):
        raise DataValidationError(f"{what}: per-gene means/variances contain NaN or infinite values")
    return pts


def _density_on_grid(pts: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Product-Gaussian KDE with Scott's bandwidths, evaluated on the grid ``gx x gy``, summing to 1."""
    n = pts.shape[0]
    steps = np.array([gx[1] - gx[0], gy[1] - gy[0]])
    bw = pts.std(axis=0) * n ** (-1.0 / 6.0)  # Scott's rule in d = 2: sigma * n^(-1/(d+4))
    bw = np.maximum(bw, _MIN_BW_STEPS * steps)
    kx = np.exp(-0.5 * ((gx[None, :] - pts[:, [0]]) / bw[0]) ** 2)  # n x Gx
    ky = np.exp(-0.5 * ((gy[None, :] - pts[:, [1]]) / bw[1]) ** 2)  # n x Gy
    dens = kx.T @ ky  # separable kernel: sum_i kx_i(x) ky_i(y), no loop over genes
    total = dens.sum()
    if total <= 0:
        raise DataValidationError("density vanished on the grid")
    return dens / total


def mean_var_kde_distance(
    real_mean: np.ndarray,
    real_var: np.ndarray,
    pred_mean: np.ndarray,
    pred_var: np.ndarray,
    measure: Literal["js", "l1"] = "js",
    grid_size: int = 128,
) -> float:
    r"""Distance between the densities of the 2-D (mean, variance) gene clouds of real and pred.

    Each gene is a point (mean, variance). Coordinates are standardised with the mean and
    standard deviation of the *real* cloud (the same transform for both clouds, so a
    prediction cannot rescale itself), then each cloud gets a Gaussian KDE with a diagonal
    bandwidth from Scott's rule, :math:`h_d = \hat\sigma_d\, n^{-1/6}` (d = 2), floored at half a
    grid step. Both densities are evaluated on a ``grid_size x grid_size`` grid spanning both
    clouds plus 3 bandwidths and normalised to probability vectors :math:`p, q` on the grid.

    ``measure="js"`` (default): Jensen–Shannon divergence in bits,
    :math:`\mathrm{JS} = \tfrac12 \mathrm{KL}(p\|m) + \tfrac12 \mathrm{KL}(q\|m)`, :math:`m = (p+q)/2`,
    in [0, 1]. ``measure="l1"``: :math:`\sum |p - q|`, in [0, 2]. Both are 0 for identical clouds.
    """
    if measure not in ("js", "l1"):
        raise ValueError(f"measure must be 'js' or 'l1', got {measure!r}")
    if grid_size < 8:
        raise ValueError(f"grid_size must be at least 8, got {grid_size}")
    real = _cloud(real_mean, real_var, "real")
    pred = _cloud(pred_mean, pred_var, "pred")
    loc = real.mean(axis=0)
    scale = real.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    real = (real - loc) / scale
    pred = (pred - loc) / scale
    both = np.vstack([real, pred])
    pad = 3.0 * np.maximum(both.std(axis=0), 1e-3) * max(real.shape[0], pred.shape[0]) ** (-1.0 / 6.0)
    lo = both.min(axis=0) - pad
    hi = both.max(axis=0) + pad
    gx = np.linspace(lo[0], hi[0], grid_size)
    gy = np.linspace(lo[1], hi[1], grid_size)
    p = _density_on_grid(real, gx, gy)
    q = _density_on_grid(pred, gx, gy)
    if measure == "l1":
        return float(np.abs(p - q).sum())
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = (a > 0) & (m > 0)
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return float(np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, 1.0))
