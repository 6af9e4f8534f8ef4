"""Time e_distance and mmd on 2,000 x 2,000 cells in 50 dimensions; compare with pertpy if present.

Run:  python benchmarks/bench_distances.py [--repeats 7] [--n 2000] [--dims 50]

pertpy's ``Distance("edistance")`` averages over all pairs including i = j (a V-statistic) and,
depending on the release, uses Euclidean (e.g. 1.0.x) or squared Euclidean distances (some
earlier releases). We time and compare it with the matching ``tutorial_lib`` function:
``e_distance(..., estimator="v")`` or ``e_distance_sq(..., estimator="v")``, reporting which one
it agrees with.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from course_tools.scoring.pairwise import e_distance_sq, median_heuristic_bandwidths, mmd
from tutorial_lib.metrics import e_distance


def timed(fn: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Median wall time (s) of ``repeats`` calls after one warm-up, and the value returned."""
    value = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--dims", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.dims))
    y = rng.normal(loc=0.1, scale=1.2, size=(args.n, args.dims))
    bw = median_heuristic_bandwidths(x, y)

    rows: list[tuple[str, float, float]] = []
    cases = {
        "e_distance (Euclidean, U)": lambda: e_distance(x, y, estimator="u"),
        "e_distance (Euclidean, V)": lambda: e_distance(x, y, estimator="v"),
        "e_distance_sq (squared, V)": lambda: e_distance_sq(x, y, estimator="v"),
        "mmd (RBF x3, unbiased)": lambda: mmd(x, y, bandwidths=bw),
    }
    for name, fn in cases.items():
        t, v = timed(fn, args.repeats)
        rows.append((name, t, v))

    try:
        import pertpy as pt
    except Exception as err:  # noqa: BLE001 - any import failure means "not available"
        pertpy_msg = f"pertpy not importable ({type(err).__name__}: {err}); comparison skipped"
    else:
        dist = pt.tools.Distance("edistance")
        t, v = timed(lambda: float(dist(x, y)), args.repeats)
        rows.append((f"pertpy {pt.__version__} Distance('edistance')", t, v))
        ours = {"e_distance (Euclidean, V)": rows[1][2], "e_distance_sq (squared, V)": rows[2][2]}
        match = [k for k, val in ours.items() if np.isclose(v, val, rtol=1e-8)]
        pertpy_msg = f"pertpy's value matches: {match[0] if match else 'neither of ours (check its definition)'}"

    print(f"{args.n} x {args.n} cells, {args.dims} dims, median of {args.repeats} runs")
    print(f"{'method':45s} {'time (ms)':>10s} {'value':>14s}")
    for name, t, v in rows:
        print(f"{name:45s} {1e3 * t:10.1f} {v:14.6f}")
    print(pertpy_msg)


if __name__ == "__main__":
    main()
