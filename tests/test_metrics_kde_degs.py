"""Mean-variance KDE distance and DEG ranking/overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_tools.scoring.kde import mean_var_kde_distance
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics import deg_jaccard, deg_overlap_count, deg_scores, rank_degs, top_k


@pytest.fixture
def cloud():
    rng = np.random.default_rng(0)
    m = rng.gamma(2.0, 0.5, size=300)
    v = m * (1 + rng.normal(scale=0.2, size=300)) ** 2
    return m, v


@pytest.mark.parametrize("measure", ["js", "l1"])
def test_kde_identical_is_zero(cloud, measure):
    m, v = cloud
    assert mean_var_kde_distance(m, v, m, v, measure=measure) == pytest.approx(0.0, abs=1e-12)


def test_kde_grows_with_shift_and_is_bounded(cloud):
    m, v = cloud
    vals = [mean_var_kde_distance(m, v, m + s, v) for s in (0.1, 0.5, 2.0, 50.0)]
    assert all(a < b for a, b in zip(vals, vals[1:]))
    assert 0 < vals[0] and vals[-1] == pytest.approx(1.0, abs=1e-6)  # disjoint clouds: JS = 1 bit
    assert mean_var_kde_distance(m, v, m + 50, v, measure="l1") == pytest.approx(2.0, abs=1e-6)


def test_kde_sees_variance_change_and_is_scale_free(cloud):
    m, v = cloud
    d = mean_var_kde_distance(m, v, m, 2 * v)
    assert d > 0.05
    # data-driven bandwidth on standardised coordinates: rescaling the units changes nothing
    assert mean_var_kde_distance(10 * m, 1e3 * v, 10 * m, 2e3 * v) == pytest.approx(d, rel=1e-9)


def test_kde_bad_input(cloud):
    m, v = cloud
    with pytest.raises(DataValidationError, match="NaN"):
        mean_var_kde_distance(m, v, np.full_like(m, np.nan), v)
    with pytest.raises(ValueError, match="measure"):
        mean_var_kde_distance(m, v, m, v, measure="kl")


def _deg_data(n=60, g=40, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(1, 2, size=g)
    ctrl = rng.normal(base, 0.3, size=(n, g))
    shift = np.zeros(g)
    shift[:5] = 2.0  # up
    shift[5:10] = -1.0  # down
    stim = rng.normal(base + shift, 0.3, size=(n, g))
    genes = [f"g{i}" for i in range(g)]
    return stim, ctrl, genes


def test_rank_degs_finds_up_and_down_genes():
    stim, ctrl, genes = _deg_data()
    top = rank_degs(stim, ctrl, k=10, var_names=genes)
    assert len(top) == 10
    assert set(top) == {f"g{i}" for i in range(10)}  # down-regulated genes count too


def test_rank_degs_is_deterministic_and_respects_k():
    stim, ctrl, genes = _deg_data(seed=1)
    assert rank_degs(stim, ctrl, 3, var_names=genes) == rank_degs(stim, ctrl, 3, var_names=genes)
    assert rank_degs(stim, ctrl, 10, var_names=genes)[:3] == rank_degs(stim, ctrl, 3, var_names=genes)
    with pytest.raises(DataValidationError, match="at least 2 cells"):
        rank_degs(stim[:1], ctrl, 3, var_names=genes)


def test_overlap_against_loops():
    a = ["g1", "g2", "g3", "g4"]
    b = ["g3", "g4", "g5"]
    inter = [g for g in a if g in b]
    union = list(dict.fromkeys(a + b))
    assert deg_overlap_count(a, b) == len(inter) == 2
    assert deg_jaccard(a, b) == pytest.approx(len(inter) / len(union))
    assert deg_jaccard(a, a) == 1.0
    assert deg_jaccard(a, ["x"]) == 0.0


def test_chance_levels_are_those_of_random_gene_lists():
    from course_tools.scoring.registry import chance_jaccard, chance_overlap

    assert chance_overlap(100, 2000) == 5.0
    rng = np.random.default_rng(0)
    real = set(range(20))
    draws = [rng.choice(200, 20, replace=False) for _ in range(20000)]
    overlaps = np.array([len(real & set(d)) for d in draws])
    assert overlaps.mean() == pytest.approx(chance_overlap(20, 200), abs=0.05)
    assert (overlaps / (40 - overlaps)).mean() == pytest.approx(chance_jaccard(20, 200), abs=0.002)


def test_deg_overlap_ranks_a_shift_by_its_size_not_by_its_ties():
    """A mean-shift prediction (the controls plus one shift per gene, clipped at 0) on sparse data: a
    Wilcoxon test of prediction vs control ranks any shift of a mostly-zero gene as maximal, so its top
    genes are those with many zeros, not those that change most; ranking by the predicted mean change
    recovers the real responders."""
    import anndata as ad

    from course_tools.scoring.evaluate import evaluate

    rng = np.random.default_rng(3)
    n_genes, k, n = 300, 20, 200
    rate = rng.uniform(0.05, 3.0, n_genes)
    ctrl_x = np.log1p(rng.poisson(rate, size=(n, n_genes)).astype(float))
    effect = np.zeros(n_genes)
    effect[:k] = np.log(4.0)  # strong responders among the well-expressed genes
    effect[:k] *= rate[:k] > 1.0
    effect[k:] = rng.normal(0, 0.02, n_genes - k)  # every other gene moves a little
    real_x = np.log1p(rng.poisson(rate * np.exp(effect), size=(n, n_genes)).astype(float))
    delta = real_x.mean(0) - ctrl_x.mean(0)
    pred_x = np.clip(ctrl_x + delta, 0, None)
    genes = [f"g{i}" for i in range(n_genes)]

    def cells(x):
        return ad.AnnData(X=x, var=pd.DataFrame(index=genes), obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]))

    tab = evaluate(cells(real_x), cells(pred_x), cells(ctrl_x), n_top_degs=k, n_bootstrap=0, n_bootstrap_degs=0)
    row = tab.set_index("metric").loc["deg_overlap_by_change"]
    wilcoxon_top = set(top_k(deg_scores(pred_x, ctrl_x, var_names=genes), k))
    wilcoxon_overlap = len(wilcoxon_top & set(tab.attrs["degs"]))
    assert row["value"] >= wilcoxon_overlap + 4  # 18 vs 13 of 20 here
    assert row["chance"] == pytest.approx(k * k / n_genes)
    assert row["value"] > 3 * row["chance"]
