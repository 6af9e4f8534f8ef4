"""The live session's fast mode shows the book's conclusions on the key comparison.

Learners run fast mode (``TUTORIAL_FAST=1``): the committed 2,400-cell subset with the default
training schedule. This test follows the fast-mode path of notebooks 01 and 02 (same data
preparation, models, seed and scoring) and checks what their full-mode outputs show: scGen and
scPRAM beat the mean-shift baseline on Pearson-Δ over the top-100 DEGs, and the stopping rule,
not a cap, ends their training. It trains both models to convergence (a minute or two each on
one CPU thread), so it is marked ``slow``; ``make test`` runs it.
"""

from __future__ import annotations

import pytest

from course_tools.benchmark import evaluate_methods
from course_tools.methods import get_method
from course_tools.presets import train_preset
from tutorial_lib.config import FAST, get_config
from tutorial_lib.data import load_kang2018, prepare_holdout, split_views
from tutorial_lib.models import SCGEN, SCPRAM

HELD_OUT = "CD4+ T cells"


@pytest.mark.slow
def test_fast_mode_models_converge_and_beat_the_mean_shift():
    cfg = get_config(fast=True, smoke=False)
    assert cfg is FAST and cfg.max_epochs is None  # the live session's budget, not the tests' smoke budget
    parts = split_views(prepare_holdout(load_kang2018(cfg.dataset), HELD_OUT, n_top_genes=cfg.n_top_genes))
    predictions = {"mean_shift": get_method("mean_shift")(parts.train, parts.ctrl, cell_type=HELD_OUT, seed=0)}
    histories = {}
    for name, cls in (("scgen", SCGEN), ("scpram", SCPRAM)):
        model = cls(parts.train)
        histories[name] = model.train(**train_preset(name, max_epochs=cfg.max_epochs), seed=0, progress_bar=False)
        predictions[name] = model.predict(HELD_OUT, adata_to_predict=parts.ctrl, seed=0)
    scores = evaluate_methods(parts.test, parts.ctrl, predictions, n_bootstrap=0, seed=0)
    pdelta = scores[(scores["metric"] == "pearson_delta") & (scores["gene_set"] == "top100_degs")]
    value = pdelta.set_index("method")["value"]

    for name, history in histories.items():
        assert history.stopped_early, f"{name}: the {history.step[-1]}-step training ended at a cap, not converged"
        assert value[name] > value["mean_shift"], f"{name} {value[name]:.3f} vs mean shift {value['mean_shift']:.3f}"
