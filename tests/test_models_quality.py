"""On the committed real mini data, a few epochs of each model beat the no-change baseline."""

from __future__ import annotations

import pytest

from course_tools.methods import get_method
from course_tools.scoring.evaluate import evaluate
from tutorial_lib.data import prepare_holdout, split_views


@pytest.fixture(scope="module")
def parts():
    from tutorial_lib.data import load_kang2018

    return split_views(prepare_holdout(load_kang2018("mini"), "CD4+ T cells", n_top_genes=500))


def _pearson_delta(parts, pred) -> float:
    table = evaluate(parts.test, pred, parts.ctrl, n_bootstrap=0, n_bootstrap_degs=0, seed=0)
    row = table[(table["metric"] == "pearson_delta") & (table["gene_set"] == "top100_degs")].iloc[0]
    return row["value"]


def test_no_change_has_no_pearson_delta(parts):
    pred = get_method("no_change")(parts.train, parts.ctrl, cell_type="CD4+ T cells")
    assert _pearson_delta(parts, pred) != _pearson_delta(parts, pred)  # NaN: undefined, it cannot pass


@pytest.mark.parametrize("name", ["scgen", "scpram", "scpram_percell"])
def test_models_capture_the_response(parts, name):
    pred = get_method(name)(
        parts.train,
        parts.ctrl,
        cell_type="CD4+ T cells",
        seed=0,
        max_epochs=8,
        n_hidden=128,
        n_latent=20,
        batch_size=64,
    )
    assert pred.shape == parts.ctrl.shape
    assert _pearson_delta(parts, pred) > 0.5
