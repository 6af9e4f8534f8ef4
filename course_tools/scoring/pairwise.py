"""Kernel MMD, the squared energy statistic, and distances of resampled cells from one cached matrix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics._inputs import as_points, subsample_rows
from tutorial_lib.metrics.distances import Estimator, Kernel, check_estimator, pair_means, prepare, sq_distances


def e_distance_sq(
    x: np.ndarray, y: np.ndarray, estimator: Estimator = "u", max_cells: int | None = None, seed: int = 0
) -> float:
    r"""Energy-type statistic with *squared* Euclidean distances.

    .. math:: 2\,\mathbb{E}\|X-Y\|^2 - \mathbb{E}\|X-X'\|^2 - \mathbb{E}\|Y-Y'\|^2

    Some pertpy releases compute their ``Distance("edistance")`` this way (with ``estimator="v"``);
    pertpy 1.0.3 equals :func:`~tutorial_lib.metrics.e_distance` with ``estimator="v"``
    (``benchmarks/bench_distances.py``). Its V-statistic is ``2 * ||mean(X) - mean(Y)||^2``: it sees
    only the difference of means, not of spread. Arguments as in :func:`~tutorial_lib.metrics.e_distance`.
    """
    check_estimator(estimator, ("u", "v"))
    cross, within_x, within_y = pair_means(*prepare(x, y, max_cells, seed), lambda d2: d2, estimator)
    return 2.0 * cross - within_x - within_y


def median_heuristic_bandwidths(
    *sets: np.ndarray, scales: Sequence[float] = (0.5, 1.0, 2.0), max_cells: int = 1000, seed: int = 0
) -> np.ndarray:
    """RBF bandwidths ``scales * median distance`` over pairs ``i != j`` of the pooled ``sets``.

    The median is taken over at most ``max_cells`` pooled cells (seeded subsample). To compare
    models fairly, compute them once from real data and pass them to :func:`mmd` for every model.
    """
    pooled = np.vstack([as_points(s, "cells") for s in sets])
    pooled = pooled[subsample_rows(pooled.shape[0], max_cells, np.random.default_rng(seed))]
    sq = np.einsum("ij,ij->i", pooled, pooled)
    iu = np.triu_indices(pooled.shape[0], k=1)
    med = float(np.median(np.sqrt(sq_distances(pooled, sq, pooled, sq)[iu]))) if iu[0].size else 0.0
    if med <= 0.0:
        raise DataValidationError("median pairwise distance is 0 (all cells identical): cannot set an RBF bandwidth")
    return med * np.asarray(scales, dtype=np.float64)


def rbf_gammas(bandwidths: Sequence[float] | np.ndarray) -> np.ndarray:
    r"""``1 / (2 \sigma_s^2)`` of positive, finite bandwidths :math:`\sigma_s`."""
    sig = np.asarray(bandwidths, dtype=np.float64).ravel()
    if sig.size == 0 or np.any(~np.isfinite(sig)) or np.any(sig <= 0):
        raise DataValidationError(f"bandwidths must be positive and finite, got {sig}")
    return 1.0 / (2.0 * sig**2)


def rbf_mixture(gammas: np.ndarray) -> Kernel:
    """The kernel ``d2 -> mean_s exp(-gamma_s * d2)``."""

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


def mmd(
    x: np.ndarray,
    y: np.ndarray,
    bandwidths: Sequence[float] | np.ndarray | None = None,
    estimator: Literal["unbiased", "biased"] = "unbiased",
    max_cells: int | None = None,
    seed: int = 0,
) -> float:
    r"""Squared maximum mean discrepancy (Gretton et al. 2012) with a mixture of RBF kernels.

    .. math::
        \mathrm{MMD}^2 = \mathbb{E}\,k(X,X') + \mathbb{E}\,k(Y,Y') - 2\,\mathbb{E}\,k(X,Y),\qquad
        k(a,b) = \frac{1}{S}\sum_{s=1}^{S} \exp\!\big(-\|a-b\|^2 / (2\sigma_s^2)\big)

    ``bandwidths`` are the :math:`\sigma_s` (default :func:`median_heuristic_bandwidths` of ``x``
    and ``y``). ``estimator="unbiased"``: within-set means over pairs ``i != j``; ``"biased"``: over
    all pairs (>= 0, 0 for ``y = x``). ``max_cells``, ``seed`` as in :func:`~tutorial_lib.metrics.e_distance`.
    """
    check_estimator(estimator, ("unbiased", "biased"))
    x, y = prepare(x, y, max_cells, seed)
    gammas = rbf_gammas(median_heuristic_bandwidths(x, y, seed=seed) if bandwidths is None else bandwidths)
    est = "u" if estimator == "unbiased" else "v"
    cross, within_x, within_y = pair_means(x, y, rbf_mixture(gammas), est, diag=1.0)
    return within_x + within_y - 2.0 * cross


def _estimator_kind(estimator: str) -> str:
    """``"u"``/``"unbiased"`` -> ``"u"``; ``"v"``/``"biased"`` -> ``"v"``."""
    kinds = {"u": "u", "unbiased": "u", "v": "v", "biased": "v"}
    if estimator not in kinds:
        raise ValueError(f"estimator must be one of {list(kinds)}, got {estimator!r}")
    return kinds[estimator]


@dataclass(frozen=True)
class PairDistance:
    """A distance between two sets of cells built from one function of pairwise distances.

    With ``k = pairwise(d^2, cache)`` on every pair of cells, the statistic is
    ``combine(cross, within_x, within_y)``: ``cross`` is the mean of ``k`` over the ``n_x * n_y``
    pairs across sets, ``within_*`` the mean over all ``n^2`` pairs inside a set (V-statistic) or
    the ``n(n-1)`` pairs ``i != j`` (U-statistic; ``diag``, ``k`` at distance 0, is removed).
    ``name`` keys its cached matrices; ``pairwise`` may work in place on its (copied) ``d2``.
    """

    name: str
    pairwise: Callable[[np.ndarray, PairwiseCache], np.ndarray]
    diag: float
    combine: Callable


#: Energy distance (:func:`~tutorial_lib.metrics.e_distance`): ``2 cross - within_x - within_y``.
ENERGY = PairDistance("e_distance", lambda d2, cache: np.sqrt(d2, out=d2), 0.0, lambda c, wx, wy: 2.0 * c - wx - wy)

#: Squared MMD with the cache's RBF mixture (:func:`mmd`): ``within_x + within_y - 2 cross``.
RBF_MMD = PairDistance("mmd", lambda d2, cache: rbf_mixture(cache.gammas)(d2), 1.0, lambda c, wx, wy: wx + wy - 2.0 * c)


class PairwiseCache:
    r"""Squared distances of two fixed sets computed once, so that resamples only index into them.

    :meth:`statistic` of a :class:`PairDistance` on the rows ``ix`` of ``x`` and ``iy`` of ``y``
    is that distance of those cells, computed without any new distance. Memory: three dense
    float64 matrices (x-x, y-y, x-y) plus three per distance used. ``bandwidths`` (the RBF
    :math:`\sigma_s` of :func:`mmd`) are needed only by :data:`RBF_MMD`.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, bandwidths: Sequence[float] | np.ndarray | None = None) -> None:
        x = as_points(x, "first set of cells")
        y = as_points(y, "second set of cells")
        self.gammas: np.ndarray | None = None if bandwidths is None else rbf_gammas(bandwidths)
        sq = {"x": np.einsum("ij,ij->i", x, x), "y": np.einsum("ij,ij->i", y, y)}
        pts = {"x": x, "y": y}
        self._d2 = {key: sq_distances(pts[key[0]], sq[key[0]], pts[key[1]], sq[key[1]]) for key in ("xx", "yy", "xy")}
        self._mats: dict[str, dict[str, np.ndarray]] = {}

    def matrices(self, dist: PairDistance) -> dict[str, np.ndarray]:
        """``dist.pairwise`` of the pairs x-x, y-y and x-y (computed once, then cached)."""
        if dist.name not in self._mats:
            if dist is RBF_MMD and self.gammas is None:
                raise ValueError("this PairwiseCache has no bandwidths; pass them to compute the MMD")
            self._mats[dist.name] = {key: dist.pairwise(d2.copy(), self) for key, d2 in self._d2.items()}
        return self._mats[dist.name]

    def statistic(self, dist: PairDistance, ix: np.ndarray, iy: np.ndarray, estimator: str = "u") -> float:
        """``dist`` of ``x[ix]`` and ``y[iy]`` (``estimator``: ``"u"``/``"unbiased"`` or ``"v"``/``"biased"``)."""
        m, est = self.matrices(dist), _estimator_kind(estimator)

        def within(mat: np.ndarray, idx: np.ndarray) -> float:
            n = idx.size
            s = float(mat[np.ix_(idx, idx)].sum())
            return s / (n * n) if est == "v" else (s - n * dist.diag) / (n * (n - 1))

        cross = float(m["xy"][np.ix_(ix, iy)].mean())
        return dist.combine(cross, within(m["xx"], ix), within(m["yy"], iy))

    def e_distance(self, ix: np.ndarray, iy: np.ndarray, estimator: Estimator = "u") -> float:
        """:func:`~tutorial_lib.metrics.e_distance` of ``x[ix]`` and ``y[iy]``."""
        check_estimator(estimator, ("u", "v"))
        return self.statistic(ENERGY, ix, iy, estimator)

    def mmd(self, ix: np.ndarray, iy: np.ndarray, estimator: Literal["unbiased", "biased"] = "unbiased") -> float:
        """:func:`mmd` of ``x[ix]`` and ``y[iy]`` with the cache's bandwidths."""
        check_estimator(estimator, ("unbiased", "biased"))
        return self.statistic(RBF_MMD, ix, iy, estimator)

    def statistic_many(self, dist: PairDistance, cx: np.ndarray, cy: np.ndarray, estimator: str = "u") -> np.ndarray:
        """:meth:`statistic` of many resamples at once, by matrix products instead of a loop.

        ``cx`` (resamples x cells of ``x``) and ``cy`` count how often each cell is in each resample
        (0/1 for subsamples without replacement, which the U-statistic needs).
        """
        m, est = self.matrices(dist), _estimator_kind(estimator)
        cx, cy = np.asarray(cx, float), np.asarray(cy, float)

        def within(mat: np.ndarray, c: np.ndarray) -> np.ndarray:
            n = c.sum(axis=1)
            s = np.einsum("bi,bi->b", c @ mat, c)
            if est == "v":
                return s / (n * n)
            if np.any(c > 1):
                raise ValueError("the U-statistic of a resample needs each cell at most once (subsamples)")
            return (s - n * dist.diag) / (n * (n - 1))

        cross = np.einsum("bi,bi->b", cx @ m["xy"], cy) / (cx.sum(axis=1) * cy.sum(axis=1))
        return dist.combine(cross, within(m["xx"], cx), within(m["yy"], cy))

    def e_distance_many(self, cx: np.ndarray, cy: np.ndarray, estimator: Estimator = "u") -> np.ndarray:
        """:meth:`e_distance` of many resamples at once (``cx``, ``cy`` as in :meth:`statistic_many`)."""
        check_estimator(estimator, ("u", "v"))
        return self.statistic_many(ENERGY, cx, cy, estimator)

    def mmd_many(
        self, cx: np.ndarray, cy: np.ndarray, estimator: Literal["unbiased", "biased"] = "unbiased"
    ) -> np.ndarray:
        """:meth:`mmd` of many resamples at once (``cx``, ``cy`` as in :meth:`statistic_many`)."""
        check_estimator(estimator, ("unbiased", "biased"))
        return self.statistic_many(RBF_MMD, cx, cy, estimator)
