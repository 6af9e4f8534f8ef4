"""Per-gene agreement metrics against direct loop implementations and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_tools.scoring.registry import pearson_delta_note
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics import (
    gene_means,
    gene_vars,
    is_constant,
    mse,
    pearson,
    pearson_delta,
    r2_pearson,
    r2_score,
)


def loop_pearson(x, y):
    n = len(x)
    mx = sum(x) / n
    my = sum(y) / n
    sxy = sum((x[i] - mx) * (y[i] - my) for i in range(n))
    sxx = sum((x[i] - mx) ** 2 for i in range(n))
    syy = sum((y[i] - my) ** 2 for i in range(n))
    return sxy / math.sqrt(sxx * syy)


def loop_r2_score(t, p):
    n = len(t)
    m = sum(t) / n
    ss_res = sum((t[i] - p[i]) ** 2 for i in range(n))
    ss_tot = sum((t[i] - m) ** 2 for i in range(n))
    return 1 - ss_res / ss_tot


@pytest.fixture
def vecs():
    rng = np.random.default_rng(1)
    t = rng.normal(size=9)
    p = t + rng.normal(scale=0.5, size=9)
    return t, p


def test_against_loops(vecs):
    t, p = vecs
    assert pearson(t, p) == pytest.approx(loop_pearson(list(t), list(p)), rel=1e-12)
    assert r2_pearson(t, p) == pytest.approx(loop_pearson(list(t), list(p)) ** 2, rel=1e-12)
    assert r2_score(t, p) == pytest.approx(loop_r2_score(list(t), list(p)), rel=1e-12)
    assert mse(t, p) == pytest.approx(sum((a - b) ** 2 for a, b in zip(t, p)) / len(t), rel=1e-12)


def test_r2_score_matches_sklearn(vecs):
    from sklearn.metrics import r2_score as sk_r2

    t, p = vecs
    assert r2_score(t, p) == pytest.approx(sk_r2(t, p), rel=1e-12)


def test_identical_gives_one(vecs):
    t, _ = vecs
    assert r2_pearson(t, t) == pytest.approx(1.0)
    assert r2_score(t, t) == 1.0
    assert mse(t, t) == 0.0


def test_r2_pearson_blind_to_scale_and_offset_but_r2_score_is_not(vecs):
    t, _ = vecs
    assert r2_pearson(t, 2 * t + 5) == pytest.approx(1.0)
    assert r2_score(t, 2 * t + 5) < 0
    # predicting the mean of y_true for every gene gives exactly 0
    assert r2_score(t, np.full_like(t, t.mean())) == pytest.approx(0.0, abs=1e-12)


def test_pearson_delta_loop_and_perfect():
    rng = np.random.default_rng(2)
    ctrl = rng.uniform(0, 3, 20)
    real = ctrl + rng.normal(size=20)
    pred = ctrl + 0.5 * (real - ctrl) + rng.normal(scale=0.1, size=20)
    expect = loop_pearson(list(pred - ctrl), list(real - ctrl))
    assert pearson_delta(real, pred, ctrl) == pytest.approx(expect, rel=1e-12)
    assert pearson_delta(real, real, ctrl) == pytest.approx(1.0)
    # scaled change: perfect correlation, imperfect size
    assert pearson_delta(real, ctrl + 0.3 * (real - ctrl), ctrl) == pytest.approx(1.0)


def test_pearson_delta_undefined_for_control_as_prediction():
    rng = np.random.default_rng(3)
    ctrl_cells = rng.poisson(2.0, size=(50, 30)).astype(float)
    real = gene_means(ctrl_cells) + rng.normal(size=30)
    ctrl = gene_means(ctrl_cells)
    assert math.isnan(pearson_delta(real, ctrl, ctrl))
    # means one rounding step away from the controls' (e.g. the same cells summed in another order):
    # still "no change"
    nudged = ctrl + np.spacing(ctrl)
    assert not np.array_equal(nudged, ctrl)
    assert math.isnan(pearson_delta(real, nudged, ctrl))
    assert "no change" in pearson_delta_note(real, ctrl, ctrl)
    # a constant shift of every gene is also no (informative) change
    assert math.isnan(pearson_delta(real, ctrl + 1.0, ctrl))
    assert pearson_delta_note(real, real, ctrl) == ""


def test_undefined_values_are_nan():
    c = np.ones(5)
    x = np.arange(5.0)
    assert math.isnan(r2_pearson(x, c))
    assert math.isnan(r2_pearson(c, x))
    assert math.isnan(r2_score(c, x))
    assert math.isnan(pearson_delta(x, x, x))
    assert "real data have no change" in pearson_delta_note(x, x + x, x)
    assert is_constant(c) and not is_constant(x)


def test_gene_vars_population_and_sparse():
    import scipy.sparse as sp

    rng = np.random.default_rng(4)
    x = rng.poisson(1.0, size=(40, 7)).astype(float)
    np.testing.assert_allclose(gene_vars(x), x.var(axis=0, ddof=0))
    np.testing.assert_allclose(gene_vars(sp.csr_matrix(x)), x.var(axis=0), atol=1e-12)
    np.testing.assert_allclose(gene_means(sp.csr_matrix(x)), x.mean(axis=0))


@pytest.mark.parametrize("fn", [r2_pearson, r2_score, mse])
def test_bad_vectors(fn):
    with pytest.raises(DataValidationError, match="NaN"):
        fn(np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(DataValidationError, match="same length"):
        fn(np.arange(3.0), np.arange(4.0))
    with pytest.raises(DataValidationError, match="empty"):
        fn(np.array([]), np.array([]))
