"""Optimal-transport matching and attention weights of scPRAM (pure array maths, no model).

scPRAM (Jiang et al., Bioinformatics 2024) pairs each control cell with a stimulated cell by
optimal transport between their latent codes, and then lets a new control cell borrow the
responses of the paired control cells it resembles, weighted by attention. Every function's
defaults are those of the scPRAM release (scpram 0.0.3, ``SCPRAM.predict``), so that calling
them with no options reproduces the published method step by step:

* :func:`cost_matrix`: unscaled Euclidean distances between two sets of latents, computed in
  float32 (the release calls ``ot.dist(..., metric="euclidean")`` on float32 latents).
* :func:`transport_plan`: exact optimal transport between uniform marginals (``ot.emd``), stopped
  after at most 100,000 network-simplex iterations (:data:`EMD_MAX_ITER_RELEASE`) as released.
* :func:`match`: the stimulated partner of each control cell, the one receiving most of its mass.
* :func:`attention_weights`: cosine similarity of a query to every key, the top
  ``ceil(0.05 · n_keys)`` keys kept, weights ``cos / sum(cos)`` (negative similarities are not
  clipped, as released).

Course options, none of them in the release: squared or scaled costs, entropic OT (POT's
``ot.sinkhorn``, e.g. the log-domain ``method="sinkhorn_log"``), exact OT run to its optimum
(``num_iter_max=None``), barycentric matching, clipped weights and ``softmax(cos / temperature)``.
:func:`plan_sharpness` says how close a plan is to a one-to-one matching: an entropic plan
spreads each row's mass (at ``reg=0.05`` on a max-normalised squared cost a row's largest
entry can hold about 1% of its mass), so that its argmax matches are close to arbitrary.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import ot
import pandas as pd
import scipy.sparse as sp
import torch

from tutorial_lib.models._params import check_choice, check_float, check_int

COST_METRICS = ("sqeuclidean", "euclidean")
COST_NORMALISATIONS = ("max", "mean", None)
OT_METHODS = ("sinkhorn_log", "sinkhorn", "sinkhorn_stabilized", "emd")
MATCHINGS = ("argmax", "barycentric")
WEIGHTINGS = ("normalised", "normalised_clipped", "softmax")
EMD_MAX_ITER_RELEASE = 100_000  # numItermax of ot.emd in scpram 0.0.3's SCPRAM.predict
MARGINAL_TOLERANCE = 1e-3  # L1 error of both marginals (each sums to 1) tolerated silently


def cost_matrix(
    a: np.ndarray,
    b: np.ndarray,
    *,
    metric: str = "euclidean",
    normalization: str | None = None,
    dtype: type = np.float32,
) -> np.ndarray:
    """Pairwise cost (rows of ``a`` × rows of ``b``); the defaults are the release's.

    ``metric``: ``"euclidean"`` (the release) or ``"sqeuclidean"``. ``normalization``: ``None``
    (the release), ``"max"`` or ``"mean"`` (divide by the cost's maximum or mean, so that an
    entropic ``reg`` means the same whatever the latent scale). ``dtype``: the precision the
    distances are computed in (``np.float32``, the release's, or ``np.float64``).
    """
    check_choice("cost", metric, COST_METRICS)
    check_choice("cost_normalization", normalization, COST_NORMALISATIONS)
    cost = ot.dist(np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype), metric=metric)
    scale = {"max": cost.max(), "mean": cost.mean(), None: 1.0}[normalization]
    return cost / scale if scale > 0 else cost


def transport_plan(
    cost: np.ndarray,
    *,
    method: str = "emd",
    num_iter_max: int | None = EMD_MAX_ITER_RELEASE,
    reg: float = 0.05,
    stop_thr: float = 1e-6,
    device: str = "cpu",
    return_log: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict]:
    """Transport plan between uniform marginals for ``cost`` (n × m); rows sum to 1/n, columns to 1/m.

    The default is the release's: exact optimal transport (``ot.emd``), stopped after
    :data:`EMD_MAX_ITER_RELEASE` network-simplex iterations. On pools of a few thousand cells that
    limit is reached before the optimum; the plan returned is then feasible but not optimal. That
    is the published method, so it is not warned about; ``return_log=True`` also returns
    ``{"converged": bool, "method": method}``.

    Parameters
    ----------
    cost
        Cost matrix (:func:`cost_matrix`).
    method
        ``"emd"`` (exact, the release) or an entropic solver of POT's ``ot.sinkhorn``
        (``"sinkhorn_log"``, log-domain and stable for small ``reg``; ``"sinkhorn"``;
        ``"sinkhorn_stabilized"``).
    num_iter_max
        Iteration limit (the release's by default). ``None``: for ``"emd"`` up to ``max(100_000,
        50·n·m)`` iterations, enough to reach the optimum on pools of Kang 2018's size; for
        Sinkhorn 1000. A limit other than the release's that stops ``ot.emd`` before the optimum
        warns (as POT does); Sinkhorn warns when its marginals are still off by more than
        :data:`MARGINAL_TOLERANCE` (L1).
    reg
        Entropic regularisation (> 0), relative to the cost (use a normalised cost); ignored by
        ``"emd"``. Smaller values give sharper plans and need more iterations.
    stop_thr, device
        Sinkhorn's stopping threshold, and the device of POT's torch backend it runs on (float32).
    """
    check_choice("ot_method", method, OT_METHODS)
    n, m = cost.shape
    a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    if method == "emd":
        limit = max(100_000, 50 * n * m) if num_iter_max is None else check_int("num_iter_max", num_iter_max, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # POT's "numItermax reached"; re-raised below
            plan, log = ot.emd(a, b, np.asarray(cost, dtype=np.float64), numItermax=limit, log=True)
        converged = int(log["result_code"]) == 1
        if not converged and limit != EMD_MAX_ITER_RELEASE:  # the release's own limit is the published method
            warnings.warn(
                f"ot.emd stopped after {limit} iterations before reaching the optimum ({log['warning']}); "
                "the plan is feasible but not the exact optimal transport plan",
                stacklevel=2,
            )
        return (plan, {"converged": converged, "method": method}) if return_log else plan
    check_float("reg", reg, 0.0, low_inclusive=False)
    num_iter_max = 1000 if num_iter_max is None else check_int("num_iter_max", num_iter_max, 1)
    a_t, b_t, cost_t = (torch.as_tensor(v, dtype=torch.float32, device=device) for v in (a, b, cost))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # POT's "did not converge"; checked below
        plan = ot.sinkhorn(a_t, b_t, cost_t, reg, method=method, numItermax=num_iter_max, stopThr=stop_thr)
    plan = plan.cpu().numpy().astype(np.float64)
    err = np.abs(plan.sum(axis=0) - b).sum() + np.abs(plan.sum(axis=1) - a).sum()
    if err > MARGINAL_TOLERANCE:
        warnings.warn(
            f"Sinkhorn stopped after {num_iter_max} iterations with marginal error {err:.2g}; "
            "increase reg or num_iter_max",
            stacklevel=2,
        )
    return (plan, {"converged": bool(err <= MARGINAL_TOLERANCE), "method": method}) if return_log else plan


def match(plan: np.ndarray, z_stim: np.ndarray, *, mode: str = "argmax") -> tuple[np.ndarray, np.ndarray]:
    """Stimulated counterpart of each row (control cell) of ``plan``.

    Returns ``(z_matched, partner)``: matched latents (n × d) and the index of the stimulated
    cell with the largest plan mass in each row (also reported for ``"barycentric"``).
    """
    check_choice("matching", mode, MATCHINGS)
    partner = np.asarray(plan).argmax(axis=1)
    if mode == "argmax":
        return np.asarray(z_stim)[partner], partner
    weights = plan / plan.sum(axis=1, keepdims=True)
    return weights @ np.asarray(z_stim, dtype=np.float64), partner


def plan_sharpness(plan: np.ndarray, reference: np.ndarray | None = None) -> pd.Series:
    """How close a transport plan is to a one-to-one matching (a diagnostic).

    Parameters
    ----------
    plan
        Transport plan, rows = control cells (n × m).
    reference
        Another plan of the same shape, e.g. the exact one (``method="emd"``), to compare
        argmax partners with.

    Returns
    -------
    Series with ``row_max_share_mean`` / ``row_max_share_median`` (share of each row's mass on
    its largest entry: 1 for a plan that sends each row to one column; ``n/m`` of that for
    uniform marginals with m ≥ n; about ``1/m`` for a uniform plan), ``argmax_agreement`` (fraction of rows
    whose argmax column equals ``reference``'s; NaN without a reference) and ``n_rows``.
    """
    plan = np.asarray(plan, dtype=np.float64)
    if plan.ndim != 2 or plan.shape[0] == 0:
        raise ValueError(f"plan must be a non-empty 2-D array; got shape {plan.shape}")
    mass = plan.sum(axis=1)
    share = plan.max(axis=1) / np.where(mass > 0, mass, 1.0)
    agreement = np.nan
    if reference is not None:
        reference = np.asarray(reference)
        if reference.shape != plan.shape:
            raise ValueError(f"reference plan has shape {reference.shape}; expected {plan.shape} like plan")
        agreement = float((plan.argmax(axis=1) == reference.argmax(axis=1)).mean())
    return pd.Series(
        {
            "row_max_share_mean": float(share.mean()),
            "row_max_share_median": float(np.median(share)),
            "argmax_agreement": agreement,
            "n_rows": plan.shape[0],
        }
    )


def n_top(ratio: float, n_keys: int) -> int:
    """Number of keys each query attends to: ``ceil(ratio · n_keys)``, at least 1."""
    check_float("ratio", ratio, 0.0, 1.0, low_inclusive=False)
    return min(n_keys, max(1, math.ceil(ratio * n_keys - 1e-9)))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def attention_weights(
    queries: np.ndarray,
    keys: np.ndarray,
    *,
    ratio: float = 0.05,
    weighting: str = "normalised",
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> sp.csr_matrix:
    """Sparse attention (queries × keys): each row has ``n_top(ratio, n_keys)`` entries summing to 1.

    Each query keeps its ``ceil(ratio · n_keys)`` most cosine-similar keys. The default is the
    release's: ``weighting="normalised"``, weights ``cos / sum(cos)`` over those keys, negative
    similarities included (a row whose top-k similarities sum to less than 0 warns, one summing
    to exactly 0 raises ``ValueError``). In scPRAM the keys are the reference control cells.
    Course options: ``"normalised_clipped"`` clips negative similarities to 0 first (uniform
    weights when all are <= 0); ``"softmax"`` uses ``softmax(cos / temperature)`` (``temperature``
    is ignored otherwise).
    """
    check_choice("weighting", weighting, WEIGHTINGS)
    check_float("temperature", temperature, 0.0, low_inclusive=False)
    k = n_top(ratio, len(keys))
    keys_u = _unit_rows(keys)
    rows, cols, vals = [], [], []
    for start in range(0, len(queries), chunk_size):
        sim = _unit_rows(queries[start : start + chunk_size]) @ keys_u.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sim, top, axis=1)
        if weighting == "softmax":
            w = np.exp((s - s.max(axis=1, keepdims=True)) / temperature)
        elif weighting == "normalised_clipped":
            w = np.clip(s, 0.0, None)
            w[w.sum(axis=1) == 0] = 1.0  # all keys orthogonal/opposite: fall back to uniform
        else:
            w = s.copy()
            sums = w.sum(axis=1)
            if np.any(sums == 0):
                bad = int(np.flatnonzero(sums == 0)[0])
                raise ValueError(
                    f"weighting='normalised' (cos / sum cos, as released): the top-{k} cosine similarities of "
                    f"query {start + bad} sum to 0, so they cannot be normalised; "
                    "use weighting='normalised_clipped' or 'softmax'"
                )
            if np.any(sums < 0):
                warnings.warn(
                    f"weighting='normalised': for {int((sums < 0).sum())} queries the top-{k} cosine similarities "
                    "sum to less than 0, so their weights change sign (as in the release); "
                    "weighting='normalised_clipped' avoids this",
                    stacklevel=2,
                )
        w /= w.sum(axis=1, keepdims=True)
        rows.append(np.repeat(np.arange(start, start + len(s)), k))
        cols.append(top.ravel())
        vals.append(w.ravel())
    shape = (len(queries), len(keys))
    if not rows:
        return sp.csr_matrix(shape)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)
