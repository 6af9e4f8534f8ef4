"""Resampling helpers and the coverage of evaluate's intervals, checked by simulation."""

from __future__ import annotations

from math import erf, exp, pi, sqrt

import numpy as np
import pytest

from course_tools.scoring.bootstrap import (
    bias_from_interval,
    bootstrap_bias,
    bootstrap_weights,
    interval,
    resample_indices,
    subsample_masks,
)
from course_tools.scoring.evaluate import _bootstrap_summaries, _summaries
from course_tools.scoring.pairwise import PairwiseCache
from course_tools.scoring.registry import INTERVALS, get_metric
from tutorial_lib.metrics import means as mm


def test_resample_indices_bootstrap_subsample_seeded_and_paired():
    draws1 = list(resample_indices([10, 8, 8], n_boot=5, seed=3, paired=[(1, 2)]))
    draws2 = list(resample_indices([10, 8, 8], n_boot=5, seed=3, paired=[(1, 2)]))
    assert len(draws1) == 5
    for d1, d2 in zip(draws1, draws2):
        for a, b in zip(d1, d2):
            np.testing.assert_array_equal(a, b)
        assert d1[0].size == 10 and d1[1].size == 8  # n out of n
        np.testing.assert_array_equal(d1[1], d1[2])
    assert any(np.unique(d[0]).size < 10 for d in draws1)  # with replacement
    sub = list(resample_indices([10, 8], n_boot=5, seed=3, fraction=0.5))
    for d in sub:
        assert d[0].size == 5 and d[1].size == 4
        assert np.unique(d[0]).size == 5  # without replacement
    other = list(resample_indices([10, 8, 8], n_boot=5, seed=4))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(draws1, other))
    with pytest.raises(ValueError, match="different sizes"):
        list(resample_indices([10, 8, 9], 1, paired=[(1, 2)]))
    with pytest.raises(ValueError, match="fraction"):
        list(resample_indices([10], 1, fraction=1.0))


def test_bootstrap_weights_are_counts_of_draws():
    w = bootstrap_weights(7, 50, np.random.default_rng(0))
    assert w.shape == (50, 7)
    np.testing.assert_array_equal(w.sum(axis=1), 7)
    assert (w >= 0).all() and np.all(w == np.round(w))
    assert w.std(axis=0).min() > 0  # every cell's count varies


def test_interval_kinds_around_the_estimate():
    boots = np.arange(101.0)
    iv = interval(10.0, boots, "percentile")
    assert (iv.value, iv.kind) == (10.0, "percentile")
    assert (iv.ci_low, iv.ci_high) == pytest.approx((2.5, 97.5))
    # basic (the default): the resamples' deviations from the estimate, reflected around it
    iv = interval(10.0, boots)
    assert (iv.value, iv.kind) == (10.0, "basic")
    assert (iv.ci_low, iv.ci_high) == pytest.approx((20 - 97.5, 20 - 2.5))
    below = np.linspace(0.90, 0.95, 101)  # resamples all below the estimate, as for a biased R²
    iv = interval(0.96, below)
    assert iv.ci_low > 0.96 - 1e-12 and iv.ci_high == pytest.approx(2 * 0.96 - 0.90 - 0.05 * 0.025)
    # subsample: deviations from the estimate, rescaled by sqrt(f/(1-f)) = 2 at f = 0.8, reflected
    iv = interval(50.0, boots, "subsample", fraction=0.8)
    assert (iv.ci_low, iv.ci_high) == pytest.approx((50 - 2 * 47.5, 50 + 2 * 47.5))
    skew = np.array([0.0, 0.0, 0.0, 10.0])
    iv = interval(0.0, skew, "subsample", fraction=0.5)
    assert iv.ci_low < -5 and iv.ci_high == pytest.approx(0.0)  # basic interval: reflected
    iv = interval(3.0, [1.0, 2.0, 3.0, np.nan], "normal")
    assert iv.n_undefined == 1 and iv.n_boot == 4
    assert iv.ci_high - 3.0 == pytest.approx(3.0 - iv.ci_low)
    assert iv.ci_high - 3.0 > 1.96  # Student quantile with 2 df, sd 1
    assert np.isnan(interval(1.0, [np.nan, np.nan]).ci_low)
    with pytest.raises(ValueError, match="fraction"):
        interval(1.0, [1.0], "subsample")
    with pytest.raises(ValueError, match="kind"):
        interval(1.0, [1.0], "bca")


