"""Issue #29 (items 6, 7 and part of 11): one check of the expression scale, and the paths around it.

* 6: raw counts of a small gene panel (every count at most 20), three raw-count or three z-scored
  inputs to ``evaluate``, and NaN or raw input to the baselines are refused, while everything the
  course's preprocessing produces (all genes, 200 or 50 highly variable genes, a few cells) is
  accepted.
* 7: ``predict`` refuses targets with stimulated cells, ``reconstruct``/``get_latent`` check their
  input like ``predict``, and scPRAM's reference pool does not depend on the targets' names.
* 11: a duplicated gene in the targets is named; float16 predictions are scored against sparse
  controls.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from course_tools.baselines import pca_arithmetic
from course_tools.scoring.evaluate import evaluate
from tutorial_lib import baselines
from tutorial_lib.data import DataValidationError, prepare_holdout, split_views
from tutorial_lib.data.checks import LOG_TARGET_SUM, check_log_normalised, looks_like_counts
from tutorial_lib.models import SCGEN, SCPRAM

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = {"n_hidden": 16, "n_latent": 4}
HELD_OUT = "CD4+ T cells"
DONORS = ["1016", "1244"]
NO_BOOT = {"n_bootstrap": 0, "n_bootstrap_degs": 0, "n_top_degs": 10}
BASELINES = [baselines.no_change, baselines.mean_shift, pca_arithmetic]


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x)


def _with_x(adata: ad.AnnData, x) -> ad.AnnData:
    out = adata.copy()
    out.X = x
    return out


def _raw(adata: ad.AnnData) -> ad.AnnData:
    """The same cells with their raw counts in ``X``."""
    return _with_x(adata, adata.layers["counts"].copy())


@pytest.fixture(scope="module")
def mini(_mini_counts):
    return _mini_counts  # tests/conftest.py; prepare_holdout does not change it


@pytest.fixture(scope="module")
def small(mini):
    """50 highly variable genes: every count of the held-out cells is at most 20."""
    parts = split_views(prepare_holdout(mini, n_top_genes=50))
    for part in (parts.ctrl, parts.test):
        assert _dense(part.layers["counts"]).max() <= 20  # the case the old "integers above 20" rule missed
    return parts


@pytest.fixture(scope="module")
def zscored(mini):
    """The same split, z-scored (``sc.pp.scale``) after the course's preprocessing, as before a PCA."""
    adata = prepare_holdout(mini, n_top_genes=50)
    adata.X = _dense(adata.X)
    sc.pp.scale(adata)
    return split_views(adata)


@pytest.fixture(scope="module")
def scgen(small):
    model = SCGEN(small.train, **TINY)
    model.train(max_epochs=1, batch_size=64, progress_bar=False)
    return model


# -- 6. one scale check, whatever the panel size --------------------------------------------------
@pytest.mark.parametrize("n_genes", [3000, 200, 50])
def test_everything_the_course_prepares_is_accepted(mini, n_genes):
    parts = split_views(prepare_holdout(mini, n_top_genes=n_genes))
    for what, part in (("train", parts.train), ("ctrl", parts.ctrl), ("test", parts.test)):
        for cells in (part, part[:3], part[:1], part[-2:]):
            check_log_normalised(cells.X, what)
            check_log_normalised(_dense(cells.X), what)
    # evaluate and the baselines take a few cells of a small panel
    few = {"cell_type": HELD_OUT}
    for fn in BASELINES:
        pred = fn(parts.train, parts.ctrl[:3], **few)
        table = evaluate(parts.test[:3], pred, parts.ctrl[:3], space="genes", **NO_BOOT)
        assert table["value"].notna().any()


def test_scanpy_normalised_data_on_all_genes_are_accepted(mini):
    """log1p(normalize_total to 1e4) on every gene: each cell's expm1 total is the target sum itself."""
    adata = mini.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    totals = np.expm1(_dense(adata.X).astype(np.float64)).sum(axis=1)
    assert np.allclose(totals, LOG_TARGET_SUM, rtol=1e-4)
    check_log_normalised(adata.X, "X")
    check_log_normalised(adata.X.astype(np.float64), "X")


def test_small_panel_raw_counts_are_raw_counts(small):
    assert looks_like_counts(small.ctrl.layers["counts"]) and looks_like_counts(_dense(small.test.layers["counts"]))
    assert not looks_like_counts(small.ctrl.X) and not looks_like_counts(np.zeros((3, 4)))
    with pytest.raises(DataValidationError, match=r"ctrl.*raw counts.*normalise_log"):
        check_log_normalised(small.ctrl.layers["counts"], "ctrl")


