"""Overview figures: data response heatmap, training curves, attention, OT matching, UMAP."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from tutorial_lib import plotting as tp
from tutorial_lib.data import normalise_log


@pytest.fixture
def logged(mini_counts):
    return normalise_log(mini_counts)


def test_response_by_cell_type_matches_group_means(logged):
    change = tp.response_by_cell_type(logged, ["ISG15", "MX1"])
    assert change.shape == (8, 2)
    b = logged[logged.obs["cell_type"] == "B"]
    isg = np.asarray(b[:, "ISG15"].X.todense()).ravel()
    stim = (b.obs["condition"] == "stimulated").to_numpy()
    assert change.loc["B", "ISG15"] == pytest.approx(isg[stim].mean() - isg[~stim].mean(), rel=1e-5)
    assert (change["ISG15"] > 1).all()  # every cell type responds to interferon
    ax = tp.response_heatmap(change)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ISG15", "MX1"]
    with pytest.raises(KeyError, match="NOT_A_GENE"):
        tp.response_by_cell_type(logged, ["NOT_A_GENE"])


def test_training_curves_accepts_history_frame():
    frame = pd.DataFrame(
        {"train_loss": [3.0, 2.0, 1.5], "val_loss": [3.5, 2.5, 2.0]}, index=pd.Index([0, 1, 2], name="epoch")
    )
    ax = tp.training_curves(frame)
    assert len(ax.get_lines()) == 2
    with pytest.raises(KeyError, match="val_loss"):
        tp.training_curves(pd.DataFrame({"epoch": [0], "train_loss": [1.0]}))


def test_attention_heatmap_samples_rows():
    weights = pd.DataFrame(np.full((100, 4), 0.25), columns=list("abcd"))
    ax = tp.attention_heatmap(weights, max_targets=30)
    assert ax.images[0].get_array().shape == (30, 4)


def test_ot_matching_plot_draws_pairs():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 6))
    ax = tp.ot_matching_plot(z, z + 1, np.arange(50), n_pairs=20)
    assert len(ax.texts) == 20  # one arrow annotation per pair


@pytest.mark.skipif(os.environ.get("TUTORIAL_SKIP_UMAP") == "1", reason="TUTORIAL_SKIP_UMAP=1")
def test_umap_overview_panels(logged):
    fig = tp.umap_overview(logged[:400], color=["condition", "cell_type"], max_cells=300)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["UMAP coloured by condition (300 cells)", "UMAP coloured by cell_type (300 cells)"]
