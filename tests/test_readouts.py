"""Read-outs printed by notebooks 00-02: interval comparisons, orderings, distance from controls, ISGs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_tools.readouts import (
    INTERFERON_STIMULATED_GENES,
    describe_distance_from_controls,
    describe_interval_comparison,
    describe_order,
    distance_from_controls,
    interferon_stimulated,
    interval_comparison,
)
from tutorial_lib.data.checks import DataValidationError


def test_isg_list_catches_the_genes_the_prefix_filter_missed():
    top = ["ISG15", "IFIT3", "SAT1", "RSAD2", "CXCL10", "MT2A", "TNFSF10", "OASL", "SOCS1", "LAG3", "SELL", "RGCC"]
    found = interferon_stimulated(top)
    assert found == ["ISG15", "IFIT3", "SAT1", "RSAD2", "CXCL10", "TNFSF10", "OASL", "SOCS1"]  # order kept
    assert {"RSAD2", "CXCL10", "TNFSF10", "SOCS1", "SAT1"} <= INTERFERON_STIMULATED_GENES
    assert not {"MT2A", "LAG3", "SELL", "RGCC", "CD3E", "ACTB"} & INTERFERON_STIMULATED_GENES
    assert interferon_stimulated(["Isg15", "actb"]) == ["Isg15"]
    with pytest.raises(TypeError, match="list of gene names"):
        interferon_stimulated("ISG15")


def _scores(rows):
    return pd.DataFrame(rows, columns=["method", "metric", "gene_set", "value", "ci_low", "ci_high"])


def test_interval_comparison_uses_the_metric_direction_and_overlap():
    scores = _scores(
        [
            ("no_change", "e_distance", "all", 3.3, 3.2, 3.4),
            ("mean_shift", "e_distance", "all", 0.9, 0.85, 0.95),
            ("no_change", "r2_pearson_mean", "all", 0.82, 0.81, 0.83),
            ("mean_shift", "r2_pearson_mean", "all", 0.85, 0.84, 0.86),
            ("no_change", "mse_mean", "all", 0.022, 0.021, 0.0235),
            ("mean_shift", "mse_mean", "all", 0.023, 0.022, 0.024),
            ("no_change", "pearson_delta", "all", np.nan, np.nan, np.nan),
            ("mean_shift", "pearson_delta", "all", 0.77, 0.76, 0.78),
            ("no_change", "r2_score_var", "top100_degs", -0.05, -0.07, -0.03),
            ("mean_shift", "r2_score_var", "top100_degs", -0.2, -0.25, -0.15),
        ]
    )
    table = interval_comparison(scores, "no_change", "mean_shift").set_index("metric")
    assert table.loc["e_distance", "verdict"] == "mean_shift better"  # lower is better
    assert table.loc["e_distance", "direction"] == "lower"
    assert table.loc["r2_pearson_mean", "verdict"] == "mean_shift better"
    assert table.loc["mse_mean", "verdict"] == "no clear difference"  # intervals overlap
    assert table.loc["pearson_delta", "verdict"] == "undefined for no_change"
    assert table.loc["r2_score_var", "verdict"] == "no_change better"  # higher is better, and it is higher
    # swapping the two methods swaps the verdict, never the facts
    swapped = interval_comparison(scores, "mean_shift", "no_change").set_index("metric")
    assert swapped.loc["e_distance", "verdict"] == "mean_shift better"
    text = describe_interval_comparison(table.reset_index())
    assert "e_distance (all; lower is better): no_change 3.300 [3.200, 3.400] vs mean_shift" in text
    assert "pearson_delta (all; higher is better): no_change undefined" in text
    only = interval_comparison(scores, "no_change", "mean_shift", metrics=[("e_distance", "all")])
    assert len(only) == 1
    with pytest.raises(DataValidationError, match="not in the scores"):
        interval_comparison(scores, "no_change", "scgen")
    with pytest.raises(DataValidationError, match="lacks the columns"):
        interval_comparison(scores.drop(columns="ci_low"), "no_change", "mean_shift")
    with pytest.raises(ValueError, match="two different"):
        interval_comparison(scores, "no_change", "no_change")


def test_describe_order_never_uses_greater_than_and_names_the_direction():
    scores = _scores(
        [
            ("scgen", "e_distance", "all", 0.7, 0.6, 0.8),
            ("mean_shift", "e_distance", "all", 0.9, 0.8, 1.0),
            ("no_change", "e_distance", "all", 3.3, 3.2, 3.4),
            ("scgen", "pearson_delta", "top100_degs", 0.95, 0.94, 0.96),
            ("mean_shift", "pearson_delta", "top100_degs", 0.82, 0.81, 0.83),
            ("no_change", "pearson_delta", "top100_degs", np.nan, np.nan, np.nan),
        ]
    )
    line = describe_order(scores, "e_distance")
    assert ">" not in line
    assert line == "e_distance (all; lower is better), best first: scgen 0.700, mean_shift 0.900, no_change 3.300"
    line = describe_order(scores, "pearson_delta", "top100_degs")
    assert "higher is better" in line and line.index("scgen") < line.index("mean_shift")
    assert "(undefined for no_change)" in line
    # several runs per method: mean ± sd
    runs = pd.concat([scores.assign(seed=0), scores.assign(seed=1, value=scores["value"] + 0.1)])
    assert "scgen 0.750 ± 0.071" in describe_order(runs, "e_distance")


def _cloud(rng, n, shift, dims=5):
    return rng.normal(size=(n, dims)) + shift


def test_distance_from_controls_tells_over_from_undershoot():
    rng = np.random.default_rng(0)
    ctrl = _cloud(rng, 300, 0.0)
    real = _cloud(rng, 350, np.r_[2.0, np.zeros(4)])
    preds = {
        "overshoot": ctrl + np.r_[4.0, np.zeros(4)],  # one to one from the controls
        "undershoot": ctrl + np.r_[0.5, np.zeros(4)],
        "right": _cloud(rng, 300, np.r_[2.0, np.zeros(4)]),
    }
    table = distance_from_controls(ctrl, real, preds, n_bootstrap=60, seed=1).set_index("prediction")
    assert table.loc["overshoot", "verdict"] == "overshoots"
    assert table.loc["undershoot", "verdict"] == "undershoots"
    assert table.loc["right", "verdict"].startswith("about the real distance")
    from tutorial_lib.metrics import e_distance

    # the reported values are the full-sample estimates
    assert table.loc["overshoot", "real_distance"] == pytest.approx(e_distance(real, ctrl))
    assert table.loc["overshoot", "predicted_distance"] == pytest.approx(e_distance(preds["overshoot"], ctrl))
    assert table.loc["right", "ci_low"] < table.loc["right", "diff"] < table.loc["right", "ci_high"]
    # same seed, same numbers
    again = distance_from_controls(ctrl, real, preds, n_bootstrap=60, seed=1).set_index("prediction")
    pd.testing.assert_frame_equal(table, again)
    assert "overshoots" in describe_distance_from_controls(table.reset_index())
    with pytest.raises(DataValidationError, match="dimensions"):
        distance_from_controls(ctrl, real, {"bad": ctrl[:, :3]})
    with pytest.raises(ValueError, match="empty"):
        distance_from_controls(ctrl, real, {})


def test_distance_interval_covers_the_truth_at_about_its_level():
    """Coverage by simulation: the predicted cells come from the real distribution (true diff 0)."""
    rng = np.random.default_rng(3)
    covered = []
    for _ in range(40):
        ctrl = _cloud(rng, 120, 0.0, dims=3)
        real = _cloud(rng, 130, np.r_[1.0, 0.0, 0.0], dims=3)
        pred = _cloud(rng, 110, np.r_[1.0, 0.0, 0.0], dims=3)
        row = distance_from_controls(ctrl, real, {"p": pred}, n_bootstrap=60, seed=int(rng.integers(1 << 30))).iloc[0]
        covered.append(row["ci_low"] <= 0 <= row["ci_high"])
    assert 0.8 <= np.mean(covered) <= 1.0
