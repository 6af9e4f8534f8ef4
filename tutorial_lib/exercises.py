"""Check functions for the "Your turn" exercises of notebooks 00-04.

Self-study has no instructor, so each exercise ends with a call such as
``check_largest_response(answer, adata)`` that says whether the answer is right and, when it is
not, what is probably wrong. Every check recomputes the right answer from the learner's own
inputs with the library functions the course uses (nothing is stored or hard-coded), so it stays
right when the data, the mode (fast/full) or the seed change.

Each check returns a :class:`Feedback`: true when the answer is right, shown in a notebook as a
one-line verdict (``Correct: ...`` or ``Not yet: ...``). Bad input (a wrong type, a name that is
not in the data) is answered with a ``Not yet`` message naming what was expected; nothing is
raised, so a learner's notebook never stops at a check.

:data:`EXERCISES` documents every planned exercise (notebook, question, scaffold code, check
call, worked solution) so that the notebook rewrite inserts them as they are;
``tests/test_exercises.py`` runs every check with right and wrong answers, and every solution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import stats

from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED
from tutorial_lib.verdicts import paired_difference

__all__ = [
    "EXERCISES",
    "Feedback",
    "check_attention_spread",
    "check_balancing_guess",
    "check_entropic_ot",
    "check_largest_response",
    "check_latent_shift",
    "check_paired_difference",
    "check_pearson_delta",
    "check_selection_effect",
    "check_startup_trials",
    "check_training_mask",
    "check_validation_choice",
    "check_verdict",
    "paired_difference",
]

#: Relative tolerance of numerical answers: a learner's numpy code may sum in another order or
#: in float32, so agreement to about 4 significant digits counts as right.
RTOL = 1e-4
ATOL = 1e-6


@dataclass(frozen=True)
class Feedback:
    """Verdict of a check: ``passed`` and a message for the learner."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return ("Correct: " if self.passed else "Not yet: ") + self.message

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return ("**Correct:** " if self.passed else "**Not yet:** ") + self.message


def _ok(message: str) -> Feedback:
    return Feedback(True, message)


def _no(message: str) -> Feedback:
    return Feedback(False, message)


def _close(a: float, b: float, rtol: float = RTOL, atol: float = ATOL) -> bool:
    return bool(np.isfinite(a) and np.isfinite(b) and math.isclose(a, b, rel_tol=rtol, abs_tol=atol))


