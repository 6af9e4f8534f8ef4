r"""Distances between two sets of cells: energy distance and kernel MMD.

Both compare whole distributions of cells, not just per-gene means, so they see changes in
spread or shape that mean-based metrics miss. Compute them in one space shared by all models of
a comparison (see :mod:`tutorial_lib.metrics.space`), never in a space fitted on predictions.

Pairwise distances use :math:`\|x-y\|^2 = \|x\|^2 + \|y\|^2 - 2 x\cdot y` in float64, by
blocks of rows, clipped at 0 before the square root. Entries where that formula loses all
precision (near-identical points) are recomputed directly, so identical points are at
distance exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics._inputs import as_points, subsample_rows

Estimator = Literal["u", "v"]

#: Rows per block in the pairwise-distance loops (bounds memory at ``block * m * 8`` bytes).
BLOCK_ROWS = 2048
_CANCEL_RTOL = 1e-8


def _sq_dists_block(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    d2 = a @ b.T  # in-place updates below: no n x m temporaries
    d2 *= -2.0
    d2 += a_sq[:, None]
    d2 += b_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    # where cancellation may have eaten the precision (d2 tiny relative to the norms), recompute
    # directly; a scalar threshold selects a superset of those entries (few: near-duplicates)
    tau = _CANCEL_RTOL * (float(a_sq.max(initial=0.0)) + float(b_sq.max(initial=0.0)))
    bad = np.nonzero(d2 <= tau)
    if bad[0].size:
        diff = a[bad[0]] - b[bad[1]]
        d2[bad] = np.einsum("ij,ij->i", diff, diff)
    return d2


def _reduce_pairs(x: np.ndarray, y: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> float:
    """``sum_ij fn(||x_i - y_j||^2)`` by blocks of ``BLOCK_ROWS`` rows of ``x``; no loop over cells."""
    block = max(1, int(BLOCK_ROWS))
    x_sq = np.einsum("ij,ij->i", x, x)
    y_sq = np.einsum("ij,ij->i", y, y)
    total = 0.0
    for start in range(0, x.shape[0], block):
        stop = min(start + block, x.shape[0])
        total += float(fn(_sq_dists_block(x[start:stop], x_sq[start:stop], y, y_sq)).sum(dtype=np.float64))
    return total


def _within(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], estimator: str, diag: float) -> float:
    """Mean of ``fn(d^2)`` over pairs within ``x``: all n^2 pairs ("v") or the n(n-1) with i != j ("u")."""
    n = x.shape[0]
    total = _reduce_pairs(x, x, fn)
    if estimator == "v":
        return total / (n * n)
    if n < 2:
        raise DataValidationError("the U-statistic needs at least 2 cells per set")
    return (total - n * diag) / (n * (n - 1))


def _check_estimator(estimator: str, allowed: Sequence[str]) -> None:
    if estimator not in allowed:
        raise ValueError(f"estimator must be one of {list(allowed)}, got {estimator!r}")


def _prepare(x, y, max_cells: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = as_points(x, "first set of cells")
    y = as_points(y, "second set of cells")
    if x.shape[1] != y.shape[1]:
        raise DataValidationError(
            f"both sets must live in the same space; got {x.shape[1]} and {y.shape[1]} dimensions"
        )
    rng = np.random.default_rng(seed)
    x = x[subsample_rows(x.shape[0], max_cells, rng)]
    y = y[subsample_rows(y.shape[0], max_cells, rng)]
    return x, y


def _sqrt_inplace(d2: np.ndarray) -> np.ndarray:
    return np.sqrt(d2, out=d2)


def _rbf_mixture(gammas: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``d2 -> mean_s exp(-gamma_s * d2)``, reusing buffers (one loop over a few bandwidths)."""

    def kernel(d2: np.ndarray) -> np.ndarray:
        out = np.zeros_like(d2)
        tmp = np.empty_like(d2)
        for g in gammas:
            np.multiply(d2, -g, out=tmp)
            np.exp(tmp, out=tmp)
            out += tmp
        out /= gammas.size
        return out

    return kernel


