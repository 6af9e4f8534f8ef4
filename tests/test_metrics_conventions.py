"""The papers' DEG convention (top-k up-regulated) next to |score| ranking, and deltas against decoded controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_tools.scoring.decoded import decoded_control_deltas
from course_tools.scoring.evaluate import deg_gene_set_name, evaluate
from tutorial_lib.metrics.degs import rank_degs, top_k


def _deg_data(n=60, g=40, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(1, 2, size=g)
    ctrl = rng.normal(base, 0.3, size=(n, g))
    shift = np.zeros(g)
    shift[:5] = 0.4  # up, weakly (the two groups overlap)
    shift[5:10] = -3.0  # down, strongly (separated: larger |score|)
    stim = rng.normal(base + shift, 0.3, size=(n, g))
    return stim, ctrl, [f"g{i}" for i in range(g)]


def test_top_k_up_and_abs_on_hand_scores():
    scores = pd.Series([3.0, -5.0, 1.0, -0.5, 2.0], index=list("abcde"))
    assert top_k(scores, 2, "abs") == ["b", "a"]
    assert top_k(scores, 2, "up") == ["a", "e"]
    assert top_k(scores, 4, "up") == ["a", "e", "c", "d"]  # filled with the next-highest scores
    with pytest.raises(ValueError, match="direction"):
        top_k(scores, 2, "down")
    assert deg_gene_set_name(100) == "top100_degs" and deg_gene_set_name(100, "up") == "top100_up_degs"


def test_rank_degs_up_keeps_only_up_regulated_genes():
    stim, ctrl, genes = _deg_data()
    up = rank_degs(stim, ctrl, k=5, var_names=genes, direction="up")
    both = rank_degs(stim, ctrl, k=5, var_names=genes)
    assert set(up) == {f"g{i}" for i in range(5)}
    assert set(both) == {f"g{i}" for i in range(5, 10)}  # the stronger down-regulated genes win by |score|
    with pytest.raises(ValueError, match="direction"):
        rank_degs(stim, ctrl, k=5, var_names=genes, direction="both")


def test_evaluate_names_the_convention():
    stim, ctrl, genes = _deg_data()
    pred = stim + 0.05
    up = evaluate(
        stim,
        pred,
        ctrl,
        n_top_degs=5,
        n_bootstrap=0,
        n_bootstrap_degs=0,
        var_names=genes,
        deg_direction="up",
        space="genes",
    )
    assert "top5_up_degs" in set(up["gene_set"]) and "top5_degs" not in set(up["gene_set"])
    assert up.attrs["deg_direction"] == "up" and set(up.attrs["degs"]) == {f"g{i}" for i in range(5)}
    default = evaluate(
        stim, pred, ctrl, n_top_degs=5, n_bootstrap=0, n_bootstrap_degs=0, var_names=genes, space="genes"
    )
    assert "top5_degs" in set(default["gene_set"]) and default.attrs["deg_direction"] == "abs"


def test_decoded_control_deltas_separates_decoder_bias():
    rng = np.random.default_rng(0)
    ctrl = rng.uniform(0, 2, size=(30, 6))
    bias = np.array([0.5, 0, 0, -0.2, 0, 0])
    response = np.array([1.0, 2.0, 0, 0, -1.0, 0])
    decoded = ctrl + bias  # a decoder that shifts some genes
    pred = decoded + response  # the latent shift adds the response on top of the decoded controls
    real = ctrl + response + rng.normal(0, 0.01, size=ctrl.shape)
    genes = [f"g{i}" for i in range(6)]
    table = decoded_control_deltas(real, pred, ctrl, decoded, var_names=genes)
    np.testing.assert_allclose(table["pred_delta_decoded"], response, atol=1e-12)
    np.testing.assert_allclose(table["decoder_bias"], bias, atol=1e-12)
    np.testing.assert_allclose(table["pred_delta_raw"], response + bias, atol=1e-12)
    r = table.attrs["pearson"]
    assert r["pred_delta_decoded"] > 0.99 > r["pred_delta_raw"]
    assert list(table.index) == genes
