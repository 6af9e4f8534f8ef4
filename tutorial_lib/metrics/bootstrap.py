"""Resampling cells to put an interval on a metric.

Four interval schemes, each used where it is correct (:data:`tutorial_lib.metrics.evaluate.INTERVALS`
says which metric uses which). In every scheme the reported value is the estimate on all cells;
the resamples only give the interval around it.

``"basic"``
    n-out-of-n bootstrap: each group's cells are drawn *with* replacement, as many as it has; the
    interval reflects the resamples' deviations from the estimate ``T``:
    ``[2T - q_97.5, 2T - q_2.5]`` of the resampled values. The per-gene metrics use it (R² of
    means and variances, Pearson-Δ, MSE, ...). Sampling noise in the per-gene means lowers an R²
    and raises an MSE, so the estimate is biased, and a resample adds that noise a second time:
    its values sit on the far side of the estimate from the truth, by about the same amount as
    the estimate sits from the truth. The basic interval corrects for this shift; the percentile
    interval doubles it. In simulation (``benchmarks/compare_intervals.py``; 200 replicates,
    200 genes, 300 cells per group, a prediction close to the truth, true R² of means 0.98) the
    nominal 95% percentile interval covered the true R² of means in 0% of replicates (true R² of
    variances 0.83: 0%; true R² of means 0.78: 45%), the basic interval in 95%, 95% and 92.5%; a
    bias-corrected percentile interval (BC) in 0%, 1% and 67% (its bias estimate saturates when
    nearly every resample lies below the estimate).
``"percentile"``
    The same resamples; the interval is their (2.5, 97.5) percentiles. Correct only for
    statistics whose resampling distribution is centred on the estimate (e.g. a mean); kept for
    comparison and for metrics registered with it. Before 2026-12-01 the per-gene metrics used
    it (see above for why that was wrong).
``"subsample"``
    m-out-of-n subsampling *without* replacement (a fraction ``f`` of each group), rescaled. The
    U-statistics of the energy distance and MMD cannot be bootstrapped with replacement (a cell
    drawn twice is at distance 0 from itself, which biases the within-group terms), so we
    subsample. A subsample's spread around the full estimate is too small by the factor
    ``sqrt((1-f)/f)``: for a U-statistic the full estimate is the average of all subsample
    estimates, so ``var(T_m - T_n) = var(T_m) - var(T_n) = var(T_n) (1-f)/f`` to leading order.
    The interval is the "basic" one built from the rescaled deviations
    ``d = sqrt(f/(1-f)) (T_m - T_n)``: ``[T_n - q_97.5(d), T_n - q_2.5(d)]``. This is the
    finite-population form of Politis and Romano's ``sqrt(m/n)`` rescaling (the two agree when
    ``m << n``; at ``f = 0.5`` the factor is 1). When the two distributions are equal (true
    distance 0) the U-statistic is degenerate and converges at rate ``n``, not ``sqrt(n)``; the
    interval is then wider than needed (at ``f = 0.5`` by about ``sqrt(3)``): conservative.
``"normal"``
    For metrics that are expensive per resample (DEG overlap: two Wilcoxon tests per resample),
    few bootstrap resamples estimate a standard error ``se`` and the interval is
    ``estimate ± t_{B-1} se`` (Student quantile with ``B - 1`` degrees of freedom for the
    uncertainty of ``se`` from ``B`` resamples). Not degenerate whenever the resamples vary.

Coverage of ``"basic"`` and ``"subsample"`` is checked by simulation in ``tests/test_metrics_bootstrap.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

IntervalKind = Literal["basic", "percentile", "subsample", "normal"]
#: The interval schemes, in the order of the module docstring.
INTERVAL_KINDS: tuple[str, ...] = ("basic", "percentile", "subsample", "normal")


def subsample_size(n: int, fraction: float) -> int:
    """Cells kept per subsample: ``round(fraction * n)``, at least 2 and at most ``n - 1``.

    At most ``n - 1`` so that a subsample differs from the full set (``fraction`` must be < 1).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the subsampling fraction must be in (0, 1), got {fraction}")
    if n < 3:
        raise ValueError(f"subsampling needs at least 3 cells per group, got {n}")
    return int(min(n - 1, max(2, round(fraction * n))))


