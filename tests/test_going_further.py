"""The code of book/going_further.md runs: a second data set through harmonise and the course's split."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "book" / "going_further.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)


def _second_study(mini):
    """The mini data dressed as another study: other column names, labels and a cell-type name."""
    raw = mini.copy()
    raw.X = raw.layers["counts"].copy()
    del raw.layers["counts"]
    obs = raw.obs
    raw.obs = obs.assign(
        treatment=np.where(obs["condition"] == "control", "PBS", "IFNb"),
        celltype=obs["cell_type"].astype(str).replace({"CD4+ T cells": "CD4 naive"}),
        patient=obs["donor"].astype(str),
    )[["treatment", "celltype", "patient"]]
    raw.uns = {}
    raw.obs_names = [f"new-{i}" for i in raw.obs_names]
    return raw


def test_second_data_set_runs_through_the_course_pipeline(_mini_counts):
    first, second = _blocks()
    raw = _second_study(_mini_counts)
    ns = {}
    exec(
        first.replace('ad.read_h5ad("my_study.h5ad")', "RAW").replace("n_top_genes=2000", "n_top_genes=300"),
        {"RAW": raw},
        ns,
    )
    parts = ns["parts"]
    assert set(ns["adata"].obs["cell_type"]) == set(_mini_counts.obs["cell_type"])  # CD4 naive mapped back
    assert (parts.test.obs["cell_type"] == "CD4+ T cells").all() and (parts.test.obs["condition"] == "stimulated").all()
    assert parts.train.n_vars == 300

    ns2 = dict(ns)
    ns2["load_kang2018"] = lambda: _mini_counts.copy()
    code = second.replace(
        "from tutorial_lib.data import assign_donor_holdout, load_kang2018,",
        "from tutorial_lib.data import assign_donor_holdout,",
    )
    exec(code.replace("n_top_genes=2000", "n_top_genes=300"), ns2, ns2)
    both = ns2["parts"]
    assert (both.test.obs["study"] == "new").all() and (both.test.obs["condition"] == "stimulated").all()
    train = both.train.obs
    assert set(train.loc[train["study"] == "new", "condition"]) == {"control"}  # the new study's controls
    assert set(train.loc[train["study"] == "kang", "condition"]) == {"control", "stimulated"}
