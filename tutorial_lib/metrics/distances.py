r"""The energy distance between two sets of cells, and the pairwise sums it is made of.

It compares whole distributions of cells, so it sees changes of spread or shape that per-gene
means miss. Compute it in one space shared by all models of a comparison
(:func:`~tutorial_lib.metrics.fit_shared_pca`), never in a space fitted on predictions.

Squared distances are :math:`\|x\|^2 + \|y\|^2 - 2 x\cdot y` in float64, by blocks of rows, clipped
at 0; entries where that loses all precision (near-duplicates) are recomputed directly, so
identical points are at distance exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics._inputs import as_points, subsample_rows

Estimator = Literal["u", "v"]
Kernel = Callable[[np.ndarray], np.ndarray]

#: Rows per block of the pairwise loops (memory ``BLOCK_ROWS * m * 8`` bytes).
BLOCK_ROWS = 2048
_CANCEL_RTOL = 1e-8


def sq_distances(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances of the rows of ``a`` and ``b`` (``*_sq``: their squared norms)."""
    d2 = a @ b.T  # in-place updates below: no n x m temporaries
    d2 *= -2.0
    d2 += a_sq[:, None]
    d2 += b_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    # recompute where cancellation may have eaten the precision (a superset of those entries; few)
    tau = _CANCEL_RTOL * (float(a_sq.max(initial=0.0)) + float(b_sq.max(initial=0.0)))
    bad = np.nonzero(d2 <= tau)
    if bad[0].size:
        diff = a[bad[0]] - b[bad[1]]
        d2[bad] = np.einsum("ij,ij->i", diff, diff)
    return d2


def _reduce_pairs(x: np.ndarray, y: np.ndarray, fn: Kernel) -> float:
    """``sum_ij fn(||x_i - y_j||^2)``, by blocks of :data:`BLOCK_ROWS` rows of ``x``."""
    block = max(1, int(BLOCK_ROWS))
    x_sq = np.einsum("ij,ij->i", x, x)
    y_sq = np.einsum("ij,ij->i", y, y)
    total = 0.0
    for start in range(0, x.shape[0], block):
        stop = min(start + block, x.shape[0])
        total += float(fn(sq_distances(x[start:stop], x_sq[start:stop], y, y_sq)).sum(dtype=np.float64))
    return total


def _within(x: np.ndarray, fn: Kernel, estimator: str, diag: float) -> float:
    """Mean of ``fn(d^2)`` over all n^2 pairs within ``x`` ("v") or the n(n-1) with i != j ("u")."""
    n = x.shape[0]
    total = _reduce_pairs(x, x, fn)
    if estimator == "v":
        return total / (n * n)
    if n < 2:
        raise DataValidationError("the U-statistic needs at least 2 cells per set")
    return (total - n * diag) / (n * (n - 1))


def pair_means(x: np.ndarray, y: np.ndarray, fn: Kernel, estimator: str, diag: float = 0.0) -> tuple[float, ...]:
    """Means of ``fn(d^2)`` over the pairs across ``x`` and ``y``, within ``x`` and within ``y``.

    The within-set means are over all ``n^2`` pairs (``estimator="v"``) or the ``n(n-1)`` pairs
    ``i != j`` (``"u"``; ``diag`` is ``fn`` at distance 0).
    """
    cross = _reduce_pairs(x, y, fn) / (x.shape[0] * y.shape[0])
    return cross, _within(x, fn, estimator, diag), _within(y, fn, estimator, diag)


def check_estimator(estimator: str, allowed: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``estimator`` is one of ``allowed``."""
    if estimator not in allowed:
        raise ValueError(f"estimator must be one of {list(allowed)}, got {estimator!r}")


def prepare(x, y, max_cells: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Both sets as float64 points of one space, each subsampled to ``max_cells`` (seeded)."""
    x = as_points(x, "first set of cells")
    y = as_points(y, "second set of cells")
    if x.shape[1] != y.shape[1]:
        raise DataValidationError(
            f"both sets must live in the same space; got {x.shape[1]} and {y.shape[1]} dimensions"
        )
    rng = np.random.default_rng(seed)
    return x[subsample_rows(x.shape[0], max_cells, rng)], y[subsample_rows(y.shape[0], max_cells, rng)]


def e_distance(
    x: np.ndarray, y: np.ndarray, estimator: Estimator = "u", max_cells: int | None = None, seed: int = 0
) -> float:
    r"""Energy distance (Székely & Rizzo 2013) with Euclidean distances.

    .. math:: E(X, Y) = 2\,\mathbb{E}\|X-Y\| - \mathbb{E}\|X-X'\| - \mathbb{E}\|Y-Y'\|

    It is 0 only for equal distributions.

    Parameters
    ----------
    x, y
        Cells x dimensions arrays (e.g. coordinates in a shared PCA space).
    estimator
        ``"u"`` (U-statistic): the within-set means are over pairs ``i != j``; unbiased, slightly
        negative for similar sets, and ``-(2/n) mean_{i != j} ||x_i - x_j||`` for ``y = x``.
        ``"v"`` (V-statistic): over all ``n^2`` pairs; >= 0, exactly 0 for ``y = x``, biased
        upwards. The cross term is over all ``n_x * n_y`` pairs in both. pertpy 1.0.3's
        ``Distance("edistance")`` equals ``"v"``.
    max_cells, seed
        Use at most ``max_cells`` cells of each set, a subsample drawn with ``seed``.
    """
    check_estimator(estimator, ("u", "v"))
    cross, within_x, within_y = pair_means(*prepare(x, y, max_cells, seed), lambda d2: np.sqrt(d2, out=d2), estimator)
    return 2.0 * cross - within_x - within_y


def pairwise_e_distance(
    groups: Mapping[str, np.ndarray], estimator: Estimator = "u", max_cells: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """Symmetric table of :func:`e_distance` between every pair of named groups of cells.

    ``groups`` maps a label (e.g. "control", "scGen") to cells x dims in a shared space; the
    diagonal is 0, and every pair is subsampled with the same ``seed``.
    """
    if len(groups) == 0:
        raise DataValidationError("pairwise_e_distance needs at least one group")
    names = list(groups)
    pts = {k: as_points(v, f"group {k!r}") for k, v in groups.items()}
    out = pd.DataFrame(0.0, index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            d = e_distance(pts[a], pts[b], estimator=estimator, max_cells=max_cells, seed=seed)
            out.loc[a, b] = out.loc[b, a] = d
    return out.rename_axis(index="group", columns="group")
