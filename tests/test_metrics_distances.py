"""E-distance, MMD and the shared space: loops, exact constructions, analytic values, speed."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.stats import norm

from course_tools.scoring.evaluate import gene_space
from course_tools.scoring.pairwise import PairwiseCache, e_distance_sq, median_heuristic_bandwidths, mmd
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics import distances as dist_mod
from tutorial_lib.metrics import e_distance, fit_shared_pca, pairwise_e_distance


def loop_energy(x, y, estimator="u", power=1.0):
    def d(a, b):
        return math.sqrt(sum((a[k] - b[k]) ** 2 for k in range(len(a)))) ** power

    n, m = len(x), len(y)
    cross = sum(d(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)

    def within(z):
        k = len(z)
        s = sum(d(z[i], z[j]) for i in range(k) for j in range(k) if i != j)
        return s / (k * k) if estimator == "v" else s / (k * (k - 1))

    return 2 * cross - within(x) - within(y)


def loop_mmd(x, y, sigmas, biased):
    def k(a, b):
        d2 = sum((a[q] - b[q]) ** 2 for q in range(len(a)))
        return sum(math.exp(-d2 / (2 * s * s)) for s in sigmas) / len(sigmas)

    def within(z):
        n = len(z)
        s = sum(k(z[i], z[j]) for i in range(n) for j in range(n) if biased or i != j)
        return s / (n * n) if biased else s / (n * (n - 1))

    cross = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    return within(x) + within(y) - 2 * cross


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    return rng.normal(size=(7, 3)), rng.normal(loc=0.5, size=(5, 3))


@pytest.mark.parametrize("estimator", ["u", "v"])
def test_e_distance_against_loop(small, estimator):
    x, y = small
    assert e_distance(x, y, estimator=estimator) == pytest.approx(loop_energy(x, y, estimator), rel=1e-10)
    assert e_distance_sq(x, y, estimator=estimator) == pytest.approx(loop_energy(x, y, estimator, power=2.0), rel=1e-10)


def test_blocked_computation_matches(small, monkeypatch):
    x, y = small
    ref = e_distance(x, y)
    monkeypatch.setattr(dist_mod, "BLOCK_ROWS", 2)
    assert e_distance(x, y) == pytest.approx(ref, rel=1e-12)


def test_same_set_v_is_zero_and_u_is_known_negative():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6)) * 3 + 10  # offset: large norms, where the Gram trick loses precision
    assert e_distance(x, x, estimator="v") == 0.0
    n = x.shape[0]
    mean_within = np.mean([np.linalg.norm(x[i] - x[j]) for i in range(n) for j in range(n) if i != j])
    # U-statistic: cross mean includes the n zero self-pairs, within means do not
    assert e_distance(x, x, estimator="u") == pytest.approx(-2.0 / n * mean_within, rel=1e-9)
    assert mmd(x, x, estimator="biased") == pytest.approx(0.0, abs=1e-15)


def test_point_masses_exact():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, 6.0, 3.0])  # ||a - b|| = 5
    x = np.tile(a, (6, 1))
    y = np.tile(b, (4, 1))
    for est in ("u", "v"):
        assert e_distance(x, y, estimator=est) == pytest.approx(10.0, rel=1e-12)
        assert e_distance_sq(x, y, estimator=est) == pytest.approx(50.0, rel=1e-12)


def test_symmetric_two_point_shift_exact():
    # X = {0, 1}, Y = {s, 1 + s} on a line (s = 3): all distances are known
    x = np.array([[0.0], [1.0]])
    y = x + 3.0
    cross = (3 + 4 + 2 + 3) / 4
    assert e_distance(x, y, estimator="u") == pytest.approx(2 * cross - 1 - 1)
    assert e_distance(x, y, estimator="v") == pytest.approx(2 * cross - 0.5 - 0.5)


def test_e_distance_sq_v_is_twice_squared_mean_difference():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(20, 4)) * 2 + 1
    diff = x.mean(0) - y.mean(0)
    assert e_distance_sq(x, y, estimator="v") == pytest.approx(2 * diff @ diff, rel=1e-9)


def test_gaussian_mean_shift_matches_analytic():
    # 1-D N(0,1) vs N(delta,1): E = 2 E|N(delta, 2)| - 2 E|N(0, 2)|
    # (a deterministic quantile grid instead of random draws: no sampling noise)
    delta = 1.0
    x = norm.ppf((np.arange(3000) + 0.5) / 3000)[:, None]
    y = x + delta
    s = math.sqrt(2.0)
    e_abs = s * math.sqrt(2 / math.pi) * math.exp(-(delta**2) / (2 * s * s)) + delta * (1 - 2 * norm.cdf(-delta / s))
    analytic = 2 * e_abs - 2 * (s * math.sqrt(2 / math.pi))
    assert e_distance(x, y) == pytest.approx(analytic, abs=5e-3)


def test_variance_only_change_is_seen():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 5))
    x2 = rng.normal(size=(400, 5))
    y = rng.normal(scale=2.0, size=(400, 5))
    bw = median_heuristic_bandwidths(x, x2)
    assert e_distance(x, y) > 10 * abs(e_distance(x, x2))
    assert mmd(x, y, bandwidths=bw) > 10 * abs(mmd(x, x2, bandwidths=bw))
    # while the means agree (squared-distance variant only sees means)
    assert e_distance_sq(x, y, estimator="v") < 0.1


@pytest.mark.parametrize("biased", [True, False])
def test_mmd_against_loop(small, biased):
    x, y = small
    sig = [0.7, 1.5]
    est = "biased" if biased else "unbiased"
    assert mmd(x, y, bandwidths=sig, estimator=est) == pytest.approx(loop_mmd(x, y, sig, biased), rel=1e-10)


def test_median_heuristic_against_loop(small):
    x, y = small
    pooled = np.vstack([x, y])
    n = len(pooled)
    med = np.median([np.linalg.norm(pooled[i] - pooled[j]) for i in range(n) for j in range(i + 1, n)])
    np.testing.assert_allclose(median_heuristic_bandwidths(x, y), med * np.array([0.5, 1, 2]))
    # default bandwidths of mmd are these
    assert mmd(x, y) == pytest.approx(mmd(x, y, bandwidths=med * np.array([0.5, 1, 2])))


def test_cache_matches_functions():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(25, 4)) + 0.3
    bw = [1.0, 2.0]
    cache = PairwiseCache(x, y, bw)
    ix, iy = np.arange(0, 30, 2), np.arange(3, 25)
    for est in ("u", "v"):
        assert cache.e_distance(ix, iy, est) == pytest.approx(e_distance(x[ix], y[iy], estimator=est), rel=1e-10)
    for est in ("unbiased", "biased"):
        assert cache.mmd(ix, iy, est) == pytest.approx(mmd(x[ix], y[iy], bw, estimator=est), rel=1e-10)


def test_pairwise_table():
    rng = np.random.default_rng(6)
    groups = {
        "control": rng.normal(size=(30, 3)),
        "real": rng.normal(1, size=(20, 3)),
        "pred": rng.normal(0.8, size=(25, 3)),
    }
    tab = pairwise_e_distance(groups)
    assert list(tab.index) == list(groups) == list(tab.columns)
    np.testing.assert_allclose(tab.to_numpy(), tab.to_numpy().T)
    assert np.all(np.diag(tab.to_numpy()) == 0)
    assert tab.loc["real", "pred"] == pytest.approx(e_distance(groups["real"], groups["pred"]))


def test_max_cells_is_seeded():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) + 0.2
    a = e_distance(x, y, max_cells=50, seed=1)
    assert a == e_distance(x, y, max_cells=50, seed=1)
    assert a != e_distance(x, y, max_cells=50, seed=2)
    assert e_distance(x, y, max_cells=1000) == e_distance(x, y)


def test_speed_2000_cells_50_dims():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(2000, 50)), rng.normal(size=(2000, 50))
    times = []
    for _ in range(3):  # best of 3: robust to a busy machine
        t0 = time.perf_counter()
        e_distance(x, y)
        times.append(time.perf_counter() - t0)
    assert min(times) < 1.0


def test_bad_inputs():
    x = np.ones((5, 3))
    with pytest.raises(DataValidationError, match="empty"):
        e_distance(np.zeros((0, 3)), x)
    bad = np.random.default_rng(0).normal(size=(5, 3))
    bad[1, 1] = np.nan
    with pytest.raises(DataValidationError, match="NaN"):
        e_distance(bad, x)
    with pytest.raises(DataValidationError, match="same space"):
        mmd(np.ones((4, 2)), x)
    with pytest.raises(ValueError, match="estimator"):
        e_distance(x, x, estimator="w")
    with pytest.raises(DataValidationError, match="identical"):
        mmd(x, x)  # all cells identical: no median-heuristic bandwidth


def test_shared_pca_fitted_on_real_only_and_matches_sklearn():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(9)
    real = rng.poisson(2, size=(60, 20)).astype(float)
    ctrl = rng.poisson(1, size=(50, 20)).astype(float)
    space = fit_shared_pca(real, ctrl, n_comps=5)
    assert space.name == "pca5"
    comps = space.components
    np.testing.assert_allclose(comps @ comps.T, np.eye(5), atol=1e-10)
    ref = PCA(n_components=5, svd_solver="full").fit(np.vstack([real, ctrl]))
    np.testing.assert_allclose(np.abs(comps @ ref.components_.T), np.eye(5), atol=1e-6)
    pred = rng.normal(size=(10, 20))
    z = space.transform(pred)
    np.testing.assert_allclose(z, (pred - np.vstack([real, ctrl]).mean(0)) @ comps.T)
    np.testing.assert_allclose(gene_space([f"g{i}" for i in range(20)]).transform(pred), pred)


def test_shared_space_gene_checks():
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(10)
    genes = [f"g{i}" for i in range(8)]
    a = ad.AnnData(rng.poisson(2, size=(20, 8)).astype(float), var=pd.DataFrame(index=genes))
    space = fit_shared_pca(a, a, n_comps=3)
    reordered = a[:, genes[::-1]].copy()
    np.testing.assert_allclose(space.transform(reordered), space.transform(a))
    other = ad.AnnData(rng.poisson(2, size=(5, 8)).astype(float), var=pd.DataFrame(index=genes[:7] + ["XIST"]))
    with pytest.raises(DataValidationError, match="XIST"):
        space.transform(other)


def test_randomized_pca_gives_the_exact_e_distance_to_the_precision_that_matters(mini_counts):
    """On real data large enough for the randomized solver (2,400 cells x 3,000 genes), the
    E-distance in its space matches the one in the exact-SVD space far below its interval width."""
    from sklearn.decomposition import PCA

    from tutorial_lib.data import normalise_log
    from tutorial_lib.metrics import SharedSpace

    a = normalise_log(mini_counts)
    x = a.X.toarray()
    stim = (a.obs["condition"] == "stimulated").to_numpy()
    real, ctrl = x[stim], x[~stim]
    fast = fit_shared_pca(real, ctrl, n_comps=50, seed=0)  # min(shape) > 1000: randomized solver
    exact_pca = PCA(n_components=50, svd_solver="full").fit(np.vstack([real, ctrl]))
    exact = SharedSpace(
        var_names=fast.var_names,
        center=exact_pca.mean_,
        components=exact_pca.components_,
        explained_variance_ratio=exact_pca.explained_variance_ratio_,
    )
    rng = np.random.default_rng(0)
    pred = ctrl + 0.5 * (real.mean(0) - ctrl.mean(0)) + rng.normal(0, 0.05, ctrl.shape)
    for other in (ctrl, pred):
        e_fast = e_distance(fast.transform(real), fast.transform(other))
        e_exact = e_distance(exact.transform(real), exact.transform(other))
        assert e_fast == pytest.approx(e_exact, rel=1e-3)
