"""Checks of notebook 00 (the data and the task)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from course_tools.exercises.feedback import Feedback, _no, _ok
from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL


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


def mean_shift_pearson_delta(adata: AnnData, cell_type: str, *, n_top_genes: int = 2000, k: int = 100) -> float:
    """Pearson-Δ (top-``k`` real DEGs) of the mean-shift baseline when ``cell_type`` is held out."""
    from tutorial_lib.baselines import mean_shift
    from tutorial_lib.data import prepare_holdout, split_views
    from tutorial_lib.metrics import gene_means, pearson_delta, rank_degs

    parts = split_views(prepare_holdout(adata, cell_type, n_top_genes=n_top_genes))
    pred = mean_shift(parts.train, parts.ctrl)
    genes = rank_degs(parts.test, parts.ctrl, k=k)

    def means(cells: AnnData) -> np.ndarray:
        return gene_means(cells[:, genes].X)

    return float(pearson_delta(means(parts.test), means(pred), means(parts.ctrl)))


def check_holdout_guess(
    guess,
    adata: AnnData,
    cell_type: str = "CD14+ Monocytes",
    reference: str = "CD4+ T cells",
    *,
    n_top_genes: int = 2000,
) -> Feedback:
    """Exercise 00-1 (predict, then run): mean shift's Pearson-Δ with ``cell_type`` vs ``reference`` held out.

    ``guess`` is "higher" or "lower", written before the run.
    Both values are recomputed here from ``adata`` (raw counts or log-normalised), so the check holds in
    every mode. Mean shift gives every held-out type the average response of the training types; the
    less a type's own response resembles that average, the lower its Pearson-Δ.
    """
    if guess not in ("higher", "lower"):
        return _no(f'write your guess first: "higher" or "lower"; got {guess!r}.')
    values = {ct: mean_shift_pearson_delta(adata, ct, n_top_genes=n_top_genes) for ct in (reference, cell_type)}
    truth = "higher" if values[cell_type] > values[reference] else "lower"
    numbers = (
        f"mean shift's Pearson-Δ is {values[cell_type]:.3f} with {cell_type} held out and "
        f"{values[reference]:.3f} with {reference} held out."
    )
    why = (
        " Mean shift moves every held-out cell by the training types' average response; the heatmap shows "
        f"that {cell_type} respond differently from the other types, so the average points less well in "
        "their direction."
        if truth == "lower"
        else f" Here {cell_type}'s response resembles the training types' average more than {reference}'s does."
    )
    if guess == truth:
        return _ok(f"your guess, {guess}, is what the run shows: {numbers}{why}")
    return _no(f"you guessed {guess}; the run shows {truth}: {numbers}{why}")


def r2_by_gene_set(real: AnnData, ctrl: AnnData, ks) -> dict[int, float]:
    """R² of means of the no-change prediction (the controls) on the top-k real DEGs, for each k."""
    from tutorial_lib.metrics import gene_means, r2_pearson, rank_degs

    out = {}
    for k in ks:
        genes = rank_degs(real, ctrl, k=int(k))
        out[int(k)] = float(r2_pearson(gene_means(real[:, genes].X), gene_means(ctrl[:, genes].X)))
    return out


def check_r2_by_gene_set(r2, reading, real: AnnData, ctrl: AnnData) -> Feedback:
    """Exercise 00-3 (change a setting, rerun, interpret): no change's R² of means on the top-k DEGs.

    ``r2`` maps several k to that R²; ``reading`` says how it moves as k grows ("rises", "falls" or
    "neither").
    The values are recomputed from ``real`` and ``ctrl``; the reading is judged on them.
    """
    if not isinstance(r2, dict) or len(r2) < 2:
        return _no("r2 must be a dict {k: R² of means on the top-k DEGs} with at least two values of k.")
    try:
        want = r2_by_gene_set(real, ctrl, sorted(r2))
    except (TypeError, ValueError) as e:
        return _no(f"the keys of r2 must be whole numbers of genes (k); {e}")
    wrong = [k for k in want if not isinstance(r2[k], (int, float, np.floating)) or abs(r2[k] - want[k]) > 1e-4]
    if wrong:
        return _no(
            f"the value for k = {wrong[0]} should be {want[wrong[0]]:.3f}: the R² of the real stimulated and "
            "the control means over the top-k DEGs (rank_degs of real vs control)."
        )
    values = [want[k] for k in sorted(want)]
    steps = np.diff(values)
    truth = "rises" if (steps > 0).all() else "falls" if (steps < 0).all() else "neither"
    shown = ", ".join(f"k = {k}: {want[k]:.3f}" for k in sorted(want))
    if reading not in ("rises", "falls", "neither"):
        return _no(f'the values are right ({shown}); now write your reading: "rises", "falls" or "neither".')
    why = (
        " The more genes the set holds, the more of them do not respond, and for those 'no change' is right:"
        " a high R² of means on many genes says little; on the top DEGs, where the response lives, it is low."
        if truth == "rises"
        else " Compare the values: the reading follows from them."
    )
    if reading == truth:
        return _ok(f"{shown}: no change's R² {truth} as k grows.{why}")
    return _no(f"{shown}: as k grows the R² {truth}, not {reading}.{why}")


#: This notebook's exercises (see :data:`course_tools.exercises.EXERCISES`).
EXERCISES: dict[str, dict[str, str]] = {
    "00-1": {
        "notebook": "00_intro",
        "kind": "predict, then run",
        "question": (
            "Hold out CD14+ Monocytes instead of CD4 T cells: will the mean shift's Pearson-Δ (top-100 DEGs) be "
            "higher or lower? Guess from the response heatmap, then run."
        ),
        "scaffold": 'guess = ...  # "higher" or "lower"',
        "check": 'check_holdout_guess(guess, adata, cell_type="CD14+ Monocytes", n_top_genes=cfg.n_top_genes)',
        "solution": (
            'guess = "lower"   # monocytes respond unlike the other types (heatmap): the average shift fits them worse'
        ),
    },
    "00-2": {
        "notebook": "00_intro",
        "kind": "compute",
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
    "00-3": {
        "notebook": "00_intro",
        "kind": "change a setting, rerun, interpret",
        "question": (
            "No change's R² of means on all genes looked good. Score it on the top-k DEGs for k = 100, 500 and "
            "all genes: how does it move as k grows, and what does that say about R² on all genes?"
        ),
        "scaffold": (
            "from tutorial_lib.metrics import gene_means, r2_pearson, rank_degs\n\n"
            "r2 = {}\n"
            "for k in [100, 500, data.n_vars]:\n"
            "    genes = ...  # the top-k DEGs of real vs control\n"
            "    r2[k] = r2_pearson(gene_means(parts.test[:, genes].X), gene_means(parts.ctrl[:, genes].X))\n"
            'reading = ...  # "rises", "falls" or "neither"'
        ),
        "check": "check_r2_by_gene_set(r2, reading, parts.test, parts.ctrl)",
        "solution": (
            "from tutorial_lib.metrics import gene_means, r2_pearson, rank_degs\n\n"
            "r2 = {}\n"
            "for k in [100, 500, data.n_vars]:\n"
            "    genes = rank_degs(parts.test, parts.ctrl, k=k)\n"
            "    r2[k] = r2_pearson(gene_means(parts.test[:, genes].X), gene_means(parts.ctrl[:, genes].X))\n"
            'reading = "rises"   # more genes = more genes that do not respond, where no change is right'
        ),
    },
}
