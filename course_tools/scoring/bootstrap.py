"""Resampling cells to put an interval on a metric.

Four interval schemes, each used where it is correct (:data:`course_tools.scoring.registry.INTERVALS`
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
    comparison and for metrics registered with it.
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

**Bias.** A basic interval can exclude its own estimate: when nearly all resamples lie on one side
of it (a biased statistic such as an R² of noisy means), the reflected interval lies on the other
side. The interval is then still about the truth, and the estimate is the biased number;
:func:`bootstrap_bias` gives the size of that bias (mean of the resamples minus the estimate), and
:func:`bias_from_interval` recovers it from a stored interval, where the resamples were not kept.
A metric that cannot leave a range (a distance is >= 0) passes ``bounds`` to :func:`interval`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from tutorial_lib.config import check_seed, check_whole_number

IntervalKind = Literal["basic", "percentile", "subsample", "normal"]
#: The interval schemes, in the order of the module docstring.
INTERVAL_KINDS: tuple[str, ...] = ("basic", "percentile", "subsample", "normal")


MANY_RESAMPLES = 10_000
"""Above this many resamples :func:`check_n_boot` warns: a 95% interval's ends are already estimated to
well under a tenth of its width with 1,000, and every resample costs time."""

CHUNK_BYTES = 256 * 2**20
"""Memory budget (bytes) of the resampling matrices of one chunk of resamples.

:func:`bootstrap_weight_chunks` and :func:`subsample_mask_chunks` hand out the resamples in chunks of
at most this size, so that memory does not grow with the number of resamples. Chunks hold the same
resamples, in the same order, as drawing them all at once. The usual sizes fit in one chunk (e.g.
500 resamples of three groups of 3,000 cells on 2,000 genes), and then every number is computed
exactly as from all resamples at once. Split into chunks, the statistics computed from them by
matrix products agree with an all-at-once computation to rounding only: the BLAS's order of
summation depends on the shape of the matrices.
"""


def check_n_boot(n_boot: Any, name: str = "n_bootstrap") -> int:
    """``n_boot`` (a number of resamples) as a plain ``int``: a whole number >= 0 (0: no interval).

    ``TypeError`` for anything but a Python or NumPy integer (``"5"``, ``5.0``, ``None``), ``ValueError``
    for a negative number; both name the argument. More than :data:`MANY_RESAMPLES` warns
    (``UserWarning``): the interval gains nothing and the run takes long; memory stays bounded
    because the resamples are processed in chunks (:data:`CHUNK_BYTES`).
    """
    n = check_whole_number(n_boot, name, 0, what="an integer >= 0 (the number of resamples; 0: no interval)")
    if n > MANY_RESAMPLES:
        warnings.warn(
            f"{name}={n} resamples: more than {MANY_RESAMPLES:,} do not make a 95% interval more precise, "
            "only slower (they are processed in chunks, so memory stays bounded); 100 to 1,000 are enough",
            UserWarning,
            stacklevel=3,
        )
    return n


def chunk_rows(bytes_per_resample: int, n_boot: int) -> int:
    """Resamples per chunk: as many as fit in :data:`CHUNK_BYTES` (at least 1, at most ``n_boot``)."""
    return int(max(1, min(n_boot, CHUNK_BYTES // max(int(bytes_per_resample), 1))))


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

    Returns
    -------
    iterator of lists of numpy arrays
        Per resample, one sorted index array per group. The arguments are checked when the
        function is called, before the first resample is drawn.
    """
    seed = check_seed(seed)
    n_boot = check_whole_number(n_boot, "n_boot", 0)
    follow = {}
    for i, j in paired:
        if sizes[i] != sizes[j]:
            raise ValueError(f"paired groups {i} and {j} have different sizes {sizes[i]} and {sizes[j]}")
        follow[j] = i
    if fraction is not None:
        for n in sizes:
            subsample_size(n, fraction)
    return _resamples(sizes, n_boot, np.random.default_rng(seed), follow, fraction)


def _resamples(
    sizes: Sequence[int], n_boot: int, rng: np.random.Generator, follow: dict[int, int], fraction: float | None
) -> Iterator[list[np.ndarray]]:
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
    The draws of :func:`bootstrap_weight_chunks`, which gives the same weights in chunks.
    """
    return _counts(rng.integers(0, n, size=(n_boot, n)), n)


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` cells was drawn in each row of ``idx`` (float64; exact integers)."""
    rows = idx.shape[0]
    flat = (np.arange(rows, dtype=np.int64)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)