def _energy(x: np.ndarray, y: np.ndarray, estimator: str, fn: Callable[[np.ndarray], np.ndarray]) -> float:
    cross = _reduce_pairs(x, y, fn) / (x.shape[0] * y.shape[0])
    return 2.0 * cross - _within(x, fn, estimator, 0.0) - _within(y, fn, estimator, 0.0)


def e_distance(
    x: np.ndarray,
    y: np.ndarray,
    estimator: Estimator = "u",
    max_cells: int | None = None,
    seed: int = 0,
) -> float:
    r"""Energy distance with Euclidean distances.

    .. math:: E(X, Y) = 2\,\mathbb{E}\|X-Y\| - \mathbb{E}\|X-X'\| - \mathbb{E}\|Y-Y'\|

    (Székely & Rizzo). It is >= 0 for the true distributions and 0 only when they are equal.

    Parameters
    ----------
    x, y
        Cells x dimensions arrays (e.g. coordinates in a shared PCA space).
    estimator
        ``"u"`` (U-statistic, default): the within-set means average over pairs ``i != j``; unbiased,
        and can be slightly negative for similar sets. ``"v"`` (V-statistic): they average over
        all ``n^2`` pairs including ``i = j``; always >= 0, exactly 0 when ``x`` and ``y`` are the
        same set of points, biased upwards by ``E||X-X'|| / n_x + E||Y-Y'|| / n_y``.
        The cross term always averages over all ``n_x * n_y`` pairs. Consequence: for ``y = x``
        the U-statistic is not 0 but ``-(2/n) * mean_{i != j} ||x_i - x_j||``.
        pertpy 1.0.3's ``Distance("edistance")`` equals ``estimator="v"``.
    max_cells
        Use at most this many cells of each set (a random subsample drawn with ``seed``).
    seed
        Seed of the subsampling.
    """
    _check_estimator(estimator, ("u", "v"))
    x, y = _prepare(x, y, max_cells, seed)
    return _energy(x, y, estimator, _sqrt_inplace)


def e_distance_sq(
    x: np.ndarray,
    y: np.ndarray,
    estimator: Estimator = "u",
    max_cells: int | None = None,
    seed: int = 0,
) -> float:
    r"""Energy-type statistic with *squared* Euclidean distances.

    .. math:: 2\,\mathbb{E}\|X-Y\|^2 - \mathbb{E}\|X-X'\|^2 - \mathbb{E}\|Y-Y'\|^2

    Some pertpy releases compute their ``Distance("edistance")`` this way (squared Euclidean,
    means over all pairs including ``i = j``, i.e. ``estimator="v"`` here); pertpy 1.0.3 uses plain
    Euclidean distances instead, which equals :func:`e_distance` with ``estimator="v"`` (checked by
    ``benchmarks/bench_distances.py``). With squared distances the V-statistic equals
    ``2 * ||mean(X) - mean(Y)||^2``: it only sees the difference of means, not of spread, so
    prefer :func:`e_distance`.
    Arguments as in :func:`e_distance`.
    """
    _check_estimator(estimator, ("u", "v"))
    x, y = _prepare(x, y, max_cells, seed)
    return _energy(x, y, estimator, lambda d2: d2)


