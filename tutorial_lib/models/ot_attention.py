"""Optimal-transport matching and attention weights of scPRAM (pure array maths, no model).

* :func:`cost_matrix`: pairwise cost between two sets of latents: Euclidean (the scPRAM
  release, unscaled) or squared Euclidean, optionally divided by its maximum (or mean) so that
  an entropic ``reg`` has the same meaning whatever the latent scale.
* :func:`transport_plan`: plan with uniform marginals, exact (``ot.emd``, as in the scPRAM
  release) or entropic (POT's ``ot.sinkhorn``, e.g. the log-domain ``method="sinkhorn_log"``,
  stable for small ``reg``).
* :func:`match`: each control cell's stimulated counterpart: the stimulated cell receiving
  most of its mass (``"argmax"``, the release) or the barycentric projection
  ``sum_j P_ij z_j / sum_j P_ij`` (``"barycentric"``).
* :func:`plan_sharpness`: how close a plan is to a matching (row-maximum share of each row's
  mass) and how often its argmax agrees with another plan's (e.g. the exact one).
* :func:`attention_weights`: for each query, cosine similarity to every key, the top
  ``k = ceil(ratio · n_keys)`` keys kept, weights by similarity / sum of similarities
  (``"normalised"``, the release: negative similarities are *not* clipped),
  ``"normalised_clipped"`` (negatives set to 0 first; the course's earlier default) or
  softmax(similarity / temperature) (``"softmax"``).

With entropic regularisation the plan spreads each row's mass: on a synthetic check at
``reg=0.05`` (relative to the max-normalised squared cost) a row's largest entry held about 1%
of its mass and the argmax agreed with the exact plan for about half of the cells (issue 13),
so argmax matching from such a plan is close to arbitrary; check with :func:`plan_sharpness`.
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
    metric: str = "sqeuclidean",
    normalization: str | None = "max",
    dtype: type = np.float64,
) -> np.ndarray:
    """Pairwise cost (rows of ``a`` × rows of ``b``), optionally scaled to max/mean 1.

    ``dtype`` is the precision the distances are computed in (``np.float32`` reproduces the
    release, which calls ``ot.dist`` on float32 latents).
    """
    check_choice("cost", metric, COST_METRICS)
    check_choice("cost_normalization", normalization, COST_NORMALISATIONS)
    cost = ot.dist(np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype), metric=metric)
    scale = {"max": cost.max(), "mean": cost.mean(), None: 1.0}[normalization]
    return cost / scale if scale > 0 else cost


def transport_plan(
    cost: np.ndarray,
    *,
    method: str = "sinkhorn_log",
    reg: float = 0.05,
    num_iter_max: int | None = None,
    stop_thr: float = 1e-6,
    device: str = "cpu",
    return_log: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict]:
    """Transport plan between uniform marginals for ``cost`` (n × m); rows sum to 1/n, columns to 1/m.

    ``num_iter_max``: for ``"emd"`` the network-simplex iteration limit (default
    ``max(100_000, 50·n·m)``, enough to reach the optimum on Kang-sized pools;
    :data:`EMD_MAX_ITER_RELEASE` is the release's limit), for Sinkhorn the number of iterations
    (default 1000). A plan stopped at the limit is returned with a warning (as POT does), and
    ``return_log=True`` also returns ``{"converged": bool, "method": method}``.

    ``reg`` (entropic regularisation relative to the normalised cost, > 0) is ignored by
    ``method="emd"``. Sinkhorn runs on POT's torch backend in float32 on ``device`` (about
    2-4× faster than NumPy float64 on CPU; 3000 × 3000 Gaussian clouds, reg 0.05: 1-3 s on 2
    cores). Smaller ``reg`` gives a sharper plan but needs more iterations; a warning is
    raised when the marginals are still off by more than ``MARGINAL_TOLERANCE`` (L1) after
    ``num_iter_max`` iterations.
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
        if not converged:
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
    temperature: float = 0.1,
    weighting: str = "softmax",
    chunk_size: int = 1024,
) -> sp.csr_matrix:
    """Sparse attention (queries × keys): each row has ``n_top(ratio, n_keys)`` entries summing to 1.

    ``weighting="normalised"`` is the release's ``cos / sum(cos)`` over the top-k keys, negative
    similarities included (a row whose top-k similarities sum to less than 0 warns, one summing
    to exactly 0 raises ``ValueError``). ``"normalised_clipped"`` clips negative similarities to 0 first
    (uniform weights when all are <= 0). ``"softmax"``: ``softmax(cos / temperature)``
    (``temperature`` is ignored otherwise).
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
