"""Checks of notebook 00 (the data and the task)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from course_tools.exercises.feedback import Feedback, _no, _ok
from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED


def response_by_cell_type(
    adata: AnnData, gene: str, *, cell_type_key: str = CELL_TYPE_KEY, condition_key: str = CONDITION_KEY
) -> pd.Series:
    """Mean expression of ``gene`` in stimulated minus control cells, per cell type, largest first.

    ``adata`` holds log-normalised expression (``normalise_log``) or raw counts; counts are
    normalised and log-transformed on a copy first, as notebook 00 does.
    """
    from tutorial_lib.analysis import mean_change
    from tutorial_lib.data import normalise_log

    if gene not in adata.var_names:
        raise KeyError(f"gene {gene!r} is not in adata.var_names")
    data = adata[:, [gene]].copy() if adata.uns.get("x_kind") == "log" else normalise_log(adata.copy())[:, [gene]]
    out = {}
    for cell_type in sorted(data.obs[cell_type_key].astype(str).unique()):
        sub = data[data.obs[cell_type_key].astype(str).to_numpy() == cell_type]
        cond = sub.obs[condition_key].astype(str).to_numpy()
        if (cond == CONTROL).any() and (cond == STIMULATED).any():
            out[cell_type] = float(mean_change(sub[cond == STIMULATED], sub[cond == CONTROL]).iloc[0])
    return pd.Series(out, name=f"{gene} change").sort_values(ascending=False)


def check_largest_response(
    answer: str,
    adata: AnnData,
    gene: str = "ISG15",
    *,
    cell_type_key: str = CELL_TYPE_KEY,
    condition_key: str = CONDITION_KEY,
) -> Feedback:
    """Exercise 00-1: the cell type with the largest mean change of ``gene`` after stimulation."""
    if gene not in adata.var_names:
        return _no(f"{gene!r} is not a gene of this AnnData; pass the data set the notebook loaded.")
    change = response_by_cell_type(adata, gene, cell_type_key=cell_type_key, condition_key=condition_key)
    if not isinstance(answer, str) or answer not in change.index:
        return _no(f"the answer must be one cell type name (a string), one of {list(change.index)}; got {answer!r}.")
    if answer == change.index[0]:
        return _ok(f"{answer} has the largest {gene} change ({change.iloc[0]:.2f} log units).")
    rank = int(np.flatnonzero(change.index == answer)[0]) + 1
    hint = " That is the smallest change: use idxmax(), not idxmin()." if rank == len(change) else ""
    return _no(
        f"{answer} ranks {rank} of {len(change)} ({change[answer]:.2f} log units).{hint} Compute the mean "
        f"stimulated minus mean control {gene} expression per cell type and take the largest."
    )


def check_training_mask(
    mask,
    adata: AnnData,
    cell_type: str = "CD4+ T cells",
    *,
    cell_type_key: str = CELL_TYPE_KEY,
    condition_key: str = CONDITION_KEY,
) -> Feedback:
    """Exercise 00-2: the cells a model (and gene selection) may use when ``cell_type`` is held out.

    The right mask is the ``"train"`` part of :func:`tutorial_lib.data.assign_holdout`: every cell
    except the stimulated cells of ``cell_type``. The held-out type's controls stay in: they are
    the input the response is predicted from.
    """
    from tutorial_lib.data import assign_holdout

    probe = AnnData(obs=adata.obs[[cell_type_key, condition_key]].copy())
    if cell_type not in set(probe.obs[cell_type_key].astype(str)):
        return _no(f"{cell_type!r} is not a cell type of this AnnData.")
    want = (
        assign_holdout(probe, cell_type, cell_type_key=cell_type_key, condition_key=condition_key)
        .obs["split"]
        .to_numpy()
        == "train"
    )
    got = np.asarray(mask.to_numpy() if isinstance(mask, pd.Series) else mask)
    if got.dtype != bool or got.shape != (adata.n_obs,):
        return _no(
            f"expected a boolean array with one entry per cell ({adata.n_obs}); "
            f"got dtype {got.dtype}, shape {got.shape}."
        )
    held = ~want
    leaked = int((got & held).sum())
    if leaked:
        return _no(
            f"your mask keeps {leaked} stimulated {cell_type} cells: these are the answer the model must "
            "predict, and genes chosen with them would be chosen because they respond there (leakage)."
        )
    types = probe.obs[cell_type_key].astype(str).to_numpy()
    ctrl = probe.obs[condition_key].astype(str).to_numpy() == CONTROL
    missing_ctrl = int((~got & ctrl & (types == cell_type)).sum())
    if missing_ctrl and not (~got & want & ~((types == cell_type) & ctrl)).any():
        return _no(
            f"your mask drops the {missing_ctrl} control {cell_type} cells. They may stay: they are the "
            "input the model predicts from (held out are only the stimulated ones)."
        )
    dropped = int((want & ~got).sum())
    if dropped:
        return _no(
            f"your mask drops {dropped} cells that the model may use; hold out only the stimulated {cell_type} cells."
        )
    return _ok(
        f"{int(got.sum())} training cells: everything except the {int(held.sum())} stimulated {cell_type} cells."
    )


#: This notebook's exercises (see :data:`course_tools.exercises.EXERCISES`).
EXERCISES: dict[str, dict[str, str]] = {
    "00-1": {
        "notebook": "00_intro",
        "question": "Which cell type shows the largest mean ISG15 change (stimulated minus control, log-normalised)?",
        "scaffold": "answer = ...  # one cell type name",
        "check": 'check_largest_response(answer, adata, gene="ISG15")',
        "solution": (
            'change = tp.response_by_cell_type(adata, ["ISG15"])   # cell types x genes\n'
            'answer = change["ISG15"].idxmax()'
        ),
    },
    "00-2": {
        "notebook": "00_intro",
        "question": "Hold out B cells. Build the boolean mask of the cells a model and the gene selection may use.",
        "scaffold": (
            'is_b = (adata.obs["cell_type"] == "B").to_numpy()\n'
            'is_stim = (adata.obs["condition"] == "stimulated").to_numpy()\nmask = ...'
        ),
        "check": 'check_training_mask(mask, adata, cell_type="B")',
        "solution": (
            'is_b = (adata.obs["cell_type"] == "B").to_numpy()\n'
            'is_stim = (adata.obs["condition"] == "stimulated").to_numpy()\n'
            "mask = ~(is_b & is_stim)   # B controls stay: they are the input of the prediction"
        ),
    },
}
