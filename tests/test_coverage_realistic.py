"""Do the intervals mean what they say on data that look like the benchmark's?

Three simulations, each with enough replicates to tell 90% from 95% coverage (the band is the
nominal rate ± 3 binomial sd of the replicate count):

- the pooled ratio interval of a distance (:func:`course_tools.verdicts.paired_ratio`, the interval
  of :func:`~course_tools.verdicts.paired_verdict` for distances pooled over cell types) on cell
  types whose distances differ by an order of magnitude (log-normal scale), with seeds correlated
  within a cell type and shared by the two methods;
- the interval of a verdict within one setting (the seeds of one held-out cell type), which adds the
  test cells' sampling from the runs' own intervals (:func:`course_tools.verdicts.cell_sampling_sd`),
  whether the two methods' cell-sampling errors are correlated, independent or anti-correlated; the
  runs' intervals are simulated as right up to their resampling noise (whether they are right on
  realistic counts is the last simulation);
- the family-wise error of the primary question's Holm-corrected verdicts
  (:func:`~course_tools.verdicts.family_verdicts`) under the null, with correlated comparisons,
  and the error of an "equivalent" verdict at the margin;
- the per-run basic bootstrap interval of per-gene metrics on sparse, overdispersed counts
  (negative binomial) with a shared cell size factor, correlated gene programs and two donors,
  and the E-distance's subsample interval on the same counts (about a minute each: marked
  ``slow``; the rest of the module takes about 15 s).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from course_tools.scoring.bootstrap import interval, subsample_masks
from course_tools.scoring.evaluate import _bootstrap_summaries, _summaries
from course_tools.scoring.pairwise import PairwiseCache
from course_tools.scoring.registry import INTERVALS, get_metric
from course_tools.verdicts import (
    RUN_INTERVAL_LEVEL,
    Margin,
    cell_sampling_sd,
    family_verdicts,
    paired_ratio,
    paired_t,
    paired_verdict,
)
from tutorial_lib.metrics import means as mm

N_REP = 2000


def _band(n_rep: int, level: float = 0.95) -> float:
    """Three binomial standard deviations of an observed coverage around ``level`` (n_rep replicates)."""
    return 3 * np.sqrt(level * (1 - level) / n_rep)


def _distances(rng: np.random.Generator, n_types: int = 8, n_seeds: int = 5, mu: float = np.log(0.8)):
    """Per cell type and seed, the distances of a model (A) and a baseline (B) to the real cells.

    The baseline's distance differs between cell types by an order of magnitude (log-normal, sd 0.8
    on the log scale: the middle 95% of cell types span a factor of about 20). The model's true log
    ratio to it varies between cell types around ``mu`` (sd 0.3). Seeds: a factor shared by both
    methods within a seed (the same held-out cells, genes and training randomness), correlated across
    the seeds of a cell type (0.5), and a model-only factor, also correlated across seeds (0.5).
    Returns ``(a, b, truth)``: two ``n_types x n_seeds`` arrays and the geometric mean over cell types
    of the ratio of the two expected distances.
    """
    scale = np.exp(rng.normal(np.log(2.0), 0.8, n_types))[:, None]
    theta = (mu + 0.3 * rng.normal(size=n_types))[:, None]

    def correlated(sd: float) -> np.ndarray:
        return sd * (np.sqrt(0.5) * rng.normal(size=(n_types, 1)) + np.sqrt(0.5) * rng.normal(size=(n_types, n_seeds)))

    shared, own = correlated(0.15), correlated(0.1)
    b = scale * np.exp(shared)
    a = scale * np.exp(theta + shared + own)
    # per cell type, log E[A] - log E[B] = theta + the type's part of `own` + its seed part's variance / 2;
    # over cell types the type part averages to 0
    return a, b, float(np.exp(mu + 0.5 * 0.1**2 * 0.5))


def test_pooled_ratio_interval_covers_the_geometric_mean_ratio():
    rng = np.random.default_rng(28)
    covered = []
    for rep in range(N_REP):
        a, b, truth = _distances(rng)
        _, lo, hi = paired_ratio(a.mean(axis=1), b.mean(axis=1))
        covered.append(lo <= truth <= hi)
        if rep < 5:  # the verdict on a table gives the same interval (each cell type the mean of its seeds)
            n_types, n_seeds = a.shape
            keys = pd.DataFrame(
                {
                    "setting": np.repeat([f"t{k}" for k in range(n_types)], n_seeds),
                    "seed": np.tile(range(n_seeds), n_types),
                }
            )
            t = pd.concat([keys.assign(method="A", value=a.ravel()), keys.assign(method="B", value=b.ravel())])
            v = paired_verdict(t.assign(metric="e_distance", gene_set="all"), "A", "B", "e_distance")
            assert v["scale"] == "ratio" and (v["ci_low"], v["ci_high"]) == pytest.approx((lo, hi))
    assert abs(np.mean(covered) - 0.95) <= _band(N_REP), np.mean(covered)


def test_a_raw_pooled_difference_of_distances_is_mostly_the_largest_cell_type():
    """Why distances are pooled as ratios: on the raw scale one cell type carries the mean."""
    rng = np.random.default_rng(1)
    shares = []
    for _ in range(200):
        a, b, _ = _distances(rng)
        d = a.mean(axis=1) - b.mean(axis=1)
        shares.append(np.abs(d).max() / np.abs(d).sum())
    assert np.median(shares) > 2 / 8  # of 8 cell types, one carries over twice an equal share of the differences


# ---------------------------------------------------------------------------------------------
# One setting: seeds share the test cells


_Z = stats.norm.ppf(0.5 + RUN_INTERVAL_LEVEL / 2)


def _one_setting(rng: np.random.Generator, cell_sd: float, seed_sd: float, rho: float, n_seeds: int = 5):
    """Scores of A and B on one setting's seeds and each run's cell-sampling sd (the runs share their test cells).

    Each method's score is its true value (A - B = 0.3) plus a cell-sampling error common to all
    seeds (the test cells are fixed; sd ``cell_sd`` per method, correlation ``rho`` between A and B)
    plus a training error per seed (the difference has sd ``seed_sd``). Each run's sd is ``cell_sd``
    as 100 resamples estimate it (relative error about 7%). Returns ``(values, sds, truth)``: two
    ``2 x n_seeds`` arrays (A, B) and the true difference.
    """
    cov = cell_sd**2 * np.array([[1.0, rho], [rho, 1.0]])
    cells = rng.multivariate_normal([0.0, 0.0], cov)[:, None]
    seeds = rng.normal(0.0, seed_sd / np.sqrt(2), size=(2, n_seeds))
    values = np.array([[1.3], [1.0]]) + cells + seeds
    sds = cell_sd * np.exp(rng.normal(0.0, 0.07, (2, n_seeds)))
    return values, sds, 0.3


def _runs_table(values: np.ndarray, sds: np.ndarray) -> pd.DataFrame:
    """The runs as a results table: each run's score with its 95% interval (score ± z sd)."""
    n_seeds = values.shape[1]
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "method": method,
                    "setting": "loco/DC/balanced",
                    "seed": range(n_seeds),
                    "metric": "pearson_delta",
                    "gene_set": "top100_degs",
                    "value": values[m],
                    "ci_low": values[m] - _Z * sds[m],
                    "ci_high": values[m] + _Z * sds[m],
                }
            )
            for m, method in enumerate(("A", "B"))
        ],
        ignore_index=True,
    )


