"""Splits for predicting unseen perturbation responses.

A split is recorded as ``obs["split"]``: ``"train"`` for cells a model may see,
``"test"`` for the held-out stimulated cells (scored once, at the end) and ``"validation"``
for the stimulated cells of a validation group (used for tuning). The control cells of a
held-out group stay in ``"train"``: they are what the response is predicted from.
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


def _set_split(adata: AnnData, labels: np.ndarray, info: dict, split_key: str) -> AnnData:
    adata.obs[split_key] = pd.Categorical(labels, categories=["train", "validation", "test"])
    for label in np.unique(labels):
        require_nonempty(adata[labels == label], f"Split {label!r}")
    if not (labels == "test").any():
        raise DataValidationError("The test split is empty: no stimulated cells match the held-out group")
    adata.uns[split_key] = info
    return adata


def assign_holdout(
    adata: AnnData,
    cell_type: str = DEFAULT_TEST_CELL_TYPE,
    *,
    validation_cell_type: str | None = None,
    condition_key: str = CONDITION_KEY,
    cell_type_key: str = CELL_TYPE_KEY,
    split_key: str = SPLIT_KEY,
) -> AnnData:
    """Hold out the stimulated cells of ``cell_type`` (and of ``validation_cell_type``), in place.

    Returns ``adata`` with ``obs[split_key]`` and ``uns[split_key]`` describing the split.
    """
    require_obs_keys(adata, [condition_key, cell_type_key])
    require_conditions(adata, condition_key)
    wanted = [cell_type] + ([validation_cell_type] if validation_cell_type else [])
    require_values(adata, cell_type_key, wanted, "cell type")
    if validation_cell_type == cell_type:
        raise DataValidationError(
            f"The validation cell type must differ from the test cell type (both {cell_type!r}): "
            "tuning on the test cell type leaks it"
        )
    stim = (adata.obs[condition_key] == STIMULATED).to_numpy()
    types = adata.obs[cell_type_key].astype(str).to_numpy()
    labels = np.full(adata.n_obs, "train", dtype=object)
    labels[stim & (types == cell_type)] = "test"
    if validation_cell_type:
        labels[stim & (types == validation_cell_type)] = "validation"
    info = {
        "kind": "cell_type",
        "key": cell_type_key,
        "test": [cell_type],
        "validation": [validation_cell_type] if validation_cell_type else [],
    }
    return _set_split(adata, labels, info, split_key)


def assign_donor_holdout(
    adata: AnnData,
    donors: Sequence[str],
    *,
    condition_key: str = CONDITION_KEY,
    donor_key: str = DONOR_KEY,
    split_key: str = SPLIT_KEY,
) -> AnnData:
    """Hold out the stimulated cells of ``donors``, in place; their control cells stay in training.

    ``donors`` is a list of donor names; one name given as a string raises ``TypeError`` (it would
    be read as its characters, each an unknown donor).
    """
    if isinstance(donors, (str, bytes)):
        raise TypeError(f"donors must be a list of donor names, e.g. [{donors!r}]; got the string {donors!r}")
    require_obs_keys(adata, [condition_key, donor_key])
    require_conditions(adata, condition_key)
    donors = [str(d) for d in donors]
    if not donors:
        raise DataValidationError("donors is empty: name at least one donor to hold out")
    require_values(adata, donor_key, donors, "donor")
    stim = (adata.obs[condition_key] == STIMULATED).to_numpy()
    held = adata.obs[donor_key].astype(str).isin(donors).to_numpy()
    labels = np.where(stim & held, "test", "train").astype(object)
    info = {"kind": "donor", "key": donor_key, "test": donors, "validation": []}
    return _set_split(adata, labels, info, split_key)


def subsample_stimulated(
    adata: AnnData,
    fraction: float = 0.2,
    *,
    seed: int = 0,
    condition_key: str = CONDITION_KEY,
    cell_type_key: str = CELL_TYPE_KEY,
    split_key: str = SPLIT_KEY,
) -> AnnData:
    """Keep ``fraction`` of the stimulated *training* cells of each cell type (seeded).

    Control cells and held-out (test/validation) cells are untouched, so an unbalanced
    training set is scored on the same cells as the balanced one. Returns a new AnnData.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    require_obs_keys(adata, [condition_key, cell_type_key])
    rng = np.random.default_rng(check_seed(seed))
    candidate = (adata.obs[condition_key] == STIMULATED).to_numpy()
    if split_key in adata.obs:
        candidate &= (adata.obs[split_key] == "train").to_numpy()
    keep = ~candidate
    types = adata.obs[cell_type_key].astype(str).to_numpy()
    for cell_type in np.unique(types[candidate]):
        idx = np.flatnonzero(candidate & (types == cell_type))
        n_keep = max(1, int(round(fraction * idx.size)))
        keep[rng.choice(idx, size=n_keep, replace=False)] = True
    out = adata[keep].copy()
    out.uns["stimulated_fraction"] = float(fraction)
    return out


@dataclass
class HoldoutData:
    """The parts of a split, as AnnData copies.

    Attributes
    ----------
    train
        Cells a model may train on.
    ctrl
        Control cells of the held-out group: the input to predict from.
    test
        Real stimulated cells of the held-out group: scored once, at the end.
    val_ctrl, val
        The same for the validation group, if any.
    """

    train: AnnData
    ctrl: AnnData
    test: AnnData
    val_ctrl: AnnData | None = None
    val: AnnData | None = None


def _group_mask(adata: AnnData, info: dict, part: str) -> np.ndarray:
    return adata.obs[info["key"]].astype(str).isin(info[part]).to_numpy()


def split_views(adata: AnnData, *, condition_key: str = CONDITION_KEY, split_key: str = SPLIT_KEY) -> HoldoutData:
    """Cut ``adata`` into training, held-out control and held-out stimulated cells."""
    require_obs_keys(adata, [condition_key, split_key])
    if split_key not in adata.uns:
        raise DataValidationError(f"uns[{split_key!r}] is missing: assign the split with assign_holdout first")
    info = adata.uns[split_key]
    split = adata.obs[split_key].astype(str).to_numpy()
    control = (adata.obs[condition_key] == CONTROL).to_numpy()

    def part(mask: np.ndarray, what: str) -> AnnData:
        sub = adata[mask].copy()
        require_nonempty(sub, what)
        return sub

    data = HoldoutData(
        train=part(split == "train", "The training set"),
        ctrl=part(control & _group_mask(adata, info, "test"), "The held-out control cells"),
        test=part(split == "test", "The held-out stimulated cells"),
    )
    if len(info["validation"]):
        data.val_ctrl = part(control & _group_mask(adata, info, "validation"), "The validation control cells")
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
    """Normalise, split, optionally unbalance, and select genes on training cells only.

    The one-call set-up used by the notebooks: ``adata`` holds raw counts (as returned by
    :func:`tutorial_lib.data.load_kang2018`) and is not modified.

    Parameters
    ----------
    cell_type
        Cell type whose stimulated cells are held out (ignored when ``donors`` is given).
    validation_cell_type
        Cell type whose stimulated cells are held out for tuning.
    donors
        Hold out the stimulated cells of these donors instead of a cell type.
    n_top_genes
        Highly variable genes, chosen on the training cells: a whole number >= 1 (all genes when
        the data have fewer).
    stimulated_fraction
        If given, keep only this fraction of stimulated training cells per cell type.
    seed
        Seed of that subsampling: an integer from 0 to ``2**32 - 1``
        (:func:`~tutorial_lib.config.check_seed`).
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
