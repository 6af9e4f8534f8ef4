"""The evaluation table: structure, known answers, baselines, reproducibility and bad input."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from course_tools.scoring.evaluate import COLUMNS, evaluate
from course_tools.scoring.registry import GENE_METRICS
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics import e_distance, fit_shared_pca

N_GENES = 60
K = 10
FAST = {"n_bootstrap": 8, "n_bootstrap_degs": 2, "n_top_degs": K, "n_comps": 10}


def _adata(x: np.ndarray, genes=None) -> ad.AnnData:
    genes = genes if genes is not None else [f"g{i}" for i in range(x.shape[1])]
    return ad.AnnData(
        X=x.astype(np.float64), var=pd.DataFrame(index=genes), obs=pd.DataFrame(index=[f"c{i}" for i in range(len(x))])
    )


def _expr(rng, n, mean, sd=0.4):
    return np.clip(rng.normal(mean, sd, size=(n, mean.size)), 0, None)


@pytest.fixture(scope="module")
def groups():
    """Independent control, real and predicted cells; the first K genes respond to stimulation."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 3.0, N_GENES)
    shift = np.zeros(N_GENES)
    shift[: K // 2] = 1.5
    shift[K // 2 : K] = -0.4
    ctrl = _adata(_expr(rng, 80, base))
    real = _adata(_expr(rng, 70, base + shift))
    pred = _adata(_expr(rng, 80, base + 0.8 * shift))
    return real, pred, ctrl


def test_table_structure(groups):
    real, pred, ctrl = groups
    tab = evaluate(real, pred, ctrl, **FAST)
    assert list(tab.columns) == COLUMNS
    gs = f"top{K}_degs"
    expected = {(m, s) for m in GENE_METRICS for s in ("all", gs)} | {
        ("e_distance", "all"),
        ("mmd", "all"),
        ("deg_overlap_by_change", gs),
        ("deg_jaccard_by_change", gs),
    }
    assert set(zip(tab.metric, tab.gene_set)) == expected
    assert len(tab) == len(expected)
    assert not tab.duplicated(["metric", "gene_set"]).any()
    # the DEG set is the real responders, from real vs control only
    assert set(tab.attrs["degs"]) == {f"g{i}" for i in range(K)}
    row = tab.set_index(["metric", "gene_set"])
    assert row.loc[("pearson_delta", gs), "value"] > 0.9
    assert row.loc[("deg_jaccard_by_change", gs), "n_bootstrap"] == 2
    assert row.loc[("e_distance", "all"), "n_bootstrap"] == 8
    assert (tab.ci_low <= tab.ci_high).all()
    assert tab.space[tab.metric == "e_distance"].item() == "pca10"


def test_no_silent_nan(groups):
    real, pred, ctrl = groups
    for p in (pred, ctrl):
        tab = evaluate(real, p, ctrl, **FAST)
        nan_rows = tab[["value", "ci_low", "ci_high"]].isna().any(axis=1)
        assert (tab.loc[nan_rows, "note"].str.len() > 0).all()


def test_control_as_prediction_pearson_delta_undefined(groups):
    real, _, ctrl = groups
    tab = evaluate(real, ctrl, ctrl, **FAST)
    pdl = tab[tab.metric == "pearson_delta"]
    assert len(pdl) == 2
    assert pdl.value.isna().all()
    assert pdl.note.str.contains("undefined: prediction has no change").all()
    # with no change at all, no gene ranks above another: DEG overlap is undefined too
    deg = tab[tab.metric.isin(["deg_jaccard_by_change", "deg_overlap_by_change"])]
    assert deg.value.isna().all() and deg.note.str.contains("no change").all()
    # the mean-R² a no-change baseline gets is still a number (and misleadingly high)
    assert tab.set_index(["metric", "gene_set"]).loc[("r2_pearson_mean", "all"), "value"] > 0.5


def test_perfect_prediction(groups):
    real, _, ctrl = groups
    tab = evaluate(real, real, ctrl, e_estimator="v", mmd_estimator="biased", **FAST).set_index(["metric", "gene_set"])
    for gs in ("all", f"top{K}_degs"):
        for m in ("r2_pearson_mean", "r2_score_mean", "r2_pearson_var", "r2_score_var", "pearson_delta"):
            assert tab.loc[(m, gs), "estimate"] == pytest.approx(1.0)
        assert tab.loc[("mse_mean", gs), "estimate"] == 0.0
        assert tab.loc[("mean_var_kde_distance", gs), "estimate"] == pytest.approx(0.0, abs=1e-12)
    assert tab.loc[("e_distance", "all"), "estimate"] == 0.0
    assert tab.loc[("mmd", "all"), "estimate"] == pytest.approx(0.0, abs=1e-12)
    assert tab.loc[("deg_jaccard_by_change", f"top{K}_degs"), "estimate"] == 1.0
    assert tab.loc[("deg_overlap_by_change", f"top{K}_degs"), "estimate"] == K


def test_variance_only_change_seen_by_distances_not_means():
    rng = np.random.default_rng(1)
    base = rng.uniform(2.0, 6.0, N_GENES)
    real = _adata(rng.normal(base, 0.5, size=(150, N_GENES)))
    replicate = _adata(rng.normal(base, 0.5, size=(150, N_GENES)))
    wide = _adata(rng.normal(base, 1.5, size=(150, N_GENES)))
    ctrl = _adata(rng.normal(base - 0.5, 0.5, size=(150, N_GENES)))
    kw = dict(FAST, n_bootstrap=0, n_bootstrap_degs=0, space="genes")
    same = evaluate(real, replicate, ctrl, **kw).set_index(["metric", "gene_set"])["value"]
    var = evaluate(real, wide, ctrl, **kw).set_index(["metric", "gene_set"])["value"]
    assert var[("r2_pearson_mean", "all")] > 0.98 and var[("r2_score_mean", "all")] > 0.98
    assert var[("e_distance", "all")] > 10 * abs(same[("e_distance", "all")])
    assert var[("mmd", "all")] > 10 * abs(same[("mmd", "all")])
    assert var[("r2_score_var", "all")] < 0


def test_seed_reproducibility(groups):
    real, pred, ctrl = groups
    a = evaluate(real, pred, ctrl, seed=3, **FAST)
    b = evaluate(real, pred, ctrl, seed=3, **FAST)
    pd.testing.assert_frame_equal(a, b)
    c = evaluate(real, pred, ctrl, seed=4, **FAST)
    assert not np.allclose(a.ci_low.fillna(0), c.ci_low.fillna(0))


def test_arrays_sparse_and_dense_agree(groups):
    real, pred, ctrl = groups
    genes = list(real.var_names)
    dense = evaluate(real.X, pred.X, ctrl.X, var_names=genes, **FAST)
    sparse = evaluate(sp.csr_matrix(real.X), sp.csr_matrix(pred.X), sp.csr_matrix(ctrl.X), var_names=genes, **FAST)
    pd.testing.assert_frame_equal(dense, sparse, atol=1e-9)
    ann = evaluate(real, pred, ctrl, **FAST)
    pd.testing.assert_frame_equal(dense, ann, atol=1e-9)


def test_gene_order_is_aligned(groups):
    real, pred, ctrl = groups
    shuffled = pred[:, list(pred.var_names[::-1])].copy()
    pd.testing.assert_frame_equal(evaluate(real, pred, ctrl, **FAST), evaluate(real, shuffled, ctrl, **FAST), atol=1e-9)


def test_precomputed_degs_and_shared_space(groups):
    real, pred, ctrl = groups
    degs = ["g0", "g1", "g2", "g20"]
    space = fit_shared_pca(real, ctrl, n_comps=5)
    tab = evaluate(real, pred, ctrl, degs=degs, space=space, **FAST)
    assert "top4_degs" in set(tab.gene_set)
    assert tab.attrs["degs"] == degs
    assert tab.space[tab.metric == "mmd"].item() == "pca5"
    e = tab.set_index("metric").loc["e_distance", "estimate"]
    assert e == pytest.approx(e_distance(space.transform(real), space.transform(pred)))
    with pytest.raises(DataValidationError, match="NOPE"):
        evaluate(real, pred, ctrl, degs=["g0", "NOPE"], **FAST)


def test_bad_inputs(groups):
    real, pred, ctrl = groups
    with pytest.raises(DataValidationError, match="empty"):
        evaluate(real, pred[:0].copy(), ctrl, **FAST)
    nan_pred = pred.copy()
    nan_pred.X[3, 4] = np.nan
    with pytest.raises(DataValidationError, match="pred contains 1 NaN"):
        evaluate(real, nan_pred, ctrl, **FAST)
    genes = list(pred.var_names)
    renamed = _adata(pred.X, genes=genes[:-2] + ["IFIT1", "MX1"])
    with pytest.raises(DataValidationError) as err:
        evaluate(real, renamed, ctrl, **FAST)
    msg = str(err.value)
    assert "same genes" in msg and "IFIT1" in msg and genes[-1] in msg and "missing from pred" in msg
    with pytest.raises(DataValidationError, match="numbers of genes differ"):
        evaluate(real.X, pred.X[:, :-1], ctrl.X, **FAST)
    with pytest.raises(DataValidationError, match="paired"):
        evaluate(real, pred[:10].copy(), ctrl, paired=True, **FAST)


MINI = Path(__file__).resolve().parents[1] / "data" / "kang2018_mini.h5ad"


@pytest.mark.skipif(not MINI.exists(), reason="data/kang2018_mini.h5ad not available")
def test_real_data_mini():
    import scanpy as sc

    adata = ad.read_h5ad(MINI)
    adata = adata[adata.obs["cell_type"] == "CD14+ Monocytes"].copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    stim = adata[adata.obs["condition"] == "stimulated"]
    ctrl = adata[adata.obs["condition"] == "control"]
    # "oracle shift": control cells moved by the real mean change; and control as prediction
    delta = np.asarray(stim.X.mean(0)).ravel() - np.asarray(ctrl.X.mean(0)).ravel()
    shifted = ad.AnnData(X=np.asarray(ctrl.X.todense()) + delta, var=ctrl.var.copy())
    kw = dict(n_bootstrap=5, n_bootstrap_degs=0, n_top_degs=50, n_comps=20)
    good = evaluate(stim, shifted, ctrl, **kw).set_index(["metric", "gene_set"])
    base_table = evaluate(stim, ctrl, ctrl, **kw)
    base = base_table.set_index(["metric", "gene_set"])
    for gs in ("all", "top50_degs"):
        assert good.loc[("pearson_delta", gs), "value"] > 0.99
        assert np.isnan(base.loc[("pearson_delta", gs), "value"])
        assert "no change" in base.loc[("pearson_delta", gs), "note"]
    # interferon response genes are among the real DEGs
    assert {"ISG15", "IFIT1"} & set(base_table.attrs["degs"])
    assert good.loc[("e_distance", "all"), "value"] < base.loc[("e_distance", "all"), "value"]


def test_sparse_control_as_dense_prediction_is_undefined_not_noise(mini_counts):
    """Sparse float32 controls and their dense copy must give a zero change, not rounding noise."""
    from course_tools.methods import get_method
    from tutorial_lib.data import prepare_holdout, split_views

    parts = split_views(prepare_holdout(mini_counts, n_top_genes=300))
    pred = get_method("no_change")(parts.train, parts.ctrl, cell_type="CD4+ T cells")
    table = evaluate(parts.test, pred, parts.ctrl, n_bootstrap=3, n_bootstrap_degs=0, seed=0)
    rows = table[table["metric"] == "pearson_delta"]
    assert rows["value"].isna().all()
    assert rows["note"].str.startswith("undefined").all()


def test_value_is_the_full_sample_estimate_and_deg_intervals_are_not_degenerate(groups):
    """Issue 11: ``value`` is the estimate on all cells (not a mean of resamples), and the DEG
    overlap of a deterministic shift of the controls still gets a non-zero-width interval (the
    real DEG list is re-ranked on each resample: it carries sampling noise)."""
    real, _, ctrl = groups
    shifted = _adata(ctrl.X + 0.9 * (real.X.mean(0) - ctrl.X.mean(0)))  # made from the control cells
    tab = evaluate(real, shifted, ctrl, n_bootstrap=20, n_bootstrap_degs=6, n_top_degs=20, n_comps=10)
    defined = tab[tab["value"].notna()]
    np.testing.assert_array_equal(defined["value"], defined["estimate"])
    assert (defined["ci_low"] <= defined["ci_high"]).all()
    deg = tab.set_index("metric").loc["deg_overlap_by_change"]
    assert deg["ci_high"] > deg["ci_low"]
    e = tab.set_index("metric").loc["e_distance"]
    assert e["ci_low"] < e["value"] < e["ci_high"]


def test_interval_limits_stay_inside_each_metrics_range(groups):
    """A distance or a count cannot be negative, a Jaccard index not above 1: interval limits are clipped
    to the metric's range (the estimate is never moved)."""
    from course_tools.scoring.registry import get_metric

    real, _, ctrl = groups
    # a prediction equal to the real cells: E-distance and MMD near 0, their raw subsampling limits below 0
    tab = evaluate(real, real, ctrl, n_bootstrap=20, n_bootstrap_degs=4, n_top_degs=K, n_comps=10)
    for metric in ("e_distance", "mmd", "deg_overlap_by_change", "deg_jaccard_by_change"):
        row = tab.set_index("metric").loc[metric]
        low, high = get_metric(metric).bounds
        assert low <= row["ci_low"] <= row["ci_high"] <= high
    assert (tab.set_index("metric").loc[["e_distance", "mmd"], "ci_low"] == 0).any()