def resample_indices(
    sizes: Sequence[int],
    n_boot: int,
    seed: int = 0,
    paired: Sequence[tuple[int, int]] = (),
    fraction: float | None = None,
) -> Iterator[list[np.ndarray]]:
    """Indices of ``n_boot`` resamples of several groups of cells.

    Parameters
    ----------
    sizes
        Number of cells of each group.
    n_boot
        Number of resamples.
    seed
        Seed: the same seed gives the same resamples.
    paired
        Pairs ``(i, j)`` of groups with equal sizes whose cells correspond one to one (e.g.
        predictions made from those control cells): group ``j`` reuses group ``i``'s indices.
    fraction
        ``None`` (default): n-out-of-n bootstrap, ``n`` cells of each group drawn with
        replacement. A number in (0, 1): subsampling without replacement of that fraction of
        each group (see :func:`subsample_size`), for the ``"subsample"`` interval.

    Yields
    ------
    list of numpy arrays
        One sorted index array per group.
    """
    rng = np.random.default_rng(seed)
    follow = {}
    for i, j in paired:
        if sizes[i] != sizes[j]:
            raise ValueError(f"paired groups {i} and {j} have different sizes {sizes[i]} and {sizes[j]}")
        follow[j] = i
    for _ in range(n_boot):
        out: list[np.ndarray] = []
        for g, n in enumerate(sizes):
            if g in follow:
                out.append(out[follow[g]])
            elif fraction is None:
                out.append(np.sort(rng.integers(0, n, size=n)))
            else:
                out.append(np.sort(rng.choice(n, size=subsample_size(n, fraction), replace=False)))
        yield out


def bootstrap_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot x n`` counts of each cell in n-out-of-n bootstrap resamples (rows sum to ``n``).

    ``weights @ x / n`` gives every resample's per-gene means at once, without indexing rows.
    """
    idx = rng.integers(0, n, size=(n_boot, n))
    w = np.zeros((n_boot, n), dtype=np.float64)
    np.add.at(w, (np.repeat(np.arange(n_boot), n), idx.ravel()), 1.0)
    return w


def subsample_masks(sizes: Sequence[int], n_boot: int, fraction: float, seed: int = 0) -> list[np.ndarray]:
    """The subsamples of :func:`resample_indices` (``fraction`` given) as 0/1 ``n_boot x n`` masks, one per group.

    Same seed, same subsamples as :func:`resample_indices`; used to compute every resample's
    statistic with one matrix product (:meth:`~tutorial_lib.metrics.PairwiseCache.e_distance_many`).
    """
    masks = [np.zeros((n_boot, n), dtype=np.float64) for n in sizes]
    for b, idx in enumerate(resample_indices(sizes, n_boot, seed, fraction=fraction)):
        for g, i in enumerate(idx):
            masks[g][b, i] = 1.0
    return masks


@dataclass(frozen=True)
class Interval:
    """A full-sample estimate and its interval.

    ``n_boot`` resamples were drawn, ``n_undefined`` of them gave no finite value (left out).
    ``kind`` names the scheme (module docstring).
    """

    value: float
    ci_low: float
    ci_high: float
    n_boot: int
    n_undefined: int
    kind: str


def interval(
    estimate: float,
    resampled: Sequence[float],
    kind: IntervalKind = "basic",
    *,
    level: float = 0.95,
    fraction: float | None = None,
) -> Interval:
    """Interval of ``kind`` around the full-sample ``estimate`` from the ``resampled`` values.

    Parameters
    ----------
    estimate
        The metric on all cells (reported as ``value``).
    resampled
        The metric on each resample; non-finite values are counted and left out.
    kind
        ``"basic"``, ``"percentile"``, ``"subsample"`` or ``"normal"`` (module docstring).
    level
        Nominal coverage.
    fraction
        The subsampling fraction; required for ``"subsample"``.

    With no finite resample (or fewer than 2 for ``"normal"``) the interval is NaN.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    v = np.asarray(resampled, dtype=np.float64).ravel()
    ok = v[np.isfinite(v)]
    n_bad = int(v.size - ok.size)
    nan = float("nan")
    alpha = 1.0 - level
    lo = hi = nan
    if kind in ("basic", "subsample"):  # deviations from the estimate (rescaled), reflected around it
        if kind == "subsample" and (fraction is None or not 0.0 < fraction < 1.0):
            raise ValueError(f"the 'subsample' interval needs the subsampling fraction in (0, 1), got {fraction}")
        if ok.size:
            scale = 1.0 if kind == "basic" else np.sqrt(fraction / (1.0 - fraction))
            q_lo, q_hi = np.percentile(scale * (ok - estimate), [50 * alpha, 100 - 50 * alpha])
            lo, hi = estimate - q_hi, estimate - q_lo
    elif kind == "percentile":
        if ok.size:
            lo, hi = np.percentile(ok, [50 * alpha, 100 - 50 * alpha])
    elif kind == "normal":
        if ok.size >= 2:
            half = stats.t.ppf(1 - alpha / 2, ok.size - 1) * ok.std(ddof=1)
            lo, hi = estimate - half, estimate + half
    else:
        raise ValueError(f"kind must be one of {INTERVAL_KINDS}, got {kind!r}")
    return Interval(float(estimate), float(lo), float(hi), int(v.size), n_bad, kind)