def test_bias_of_the_resamples_and_from_a_stored_interval():
    below = np.linspace(0.90, 0.95, 101)  # every resample below the estimate: the basic interval excludes it
    iv = interval(0.96, below)
    assert iv.ci_low > iv.value  # the interval excludes its own estimate
    assert iv.bias == pytest.approx(below.mean() - 0.96) == bootstrap_bias(0.96, below)
    # from the stored interval: the midpoint of the resamples' 2.5-97.5% percentiles minus the estimate
    mid = np.mean(np.percentile(below, [2.5, 97.5]))
    assert bias_from_interval(iv.value, iv.ci_low, iv.ci_high, "basic") == pytest.approx(mid - 0.96)
    pct = interval(0.96, below, "percentile")
    assert bias_from_interval(pct.value, pct.ci_low, pct.ci_high, "percentile") == pytest.approx(mid - 0.96)
    # subsample: deviations rescaled by sqrt(f / (1 - f)) = 2 at f = 0.8, as the interval rescales them
    boots = np.array([1.0, 2.0, 2.0, 5.0])
    sub = interval(1.0, boots, "subsample", fraction=0.8)
    assert sub.bias == pytest.approx(2 * (boots.mean() - 1.0))
    sub_mid = 2 * (np.mean(np.percentile(boots, [2.5, 97.5])) - 1.0)
    assert bias_from_interval(sub.value, sub.ci_low, sub.ci_high, "subsample") == pytest.approx(sub_mid)
    # arrays alike; NaN where the scheme cannot tell (a normal interval is symmetric by construction)
    np.testing.assert_allclose(
        bias_from_interval(np.array([1.0, 2.0]), np.array([0.0, 2.5]), np.array([1.0, 3.5]), "basic"), [0.5, -1.0]
    )
    assert np.isnan(bias_from_interval(1.0, 0.0, 2.0, "normal"))
    assert np.isnan(bootstrap_bias(1.0, [np.nan]))


def test_bounds_clip_an_interval_to_the_metric_range():
    skew = np.array([0.0, 0.0, 0.0, 10.0])  # a small distance whose subsample interval reaches below 0
    free = interval(0.5, skew, "subsample", fraction=0.5)
    assert free.ci_low < 0
    clipped = interval(0.5, skew, "subsample", fraction=0.5, bounds=(0.0, np.inf))
    assert clipped.ci_low == 0.0 and clipped.ci_high == free.ci_high and clipped.value == 0.5
    share = interval(0.98, np.linspace(0.9, 0.99, 50), bounds=(0.0, 1.0))
    assert share.ci_high <= 1.0
    with pytest.raises(ValueError, match="bounds"):
        interval(0.5, skew, bounds=(1.0, 0.0))


def test_many_resamples_at_once_match_one_by_one():
    rng = np.random.default_rng(0)
    cache = PairwiseCache(rng.normal(size=(12, 3)), rng.normal(size=(9, 3)) + 0.5, [0.7, 2.0])
    masks = subsample_masks([12, 9], 6, 0.5, seed=2)
    many_e, many_m = cache.e_distance_many(*masks), cache.mmd_many(*masks)
    many_ev = cache.e_distance_many(*masks, estimator="v")
    for b, (ix, iy) in enumerate(resample_indices([12, 9], 6, seed=2, fraction=0.5)):
        assert masks[0][b].sum() == ix.size and masks[0][b, ix].all()
        assert many_e[b] == pytest.approx(cache.e_distance(ix, iy))
        assert many_ev[b] == pytest.approx(cache.e_distance(ix, iy, "v"))
        assert many_m[b] == pytest.approx(cache.mmd(ix, iy))
    with pytest.raises(ValueError, match="at most once"):
        cache.e_distance_many(2 * masks[0], masks[1])


def test_bootstrap_summaries_match_indexing_the_cells():
    rng = np.random.default_rng(0)
    mats = {k: rng.normal(size=(n, 4)) for k, n in (("real", 9), ("pred", 6), ("ctrl", 6))}
    boot = list(_bootstrap_summaries(mats, 3, seed=1, paired=True))
    assert len(boot) == 3
    w_rng = np.random.default_rng(1)
    w = {k: bootstrap_weights(mats[k].shape[0], 3, w_rng) for k in ("real", "ctrl")}
    for b, s in enumerate(boot):
        idx = np.repeat(np.arange(9), w["real"][b].astype(int))
        np.testing.assert_allclose(s.real_mean, mats["real"][idx].mean(axis=0))
        np.testing.assert_allclose(s.real_var, mats["real"][idx].var(axis=0), atol=1e-12)
        idc = np.repeat(np.arange(6), w["ctrl"][b].astype(int))
        np.testing.assert_allclose(s.pred_mean, mats["pred"][idc].mean(axis=0))  # paired with ctrl
        np.testing.assert_allclose(s.ctrl_mean, mats["ctrl"][idc].mean(axis=0))


