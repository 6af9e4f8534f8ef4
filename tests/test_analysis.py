"""Descriptive analyses: expression changes, their correlations, delta spread, batch mixing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from tutorial_lib.analysis import batch_silhouette, change_correlations, delta_spread, mean_change, mean_off_diagonal
from tutorial_lib.data import DataValidationError


def _cells(x, genes=("a", "b", "c")):
    return AnnData(X=np.asarray(x, dtype=np.float32), var=pd.DataFrame(index=list(genes)))


def test_mean_change_is_difference_of_means():
    after = _cells([[1, 2, 3], [3, 2, 1]])
    before = _cells([[0, 0, 0], [2, 2, 2]])
    np.testing.assert_allclose(mean_change(after, before).to_numpy(), [1.0, 1.0, 1.0])
    with pytest.raises(DataValidationError, match="same genes"):
        mean_change(after, _cells([[0, 0, 0]], genes=("a", "b", "x")))


def test_change_correlations_and_off_diagonal_mean():
    g = pd.Index(["a", "b", "c", "d"])
    changes = {"x": pd.Series([1, 2, 3, 4.0], g), "y": pd.Series([2, 4, 6, 8.0], g), "z": pd.Series([4, 3, 2, 1.0], g)}
    corr = change_correlations(changes)
    assert corr.loc["x", "y"] == pytest.approx(1.0) and corr.loc["x", "z"] == pytest.approx(-1.0)
    assert mean_off_diagonal(corr) == pytest.approx((1 - 1 - 1) / 3)
    with pytest.raises(ValueError, match="two"):
        change_correlations({"x": changes["x"]})


def test_delta_spread():
    same = np.tile([1.0, 2.0], (5, 1))
    np.testing.assert_allclose(delta_spread(same), 0.0)
    spread = delta_spread(np.array([[0.0, 0.0], [2.0, 0.0]]))
    np.testing.assert_allclose(spread, [1.0, 1.0])


def test_batch_silhouette_sees_separated_batches():
    rng = np.random.default_rng(0)
    mixed = rng.normal(size=(200, 5))
    labels = np.repeat(["a", "b"], 100)
    separated = mixed + np.where(labels[:, None] == "a", 10.0, -10.0)
    assert batch_silhouette(separated, labels) > 0.8
    assert abs(batch_silhouette(mixed, labels)) < 0.1
    with pytest.raises(ValueError, match="two batches"):
        batch_silhouette(mixed, ["a"] * 200)
