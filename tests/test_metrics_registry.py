"""One record per metric: a metric declared in one place reaches evaluate, directions and verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_tools.plots import panel_direction
from course_tools.scoring.evaluate import evaluate
from course_tools.scoring.pairwise import PairDistance
from course_tools.scoring.registry import (
    INTERVALS,
    LOWER_IS_BETTER,
    Metric,
    get_metric,
    list_metrics,
    register_metric,
    registered,
)
from course_tools.verdicts import paired_verdict

FAST = {"n_bootstrap": 8, "n_bootstrap_degs": 2, "n_top_degs": 5, "seed": 0}


@pytest.fixture(scope="module")
def cells():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 3.0, 30)
    shift = np.r_[np.full(5, 1.5), np.zeros(25)]
    ctrl = np.clip(rng.normal(base, 0.4, size=(40, 30)), 0, None)
    real = np.clip(rng.normal(base + shift, 0.4, size=(35, 30)), 0, None)
    pred = np.clip(rng.normal(base + 0.7 * shift, 0.4, size=(40, 30)), 0, None)
    genes = [f"g{i}" for i in range(30)]
    return real, pred, ctrl, genes


def _runs(metric: str, a: list[float], b: list[float]) -> pd.DataFrame:
    rows = [
        {"method": m, "setting": "s", "seed": i, "metric": metric, "gene_set": "all", "value": v}
        for m, vals in (("A", a), ("B", b))
        for i, v in enumerate(vals)
    ]
    return pd.DataFrame(rows)


def test_a_metric_declared_in_one_place_reaches_evaluate_directions_and_verdicts(cells):
    real, pred, ctrl, genes = cells
    before = evaluate(real, pred, ctrl, var_names=genes, **FAST)
    larger_a = _runs("mae_mean", [1.1, 1.3, 1.2, 1.4, 1.25], [1.0, 1.2, 1.1, 1.3, 1.15])

    # --- the whole declaration of a new metric (as in CONTRIBUTING.md, "Add a metric") ---
    mae = Metric(
        "mae_mean",
        lambda s: float(np.abs(s.real_mean - s.pred_mean).mean()),
        lower_is_better=True,
        doc="mean absolute error of per-gene means",
    )
    with registered(mae):
        table = evaluate(real, pred, ctrl, var_names=genes, **FAST)
        assert "mae_mean" in LOWER_IS_BETTER and panel_direction("mae_mean")
        assert INTERVALS["mae_mean"] == "basic"
        verdict = paired_verdict(larger_a, "A", "B", "mae_mean")
        assert verdict["direction"] == "lower" and verdict["verdict"] == "B better"

    rows = table[table["metric"] == "mae_mean"].set_index("gene_set")
    degs = table.attrs["degs"]
    idx = {"all": np.arange(30), f"top{len(degs)}_degs": np.flatnonzero(np.isin(genes, degs))}
    assert set(rows.index) == set(idx)
    for gs, i in idx.items():  # the full-sample estimate, with a bootstrap interval
        expected = np.abs(real[:, i].mean(axis=0) - pred[:, i].mean(axis=0)).mean()
        assert rows.loc[gs, "value"] == pytest.approx(expected, rel=1e-12)
        assert 0 < rows.loc[gs, "ci_low"] < rows.loc[gs, "ci_high"] and rows.loc[gs, "note"] == ""
        assert rows.loc[gs, "n_bootstrap"] == 8 and rows.loc[gs, "n_genes"] == i.size
    # the new rows come after the built-in per-gene metrics; the other rows are unchanged
    others = table[table["metric"] != "mae_mean"].reset_index(drop=True)
    pd.testing.assert_frame_equal(others, before)

    # unregistered afterwards: gone from the table, the set of directions and the verdict
    assert "mae_mean" not in LOWER_IS_BETTER and "mae_mean" not in INTERVALS
    assert "mae_mean" not in set(evaluate(real, pred, ctrl, var_names=genes, **FAST)["metric"])
    assert paired_verdict(larger_a, "A", "B", "mae_mean")["verdict"] == "A better"  # default: higher is better


def test_a_new_distance_is_one_record(cells):
    real, pred, ctrl, genes = cells
    mean_cross = PairDistance("mean_cross_distance", lambda d2, cache: np.sqrt(d2), 0.0, lambda c, wx, wy: c)
    with registered(
        Metric("mean_cross_distance", mean_cross, level="cells", lower_is_better=True, options=("e_estimator",))
    ):
        table = evaluate(real, pred, ctrl, var_names=genes, space="genes", max_cells=None, **FAST)
        assert "mean_cross_distance" in LOWER_IS_BETTER and INTERVALS["mean_cross_distance"] == "subsample"
    row = table[table["metric"] == "mean_cross_distance"].iloc[0]
    expected = np.sqrt(((real[:, None, :] - pred[None, :, :]) ** 2).sum(axis=2)).mean()
    assert row["value"] == pytest.approx(expected, rel=1e-10)
    assert row["gene_set"] == "all" and row["space"] == "genes"
    assert row["ci_low"] < row["value"] < row["ci_high"]


def test_an_undefined_value_carries_the_records_note(cells):
    real, pred, ctrl, genes = cells
    nan_metric = Metric(
        "always_nan", lambda s: float("nan"), undefined=lambda s: f"undefined: {s.real_mean.size} genes"
    )
    with registered(nan_metric):
        table = evaluate(real, pred, ctrl, var_names=genes, **FAST)
    rows = table[table["metric"] == "always_nan"]
    assert rows["value"].isna().all()
    assert sorted(rows["note"]) == sorted([f"undefined: {n} genes" for n in rows["n_genes"]])


def test_records_are_checked_and_unregistered_even_after_an_error():
    with pytest.raises(ValueError, match="level"):
        Metric("x", lambda s: 0.0, level="spots")
    with pytest.raises(ValueError, match="interval"):
        Metric("x", lambda s: 0.0, interval="bca")
    with pytest.raises(ValueError, match="already registered"):
        register_metric(Metric("mse_mean", lambda s: 0.0))
    with pytest.raises(RuntimeError, match="boom"), registered(Metric("tmp_metric", lambda s: 0.0)):
        raise RuntimeError("boom")
    with pytest.raises(KeyError, match="tmp_metric"):
        get_metric("tmp_metric")
    with (
        registered(Metric("needs_alpha", lambda s, alpha: 0.0, options=("alpha",))),
        pytest.raises(ValueError, match="needs_alpha.*alpha"),
    ):
        evaluate(np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)))
    # the built-in records are the ones the views report
    assert set(LOWER_IS_BETTER) == {m.name for m in list_metrics() if m.lower_is_better}
    assert set(LOWER_IS_BETTER) == {"e_distance", "mmd", "mse_mean", "mean_var_kde_distance"}
