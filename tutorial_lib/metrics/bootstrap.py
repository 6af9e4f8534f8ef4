"""Resampling cells to put an interval on a metric."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


def subsample_size(n: int, fraction: float) -> int:
    """Cells kept per resample: ``round(fraction * n)``, at least 2 (and at most ``n``)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"bootstrap_fraction must be in (0, 1], got {fraction}")
    return int(min(n, max(2, round(fraction * n))))


def resample_indices(
    sizes: Sequence[int],
    n_boot: int,
    fraction: float = 0.8,
    seed: int = 0,
    paired: Sequence[tuple[int, int]] = (),
) -> Iterator[list[np.ndarray]]:
    """Indices of ``n_boot`` resamples: for each group, ``fraction`` of its cells without replacement.

    Parameters
    ----------
    sizes
        Number of cells of each group.
    n_boot
        Number of resamples.
    fraction
        Fraction of each group's cells kept (subsampling without replacement, "m-out-of-n").
    seed
        Seed: the same seed gives the same resamples.
    paired
        Pairs ``(i, j)`` of groups with equal sizes whose cells correspond one to one (e.g.
        predictions made from those control cells): group ``j`` reuses group ``i``'s indices.

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
            else:
                out.append(np.sort(rng.choice(n, size=subsample_size(n, fraction), replace=False)))
        yield out


@dataclass(frozen=True)
class BootSummary:
    """Mean and percentile interval of the defined (finite) resample values."""

    mean: float
    ci_low: float
    ci_high: float
    n_boot: int
    n_undefined: int


def summarise(values: Sequence[float], level: float = 0.95) -> BootSummary:
    """Mean and percentile interval (``(1-level)/2``, ``(1+level)/2`` quantiles) of finite values.

    Non-finite values (undefined metric on a resample) are counted in ``n_undefined`` and left
    out; if none is finite all three numbers are ``nan``.
    """
    v = np.asarray(values, dtype=np.float64)
    ok = v[np.isfinite(v)]
    n_bad = int(v.size - ok.size)
    if ok.size == 0:
        return BootSummary(float("nan"), float("nan"), float("nan"), int(v.size), n_bad)
    lo, hi = np.percentile(ok, [50 * (1 - level), 50 * (1 + level)])
    return BootSummary(float(ok.mean()), float(lo), float(hi), int(v.size), n_bad)