@pytest.mark.parametrize("rho", [0.8, 0.0, -0.8])
def test_a_setting_verdict_covers_the_test_cells_sampling(rho):
    """DC's E-distance in the table: the runs' cell-sampling half-width (0.35) is larger than the seeds' (0.24).

    With the cells' part the interval covers the true difference at least 95% of the time, whatever
    the correlation of the two methods' errors (conservative where they are correlated); on the seeds
    alone it misses far more often.
    """
    rng = np.random.default_rng(int(10 * (rho + 1)))
    with_cells, seeds_only = [], []
    for rep in range(N_REP):
        values, sds, truth = _one_setting(rng, cell_sd=0.18, seed_sd=0.19, rho=rho)
        d = values[0] - values[1]
        cell = float(sds[0].mean() + sds[1].mean())  # cell_sampling_sd, checked below on the first tables
        _, lo, hi, _ = paired_t(d, extra_sd=cell)
        with_cells.append(lo <= truth <= hi)
        _, lo0, hi0, _ = paired_t(d)
        seeds_only.append(lo0 <= truth <= hi0)
        if rep < 3:  # the verdict on the runs' table computes the same interval
            runs = _runs_table(values, sds)
            assert cell_sampling_sd(runs, "A", "B", pd.Index(range(5), name="seed"), match_on=("seed",)) == (
                pytest.approx(cell)
            )
            v = paired_verdict(runs, "A", "B", "pearson_delta", "top100_degs", match_on=("seed",))
            assert v["unit"] == "run" and v["cell_sd"] == pytest.approx(cell)
            assert (v["ci_low"], v["ci_high"]) == pytest.approx((lo, hi))
    assert np.mean(with_cells) >= 0.95 - _band(N_REP), np.mean(with_cells)
    assert np.mean(seeds_only) < 0.9, np.mean(seeds_only)


