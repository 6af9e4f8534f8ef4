"""Checks of notebook 02 (scPRAM)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from course_tools.exercises.feedback import Feedback, _guess, _means, _no, _ok

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


#: This notebook's exercises (see :data:`course_tools.exercises.EXERCISES`).
EXERCISES: dict[str, dict[str, str]] = {
    "02-1": {
        "notebook": "02_scpram",
        "kind": "predict, then run",
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
        "kind": "change a setting, rerun, interpret",
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
}