def _coverage(metric, truth_of, n_genes, n_cells, noise_pred, n_rep=200, n_boot=100, seed=0):
    """Share of replicates whose interval (by the metric's registered scheme) covers the true value.

    Control cells ``N(mu_c, sd²)``, real stimulated cells ``N(mu_c + d_real, sd_real²)``, and
    predicted cells made from the control cells (``ctrl + d_pred``, resampled paired with them),
    with ``d_pred`` within ``noise_pred`` of ``d_real``; the truth is ``truth_of`` of the
    population means and variances.
    """
    rng = np.random.default_rng(seed)
    mu_c = rng.normal(1.0, 1.0, n_genes)
    sd = rng.uniform(0.5, 2.0, n_genes)
    sd_real = sd * rng.uniform(0.8, 1.25, n_genes)
    d_real = rng.normal(size=n_genes)
    d_pred = d_real + noise_pred * rng.normal(size=n_genes)
    truth = truth_of(mu_c, d_real, d_pred, sd, sd_real)
    fn = get_metric(metric).fn
    covered = []
    for rep in range(n_rep):
        ctrl = mu_c + sd * rng.normal(size=(n_cells, n_genes))
        real = mu_c + d_real + sd_real * rng.normal(size=(n_cells, n_genes))
        mats = {"real": real, "pred": ctrl + d_pred, "ctrl": ctrl}
        est = fn(_summaries(real, mats["pred"], ctrl))
        boots = [fn(s) for s in _bootstrap_summaries(mats, n_boot, seed=rep, paired=True)]
        iv = interval(est, boots, INTERVALS[metric])
        assert iv.value == est
        covered.append(iv.ci_low <= truth <= iv.ci_high)
    return float(np.mean(covered))


@pytest.mark.parametrize(
    ("metric", "truth_of", "noise_pred"),
    [
        # a good prediction: R² of the true means about 0.98; a resample's R² falls below the
        # estimate as the estimate falls below the truth (the percentile interval covers 0%)
        ("r2_pearson_mean", lambda mu, dr, dp, sd, sdr: mm.r2_pearson(mu + dr, mu + dp), 0.2),
        # variances: the prediction keeps the control cells' variances
        ("r2_pearson_var", lambda mu, dr, dp, sd, sdr: mm.r2_pearson(sdr**2, sd**2), 0.2),
        ("pearson_delta", lambda mu, dr, dp, sd, sdr: float(np.corrcoef(dr, dp)[0, 1]), 0.7),
    ],
)
def test_per_gene_intervals_cover_the_truth_95_percent(metric, truth_of, noise_pred):
    """Nominal 95% intervals of per-gene metrics, by their registered scheme, cover a known truth."""
    assert 0.90 <= _coverage(metric, truth_of, n_genes=100, n_cells=200, noise_pred=noise_pred) <= 0.99


def test_e_distance_interval_covers_the_truth_95_percent():
    """Known true energy distance of N(0, 1) and N(1, 1); rescaled subsampling at f = 0.5."""
    mu = 1.0
    phi = lambda x: 0.5 * (1 + erf(x / sqrt(2)))  # noqa: E731
    e_xy = sqrt(2) * sqrt(2 / pi) * exp(-(mu**2) / 4) + mu * (1 - 2 * phi(-mu / sqrt(2)))  # E|X - Y|, X - Y ~ N(-mu, 2)
    truth = 2 * e_xy - 2 * (2 / sqrt(pi))  # E|X - X'| = 2 / sqrt(pi)
    rng = np.random.default_rng(0)
    n, n_rep, n_boot, f = 200, 200, 100, 0.5
    covered = []
    for rep in range(n_rep):
        cache = PairwiseCache(rng.normal(size=(n, 1)), mu + rng.normal(size=(n, 1)), [1.0])
        every = np.arange(n)
        est = cache.e_distance(every, every)
        boots = cache.e_distance_many(*subsample_masks([n, n], n_boot, f, seed=rep))  # as evaluate() does
        iv = interval(est, boots, "subsample", fraction=f)
        covered.append(iv.ci_low <= truth <= iv.ci_high)
    assert 0.90 <= np.mean(covered) <= 0.99
