"""Normalisation and hold-out splits for predicting the response of an unseen cell type or donor.

``obs["split"]``: ``"train"`` (what a model may see, including the held-out groups' control cells,
the input of a prediction), ``"test"`` (the held-out stimulated cells, scored once at the end) and
``"validation"`` (the stimulated cells of a second held-out group, for tuning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData

from tutorial_lib.config import check_seed, check_whole_number
from tutorial_lib.data.checks import (
    CELL_TYPE_KEY,
    CONDITION_KEY,
    CONTROL,
    DONOR_KEY,
    STIMULATED,
    DataValidationError,
    check_counts,
    require_conditions,
    require_obs_keys,
    require_values,
)

SPLIT_KEY = "split"
DEFAULT_TEST_CELL_TYPE = "CD4+ T cells"
DEFAULT_VALIDATION_CELL_TYPE = "CD14+ Monocytes"


def normalise_log(adata: AnnData) -> AnnData:
    """Set ``X`` to log1p(counts / cell total * 1e4) from ``layers["counts"]``, in place.

    Each cell is normalised by its own counts, so nothing leaks between cells or splits. As with
    scanpy, ``uns["log1p"]`` marks the result as log data; data so marked are not normalised again.
    """
    if "log1p" in adata.uns:
        raise DataValidationError("X is already log-normalised (uns['log1p'] is set); do not normalise twice")
    if "counts" not in adata.layers:
        raise DataValidationError(f"No layer 'counts' with raw counts (layers: {list(adata.layers)}); see harmonise")
    check_counts(adata.layers["counts"], "layers['counts']")
    adata.X = adata.layers["counts"].copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.X = adata.X.astype(np.float32)
    return adata


def select_hvg(adata: AnnData, *, n_top_genes: int = 2000, train_mask: np.ndarray | None = None) -> AnnData:
    """A copy with the ``n_top_genes`` most variable genes (scanpy's "seurat" flavour) of the training cells.

    ``train_mask`` marks the training cells (default ``obs["split"] == "train"``): held-out cells
    never influence the choice. Adds ``var["highly_variable_rank"]`` and ``uns["hvg"]``.
    """
    if train_mask is None:
        if "split" not in adata.obs:
            raise DataValidationError(
                "select_hvg on all cells would leak the held-out cells: split first or pass train_mask"
            )
        train_mask = (adata.obs["split"] == "train").to_numpy()
    train_mask = np.asarray(train_mask, dtype=bool)
    if train_mask.shape != (adata.n_obs,):
        raise DataValidationError(f"train_mask has shape {train_mask.shape}, expected ({adata.n_obs},)")
    if not train_mask.any():
        raise DataValidationError("The training set is empty: no cells match")
    n_top_genes = check_whole_number(n_top_genes, "n_top_genes", 1, adata.n_vars)
    stats = sc.pp.highly_variable_genes(adata[train_mask], n_top_genes=n_top_genes, flavor="seurat", inplace=False)
    stats.index = adata.var_names
    out = adata[:, stats["highly_variable"].to_numpy()].copy()
    rank = stats["dispersions_norm"].rank(ascending=False, method="first")
    out.var["highly_variable_rank"] = rank.loc[out.var_names].to_numpy()
    out.uns["hvg"] = {"n_top_genes": n_top_genes, "n_train_cells": int(train_mask.sum())}
    return out


def _hold_out(adata: AnnData, key: str, test: list, validation: list, condition_key: str, what: str) -> AnnData:
    """Label the stimulated cells of the ``test`` and ``validation`` groups of ``obs[key]``, in place."""
    require_obs_keys(adata, [condition_key, key])
    require_conditions(adata, condition_key)
    require_values(adata, key, test + validation, what)
    stim = (adata.obs[condition_key] == STIMULATED).to_numpy()
    group = adata.obs[key].astype(str)
    labels = np.where(stim & group.isin(validation).to_numpy(), "validation", "train")
    labels[stim & group.isin(test).to_numpy()] = "test"
    if not (labels == "test").any():
        raise DataValidationError("The test split is empty: no stimulated cells match the held-out group")
    adata.obs[SPLIT_KEY] = pd.Categorical(labels, categories=["train", "validation", "test"])
    adata.uns[SPLIT_KEY] = {"key": key, "test": test, "validation": validation}
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
    if validation_cell_type == cell_type:
        raise DataValidationError(f"The validation cell type must differ from the test cell type, both {cell_type!r}")
    validation = [validation_cell_type] if validation_cell_type else []
    return _hold_out(adata, cell_type_key, [cell_type], validation, condition_key, "cell type")


def assign_donor_holdout(
    adata: AnnData, donors: Sequence[str], *, condition_key: str = CONDITION_KEY, donor_key: str = DONOR_KEY
) -> AnnData:
    """Hold out the stimulated cells of ``donors`` (a list of names), in place."""
    if isinstance(donors, (str, bytes)):
        raise TypeError(f"donors must be a list of donor names, e.g. [{donors!r}]; got the string {donors!r}")
    if not (donors := [str(d) for d in donors]):
        raise DataValidationError("donors is empty: name at least one donor to hold out")
    return _hold_out(adata, donor_key, donors, [], condition_key, "donor")


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
    return adata[keep].copy()


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
        if not mask.any():
            raise DataValidationError(f"{what} is empty: no cells match")
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