def bootstrap_weight_chunks(
    sizes: Sequence[int], n_boot: int, seed: int = 0, *, paired: bool = False, bytes_per_resample: int = 0
) -> Iterator[dict[str, np.ndarray]]:
    """:func:`bootstrap_weights` of the real, predicted and control cells, in chunks of resamples.

    ``sizes`` are the numbers of real, predicted and control cells. Each chunk is a dict
    ``{"real", "pred", "ctrl"}`` of ``rows x n`` weight matrices, with ``rows`` chosen so that the
    chunk (and ``bytes_per_resample`` more per resample, the caller's own arrays) fits in
    :data:`CHUNK_BYTES`. The weights are those drawn all at once with one generator seeded with
    ``seed``: first every resample of the real cells, then of the control cells, then (unless
    ``paired``: the predictions reuse the control cells' weights) of the predicted cells. So that
    chunks can be handed out one at a time, the generator is first run through the draws of the
    groups before the last (integers only, no weights) to find where each group's draws start.
    """
    seed = check_seed(seed)
    n_boot = check_whole_number(n_boot, "n_boot", 0)
    n_real, n_pred, n_ctrl = (int(n) for n in sizes)
    if paired and n_pred != n_ctrl:
        raise ValueError(f"paired predicted and control cells need equal numbers, got {n_pred} and {n_ctrl}")
    groups = [("real", n_real), ("ctrl", n_ctrl)] + ([] if paired else [("pred", n_pred)])
    # per resample and cell: the drawn index, its flat position and its count (int64), the float64 weight
    rows = chunk_rows(32 * sum(n for _, n in groups) + bytes_per_resample, n_boot)
    rng = np.random.default_rng(seed)
    starts: dict[str, np.random.Generator] = {}
    for name, n in groups:
        starts[name] = copy.deepcopy(rng)
        if rows < n_boot and name != groups[-1][0]:  # run through this group's draws: the next one starts there
            for lo in range(0, n_boot, rows):
                rng.integers(0, n, size=(min(rows, n_boot - lo), n))
        elif rows >= n_boot:  # one chunk: draw in order from the one generator, as all at once
            starts[name] = rng
    for lo in range(0, n_boot, rows):
        c = min(rows, n_boot - lo)
        chunk = {name: _counts(starts[name].integers(0, n, size=(c, n)), n) for name, n in groups}
        if paired:
            chunk["pred"] = chunk["ctrl"]
        yield chunk


def subsample_masks(sizes: Sequence[int], n_boot: int, fraction: float, seed: int = 0) -> list[np.ndarray]:
    """The subsamples of :func:`resample_indices` (``fraction`` given) as 0/1 ``n_boot x n`` masks, one per group.

    Same seed, same subsamples as :func:`resample_indices`; used to compute every resample's
    statistic with one matrix product (:meth:`~course_tools.scoring.pairwise.PairwiseCache.e_distance_many`).
    :func:`subsample_mask_chunks` gives the same masks in chunks of bounded memory.
    """
    masks = [np.zeros((n_boot, n), dtype=np.float64) for n in sizes]
    for b, idx in enumerate(resample_indices(sizes, n_boot, seed, fraction=fraction)):
        for g, i in enumerate(idx):
            masks[g][b, i] = 1.0
    return masks


def subsample_mask_chunks(
    sizes: Sequence[int], n_boot: int, fraction: float, seed: int = 0, *, bytes_per_resample: int | None = None
) -> Iterator[list[np.ndarray]]:
    """:func:`subsample_masks` in chunks of resamples (rows), each within :data:`CHUNK_BYTES`.

    ``bytes_per_resample``: memory per resample of the chunk and of what the caller computes from
    it; default: the masks and the matrix products of
    :meth:`~course_tools.scoring.pairwise.PairwiseCache.statistic_many` (four float64 values per cell).
    Concatenated, the chunks are exactly :func:`subsample_masks`' masks.
    """
    draws = resample_indices(sizes, n_boot, seed, fraction=fraction)
    n_boot = int(n_boot)
    per = 32 * sum(int(n) for n in sizes) if bytes_per_resample is None else bytes_per_resample
    rows = chunk_rows(per, n_boot)
    for lo in range(0, n_boot, rows):
        c = min(rows, n_boot - lo)
        masks = [np.zeros((c, n), dtype=np.float64) for n in sizes]
        for b, idx in zip(range(c), draws):
            for g, i in enumerate(idx):
                masks[g][b, i] = 1.0
        yield masks