def _as_float(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out


def _means(x) -> np.ndarray:
    from tutorial_lib.metrics import gene_means

    return np.asarray(gene_means(x.X if isinstance(x, AnnData) else x), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Notebook 00: the data and the task


def response_by_cell_type(
    adata: AnnData,
    gene: str,
    *,
    cell_type_key: str = CELL_TYPE_KEY,
    condition_key: str = CONDITION_KEY,
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


# --------------------------------------------------------------------------------------------
# Notebook 01: scGen


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


def _guess(answer, choices: Sequence[str]) -> str | None:
    """The learner's guess, normalised, if it is one of ``choices``."""
    if isinstance(answer, str) and answer.strip().lower() in choices:
        return answer.strip().lower()
    return None


def _predicted(x, like: AnnData) -> np.ndarray | None:
    """Predicted expression ``x`` (AnnData or cells × genes array, ``like``'s genes) as a dense array."""
    x = x.X if isinstance(x, AnnData) else x
    try:
        x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return x if x.shape == like.shape else None


def check_balancing_guess(guess, unbalanced, pred: AnnData, real: AnnData, ctrl: AnnData, *, genes) -> Feedback:
    """Exercise 01-3 (predict, then run): Pearson-delta of scGen's prediction with an unbalanced δ.

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


# --------------------------------------------------------------------------------------------
# Notebook 02: scPRAM


#: Spreads closer than this (relative) count as "equal" in exercise 02-1.
SAME_SPREAD = 0.05


def _response_spread(model, z: np.ndarray, deltas: np.ndarray) -> float:
    """Mean distance of each cell's predicted response ``decode(z + δ) - decode(z)`` from their mean."""
    response = model.decode(z + deltas) - model.decode(z)
    return float(np.linalg.norm(response - response.mean(axis=0), axis=1).mean())


def check_attention_spread(guess, model, z_t, deltas_first, deltas_per_cell) -> Feedback:
    """Exercise 02-1 (predict, then run): which attention spreads the predicted responses more.

    ``z_t``: latents of the held-out control cells; ``deltas_first``: the release's δ (the first
    cell's weights, one row or one row per cell); ``deltas_per_cell``: one δ per cell. The spread
    is the mean distance of each cell's decoded response from the mean response; ``guess`` is
    ``"first_cell"``, ``"per_cell"`` or ``"equal"`` (within :data:`SAME_SPREAD`).
    """
    choices = ("first_cell", "per_cell", "equal")
    got = _guess(guess, choices)
    if got is None:
        return _no(f"write your guess first, one of {choices}; got {guess!r}.")
    try:
        z = np.asarray(z_t, dtype=np.float32)
        first = np.broadcast_to(np.asarray(deltas_first, dtype=np.float64), z.shape)
        per_cell = np.broadcast_to(np.asarray(deltas_per_cell, dtype=np.float64), z.shape)
    except (TypeError, ValueError):
        return _no("z_t, deltas_first and deltas_per_cell must be latent arrays (cells × latent dimensions).")
    spread = {"first_cell": _response_spread(model, z, first), "per_cell": _response_spread(model, z, per_cell)}
    latent = {
        k: float(np.linalg.norm(d - d.mean(axis=0), axis=1).mean())
        for k, d in (("first_cell", first), ("per_cell", per_cell))
    }
    close = abs(spread["per_cell"] - spread["first_cell"]) <= SAME_SPREAD * max(spread.values())
    want = "equal" if close else max(spread, key=spread.get)
    detail = (
        f"spread of the predicted responses: {spread['first_cell']:.3f} with first-cell attention, "
        f"{spread['per_cell']:.3f} with per-cell attention (of the latent δ: {latent['first_cell']:.3f} and "
        f"{latent['per_cell']:.3f})"
    )
    why = (
        "First-cell attention, as released, gives every cell the first cell's δ, so the responses differ only "
        "where the decoder is nonlinear; per-cell attention gives each cell its own δ, borrowed from the "
        "reference controls it resembles."
    )
    if got == want:
        return _ok(f"{detail}. {why}")
    return _no(f"the run says {want!r}: {detail}. {why}")


def _first_cell_prediction(model, plan: np.ndarray, z_stim, z_ref, z_t) -> np.ndarray:
    """The release's prediction from a plan (stimulated × reference controls): argmax partners, first-cell attention."""
    from tutorial_lib.models import attention_weights

    cell_deltas = np.asarray(z_stim)[plan.argmax(axis=0)] - np.asarray(z_ref)
    return model.decode(np.asarray(z_t) + attention_weights(np.asarray(z_t)[:1], z_ref) @ cell_deltas)


def check_entropic_ot(
    plan_sinkhorn, reading, plan, model, z_stim, z_ref, z_t, real: AnnData, ctrl: AnnData
) -> Feedback:
    """Exercise 02-2 (change a setting, rerun, interpret): entropic OT instead of the exact plan.

    ``plan_sinkhorn`` is the learner's plan, ``transport_plan(cost_scaled, method="sinkhorn_log",
    reg=0.05)`` on the max-normalised squared cost; ``plan`` the exact one (stimulated × reference
    controls). The check reports how sharp both plans are (:func:`~tutorial_lib.models.plan_sharpness`,
    per reference control), how often their matches agree, and the Pearson-delta on the top-100
    DEGs (from ``real`` and ``ctrl``) of the release's prediction from each plan; ``reading``
    ("sharper" or "blurrier") is the learner's interpretation of the entropic plan.
    """
    from tutorial_lib.metrics import pearson_delta, rank_degs
    from tutorial_lib.models import cost_matrix, plan_sharpness, transport_plan

    exact = np.asarray(plan, dtype=np.float64)
    try:
        got = np.asarray(plan_sinkhorn, dtype=np.float64)
    except (TypeError, ValueError):
        return _no("plan_sinkhorn must be the plan transport_plan returns; replace the ... with that call.")
    if got.shape != exact.shape:
        return _no(
            f"expected a plan of shape {exact.shape} (stimulated × reference controls) like plan; got {got.shape}."
        )
    if np.allclose(got, exact, rtol=0.0, atol=1e-12):
        return _no("that is the exact plan again: call transport_plan with method='sinkhorn_log' and reg=0.05.")
    cost_scaled = cost_matrix(z_stim, z_ref, metric="sqeuclidean", normalization="max")
    want = transport_plan(cost_scaled, method="sinkhorn_log", reg=0.05)
    if not np.allclose(got, want, rtol=1e-3, atol=1e-9):
        return _no(
            "expected transport_plan(cost_scaled, method='sinkhorn_log', reg=0.05), on the max-normalised squared "
            "cost: the regularisation is relative to the cost's scale."
        )
    entropic, exact_s = plan_sharpness(got.T, reference=exact.T), plan_sharpness(exact.T)
    genes = rank_degs(real, ctrl, k=100)
    idx = pd.Index(model.var_names).get_indexer(genes)
    real_m, ctrl_m = _means(real[:, genes]), _means(ctrl[:, genes])
    scores = {
        name: pearson_delta(real_m, _first_cell_prediction(model, p, z_stim, z_ref, z_t)[:, idx].mean(axis=0), ctrl_m)
        for name, p in (("entropic", got), ("exact", exact))
    }
    detail = (
        f"a reference control's largest entry holds {entropic['row_max_share_mean']:.1%} of its mass in the "
        f"entropic plan and {exact_s['row_max_share_mean']:.1%} in the exact one; the matched partners agree for "
        f"{entropic['argmax_agreement']:.0%} of the reference controls; Pearson-delta on the top-100 DEGs is "
        f"{scores['entropic']:.3f} from the entropic plan and {scores['exact']:.3f} from the exact one"
    )
    got_reading = _guess(reading, ("sharper", "blurrier"))
    if got_reading is None:
        return _no(
            f"your plan is right: {detail}. Now write your reading: is the entropic matching 'sharper' or 'blurrier'?"
        )
    want_reading = "blurrier" if entropic["row_max_share_mean"] < exact_s["row_max_share_mean"] else "sharper"
    if got_reading != want_reading:
        return _no(f"compare how much of each row's mass its largest entry holds: {detail}.")
    return _ok(
        f"{detail}. Entropic regularisation spreads each cell's mass over many partners, so where the plan is flat its "
        "argmax is close to arbitrary; the attention then averages such matches over the reference controls."
    )


# --------------------------------------------------------------------------------------------
# Notebook 03: benchmarking, seeds and paired differences


def check_paired_difference(
    estimate, interval, a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> Feedback:
    """Exercise 03-1: mean paired difference ``a - b`` over seeds and its 95% t interval."""
    try:
        mean, low, high = paired_difference(a, b, level)
    except (TypeError, ValueError) as exc:
        return _no(f"a and b must be equal-length sequences of numbers, one score per seed ({exc}).")
    got = _as_float(estimate)
    try:
        g_low, g_high = (float(v) for v in interval)
    except (TypeError, ValueError):
        return _no(f"interval must be a pair (low, high) of numbers; got {interval!r}.")
    if got is None:
        return _no(f"estimate must be one number; got {estimate!r}.")
    if _close(got, -mean):
        return _no("the sign is flipped: compute a - b (first method minus second), seed by seed.")
    if not _close(got, mean):
        return _no("the estimate is the mean over seeds of (score of a - score of b) for the same seed.")
    if _close(g_low, low) and _close(g_high, high):
        return _ok(f"difference {mean:.4f}, {level:.0%} interval [{low:.4f}, {high:.4f}].")
    da, db = np.asarray(a, float), np.asarray(b, float)
    n = da.size
    unpaired = stats.t.ppf(0.5 + level / 2, n - 1) * np.sqrt((da.var(ddof=1) + db.var(ddof=1)) / n)
    if _close(g_high - g_low, 2 * unpaired):
        return _no(
            "your interval treats the two methods as independent; pair them: the spread of the differences a - b."
        )
    z_half = stats.norm.ppf(0.5 + level / 2) * np.std(da - db, ddof=1) / np.sqrt(n)
    if _close(g_high - g_low, 2 * z_half):
        return _no(f"with {n} seeds use the t quantile with {n - 1} degrees of freedom (scipy.stats.t.ppf), not 1.96.")
    return _no("interval = mean ± t quantile × sd of the differences (ddof=1) / sqrt(number of seeds).")


VERDICTS = ("a better", "b better", "no clear difference")


def check_verdict(
    answer: str, a: Sequence[float], b: Sequence[float], *, lower_is_better: bool, level: float = 0.95
) -> Feedback:
    """Exercise 03-2: "a better", "b better" or "no clear difference" from paired scores by seed.

    A method is better only when the interval of the paired difference excludes zero (the rule of
    the course); otherwise the verdict is "no clear difference".
    """
    if not isinstance(answer, str) or answer.strip().lower() not in VERDICTS:
        return _no(f"answer with one of {VERDICTS}; got {answer!r}.")
    try:
        mean, low, high = paired_difference(a, b, level)
    except (TypeError, ValueError) as exc:
        return _no(f"a and b must be equal-length sequences of numbers, one score per seed ({exc}).")
    if low <= 0.0 <= high:
        want = "no clear difference"
    else:
        a_lower = high < 0.0
        want = "a better" if a_lower == lower_is_better else "b better"
    got = answer.strip().lower()
    detail = f"a - b = {mean:.4f}, {level:.0%} interval [{low:.4f}, {high:.4f}]"
    if got == want:
        return _ok(f"{want} ({detail}).")
    if want == "no clear difference":
        return _no(f"the interval of the paired difference includes zero ({detail}): the seeds cannot tell them apart.")
    if got == "no clear difference":
        return _no(f"the interval excludes zero ({detail}), so one method is better.")
    direction = "lower" if lower_is_better else "higher"
    return _no(f"this metric is {direction}-is-better; read the sign of a - b again ({detail}).")


# --------------------------------------------------------------------------------------------
# Notebook 04: tuning without leakage


def check_validation_choice(
    answer: str,
    adata: AnnData,
    test_cell_type: str = "CD4+ T cells",
    *,
    cell_type_key: str = CELL_TYPE_KEY,
    condition_key: str = CONDITION_KEY,
) -> Feedback:
    """Exercise 04-1: a cell type to tune on. Any type with both conditions except the test type."""
    from tutorial_lib.models._data import shared_cell_types

    types = adata.obs[cell_type_key].astype(str).to_numpy()
    conds = adata.obs[condition_key].astype(str).to_numpy()
    allowed = shared_cell_types(types, conds, ctrl_key=CONTROL, stim_key=STIMULATED, exclude=[test_cell_type])
    if answer == test_cell_type:
        return _no(
            f"{answer} is the test cell type: choosing settings on it leaks the test set into the choice, "
            "and its final score would flatter."
        )
    if answer not in allowed:
        return _no(
            f"{answer!r} is not a cell type with control and stimulated cells here; choose one of {list(allowed)}."
        )
    n = int(((types == answer) & (conds == STIMULATED)).sum())
    return _ok(
        f"{answer} ({n} stimulated cells) is withheld from training while tuning; "
        "the test type is scored once, at the end."
    )


def check_selection_effect(value, test_scores: Sequence[float], honest_score: float) -> Feedback:
    """Exercise 04-2: selection effect = best (lowest) test score among candidates - honest score.

    ``test_scores`` are the test-set E-distances (lower is better) of the candidates a wrong-way
    search judged on the test set; ``honest_score`` is the test score of the candidate chosen on
    the validation cell type. The effect is <= 0 when the honest candidate is among them.
    """
    try:
        scores = np.asarray(test_scores, dtype=np.float64)
        honest_score = float(honest_score)
    except (TypeError, ValueError):
        return _no(f"test_scores must be numbers and honest_score one number; got {test_scores!r}, {honest_score!r}.")
    if scores.ndim != 1 or scores.size == 0 or not np.all(np.isfinite(scores)):
        return _no("test_scores must be a non-empty 1-D sequence of finite numbers.")
    want = float(scores.min() - float(honest_score))
    got = _as_float(value)
    if got is None:
        return _no(f"expected one number; got {value!r}.")
    if _close(got, want):
        return _ok(
            f"selection effect {want:.4f}: what picking on the test set would have reported below the honest score."
        )
    if _close(got, -want):
        return _no("the sign is flipped: reported (wrong-way) minus honest.")
    if _close(got, float(scores.max() - honest_score)):
        return _no("E-distance is lower-is-better: the wrong-way search reports the *smallest* test score.")
    return _no("take the smallest test score over the candidates and subtract the honest candidate's test score.")


def check_startup_trials(answer) -> Feedback:
    """Exercise 04-3: how many trials the course's TPE sampler draws at random before modelling.

    The reference is read from the sampler that :func:`tutorial_lib.tuning.create_study` builds,
    so it follows the library if the sampler's settings change.
    """
    import warnings

    import optuna

    from tutorial_lib.tuning import create_study

    with warnings.catch_warnings():  # Optuna's notes on experimental storage features
        warnings.simplefilter("ignore")
        sampler = create_study("exercise-probe", storage="sqlite:///:memory:").sampler
    want = getattr(sampler, "_n_startup_trials", None)
    if want is None:  # pragma: no cover - private attribute renamed by a future Optuna
        import inspect

        want = inspect.signature(optuna.samplers.TPESampler).parameters["n_startup_trials"].default
    try:
        got = int(answer)
    except (TypeError, ValueError):
        return _no(f"expected a whole number of trials; got {answer!r}.")
    if got == want:
        return _ok(
            f"the first {want} trials are random; a study of {want} trials or fewer never uses the TPE model, "
            "so it is a random search."
        )
    return _no("look at the TPESampler's n_startup_trials (help(optuna.samplers.TPESampler), or study.sampler).")


# --------------------------------------------------------------------------------------------
# The exercises, for the notebook rewrite: question (markdown), scaffold (the "Your turn" code
# cell; ``...`` marks what the learner writes), check (the call that ends the cell) and solution
# (worked code for the folded solution cell). Names such as ``adata``, ``parts``, ``pred``,
# ``model``, ``z_ctrl`` are the notebook's own variables; tests/test_exercises.py runs every
# solution followed by its check on the mini data or small synthetic data.

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
    "01-1": {
        "notebook": "01_scgen",
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
        "question": (
            "Predict, then run: scGen balances the cell types before averaging latents. If δ is instead the plain "
            'mean over all training cells, is the prediction\'s Pearson-delta on the top-100 DEGs "higher", '
            '"lower" or "about the same" as scGen\'s?'
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
    "02-1": {
        "notebook": "02_scpram",
        "question": (
            "Predict, then run: which attention spreads the predicted responses (each held-out cell's "
            "decode(z + δ) − decode(z)) more across the cells: first-cell attention as released, per-cell "
            "attention, or are they equal?"
        ),
        "scaffold": (
            'guess = ...  # "first_cell", "per_cell" or "equal"\n'
            "deltas_first = attention_weights(z_t[:1], z_ref) @ cell_deltas   # as released: the first cell's δ\n"
            "deltas_per_cell = attention_weights(z_t, z_ref) @ cell_deltas    # the course variant: one δ per cell"
        ),
        "check": "check_attention_spread(guess, model, z_t, deltas_first, deltas_per_cell)",
        "solution": (
            "deltas_first = attention_weights(z_t[:1], z_ref) @ cell_deltas\n"
            "deltas_per_cell = attention_weights(z_t, z_ref) @ cell_deltas\n"
            "spread = {}\n"
            'for name, d in (("first_cell", deltas_first), ("per_cell", deltas_per_cell)):\n'
            "    response = model.decode(z_t + d) - model.decode(z_t)   # each cell's predicted response\n"
            "    spread[name] = np.linalg.norm(response - response.mean(axis=0), axis=1).mean()\n"
            "# one δ for all: responses differ only through the decoder; one δ per cell: they differ more\n"
            'guess = max(spread, key=spread.get) if abs(spread["per_cell"] - spread["first_cell"]) > '
            '0.05 * max(spread.values()) else "equal"'
        ),
    },
    "02-2": {
        "notebook": "02_scpram",
        "question": (
            "Change a setting, rerun, interpret: match the cells with entropic OT (Sinkhorn, reg 0.05 on the "
            'max-normalised squared cost) instead of the exact plan. Is its matching "sharper" or "blurrier" than '
            "the exact one, and what happens to the prediction's Pearson-delta?"
        ),
        "scaffold": (
            'cost_scaled = cost_matrix(z_stim, z_ref, metric="sqeuclidean", normalization="max")\n'
            'plan_sinkhorn = ...  # the one changed line: transport_plan with method="sinkhorn_log", reg=0.05\n'
            'reading = ...  # after a first run: "sharper" or "blurrier"'
        ),
        "check": "check_entropic_ot(plan_sinkhorn, reading, plan, model, z_stim, z_ref, z_t, parts.test, parts.ctrl)",
        "solution": (
            "from tutorial_lib.models import plan_sharpness\n\n"
            'cost_scaled = cost_matrix(z_stim, z_ref, metric="sqeuclidean", normalization="max")\n'
            'plan_sinkhorn = transport_plan(cost_scaled, method="sinkhorn_log", reg=0.05)\n'
            'share = {name: plan_sharpness(p.T)["row_max_share_mean"] for name, p in '
            '(("entropic", plan_sinkhorn), ("exact", plan))}\n'
            "# the entropic plan spreads each cell's mass over many partners\n"
            'reading = "blurrier" if share["entropic"] < share["exact"] else "sharper"'
        ),
    },
    "03-1": {
        "notebook": "03_benchmarking_part1",
        "question": (
            "From the per-seed E-distances of scGen (a) and mean shift (b), "
            "compute the paired difference a - b and its 95% interval."
        ),
        "scaffold": (
            "a = ...  # scGen's E-distance per seed, in seed order\nb = ...  # mean_shift's, same seeds\n"
            "estimate, interval = ..., (..., ...)"
        ),
        "check": "check_paired_difference(estimate, interval, a, b)",
        "solution": (
            "from scipy import stats\n\n"
            "d = np.asarray(a) - np.asarray(b)                 # paired by seed\n"
            "estimate = d.mean()\n"
            "half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))\n"
            "interval = (estimate - half, estimate + half)"
        ),
    },
    "03-2": {
        "notebook": "03_benchmarking_part1",
        "question": (
            'Which is better on E-distance (lower is better): "a better", "b better" or "no clear difference"?'
        ),
        "scaffold": "answer = ...",
        "check": "check_verdict(answer, a, b, lower_is_better=True)",
        "solution": (
            "low, high = interval\n"
            'answer = "no clear difference" if low <= 0 <= high else ("a better" if high < 0 else "b better")'
        ),
    },
    "04-1": {
        "notebook": "04_benchmarking_part2",
        "question": "Pick a validation cell type for tuning (not the test type, CD4+ T cells).",
        "scaffold": "VALIDATION_CELL_TYPE = ...",
        "check": 'check_validation_choice(VALIDATION_CELL_TYPE, adata, test_cell_type="CD4+ T cells")',
        "solution": (
            'VALIDATION_CELL_TYPE = "B"   # a lymphocyte like CD4 T cells; any type but the test type is leak-free'
        ),
    },
    "04-2": {
        "notebook": "04_benchmarking_part2",
        "question": (
            "Compute the selection effect: the best wrong-way test score minus the honest candidate's test score."
        ),
        "scaffold": "test_scores = ...  # test E-distance of each wrong-way candidate\nhonest = ...\nvalue = ...",
        "check": "check_selection_effect(value, test_scores, honest)",
        "solution": (
            "value = min(test_scores) - honest   # E-distance: lower is better, so the search reports the minimum"
        ),
    },
    "04-3": {
        "notebook": "04_benchmarking_part2",
        "question": "How many trials does the course's TPE sampler draw at random before it starts modelling?",
        "scaffold": "answer = ...",
        "check": "check_startup_trials(answer)",
        "solution": (
            "import inspect\nimport optuna\n\n"
            'answer = inspect.signature(optuna.samplers.TPESampler).parameters["n_startup_trials"].default'
        ),
    },
}