def test_a_setting_verdict_without_cell_noise_is_the_paired_t():
    """When the test cells hardly move the scores, the interval is the seeds' paired t and covers at 95%."""
    rng = np.random.default_rng(3)
    covered, widths = [], []
    for _ in range(N_REP):
        values, sds, truth = _one_setting(rng, cell_sd=1e-4, seed_sd=0.19, rho=0.0)
        d = values[0] - values[1]
        _, lo, hi, _ = paired_t(d, extra_sd=float(sds[0].mean() + sds[1].mean()))
        _, lo0, hi0, _ = paired_t(d)
        covered.append(lo <= truth <= hi)
        widths.append((hi - lo) / (hi0 - lo0))
    assert abs(np.mean(covered) - 0.95) <= _band(N_REP), np.mean(covered)
    assert np.median(widths) == pytest.approx(1.0, abs=1e-3)


#: Correlation of the four contrasts of one cell type (scGen and scPRAM against the mean shift share
#: the baseline; Pearson-delta and E-distance of one model move together).
_CORR = np.array(
    [
        [1.0, 0.3, 0.5, 0.15],
        [0.3, 1.0, 0.15, 0.5],
        [0.5, 0.15, 1.0, 0.3],
        [0.15, 0.5, 0.3, 1.0],
    ]
)
_MARGINS = [
    Margin("pearson_delta", "top100_degs", "difference", 0.02),
    Margin("e_distance", "all", "ratio", 1.1),
] * 2
_DIRECTIONS = ["higher", "lower"] * 2


def _family(rng: np.random.Generator, means: np.ndarray, sds: np.ndarray, n_types: int = 8) -> list[np.ndarray]:
    """Per comparison, the per-cell-type contrasts (differences; log ratios for E-distance)."""
    z = rng.multivariate_normal(np.zeros(4), _CORR, size=n_types)
    return [means[j] + sds[j] * z[:, j] for j in range(4)]


def test_holm_keeps_the_family_wise_error_under_the_null():
    """No model differs from the baseline on average over cell types: any better/worse verdict is an error."""
    rng = np.random.default_rng(7)
    sds = np.array([0.03, 0.3, 0.03, 0.3])  # between-cell-type spread of each contrast
    wrong, any_single = [], []
    for _ in range(N_REP):
        out = family_verdicts(_family(rng, np.zeros(4), sds), _MARGINS, _DIRECTIONS)
        claims = out["verdict"].isin(["better", "worse"])
        wrong.append(claims.any())
        any_single.append((out["p_value"] < 0.05).any())
    fwer = np.mean(wrong)
    assert fwer <= 0.05 + _band(N_REP, 0.05), fwer
    # without the correction the family would err far more often
    assert np.mean(any_single) > 0.1