def test_normalised_but_not_logged_cells_are_refused(small):
    """A cell's values ``x`` of log1p(normalize_total to 1e4) have expm1(x) summing to at most 1e4."""
    norm = np.expm1(_dense(small.ctrl.X).astype(np.float64))  # normalised to 1e4, not log-transformed
    peak = norm.max(axis=1)
    cells = norm[(peak > 12) & (peak < 30)][:5]  # non-integer, below the old "up to 30" bound
    assert len(cells) and cells.max() < 30
    with pytest.raises(DataValidationError, match=r"expm1.*10,000.*not log-transformed"):
        check_log_normalised(cells, "X")


def test_evaluate_refuses_three_raw_count_inputs(small):
    real, ctrl = _raw(small.test), _raw(small.ctrl)
    with pytest.raises(DataValidationError, match="real holds whole numbers only.*raw counts"):
        evaluate(real, ctrl, ctrl, **NO_BOOT)


def test_evaluate_refuses_three_zscored_inputs(zscored):
    with pytest.raises(DataValidationError, match="real contains negative values.*centred or scaled"):
        evaluate(zscored.test, zscored.ctrl, zscored.ctrl, **NO_BOOT)


def test_evaluate_refuses_small_panel_raw_counts_as_prediction(small):
    with pytest.raises(DataValidationError, match=r"\['pred'\] look like raw counts.*log1p-normalised"):
        evaluate(small.test, _raw(small.ctrl), small.ctrl, **NO_BOOT)


def test_evaluate_refuses_a_zscored_prediction(small, zscored):
    pred = _with_x(small.ctrl, zscored.ctrl.X)
    with pytest.raises(DataValidationError, match=r"pred contains negative values.*centred or scaled"):
        evaluate(small.test, pred, small.ctrl, **NO_BOOT)


def test_evaluate_scores_controls_shifted_without_clipping(small):
    """Controls + the real mean change, not clipped at 0: many small negative values, still log-scale."""
    x = _dense(small.ctrl.X)
    shifted = x + (_dense(small.test.X).mean(axis=0) - x.mean(axis=0))
    assert (shifted < 0).mean() > 0.3
    table = evaluate(small.test, _with_x(small.ctrl, shifted), small.ctrl, **NO_BOOT)
    assert table.set_index(["metric", "gene_set"]).loc[("r2_score_mean", "all"), "value"] == pytest.approx(1.0)


