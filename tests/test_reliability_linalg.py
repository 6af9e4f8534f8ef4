"""The shared PCA of the distance metrics survives a LAPACK SVD that does not converge.

scikit-learn's exact PCA calls LAPACK's divide-and-conquer SVD (``gesdd``), which raised
``LinAlgError: SVD did not converge`` on real Kang data with some OpenBLAS kernel settings
(``OPENBLAS_CORETYPE=Haswell`` on a CPU without AVX2, one BLAS thread). The failure depends on
the machine, so these tests force it and check that the fallback gives the same space.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

import tutorial_lib.metrics.space as space
from tutorial_lib.metrics import e_distance, fit_shared_pca


def _cells(seed: int, n: int, genes: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(5, genes))
    return np.log1p(rng.poisson(np.exp(rng.normal(size=(n, 5)) @ loadings * 0.3)).astype(np.float32))


def _failing_fit(self, x, y=None):
    raise np.linalg.LinAlgError("SVD did not converge")


@pytest.mark.parametrize("n_real", [80, 1200])  # exact solver (<= 1,000 cells or genes) and randomized
def test_fit_shared_pca_falls_back_when_svd_does_not_converge(monkeypatch, n_real):
    genes = 60 if n_real < 1000 else 1100
    real, ctrl = _cells(0, n_real, genes), _cells(1, n_real, genes)
    names = [f"g{i}" for i in range(genes)]
    expected = fit_shared_pca(real, ctrl, n_comps=10, var_names=names)

    monkeypatch.setattr(PCA, "fit", _failing_fit)
    with pytest.raises(np.linalg.LinAlgError):  # the failure is really forced
        PCA(n_components=2).fit(real)
    got = fit_shared_pca(real, ctrl, n_comps=10, var_names=names)

    np.testing.assert_allclose(got.center, expected.center, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.explained_variance_ratio, expected.explained_variance_ratio, rtol=1e-3)
    # the axes span the same space; the distance metric computed in it agrees
    pred = real[::-1] + 0.1
    d_expected = e_distance(expected.transform(real), expected.transform(pred))
    d_got = e_distance(got.transform(real), got.transform(pred))
    assert d_got == pytest.approx(d_expected, rel=1e-3)


def test_exact_pca_gesvd_equals_scikit_learn_full_pca():
    x = _cells(2, 150).astype(np.float64)
    pca = PCA(n_components=8, svd_solver="full").fit(x)
    center, components, ratio = space.exact_pca_gesvd(x, 8)
    np.testing.assert_allclose(center, pca.mean_, atol=1e-12)
    np.testing.assert_allclose(components, pca.components_, atol=1e-8)  # same signs (svd_flip)
    np.testing.assert_allclose(ratio, pca.explained_variance_ratio_, rtol=1e-10)
