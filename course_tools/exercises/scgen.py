"""Checks of notebook 01 (scGen)."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from course_tools.exercises.feedback import (
    ATOL,
    RTOL,
    Feedback,
    _as_float,
    _close,
    _guess,
    _means,
    _no,
    _ok,
    _predicted,
)


def check_pearson_delta(value, real, pred, ctrl) -> Feedback:
    """Exercise 01-1: ``pearson_delta`` by hand (real, pred, ctrl: AnnData or cells × genes arrays).

    The reference is :func:`tutorial_lib.metrics.pearson_delta` of the per-gene means. Common
    slips are recognised: correlating the means instead of the changes, squaring, or using the
    predicted cells' own mean as the reference.
    """
    from tutorial_lib.metrics import pearson, pearson_delta

    r_mean, p_mean, c_mean = _means(real), _means(pred), _means(ctrl)
    want = pearson_delta(r_mean, p_mean, c_mean)
    got = _as_float(value)
    if got is None:
        return _no(f"expected one number, got {value!r}.")
    if not np.isfinite(want):
        if not np.isfinite(got):
            return _ok(
                "the metric is undefined here (nan): the prediction or the real data do not change from control."
            )
        return _no("pearson_delta is undefined (nan) for these inputs: the predicted or the real change is constant.")
    if _close(got, want):
        return _ok(f"pearson_delta = {want:.4f}.")
    if _close(got, pearson(r_mean, p_mean)):
        return _no("you correlated the means themselves; subtract the control mean from both first (the *change*).")
    if _close(got, want**2):
        return _no("you squared the correlation; pearson_delta is r itself, between -1 and 1.")
    if _close(got, -want):
        return _no("the sign is flipped: subtract the control mean from both (pred - ctrl, real - ctrl).")
    return _no(
        "compute the per-gene means of each group (mean over cells, axis=0), the changes pred - ctrl and "
        "real - ctrl, and their Pearson correlation (np.corrcoef(a, b)[0, 1])."
    )


def check_latent_shift(delta, z_ctrl: np.ndarray, z_stim: np.ndarray) -> Feedback:
    """Exercise 01-2: scGen's δ from latent codes: mean stimulated code minus mean control code."""
    z_ctrl, z_stim = np.asarray(z_ctrl, dtype=np.float64), np.asarray(z_stim, dtype=np.float64)
    want = z_stim.mean(axis=0) - z_ctrl.mean(axis=0)
    try:
        got = np.asarray(delta, dtype=np.float64)
    except (TypeError, ValueError):
        return _no(f"expected a vector of length {want.size}; got {type(delta).__name__}.")
    if got.ndim != 1:
        return _no(
            f"δ is one vector of length {want.size} (the latent size), got shape {got.shape}: average over "
            "cells (axis=0) before subtracting."
        )
    if got.shape != want.shape:
        return _no(f"δ must have one entry per latent dimension ({want.size}), got {got.size}.")
    if np.allclose(got, want, rtol=RTOL, atol=ATOL):
        return _ok(f"δ has norm {np.linalg.norm(want):.3f}; adding it to a control code moves it towards 'stimulated'.")
    if np.allclose(got, -want, rtol=RTOL, atol=ATOL):
        return _no("the direction is reversed: δ = mean(stimulated) - mean(control), so that control + δ ≈ stimulated.")
    return _no("take the mean latent code of the stimulated cells minus that of the control cells.")


#: Pearson-delta values closer than this count as "about the same" in exercise 01-3.
SAME_PEARSON = 0.02


def check_balancing_guess(guess, unbalanced, pred: AnnData, real: AnnData, ctrl: AnnData, *, genes) -> Feedback:
    """Exercise 01-3 (predict, then run; change a setting, rerun, interpret): scGen with an unbalanced δ.

    ``unbalanced`` is the prediction decoded from the held-out controls plus the δ of plain means
    over all training cells (AnnData or cells × genes array, ``pred``'s genes); ``pred`` is
    scGen's prediction (balanced δ). ``guess`` ("higher", "lower" or "about the same") is compared
    with :func:`tutorial_lib.metrics.pearson_delta` of both on ``genes`` (e.g. the top-100 DEGs).
    """
    from tutorial_lib.metrics import pearson_delta

    choices = ("higher", "lower", "about the same")
    got = _guess(guess, choices)
    if got is None:
        return _no(f"write your guess first, one of {choices}; got {guess!r}.")
    x = _predicted(unbalanced, pred)
    if x is None:
        return _no(f"unbalanced must hold one predicted cell per control cell and pred's genes, shape {pred.shape}.")
    genes = list(genes)
    idx = pred.var_names.get_indexer(genes)
    if len(genes) == 0 or (idx < 0).any():
        return _no("genes must be a non-empty list of genes of the prediction (e.g. degs[:100]).")
    real_m, ctrl_m = _means(real[:, genes]), _means(ctrl[:, genes])
    balanced_pd = pearson_delta(real_m, _means(pred[:, genes]), ctrl_m)
    unbalanced_pd = pearson_delta(real_m, x[:, idx].mean(axis=0), ctrl_m)
    gap = unbalanced_pd - balanced_pd
    if not np.isfinite(gap):
        return _no(
            f"Pearson-delta is undefined for one of the predictions ({unbalanced_pd:.3f} without balancing, "
            f"{balanced_pd:.3f} with it): it does not change these genes. Decode the shifted latents of the controls."
        )
    want = "about the same" if abs(gap) < SAME_PEARSON else ("higher" if gap > 0 else "lower")
    detail = (
        f"Pearson-delta on these {len(genes)} genes is {unbalanced_pd:.3f} without balancing and "
        f"{balanced_pd:.3f} with it ({want} without)"
    )
    why = (
        "Without balancing every training cell counts once, so abundant cell types weigh more, and the two "
        "means need not describe the same cells: the control mean also holds the held-out type's own controls, "
        "which have no stimulated partners in training, so δ can mix the response with differences between cell "
        "types."
    )
    if got == want:
        return _ok(f"{detail}. {why}")
    return _no(f"the run says otherwise: {detail}. {why}")