def test_equivalence_at_the_margin_is_rarely_claimed():
    """A true difference exactly at the margin must not be called equivalent more than 5% of the time."""
    rng = np.random.default_rng(11)
    means = np.array([0.02, np.log(1.1), -0.02, -np.log(1.1)])  # every comparison on its margin
    sds = np.array([0.01, 0.05, 0.01, 0.05])
    claimed = []
    for _ in range(N_REP):
        out = family_verdicts(_family(rng, means, sds), _MARGINS, _DIRECTIONS)
        claimed.append(out["verdict"].str.startswith("equivalent").to_numpy())
    rate = np.mean(claimed, axis=0)
    assert (rate <= 0.05 + _band(N_REP, 0.05)).all(), rate
    # and well inside the margin it is called equivalent most of the time
    inside = [family_verdicts(_family(rng, np.zeros(4), sds / 4), _MARGINS, _DIRECTIONS) for _ in range(200)]
    assert np.mean([o["verdict"].str.startswith("equivalent").all() for o in inside]) > 0.9


# ---------------------------------------------------------------------------------------------
# Per-run bootstrap intervals on sparse, overdispersed, donor-structured counts


class _Counts:
    """Counts of 200 genes: negative binomial around a gene mean, a donor offset, three correlated gene
    programs and a cell size factor shared by all genes of a cell; log1p-transformed. About two
    thirds of the entries are 0. Stimulation changes a quarter of the genes (log fold change sd 1)."""

    def __init__(self, seed: int = 0, n_genes: int = 200):
        rng = np.random.default_rng(seed)
        self.mu = rng.normal(-0.5, 1.2, n_genes)
        self.size = np.exp(rng.normal(np.log(0.5), 0.5, n_genes))  # NB size: variance mean + mean² / size
        self.loadings = rng.normal(0, 0.3, (3, n_genes))
        self.donor = rng.normal(0, 0.25, (2, n_genes))
        self.beta = np.where(rng.random(n_genes) < 0.25, rng.normal(0, 1.0, n_genes), 0.0)

    def cells(self, n: int, stimulated: bool, rng: np.random.Generator) -> np.ndarray:
        donor = rng.integers(0, 2, n)
        programs = rng.normal(size=(n, 3)) @ self.loadings
        factor = np.exp(rng.normal(0, 0.3, n))[:, None]
        rate = np.exp(self.mu + self.donor[donor] + programs + (self.beta if stimulated else 0.0)) * factor
        return np.log1p(rng.negative_binomial(self.size, self.size / (self.size + rate)).astype(np.float64))


@pytest.mark.slow
def test_per_run_intervals_cover_on_sparse_donor_structured_counts():
    """The basic bootstrap interval of Pearson-delta and R² of means, 300 cells per group, 400 runs.

    The prediction is a mean shift learned on other cells (controls + a per-gene shift, clipped at 0),
    resampled paired with its control cells, as :func:`~course_tools.scoring.evaluate.evaluate` does. The truth
    is each metric of the population means (150,000 cells per group of the same two donors). Both
    estimates are biased downwards (sampling noise in the per-gene means); the interval must still
    cover the truth at least at its nominal rate. Here it is conservative (about 99% with these
    seeds): wider than it needs to be, never narrower. The E-distance's interval on the same counts:
    :func:`test_e_distance_interval_covers_on_sparse_donor_structured_counts`.
    """
    model = _Counts()
    big = np.random.default_rng(100)
    shift = model.cells(3000, True, big).mean(axis=0) - model.cells(3000, False, big).mean(axis=0)

    def predict(ctrl: np.ndarray) -> np.ndarray:
        return np.clip(ctrl + shift, 0.0, None)

    sums = {"real": 0.0, "pred": 0.0, "ctrl": 0.0}
    n_big = 0
    for _ in range(15):
        c, s = model.cells(10_000, False, big), model.cells(10_000, True, big)
        sums["real"] = sums["real"] + s.sum(axis=0)
        sums["ctrl"] = sums["ctrl"] + c.sum(axis=0)
        sums["pred"] = sums["pred"] + predict(c).sum(axis=0)
        n_big += 10_000
    pop = {k: v / n_big for k, v in sums.items()}
    truth = {
        "pearson_delta": mm.pearson_delta(pop["real"], pop["pred"], pop["ctrl"]),
        "r2_pearson_mean": mm.r2_pearson(pop["real"], pop["pred"]),
    }
    fns = {m: get_metric(m).fn for m in truth}
    n_rep = 400
    rng = np.random.default_rng(5)
    covered = {m: [] for m in truth}
    errors = {m: [] for m in truth}
    zeros = []
    for rep in range(n_rep):
        ctrl, real = model.cells(300, False, rng), model.cells(300, True, rng)
        pred = predict(ctrl)
        zeros.append(float((ctrl == 0).mean()))
        full = _summaries(real, pred, ctrl)
        boots = list(_bootstrap_summaries({"real": real, "pred": pred, "ctrl": ctrl}, 100, seed=rep, paired=True))
        for m, fn in fns.items():
            iv = interval(fn(full), [fn(b) for b in boots], "basic")
            covered[m].append(iv.ci_low <= truth[m] <= iv.ci_high)
            errors[m].append(iv.value - truth[m])
    assert 0.5 < np.mean(zeros) < 0.8  # sparse, as single-cell counts are
    for m in truth:
        assert np.mean(errors[m]) < 0, m  # the estimate is biased downwards ...
        assert np.mean(covered[m]) >= 0.95 - _band(n_rep), (m, np.mean(covered[m]))  # ... the interval still covers


