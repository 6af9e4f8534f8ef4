"""Splits for predicting the response of an unseen group (cell type or donor).

``obs["split"]`` is ``"train"`` for cells a model may see, ``"test"`` for the held-out stimulated
cells (scored once, at the end) and ``"validation"`` for a second held-out group (for tuning).
The control cells of held-out groups stay in ``"train"``: the response is predicted from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from tutorial_lib.config import check_seed, check_whole_number
from tutorial_lib.data.checks import (
    CELL_TYPE_KEY,
    CONDITION_KEY,
    CONTROL,
    DONOR_KEY,
    STIMULATED,
    DataValidationError,
    require_conditions,
    require_nonempty,
    require_obs_keys,
    require_values,
)

SPLIT_KEY = "split"
DEFAULT_TEST_CELL_TYPE = "CD4+ T cells"
DEFAULT_VALIDATION_CELL_TYPE = "CD14+ Monocytes"


def _set_split(adata: AnnData, held: dict[str, np.ndarray], info: dict) -> AnnData:
    labels = np.full(adata.n_obs, "train", dtype=object)
    for label, mask in held.items():
        labels[mask] = label
    if not (labels == "test").any():
        raise DataValidationError("The test split is empty: no stimulated cells match the held-out group")
    adata.obs[SPLIT_KEY] = pd.Categorical(labels, categories=["train", "validation", "test"])
    adata.uns[SPLIT_KEY] = info
    return adata


def assign_holdout(
    adata: AnnData,
    cell_type: str = DEFAULT_TEST_CELL_TYPE,
    *,
    validation_cell_type: str | None = None,
    condition_key: str = CONDITION_KEY,
    cell_type_key: str = CELL_TYPE_KEY,
) -> AnnData:
    """Hold out the stimulated cells of ``cell_type`` (and of ``validation_cell_type``), in place."""
    require_obs_keys(adata, [condition_key, cell_type_key])
    require_conditions(adata, condition_key)
    validation = [validation_cell_type] if validation_cell_type else []
    require_values(adata, cell_type_key, [cell_type, *validation], "cell type")
    if validation_cell_type == cell_type:
        raise DataValidationError(
            f"The validation cell type must differ from the test cell type (both {cell_type!r}): "
            "tuning on the test cell type leaks it"
        )
    stim = (adata.obs[condition_key] == STIMULATED).to_numpy()
    types = adata.obs[cell_type_key].astype(str).to_numpy()
    held = {"test": stim & (types == cell_type)}
    if validation_cell_type:
        held["validation"] = stim & (types == validation_cell_type)
    info = {"key": cell_type_key, "test": [cell_type], "validation": validation}
    return _set_split(adata, held, info)


def assign_donor_holdout(
    adata: AnnData,
    donors: Sequence[str],
    *,
    condition_key: str = CONDITION_KEY,
    donor_key: str = DONOR_KEY,
) -> AnnData:
    """Hold out the stimulated cells of ``donors`` (a list of names), in place."""
    if isinstance(donors, (str, bytes)):
        raise TypeError(f"donors must be a list of donor names, e.g. [{donors!r}]; got the string {donors!r}")
    require_obs_keys(adata, [condition_key, donor_key])
    require_conditions(adata, condition_key)
    donors = [str(d) for d in donors]
    if not donors:
        raise DataValidationError("donors is empty: name at least one donor to hold out")
    require_values(adata, donor_key, donors, "donor")
    stim = (adata.obs[condition_key] == STIMULATED).to_numpy()
    held = {"test": stim & adata.obs[donor_key].astype(str).isin(donors).to_numpy()}
    return _set_split(adata, held, {"key": donor_key, "test": donors, "validation": []})


def subsample_stimulated(adata: AnnData, fraction: float = 0.2, *, seed: int = 0) -> AnnData:
    """A copy keeping ``fraction`` of each cell type's stimulated *training* cells (seeded).

    Control and held-out cells are all kept, so an unbalanced training set is scored on the same
    cells as the balanced one.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    require_obs_keys(adata, [CONDITION_KEY, CELL_TYPE_KEY])
    rng = np.random.default_rng(check_seed(seed))
    candidate = (adata.obs[CONDITION_KEY] == STIMULATED).to_numpy()
    if SPLIT_KEY in adata.obs:
        candidate &= (adata.obs[SPLIT_KEY] == "train").to_numpy()
    keep = ~candidate
    types = adata.obs[CELL_TYPE_KEY].astype(str).to_numpy()
    for cell_type in np.unique(types[candidate]):
        idx = np.flatnonzero(candidate & (types == cell_type))
        keep[rng.choice(idx, size=max(1, int(round(fraction * idx.size))), replace=False)] = True
    out = adata[keep].copy()
    out.uns["stimulated_fraction"] = float(fraction)
    return out


