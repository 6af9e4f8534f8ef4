"""Preprocessing and splits: leak-free gene selection, hold-outs, imbalance, donors, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tutorial_lib.data import (
    DataValidationError,
    assign_donor_holdout,
    assign_holdout,
    normalise_log,
    prepare_holdout,
    select_hvg,
    split_views,
    subsample_stimulated,
)


def test_normalise_log_matches_formula_and_keeps_counts(mini_counts):
    counts = mini_counts.layers["counts"].copy()
    a = normalise_log(mini_counts)
    dense_counts = np.asarray(counts[:5].todense())
    expected = np.log1p(dense_counts / dense_counts.sum(1, keepdims=True) * 1e4)
    np.testing.assert_allclose(np.asarray(a.X[:5].todense()), expected, rtol=1e-5, atol=1e-5)
    assert (a.layers["counts"] != counts).nnz == 0
    assert a.uns["log1p"] == {"base": None}  # scanpy's marker of log data is kept, as sc.pp.log1p writes it
    with pytest.raises(DataValidationError, match="already log-normalised"):
        normalise_log(a)


def test_normalise_log_needs_counts(mini_counts):
    del mini_counts.layers["counts"]
    with pytest.raises(DataValidationError, match="No layer 'counts'"):
        normalise_log(mini_counts)


def test_holdout_split_parts(mini_counts):
    a = assign_holdout(mini_counts, "CD4+ T cells")
    parts = split_views(a)
    assert set(parts.test.obs["cell_type"]) == {"CD4+ T cells"}
    assert set(parts.test.obs["condition"]) == {"stimulated"}
    assert set(parts.ctrl.obs["cell_type"]) == {"CD4+ T cells"}
    assert set(parts.ctrl.obs["condition"]) == {"control"}
    train = parts.train.obs
    assert not ((train["cell_type"] == "CD4+ T cells") & (train["condition"] == "stimulated")).any()
    assert parts.ctrl.obs_names.isin(parts.train.obs_names).all()  # controls are seen in training
    assert parts.train.n_obs + parts.test.n_obs == a.n_obs
    assert parts.val is None


def test_validation_cell_type_is_held_out_too(mini_counts):
    a = assign_holdout(mini_counts, "CD4+ T cells", validation_cell_type="B")
    parts = split_views(a)
    assert set(parts.val.obs["cell_type"]) == {"B"} and set(parts.val.obs["condition"]) == {"stimulated"}
    assert set(parts.val_ctrl.obs["condition"]) == {"control"}
    assert not parts.val.obs_names.isin(parts.train.obs_names).any()
    with pytest.raises(DataValidationError, match="must differ"):
        assign_holdout(mini_counts, "B", validation_cell_type="B")


def test_unknown_cell_type_lists_known(mini_counts):
    with pytest.raises(DataValidationError, match=r"Unknown cell type 'CD4T'.*known: \['B', 'CD14\+ Monocytes'"):
        assign_holdout(mini_counts, "CD4T")


def test_empty_group_after_split(mini_counts):
    a = mini_counts[~((mini_counts.obs["cell_type"] == "DC") & (mini_counts.obs["condition"] == "stimulated"))].copy()
    with pytest.raises(DataValidationError, match="empty"):
        assign_holdout(a, "DC")


def test_bad_condition_label_in_split(mini_counts):
    mini_counts.obs["condition"] = mini_counts.obs["condition"].astype(str).replace("control", "ctrl")
    with pytest.raises(DataValidationError, match="expected only 'control' and 'stimulated'"):
        assign_holdout(mini_counts)


def test_hvg_are_chosen_on_training_cells_only(mini_counts):
    a = normalise_log(mini_counts)
    assign_holdout(a, "CD4+ T cells")
    before = select_hvg(a, n_top_genes=300).var_names
    # scramble the held-out cells' expression: the gene selection must not change
    test = (a.obs["split"] == "test").to_numpy()
    rng = np.random.default_rng(0)
    x = a.X.toarray()
    x[test] = rng.permutation(x[test].ravel()).reshape(x[test].shape) * 3
    a.X = x
    after = select_hvg(a, n_top_genes=300).var_names
    assert list(before) == list(after)
    assert a.n_vars > 300 and len(before) == 300


def test_hvg_refuses_to_use_all_cells(mini_counts):
    a = normalise_log(mini_counts)
    with pytest.raises(DataValidationError, match="leak"):
        select_hvg(a, n_top_genes=100)


def test_subsample_stimulated_is_stratified_seeded_and_spares_controls(mini_counts):
    a = assign_holdout(mini_counts, "CD4+ T cells")
    out = subsample_stimulated(a, 0.2, seed=1)
    counts_before = pd.crosstab(a.obs["cell_type"], [a.obs["condition"], a.obs["split"]])
    counts_after = pd.crosstab(out.obs["cell_type"], [out.obs["condition"], out.obs["split"]])
    assert counts_after[("control", "train")].equals(counts_before[("control", "train")])
    assert counts_after[("stimulated", "test")].equals(counts_before[("stimulated", "test")])
    stim_train = counts_before[("stimulated", "train")]
    kept = counts_after[("stimulated", "train")]
    assert (kept[stim_train > 0] == (stim_train[stim_train > 0] * 0.2).round().astype(int)).all()
    again = subsample_stimulated(a, 0.2, seed=1)
    assert list(again.obs_names) == list(out.obs_names)
    assert list(subsample_stimulated(a, 0.2, seed=2).obs_names) != list(out.obs_names)
    with pytest.raises(ValueError, match="fraction"):
        subsample_stimulated(a, 1.5)


def test_donor_holdout(mini_counts):
    a = assign_donor_holdout(mini_counts, ["1015", "101"])
    parts = split_views(a)
    assert set(parts.test.obs["donor"]) == {"1015", "101"}
    assert set(parts.test.obs["condition"]) == {"stimulated"}
    assert set(parts.ctrl.obs["donor"]) == {"1015", "101"} and set(parts.ctrl.obs["condition"]) == {"control"}
    assert not parts.train.obs["donor"][parts.train.obs["condition"] == "stimulated"].isin(["1015", "101"]).any()
    with pytest.raises(DataValidationError, match="Unknown donor '999'"):
        assign_donor_holdout(mini_counts, ["999"])


def test_prepare_holdout_one_call(mini_counts):
    out = prepare_holdout(
        mini_counts, "CD4+ T cells", validation_cell_type="B", n_top_genes=500, stimulated_fraction=0.5
    )
    assert out.n_vars == 500 and "log1p" in out.uns
    assert "counts" in out.layers
    assert out.uns["hvg"]["n_train_cells"] == int((out.obs["split"] == "train").sum())
    assert "log1p" not in mini_counts.uns  # input untouched