@pytest.mark.slow
def test_e_distance_interval_covers_on_sparse_donor_structured_counts():
    """The E-distance's rescaled subsample interval (as :func:`~course_tools.scoring.evaluate.evaluate` makes it).

    300 real stimulated cells against the prediction of a model that catches half the mean response
    (controls + half the per-gene shift, clipped at 0) from 300 control cells, on the counts of
    :class:`_Counts` (sparse, overdispersed, two donors, correlated programs), 600 runs: enough to
    tell 90% from 95% coverage. The space is fixed (a 20-component PCA fitted once on other cells),
    so that the estimand is one number: the energy distance of the two populations in it,
    ``2 E|X - Y| - E|X - X'| - E|Y - Y'|``, each expectation a mean over 200,000 pairs of cells
    (Monte Carlo error about a tenth of the interval's half-width). ``evaluate`` fits its PCA on
    each run's own cells, whose variation this interval does not hold.
    """
    model = _Counts()
    big = np.random.default_rng(200)
    shift = model.cells(3000, True, big).mean(axis=0) - model.cells(3000, False, big).mean(axis=0)

    def predict(ctrl: np.ndarray) -> np.ndarray:
        return np.clip(ctrl + 0.5 * shift, 0.0, None)

    ref = np.vstack([model.cells(2000, True, big), model.cells(2000, False, big)])
    centre = ref.mean(axis=0)
    basis = np.linalg.svd(ref - centre, full_matrices=False)[2][:20].T

    def project(x: np.ndarray) -> np.ndarray:
        return (x - centre) @ basis

    sums, n_pairs = np.zeros(3), 0
    for _ in range(2):  # pairs (real_i, pred_i), (real_i, real_i-1), (pred_i, pred_i-1) of independent cells
        r = project(model.cells(100_000, True, big))
        p = project(predict(model.cells(100_000, False, big)))
        sums += [np.linalg.norm(a - b, axis=1).sum() for a, b in ((r, p), (r, np.roll(r, 1, 0)), (p, np.roll(p, 1, 0)))]
        n_pairs += r.shape[0]
    e_rp, e_rr, e_pp = sums / n_pairs
    truth = 2 * e_rp - e_rr - e_pp
    assert INTERVALS["e_distance"] == "subsample"
    n_rep, n_boot, fraction = 600, 100, 0.5
    rng = np.random.default_rng(9)
    covered, half = [], []
    for rep in range(n_rep):
        r, p = project(model.cells(300, True, rng)), project(predict(model.cells(300, False, rng)))
        cache = PairwiseCache(r, p)
        every = np.arange(300)
        est = cache.e_distance(every, every)
        boots = cache.e_distance_many(*subsample_masks([300, 300], n_boot, fraction, seed=rep + 1))
        iv = interval(est, boots, "subsample", fraction=fraction)
        covered.append(iv.ci_low <= truth <= iv.ci_high)
        half.append((iv.ci_high - iv.ci_low) / 2)
    assert truth > 3 * np.median(half)  # as in the benchmark: a distance several half-widths above 0
    assert abs(np.mean(covered) - 0.95) <= _band(n_rep), np.mean(covered)