@dataclass
class HoldoutData:
    """A split's parts: ``train``; the held-out group's ``ctrl`` and ``test``; ``val_ctrl``, ``val``."""

    train: AnnData
    ctrl: AnnData
    test: AnnData
    val_ctrl: AnnData | None = None
    val: AnnData | None = None


def split_views(adata: AnnData) -> HoldoutData:
    """Cut ``adata`` into training, held-out control and held-out stimulated cells (copies)."""
    require_obs_keys(adata, [CONDITION_KEY, SPLIT_KEY])
    if SPLIT_KEY not in adata.uns:
        raise DataValidationError(f"uns[{SPLIT_KEY!r}] is missing: assign the split with assign_holdout first")
    info = adata.uns[SPLIT_KEY]
    split = adata.obs[SPLIT_KEY].astype(str).to_numpy()
    control = (adata.obs[CONDITION_KEY] == CONTROL).to_numpy()
    group = adata.obs[info["key"]].astype(str)

    def part(mask: np.ndarray, what: str) -> AnnData:
        require_nonempty(adata[mask], what)
        return adata[mask].copy()

    data = HoldoutData(
        train=part(split == "train", "The training set"),
        ctrl=part(control & group.isin(info["test"]).to_numpy(), "The held-out control cells"),
        test=part(split == "test", "The held-out stimulated cells"),
    )
    if len(info["validation"]):
        data.val_ctrl = part(control & group.isin(info["validation"]).to_numpy(), "The validation control cells")
        data.val = part(split == "validation", "The validation stimulated cells")
    return data


def prepare_holdout(
    adata: AnnData,
    cell_type: str = DEFAULT_TEST_CELL_TYPE,
    *,
    validation_cell_type: str | None = None,
    donors: Sequence[str] | None = None,
    n_top_genes: int = 2000,
    stimulated_fraction: float | None = None,
    seed: int = 0,
) -> AnnData:
    """The notebooks' set-up in one call: normalise, split, optionally unbalance, select genes.

    ``adata`` holds raw counts (:func:`~tutorial_lib.data.load_kang2018`) and is not modified. The
    stimulated cells of ``cell_type`` (or of ``donors``, if given) are held out;
    ``stimulated_fraction`` keeps that fraction of the stimulated training cells per cell type
    (seeded by ``seed``); the ``n_top_genes`` highly variable genes are chosen on training cells only.
    """
    from tutorial_lib.data.preprocess import normalise_log, select_hvg

    n_top_genes = check_whole_number(n_top_genes, "n_top_genes", 1)
    seed = check_seed(seed)
    out = adata.copy()
    if "log1p" not in out.uns:
        normalise_log(out)
    if donors is not None:
        assign_donor_holdout(out, donors)
    else:
        assign_holdout(out, cell_type, validation_cell_type=validation_cell_type)
    if stimulated_fraction is not None:
        out = subsample_stimulated(out, stimulated_fraction, seed=seed)
    return select_hvg(out, n_top_genes=min(n_top_genes, out.n_vars))