@dataclass(frozen=True)
class Interval:
    """A full-sample estimate and its interval.

    ``n_boot`` resamples were drawn, ``n_undefined`` of them gave no finite value (left out).
    ``kind`` names the scheme (module docstring); ``bias`` is :func:`bootstrap_bias` of the resamples.
    """

    value: float
    ci_low: float
    ci_high: float
    n_boot: int
    n_undefined: int
    kind: str
    bias: float = float("nan")


def _scale(kind: str, fraction: float | None) -> float:
    """Factor that puts a resample's deviation on the scale of the full estimate's (module docstring)."""
    if kind != "subsample":
        return 1.0
    if fraction is None or not 0.0 < fraction < 1.0:
        raise ValueError(f"the 'subsample' interval needs the subsampling fraction in (0, 1), got {fraction}")
    return float(np.sqrt(fraction / (1.0 - fraction)))


def bootstrap_bias(
    estimate: float, resampled: Sequence[float], kind: IntervalKind = "basic", *, fraction: float | None = None
) -> float:
    """Bootstrap estimate of a statistic's bias: the mean of the finite resamples minus the estimate.

    For ``"subsample"`` the deviations are rescaled by ``sqrt(f / (1 - f))`` (module docstring), so
    that the bias is on the scale of the full-sample estimate's. NaN without a finite resample.
    (Efron and Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 10.)
    """
    v = np.asarray(resampled, dtype=np.float64).ravel()
    ok = v[np.isfinite(v)]
    if not ok.size:
        return float("nan")
    return float(_scale(kind, fraction) * (ok.mean() - estimate))


def bias_from_interval(value: float, ci_low: float, ci_high: float, kind: str) -> float:
    """The resamples' centre minus the estimate, recovered from a stored interval (no resamples kept).

    The centre is the midpoint of the resamples' (2.5, 97.5) percentiles, i.e. the bias for a
    symmetric resampling distribution: ``value - (ci_low + ci_high) / 2`` for ``"basic"`` and
    ``"subsample"`` (reflected around the estimate; rescaled deviations for the latter),
    ``(ci_low + ci_high) / 2 - value`` for ``"percentile"``; NaN for ``"normal"`` (symmetric by
    construction) and for an unknown scheme or a missing interval. Works on arrays alike.
    """
    mid = (np.asarray(ci_low, dtype=np.float64) + np.asarray(ci_high, dtype=np.float64)) / 2
    value = np.asarray(value, dtype=np.float64)
    if kind in ("basic", "subsample"):
        out = value - mid
    elif kind == "percentile":
        out = mid - value
    else:
        out = np.full(np.broadcast(value, mid).shape, np.nan)
    return float(out) if np.ndim(out) == 0 else out


def interval(
    estimate: float,
    resampled: Sequence[float],
    kind: IntervalKind = "basic",
    *,
    level: float = 0.95,
    fraction: float | None = None,
    bounds: tuple[float, float] | None = None,
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
    bounds
        ``(low, high)``: the range the metric cannot leave (e.g. ``(0, inf)`` for a distance); both
        ends of the interval are clipped to it. Clipping keeps the coverage (the truth lies in the
        range) and removes impossible values.

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
    if bounds is not None and not bounds[0] <= bounds[1]:
        raise ValueError(f"bounds must be (low, high) with low <= high, got {bounds}")
    if kind in ("basic", "subsample"):  # deviations from the estimate (rescaled), reflected around it
        scale = _scale(kind, fraction)
        if ok.size:
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
    if bounds is not None and np.isfinite(lo):
        lo, hi = np.clip([lo, hi], *bounds)
    bias = bootstrap_bias(estimate, ok, kind, fraction=fraction)
    return Interval(float(estimate), float(lo), float(hi), int(v.size), n_bad, kind, bias)