def median_heuristic_bandwidths(
    *sets: np.ndarray,
    scales: Sequence[float] = (0.5, 1.0, 2.0),
    max_cells: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """RBF bandwidths ``scale * median pairwise distance`` of the pooled cells of ``sets``.

    The median is over pairs ``i != j`` of at most ``max_cells`` pooled cells (seeded subsample).
    To compare several models fairly, compute the bandwidths once from the real data (e.g. real
    stimulated + control) and pass them to :func:`mmd` for every model.
    """
    pooled = np.vstack([as_points(s, "cells") for s in sets])
    pooled = pooled[subsample_rows(pooled.shape[0], max_cells, np.random.default_rng(seed))]
    sq = np.einsum("ij,ij->i", pooled, pooled)
    d2 = _sq_dists_block(pooled, sq, pooled, sq)
    iu = np.triu_indices(pooled.shape[0], k=1)
    med = float(np.median(np.sqrt(d2[iu]))) if iu[0].size else 0.0
    if med <= 0.0:
        raise DataValidationError("median pairwise distance is 0 (all cells identical): cannot set an RBF bandwidth")
    return med * np.asarray(scales, dtype=np.float64)


def mmd(
    x: np.ndarray,
    y: np.ndarray,
    bandwidths: Sequence[float] | np.ndarray | None = None,
    estimator: Literal["unbiased", "biased"] = "unbiased",
    max_cells: int | None = None,
    seed: int = 0,
) -> float:
    r"""Squared maximum mean discrepancy with a mixture of RBF kernels.

    .. math::
        \mathrm{MMD}^2 = \mathbb{E}\,k(X,X') + \mathbb{E}\,k(Y,Y') - 2\,\mathbb{E}\,k(X,Y),\qquad
        k(a,b) = \frac{1}{S}\sum_{s=1}^{S} \exp\!\big(-\|a-b\|^2 / (2\sigma_s^2)\big)

    Parameters
    ----------
    bandwidths
        The :math:`\sigma_s`. Default: median pairwise distance of the pooled ``x`` and ``y``
        times (0.5, 1, 2) (:func:`median_heuristic_bandwidths`).
    estimator
        ``"unbiased"`` (default): within-set means over pairs ``i != j`` (can be slightly
        negative); ``"biased"``: over all pairs including ``i = j`` (>= 0, exactly 0 for ``y = x``).
    max_cells, seed
        As in :func:`e_distance`.
    """
    _check_estimator(estimator, ("unbiased", "biased"))
    x, y = _prepare(x, y, max_cells, seed)
    sig = (
        median_heuristic_bandwidths(x, y, seed=seed)
        if bandwidths is None
        else np.asarray(bandwidths, dtype=np.float64).ravel()
    )
    if sig.size == 0 or np.any(~np.isfinite(sig)) or np.any(sig <= 0):
        raise DataValidationError(f"bandwidths must be positive and finite, got {sig}")
    gammas = 1.0 / (2.0 * sig**2)

    kernel = _rbf_mixture(gammas)
    est = "u" if estimator == "unbiased" else "v"
    cross = _reduce_pairs(x, y, kernel) / (x.shape[0] * y.shape[0])
    return _within(x, kernel, est, 1.0) + _within(y, kernel, est, 1.0) - 2.0 * cross


def pairwise_e_distance(
    groups: Mapping[str, np.ndarray],
    estimator: Estimator = "u",
    max_cells: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Symmetric table of :func:`e_distance` between every pair of named groups of cells.

    ``groups`` maps a label (e.g. "control", "real stimulated", "scGen") to a cells x dims array in
    a shared space. The diagonal is 0 by definition (a group against itself). Each pair uses the
    same ``seed`` for its subsampling.
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
    out.index.name = "group"
    out.columns.name = "group"
    return out


def _estimator_kind(estimator: str) -> str:
    """``"u"``/``"unbiased"`` -> ``"u"``; ``"v"``/``"biased"`` -> ``"v"``.

    These are the estimator names accepted by :func:`e_distance` and :func:`mmd`.
    """
    kinds = {"u": "u", "unbiased": "u", "v": "v", "biased": "v"}
    if estimator not in kinds:
        raise ValueError(f"estimator must be one of {list(kinds)}, got {estimator!r}")
    return kinds[estimator]


@dataclass(frozen=True)
class PairDistance:
    """A distance between two sets of cells built from one function of pairwise distances.

    With ``k = pairwise(d^2)`` evaluated on every pair of cells, the statistic is
    ``combine(cross, within_x, within_y)`` where ``cross`` is the mean of ``k`` over the
    ``n_x * n_y`` pairs across sets and ``within_*`` the mean over pairs inside a set: all
    ``n^2`` pairs (V-statistic, ``estimator="v"``/``"biased"``) or the ``n(n-1)`` pairs
    ``i != j`` (U-statistic, ``"u"``/``"unbiased"``; ``diag`` is ``k`` at distance 0, removed
    from the sums). :data:`ENERGY` and :data:`RBF_MMD` are the two of :func:`evaluate
    <tutorial_lib.metrics.evaluate>`; their formulas are those of :func:`e_distance` and
    :func:`mmd`. A new distance is one more instance of this class (plus its record in
    :mod:`tutorial_lib.metrics.registry`); :class:`PairwiseCache` computes it without changes.

    Attributes
    ----------
    name
        Key of its cached matrices.
    pairwise
        ``(d2, cache) -> k``: squared Euclidean distances to kernel/distance values (may work in
        place on ``d2``, which is a fresh copy); ``cache`` gives parameters such as
        :attr:`PairwiseCache.gammas`.
    diag
        ``pairwise`` at distance 0.
    combine
        ``(cross, within_x, within_y) -> value``.
    """

    name: str
    pairwise: Callable[[np.ndarray, PairwiseCache], np.ndarray]
    diag: float
    combine: Callable


#: Energy distance (:func:`e_distance`): Euclidean distances, ``2 cross - within_x - within_y``.
ENERGY = PairDistance("e_distance", lambda d2, cache: _sqrt_inplace(d2), 0.0, lambda c, wx, wy: 2.0 * c - wx - wy)

#: Squared MMD with the cache's RBF mixture (:func:`mmd`): ``within_x + within_y - 2 cross``.
RBF_MMD = PairDistance(
    "mmd", lambda d2, cache: _rbf_mixture(cache.gammas)(d2), 1.0, lambda c, wx, wy: wx + wy - 2.0 * c
)


class PairwiseCache:
    r"""Distances of two fixed sets computed once, so that resamples only index into them.

    Used by the bootstrap of :func:`~tutorial_lib.metrics.evaluate`: :meth:`statistic` of a
    :class:`PairDistance` (e.g. :meth:`e_distance`, :meth:`mmd`) on the rows ``ix`` of ``x`` and
    ``iy`` of ``y`` gives the statistic of those cells without recomputing any distance. Memory:
    three dense float64 matrices of squared distances (x-x, y-y, x-y) plus three per distance used.
    ``bandwidths`` (the RBF :math:`\sigma_s` of :func:`mmd`) are needed only by :data:`RBF_MMD`.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, bandwidths: Sequence[float] | np.ndarray | None = None) -> None:
        x = as_points(x, "first set of cells")
        y = as_points(y, "second set of cells")
        self.gammas: np.ndarray | None = None
        if bandwidths is not None:
            sig = np.asarray(bandwidths, dtype=np.float64).ravel()
            if sig.size == 0 or np.any(~np.isfinite(sig)) or np.any(sig <= 0):
                raise DataValidationError(f"bandwidths must be positive and finite, got {sig}")
            self.gammas = 1.0 / (2.0 * sig**2)
        sq = {"x": np.einsum("ij,ij->i", x, x), "y": np.einsum("ij,ij->i", y, y)}
        pts = {"x": x, "y": y}
        self._d2 = {
            key: _sq_dists_block(pts[key[0]], sq[key[0]], pts[key[1]], sq[key[1]]) for key in ("xx", "yy", "xy")
        }
        self._mats: dict[str, dict[str, np.ndarray]] = {}

    def matrices(self, dist: PairDistance) -> dict[str, np.ndarray]:
        """``dist.pairwise`` of the pairs x-x, y-y and x-y (computed once, then cached)."""
        if dist.name not in self._mats:
            if dist is RBF_MMD and self.gammas is None:
                raise ValueError("this PairwiseCache has no bandwidths; pass them to compute the MMD")
            self._mats[dist.name] = {key: dist.pairwise(d2.copy(), self) for key, d2 in self._d2.items()}
        return self._mats[dist.name]

    @staticmethod
    def _stat(
        m: dict[str, np.ndarray], ix: np.ndarray, iy: np.ndarray, est: str, diag: float
    ) -> tuple[float, float, float]:
        def within(mat: np.ndarray, idx: np.ndarray) -> float:
            n = idx.size
            s = float(mat[np.ix_(idx, idx)].sum())
            return s / (n * n) if est == "v" else (s - n * diag) / (n * (n - 1))

        cross = float(m["xy"][np.ix_(ix, iy)].mean())
        return cross, within(m["xx"], ix), within(m["yy"], iy)

    def statistic(self, dist: PairDistance, ix: np.ndarray, iy: np.ndarray, estimator: str = "u") -> float:
        """``dist`` of ``x[ix]`` and ``y[iy]`` (``estimator``: ``"u"``/``"unbiased"`` or ``"v"``/``"biased"``)."""
        return dist.combine(*self._stat(self.matrices(dist), ix, iy, _estimator_kind(estimator), dist.diag))

    def e_distance(self, ix: np.ndarray, iy: np.ndarray, estimator: Estimator = "u") -> float:
        """:func:`e_distance` of ``x[ix]`` and ``y[iy]``."""
        _check_estimator(estimator, ("u", "v"))
        return self.statistic(ENERGY, ix, iy, estimator)

    def mmd(self, ix: np.ndarray, iy: np.ndarray, estimator: Literal["unbiased", "biased"] = "unbiased") -> float:
        """:func:`mmd` of ``x[ix]`` and ``y[iy]`` with the cache's bandwidths."""
        _check_estimator(estimator, ("unbiased", "biased"))
        return self.statistic(RBF_MMD, ix, iy, estimator)

    @staticmethod
    def _stats_many(
        m: dict[str, np.ndarray], cx: np.ndarray, cy: np.ndarray, est: str, diag: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def within(mat: np.ndarray, c: np.ndarray) -> np.ndarray:
            n = c.sum(axis=1)
            s = np.einsum("bi,bi->b", c @ mat, c)
            if est == "v":
                return s / (n * n)
            if np.any(c > 1):
                raise ValueError("the U-statistic of a resample needs each cell at most once (subsamples)")
            return (s - n * diag) / (n * (n - 1))

        nx, ny = cx.sum(axis=1), cy.sum(axis=1)
        cross = np.einsum("bi,bi->b", cx @ m["xy"], cy) / (nx * ny)
        return cross, within(m["xx"], cx), within(m["yy"], cy)

    def statistic_many(self, dist: PairDistance, cx: np.ndarray, cy: np.ndarray, estimator: str = "u") -> np.ndarray:
        """:meth:`statistic` of many resamples at once, one matrix product instead of a loop.

        ``cx`` (resamples x cells of ``x``) and ``cy`` count how often each cell is in each resample
        (0/1 for subsamples without replacement, which the U-statistic needs).
        """
        est = _estimator_kind(estimator)
        parts = self._stats_many(self.matrices(dist), np.asarray(cx, float), np.asarray(cy, float), est, dist.diag)
        return dist.combine(*parts)

    def e_distance_many(self, cx: np.ndarray, cy: np.ndarray, estimator: Estimator = "u") -> np.ndarray:
        """:meth:`e_distance` of many resamples at once (``cx``, ``cy`` as in :meth:`statistic_many`)."""
        _check_estimator(estimator, ("u", "v"))
        return self.statistic_many(ENERGY, cx, cy, estimator)

    def mmd_many(
        self, cx: np.ndarray, cy: np.ndarray, estimator: Literal["unbiased", "biased"] = "unbiased"
    ) -> np.ndarray:
        """:meth:`mmd` of many resamples at once (``cx``, ``cy`` as in :meth:`statistic_many`)."""
        _check_estimator(estimator, ("unbiased", "biased"))
        return self.statistic_many(RBF_MMD, cx, cy, estimator)