@pytest.mark.parametrize("fn", BASELINES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("damage", ["nan", "raw_targets", "raw_training"])
def test_baselines_validate_their_inputs(small, fn, damage):
    train, ctrl = small.train, small.ctrl
    if damage == "nan":
        x = _dense(ctrl.X).copy()
        x[0, 0] = np.nan
        ctrl, message = _with_x(ctrl, x), r"adata_to_predict.*NaN"
    elif damage == "raw_targets":
        ctrl, message = _raw(ctrl), r"adata_to_predict.*raw counts"
    else:
        keep = _dense(train.layers["counts"]).max(axis=1) <= 20  # every count of the panel at most 20
        train, message = _raw(train[keep]), r"train_adata.*raw counts"
    with pytest.raises(DataValidationError, match=message):
        fn(train, ctrl, cell_type=HELD_OUT)


def test_models_refuse_small_panel_raw_counts(small, scgen):
    with pytest.raises(DataValidationError, match=r"adata_to_predict.*raw counts"):
        scgen.predict(adata_to_predict=_raw(small.ctrl))
    keep = _dense(small.train.layers["counts"]).max(axis=1) <= 20
    with pytest.raises(DataValidationError, match=r"adata.X.*raw counts"):
        SCGEN(_raw(small.train[keep]), **TINY)


# -- 7. the paths around predict's checks --------------------------------------------------------
def test_predict_refuses_targets_with_stimulated_cells(small, scgen):
    both = ad.concat([small.ctrl, small.test])
    n_stim = small.test.n_obs
    message = rf"obs\['condition'\].*{n_stim} 'stimulated'"
    with pytest.raises(DataValidationError, match=message):
        scgen.predict(HELD_OUT, adata_to_predict=both)
    with pytest.raises(DataValidationError, match=message):
        baselines.mean_shift(small.train, both, cell_type=HELD_OUT)
    assert scgen.predict(HELD_OUT, adata_to_predict=small.ctrl).n_obs == small.ctrl.n_obs


@pytest.mark.parametrize("damage", ["raw", "nan"])
def test_reconstruct_and_get_latent_check_their_input(small, scgen, damage):
    if damage == "raw":
        cells, message = _raw(small.ctrl), "raw counts"
    else:
        x = _dense(small.ctrl.X).copy()
        x[2] = np.nan
        cells, message = _with_x(small.ctrl, x), "NaN"
    with pytest.raises(DataValidationError, match=f"adata.X.*{message}"):
        scgen.get_latent(cells)
    with pytest.raises(DataValidationError, match=f"adata.X.*{message}"):
        scgen.reconstruct(cells)
    assert np.isfinite(scgen.get_latent(small.ctrl)).all()


@pytest.fixture(scope="module")
def donor_parts(mini):
    return split_views(prepare_holdout(mini, donors=DONORS, n_top_genes=50))


def _renamed(adata: ad.AnnData, names) -> ad.AnnData:
    out = adata.copy()
    out.obs_names = pd.Index([str(n) for n in names])
    return out


def test_scpram_leaves_out_its_targets_whatever_their_names(donor_parts):
    """The targets (held-out donors' controls) are training cells: left out of the pool under any names."""
    model = SCPRAM(donor_parts.train, **TINY)
    model.train(max_epochs=1, batch_size=64, progress_bar=False)
    targets = donor_parts.ctrl
    real_names = model.predict(adata_to_predict=targets, seed=0)
    numbered = model.predict(adata_to_predict=_renamed(targets, range(targets.n_obs)), seed=0)
    np.testing.assert_array_equal(numbered.X, real_names.X)
    reference = list(real_names.uns["scpram"]["reference_cells"].index)
    assert list(numbered.uns["scpram"]["reference_cells"].index) == reference
    assert not set(reference) & set(targets.obs_names)
    assert len(reference) == (donor_parts.train.obs["condition"] == "control").sum() - targets.n_obs


def test_scpram_keeps_other_cells_that_share_the_targets_names(donor_parts):
    """Targets outside the training data, named '0'... like the training cells: no training cell is left out."""
    train = donor_parts.train
    is_target = train.obs_names.isin(donor_parts.ctrl.obs_names)
    train = _renamed(train[~is_target], range(int((~is_target).sum())))
    model = SCPRAM(train, **TINY)
    model.train(max_epochs=1, batch_size=64, progress_bar=False)
    targets = donor_parts.ctrl
    n_ctrl = int((train.obs["condition"] == "control").sum())
    clashing = model.predict(adata_to_predict=_renamed(targets, range(targets.n_obs)), seed=0)
    distinct = model.predict(adata_to_predict=_renamed(targets, [f"t{i}" for i in range(targets.n_obs)]), seed=0)
    assert len(clashing.uns["scpram"]["reference_cells"]) == n_ctrl
    np.testing.assert_array_equal(clashing.X, distinct.X)


# -- 11. duplicated genes, float16 predictions ------------------------------------------------------
def test_a_duplicated_gene_in_the_targets_is_named(small, scgen):
    genes = list(small.ctrl.var_names)
    x = _dense(small.ctrl.X)
    dup = ad.AnnData(np.hstack([x, x[:, :1]]), obs=small.ctrl.obs.copy(), var=pd.DataFrame(index=genes + genes[:1]))
    message = rf"duplicated gene names.*{genes[0]}"
    with pytest.raises(DataValidationError, match=message):
        scgen.predict(HELD_OUT, adata_to_predict=dup)
    with pytest.raises(DataValidationError, match=message):
        baselines.mean_shift(small.train, dup, cell_type=HELD_OUT)


def test_float16_prediction_is_scored_against_sparse_controls(small, scgen):
    assert sp.issparse(small.ctrl.X) and sp.issparse(small.test.X)
    pred = scgen.predict(HELD_OUT, adata_to_predict=small.ctrl)
    half = _with_x(pred, pred.X.astype(np.float16))
    upcast = _with_x(pred, half.X.astype(np.float32))
    kw = {"n_bootstrap": 3, "n_bootstrap_degs": 1, "n_top_degs": 10, "seed": 0}
    pd.testing.assert_frame_equal(
        evaluate(small.test, half, small.ctrl, **kw), evaluate(small.test, upcast, small.ctrl, **kw)
    )
