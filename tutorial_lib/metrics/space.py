"""The space in which cell-level distances of one comparison are computed.

Distances between real and predicted cells must be computed in one space for all models of a
comparison, fitted on real data only: fitting a PCA on predictions would let each model choose
its own yardstick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from anndata import AnnData
from sklearn.decomposition import PCA
from sklearn.utils.extmath import svd_flip

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics._inputs import (
    CellsLike,
    align_to,
    aligned_matrices,
    matrix_and_names,
    to_dense,
)


@dataclass(frozen=True)
class SharedSpace:
    """A linear map from gene space to the comparison space.

    ``transform(x) = (x - center) @ components.T``. For the gene space ``components`` is
    ``None`` and ``transform`` returns the (dense) expression itself.

    Attributes
    ----------
    var_names
        Genes, in the order the map expects.
    center
        Per-gene centre subtracted before projecting (mean of the fitting cells).
    components
        ``n_comps x n_genes`` orthonormal rows, or ``None`` for the gene space.
    explained_variance_ratio
        Fraction of the fitting cells' variance per component (empty for the gene space).
    """

    var_names: np.ndarray
    center: np.ndarray
    components: np.ndarray | None
    explained_variance_ratio: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def name(self) -> str:
        """``"pca{n}"`` or ``"genes"``."""
        return "genes" if self.components is None else f"pca{self.components.shape[0]}"

    def transform(self, cells: CellsLike, var_names: Sequence[str] | None = None) -> np.ndarray:
        """Coordinates of ``cells`` (AnnData or cells x genes matrix) in this space, float64.

        A plain matrix without ``var_names`` must have the space's genes in the space's order.
        """
        if not isinstance(cells, AnnData) and var_names is None:
            n = cells.shape[1] if np.ndim(cells) == 2 else -1
            if n != self.var_names.size:
                raise DataValidationError(f"cells have {n} genes but the space expects {self.var_names.size}")
            var_names = self.var_names
        x, names = matrix_and_names(cells, "cells", var_names)
        x = to_dense(align_to(x, names, self.var_names, "cells", "space"))
        if self.components is None:
            return x
        return (x - self.center) @ self.components.T


def gene_space(var_names: Sequence[str]) -> SharedSpace:
    """The identity space on ``var_names`` (distances computed on expression directly)."""
    names = np.asarray(var_names, dtype=str)
    return SharedSpace(var_names=names, center=np.zeros(names.size), components=None)


def fit_shared_pca(
    real: CellsLike,
    ctrl: CellsLike,
    n_comps: int = 50,
    seed: int = 0,
    var_names: Sequence[str] | None = None,
) -> SharedSpace:
    """PCA fitted on the real stimulated and real control cells only (never on predictions).

    The cells of both groups are pooled, centred on their per-gene mean, and the top
    ``n_comps`` principal axes are kept (``n_comps`` is capped at ``min(n_cells, n_genes) - 1``;
    exact SVD when cells or genes number at most 1,000, else seeded randomized SVD with 50
    oversamples and 10 power iterations: on the mini data, 2,400 cells x 1,500 genes, its
    E-distance agrees with the exact SVD's to 1e-3 relative, sklearn's default randomized
    settings to 2e-3, at about a fifth of the exact solver's time; see
    ``tests/test_metrics_distances.py``). Fit it once per comparison and pass it to every
    :func:`~tutorial_lib.metrics.evaluate` call.
    Apply :meth:`SharedSpace.transform` to real, control and every model's predictions.
    """
    mats, names = aligned_matrices({"real": real, "ctrl": ctrl}, var_names=var_names)
    x = np.vstack([to_dense(mats["real"]), to_dense(mats["ctrl"])])
    k = int(min(n_comps, min(x.shape) - 1))
    if k < 1:
        raise DataValidationError(f"too few cells or genes for a PCA: {x.shape}")
    solver = "full" if min(x.shape) <= 1000 else "randomized"  # exact SVD is cheap on the small side
    extra = {"n_oversamples": 50, "iterated_power": 10} if solver == "randomized" else {}
    pca = PCA(n_components=k, svd_solver=solver, random_state=seed, **extra)
    try:
        pca.fit(x)
        center, components, ratio = pca.mean_, pca.components_, pca.explained_variance_ratio_
    except np.linalg.LinAlgError:
        center, components, ratio = exact_pca_gesvd(x, k)
    return SharedSpace(
        var_names=names,
        center=np.asarray(center, dtype=np.float64),
        components=np.asarray(components, dtype=np.float64),
        explained_variance_ratio=np.asarray(ratio, dtype=np.float64),
    )


def exact_pca_gesvd(x: np.ndarray, n_comps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact PCA through LAPACK's ``gesvd`` driver: centre, top axes, explained-variance ratios.

    The fallback of :func:`fit_shared_pca` when scikit-learn's solver raises ``LinAlgError``.
    scikit-learn's exact PCA calls LAPACK's divide-and-conquer SVD (``gesdd``), which can fail
    to converge with some OpenBLAS kernel choices (e.g. ``OPENBLAS_CORETYPE=Haswell`` on a CPU
    that lacks AVX2). ``gesvd`` (QR iteration) is slower but robust; with scikit-learn's sign
    convention (:func:`sklearn.utils.extmath.svd_flip`) it gives the same axes up to rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    center = x.mean(axis=0)
    u, s, vt = scipy.linalg.svd(x - center, full_matrices=False, lapack_driver="gesvd")
    _, vt = svd_flip(u, vt, u_based_decision=False)
    variance = s**2 / max(x.shape[0] - 1, 1)
    return center, vt[:n_comps], (variance / variance.sum())[:n_comps]
