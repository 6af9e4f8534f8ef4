"""Coverage of three bootstrap intervals for per-gene metrics, by simulation (issue 11).

Usage (from the repository root, course environment; about 2 CPU-minutes)::

    python benchmarks/compare_intervals.py
    python benchmarks/compare_intervals.py --reps 400 --genes 200 --cells 300

For each case, ``--reps`` replicate data sets are drawn from known populations: control cells
``N(mu_c, sd²)``, real stimulated cells ``N(mu_c + d_real, sd_real²)``, and predicted cells made
from the control cells (``ctrl + d_pred``; resampled paired with them, as ``evaluate`` does), with
``d_pred`` within ``noise`` of ``d_real``. On each replicate the metric is computed on all cells
(the estimate) and on ``--boot`` n-out-of-n bootstrap resamples (``evaluate``'s own resampling),
and three nominal 95% intervals are built from the same resamples:

* ``percentile``: the 2.5 and 97.5 percentiles of the resampled values;
* ``basic``: those percentiles' deviations from the estimate, reflected around it (what
  :mod:`course_tools.scoring.bootstrap` uses for per-gene metrics);
* ``bc``: the bias-corrected percentile interval (Efron), which shifts the percentiles by the
  share of resamples below the estimate.

Printed: the true value, and per interval the share of replicates that cover it and the mean
width. Recorded output: ``recorded/2026-12-01_compare_intervals.log``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_tools.scoring.bootstrap import interval  # noqa: E402
from course_tools.scoring.evaluate import _bootstrap_summaries, _summaries  # noqa: E402
from tutorial_lib.metrics import means as mm  # noqa: E402

METRICS = {
    "r2_pearson_mean": (
        lambda s: mm.r2_pearson(s.real_mean, s.pred_mean),
        lambda mu, dr, dp, sd, sdr: mm.r2_pearson(mu + dr, mu + dp),
    ),
    "r2_pearson_var": (
        lambda s: mm.r2_pearson(s.real_var, s.pred_var),
        lambda mu, dr, dp, sd, sdr: mm.r2_pearson(sdr**2, sd**2),
    ),
    "pearson_delta": (
        lambda s: mm.pearson_delta(s.real_mean, s.pred_mean, s.ctrl_mean),
        lambda mu, dr, dp, sd, sdr: float(np.corrcoef(dr, dp)[0, 1]),
    ),
}


def intervals(estimate: float, boots: np.ndarray, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """The library's percentile and basic intervals, and a bias-corrected percentile one, from the same resamples."""
    out = {k: interval(estimate, boots, k, level=level) for k in ("percentile", "basic")}
    out = {k: (iv.ci_low, iv.ci_high) for k, iv in out.items()}
    b = boots[np.isfinite(boots)]
    a = 100 * (1 - level) / 2
    share = (np.sum(b < estimate) + 0.5 * np.sum(b == estimate)) / b.size
    share = min(max(share, 0.5 / b.size), 1 - 0.5 / b.size)
    z0, z = stats.norm.ppf(share), stats.norm.ppf(1 - a / 100)
    q = 100 * stats.norm.cdf([2 * z0 - z, 2 * z0 + z])
    out["bc"] = tuple(np.percentile(b, q))
    return out


def coverage(metric: str, noise: float, reps: int, boot: int, genes: int, cells: int, seed: int) -> dict:
    fn, truth_of = METRICS[metric]
    rng = np.random.default_rng(seed)
    mu_c = rng.normal(1.0, 1.0, genes)
    sd = rng.uniform(0.5, 2.0, genes)
    d_real = rng.normal(size=genes)
    d_pred = d_real + noise * rng.normal(size=genes)
    sd_real = sd * rng.uniform(0.8, 1.25, genes)
    truth = truth_of(mu_c, d_real, d_pred, sd, sd_real)
    hits = {k: [] for k in ("percentile", "basic", "bc")}
    widths = {k: [] for k in hits}
    for rep in range(reps):
        ctrl = mu_c + sd * rng.normal(size=(cells, genes))
        real = mu_c + d_real + sd_real * rng.normal(size=(cells, genes))
        mats = {"real": real, "pred": ctrl + d_pred, "ctrl": ctrl}
        est = fn(_summaries(real, mats["pred"], ctrl))
        boots = np.array([fn(s) for s in _bootstrap_summaries(mats, boot, seed=rep, paired=True)])
        for k, (lo, hi) in intervals(est, boots).items():
            hits[k].append(lo <= truth <= hi)
            widths[k].append(hi - lo)
    return {"truth": truth, **{k: (np.mean(v), np.mean(widths[k])) for k, v in hits.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--boot", type=int, default=100)
    p.add_argument("--genes", type=int, default=200)
    p.add_argument("--cells", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(f"# {args.reps} replicates, {args.boot} resamples, {args.genes} genes, {args.cells} cells per group")
    print(f"{'metric':16s} {'noise':>5s} {'truth':>7s}   coverage (mean width): percentile | basic | bc")
    for metric in METRICS:
        for noise in (0.2, 0.7):
            r = coverage(metric, noise, args.reps, args.boot, args.genes, args.cells, args.seed)
            cols = " | ".join(f"{r[k][0]:.3f} ({r[k][1]:.4f})" for k in ("percentile", "basic", "bc"))
            print(f"{metric:16s} {noise:5.1f} {r['truth']:7.4f}   {cols}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