#: This notebook's exercises (see :data:`course_tools.exercises.EXERCISES`).
EXERCISES: dict[str, dict[str, str]] = {
    "01-1": {
        "notebook": "01_scgen",
        "kind": "compute",
        "question": "Compute pearson_delta of scGen's prediction on the top-100 DEGs by hand with numpy.",
        "scaffold": (
            "genes = degs[:100]\n"
            "real_m = np.asarray(parts.test[:, genes].X.mean(axis=0)).ravel()\n"
            "pred_m = np.asarray(pred[:, genes].X.mean(axis=0)).ravel()\n"
            "ctrl_m = np.asarray(parts.ctrl[:, genes].X.mean(axis=0)).ravel()\n"
            "value = ..."
        ),
        "check": "check_pearson_delta(value, parts.test[:, genes], pred[:, genes], parts.ctrl[:, genes])",
        "solution": (
            "genes = degs[:100]\n"
            "real_m = np.asarray(parts.test[:, genes].X.mean(axis=0)).ravel()\n"
            "pred_m = np.asarray(pred[:, genes].X.mean(axis=0)).ravel()\n"
            "ctrl_m = np.asarray(parts.ctrl[:, genes].X.mean(axis=0)).ravel()\n"
            "value = np.corrcoef(pred_m - ctrl_m, real_m - ctrl_m)[0, 1]   # changes, not means"
        ),
    },
    "01-2": {
        "notebook": "01_scgen",
        "kind": "compute",
        "question": "Compute scGen's latent shift from the latent codes of the training cells (without balancing).",
        "scaffold": (
            "z = model.get_latent(parts.train)\n"
            "is_stim = (parts.train.obs['condition'] == 'stimulated').to_numpy()\ndelta = ..."
        ),
        "check": "check_latent_shift(delta, z[~is_stim], z[is_stim])",
        "solution": (
            "z = model.get_latent(parts.train)\n"
            "is_stim = (parts.train.obs['condition'] == 'stimulated').to_numpy()\n"
            "delta = z[is_stim].mean(axis=0) - z[~is_stim].mean(axis=0)   # scGen balances cell types first"
        ),
    },
    "01-3": {
        "notebook": "01_scgen",
        "kind": ("predict, then run", "change a setting, rerun, interpret"),
        "question": (
            "The setting to change is scGen's balancing: it balances the cell types before averaging latents. "
            "Predict, then run: if δ is instead the plain mean over all training cells, is the prediction's "
            'Pearson-delta on the top-100 DEGs "higher", "lower" or "about the same" as scGen\'s?'
        ),
        "scaffold": (
            'guess = ...  # "higher", "lower" or "about the same"\n'
            "z = model.get_latent(parts.train)\n"
            "is_stim = (parts.train.obs['condition'] == 'stimulated').to_numpy()\n"
            "delta_unbalanced = z[is_stim].mean(axis=0) - z[~is_stim].mean(axis=0)   # every training cell once\n"
            "unbalanced = model.decode(model.get_latent(parts.ctrl) + delta_unbalanced)"
        ),
        "check": "check_balancing_guess(guess, unbalanced, pred, parts.test, parts.ctrl, genes=degs[:100])",
        "solution": (
            "from tutorial_lib.metrics import pearson_delta\n\n"
            "z = model.get_latent(parts.train)\n"
            "is_stim = (parts.train.obs['condition'] == 'stimulated').to_numpy()\n"
            "delta_unbalanced = z[is_stim].mean(axis=0) - z[~is_stim].mean(axis=0)\n"
            "unbalanced = model.decode(model.get_latent(parts.ctrl) + delta_unbalanced)\n"
            "genes = degs[:100]\n"
            "real_m, ctrl_m = (np.asarray(a[:, genes].X.mean(axis=0)).ravel() for a in (parts.test, parts.ctrl))\n"
            "idx = pred.var_names.get_indexer(genes)\n"
            "gap = pearson_delta(real_m, unbalanced[:, idx].mean(axis=0), ctrl_m) - pearson_delta(\n"
            "    real_m, np.asarray(pred[:, genes].X.mean(axis=0)).ravel(), ctrl_m\n"
            ")\n"
            'guess = "about the same" if abs(gap) < 0.02 else ("higher" if gap > 0 else "lower")'
        ),
    },
}
