"""One call that scores a prediction against the real stimulated cells: a tidy table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics import means as mm
from tutorial_lib.metrics._inputs import CellsLike, Matrix, aligned_matrices, gene_means, gene_vars, subsample_rows
from tutorial_lib.metrics.bootstrap import resample_indices, summarise
from tutorial_lib.metrics.degs import (
    deg_jaccard,
    deg_overlap_count,
    deg_gene_set_name,
    deg_scores,
    has_no_change,
    rank_degs,
    top_k,
)
from tutorial_lib.metrics.distances import PairwiseCache, median_heuristic_bandwidths
from tutorial_lib.metrics.kde import mean_var_kde_distance
from tutorial_lib.metrics.space import SharedSpace, fit_shared_pca, gene_space

#: Columns of the table returned by :func:`evaluate`, in order.
COLUMNS = ["metric", "gene_set", "value", "ci_low", "ci_high", "n_boot", "note", "estimate", "n_genes", "space"]

#: Metrics of :func:`evaluate` where a lower value is better (all others: higher is better).
LOWER_IS_BETTER = frozenset({"e_distance", "mmd", "mse_mean", "mean_var_kde_distance"})

#: Metrics computed on per-gene summaries, for each gene set.
GENE_METRICS = [
    "r2_pearson_mean",
    "r2_score_mean",
    "r2_pearson_var",
    "r2_score_var",
    "pearson_delta",
    "mse_mean",
    "mean_var_kde_distance",
]


@dataclass
class _Summaries:
    real_mean: np.ndarray
    real_var: np.ndarray
    pred_mean: np.ndarray
    pred_var: np.ndarray
    ctrl_mean: np.ndarray


def _summaries(real: Matrix, pred: Matrix, ctrl: Matrix) -> _Summaries:
    return _Summaries(gene_means(real), gene_vars(real), gene_means(pred), gene_vars(pred), gene_means(ctrl))


def _gene_metrics(s: _Summaries, idx: np.ndarray, kde_measure: str) -> dict[str, float]:
    rm, rv, pm, pv, cm = s.real_mean[idx], s.real_var[idx], s.pred_mean[idx], s.pred_var[idx], s.ctrl_mean[idx]
    return {
        "r2_pearson_mean": mm.r2_pearson(rm, pm),
        "r2_score_mean": mm.r2_score(rm, pm),
        "r2_pearson_var": mm.r2_pearson(rv, pv),
        "r2_score_var": mm.r2_score(rv, pv),
        "pearson_delta": mm.pearson_delta(rm, pm, cm),
        "mse_mean": mm.mse(rm, pm),
        "mean_var_kde_distance": mean_var_kde_distance(rm, rv, pm, pv, measure=kde_measure),
    }


def _undefined_note(metric: str, s: _Summaries, idx: np.ndarray) -> str:
    if metric == "pearson_delta":
        return mm.pearson_delta_note(s.real_mean[idx], s.pred_mean[idx], s.ctrl_mean[idx])
    stat = "means" if metric.endswith("_mean") else "variances"
    real = s.real_mean[idx] if stat == "means" else s.real_var[idx]
    pred = s.pred_mean[idx] if stat == "means" else s.pred_var[idx]
    if mm.is_constant(real):
        return f"undefined: real per-gene {stat} are constant across genes"
    if metric.startswith("r2_pearson") and mm.is_constant(pred):
        return f"undefined: predicted per-gene {stat} are constant across genes"
    return "undefined for these inputs"


def _row(
    metric: str,
    gene_set: str,
    estimate: float,
    boots: Sequence[float],
    n_genes: int,
    space: str,
    why_undefined: Callable[[], str],
) -> dict:
    notes = []
    if not np.isfinite(estimate):
        value = lo = hi = float("nan")
        notes.append(why_undefined())
        n_boot = len(boots)
    else:
        summ = summarise(boots)
        n_boot = summ.n_boot
        if summ.n_boot == 0:
            value, lo, hi = estimate, float("nan"), float("nan")
            notes.append("no interval: not bootstrapped (n_boot=0); value is the estimate on all cells")
        elif summ.n_undefined == summ.n_boot:
            value, lo, hi = estimate, float("nan"), float("nan")
            notes.append(f"no interval: undefined on all {summ.n_boot} resamples; value is the estimate on all cells")
        else:
            value, lo, hi = summ.mean, summ.ci_low, summ.ci_high
            if summ.n_undefined:
                notes.append(f"undefined on {summ.n_undefined} of {summ.n_boot} resamples (left out)")
    return {
        "metric": metric,
        "gene_set": gene_set,
        "value": value,
        "ci_low": lo,
        "ci_high": hi,
        "n_boot": n_boot,
        "note": "; ".join(notes),
        "estimate": estimate,
        "n_genes": n_genes,
        "space": space,
    }


def _resolve_degs(
    degs: Sequence[str] | None, genes: np.ndarray, mats: dict[str, Matrix], k: int, direction: str = "abs"
) -> list[str]:
    if degs is None:
        if k < 1:
            raise ValueError(f"n_top_degs must be at least 1, got {k}")
        return rank_degs(mats["real"], mats["ctrl"], k=min(k, genes.size), var_names=genes, direction=direction)
    degs = list(dict.fromkeys(str(g) for g in degs))
    if not degs:
        raise DataValidationError("degs is empty; pass gene names or None to rank them")
    known = set(genes)
    missing = [g for g in degs if g not in known]
    if missing:
        raise DataValidationError(f"{len(missing)} of the given degs are not among the genes: {missing[:5]}")
    return degs


def _resolve_space(
    space: Literal["pca", "genes"] | SharedSpace, mats: dict[str, Matrix], genes: np.ndarray, n_comps: int, seed: int
) -> SharedSpace:
    if isinstance(space, SharedSpace):
        return space
    if space == "pca":
        return fit_shared_pca(mats["real"], mats["ctrl"], n_comps=n_comps, seed=seed, var_names=genes)
    if space == "genes":
        return gene_space(genes)
    raise ValueError(f"space must be 'pca', 'genes' or a SharedSpace, got {space!r}")


def evaluate(
    real: CellsLike,
    pred: CellsLike,
    ctrl: CellsLike,
    *,
    n_top_degs: int = 100,
    n_bootstrap: int = 100,
    bootstrap_fraction: float = 0.8,
    seed: int = 0,
    space: Literal["pca", "genes"] | SharedSpace = "pca",
    n_comps: int = 50,
    max_cells: int | None = 1000,
    degs: Sequence[str] | None = None,
    n_bootstrap_degs: int = 10,
    paired: bool | None = None,
    e_estimator: Literal["u", "v"] = "u",
    mmd_estimator: Literal["unbiased", "biased"] = "unbiased",
    mmd_bandwidths: Sequence[float] | None = None,
    kde_measure: Literal["js", "l1"] = "js",
    var_names: Sequence[str] | None = None,
    deg_direction: Literal["abs", "up"] = "abs",
) -> pd.DataFrame:
    """Score predicted cells against the real stimulated cells of a held-out group.

    Parameters
    ----------
    real, pred, ctrl
        Real stimulated cells, predicted cells, and the control cells they were predicted from
        (AnnData with log-normalised ``.X``, or cells x genes matrices), on the same genes. Genes in
        another order are aligned to ``real``; different genes raise an error naming them.
    n_top_degs
        k of the "top-k DEGs" gene set: :func:`~tutorial_lib.metrics.rank_degs` of real vs control
        (never of the predictions). Ignored when ``degs`` is given.
    n_bootstrap, bootstrap_fraction, seed
        B resamples keeping ``bootstrap_fraction`` of each group's cells without replacement
        (:func:`~tutorial_lib.metrics.bootstrap.resample_indices`). ``value`` is the mean over the
        resamples and ``ci_low``/``ci_high`` their 2.5 and 97.5 percentiles; with
        ``n_bootstrap=0`` ``value`` is the estimate on all cells. Same seed, same table.
    space, n_comps
        Space of ``e_distance`` and ``mmd``: ``"pca"`` fits :func:`fit_shared_pca` on real + control
        (``n_comps`` components); ``"genes"`` uses the expression itself; or pass a
        :class:`SharedSpace` fitted once for all models of a comparison.
    max_cells
        Cells per group used by the cell-level distances (seeded subsample, drawn once; their
        bootstrap resamples these). Per-gene metrics always use all cells. ``None``: no cap.
    degs
        Precomputed DEG gene names (e.g. fixed once per comparison by a benchmark).
    n_bootstrap_degs
        Resamples for the DEG overlap metrics (each reruns a Wilcoxon test, so fewer than
        ``n_bootstrap``; 0 for none). The table's ``n_boot`` says how many were used. The real
        DEG list stays fixed; predicted and control cells are resampled. When predicted and
        control cells do not differ at all (every score 0) no gene ranks above another and the
        overlap is reported as undefined.
    paired
        Resample predicted and control cells with the same indices (each predicted cell made from
        one control cell). Default: paired when both groups have the same number of cells. This
        keeps a control-as-prediction baseline at exactly zero change in every resample.
    e_estimator, mmd_estimator, mmd_bandwidths, kde_measure
        Passed to :func:`e_distance`, :func:`mmd` and :func:`mean_var_kde_distance`. MMD bandwidths
        default to the median heuristic on real + control cells (not predictions), so every model
        of a comparison gets the same kernel.
    var_names
        Gene names when inputs are plain matrices.
    deg_direction
        DEG ranking convention (:mod:`tutorial_lib.metrics.degs`): ``"abs"`` (top k by |score|,
        gene set ``"top{k}_degs"``) or ``"up"`` (the papers' top k up-regulated genes, gene set
        ``"top{k}_up_degs"``); used for the real DEG list (unless ``degs`` is given: then only
        the name says which convention the caller used) and the predicted one.

    Returns
    -------
    pandas.DataFrame
        One row per (metric, gene set) with columns ``metric, gene_set, value, ci_low, ci_high,
        n_boot, note, estimate, n_genes, space``. ``gene_set`` is ``"all"`` or ``"top{k}_degs"``;
        cell-level distances are reported under ``"all"`` (their space in ``space``). Metrics:
        ``r2_pearson_mean``, ``r2_score_mean``, ``r2_pearson_var``, ``r2_score_var``,
        ``pearson_delta``, ``mse_mean``, ``mean_var_kde_distance`` (per gene set), ``e_distance``,
        ``mmd``, ``deg_overlap_count``, ``deg_jaccard``. A value that is undefined (e.g.
        ``pearson_delta`` of a prediction with no change) is NaN with the reason in ``note``;
        ``note`` is never empty where a number is NaN.
    """
    if n_bootstrap < 0 or n_bootstrap_degs < 0:
        raise ValueError("n_bootstrap and n_bootstrap_degs must be >= 0")
    mats, genes = aligned_matrices({"real": real, "pred": pred, "ctrl": ctrl}, var_names=var_names)
    for what, x in mats.items():
        if x.shape[0] < 2:
            raise DataValidationError(f"{what} has {x.shape[0]} cell(s); need at least 2 per group")
    sizes = [mats[k].shape[0] for k in ("real", "pred", "ctrl")]
    if paired is None:
        paired = sizes[1] == sizes[2]
    if paired and sizes[1] != sizes[2]:
        raise DataValidationError(
            f"paired=True needs as many predicted as control cells, got {sizes[1]} and {sizes[2]}"
        )
    pairs = [(1, 2)] if paired else []

    deg_list = _resolve_degs(degs, genes, mats, n_top_degs, deg_direction)
    deg_set_name = deg_gene_set_name(len(deg_list), deg_direction)
    gene_sets = {"all": np.arange(genes.size), deg_set_name: np.flatnonzero(np.isin(genes, deg_list))}
    rows: list[dict] = []

    # per-gene metrics, on all cells and on resamples
    full = _summaries(mats["real"], mats["pred"], mats["ctrl"])
    est = {gs: _gene_metrics(full, idx, kde_measure) for gs, idx in gene_sets.items()}
    boots: dict[str, dict[str, list[float]]] = {gs: {m: [] for m in GENE_METRICS} for gs in gene_sets}
    for ir, ip, ic in resample_indices(sizes, n_bootstrap, bootstrap_fraction, seed, pairs):
        s = _summaries(mats["real"][ir], mats["pred"][ip], mats["ctrl"][ic])
        for gs, idx in gene_sets.items():
            for m, v in _gene_metrics(s, idx, kde_measure).items():
                boots[gs][m].append(v)
    for gs, idx in gene_sets.items():
        for m in GENE_METRICS:
            rows.append(
                _row(
                    m,
                    gs,
                    est[gs][m],
                    boots[gs][m],
                    idx.size,
                    "genes",
                    lambda m=m, idx=idx: _undefined_note(m, full, idx),
                )
            )

    # cell-level distances in the shared space
    sp_ = _resolve_space(space, mats, genes, n_comps, seed)
    rng = np.random.default_rng(seed)
    z = {k: sp_.transform(mats[k], var_names=genes) for k in ("real", "pred", "ctrl")}
    z = {k: v[subsample_rows(v.shape[0], max_cells, rng)] for k, v in z.items()}
    bw = (
        median_heuristic_bandwidths(z["real"], z["ctrl"], seed=seed)
        if mmd_bandwidths is None
        else np.asarray(mmd_bandwidths, dtype=np.float64)
    )
    cache = PairwiseCache(z["real"], z["pred"], bw)
    all_r, all_p = np.arange(z["real"].shape[0]), np.arange(z["pred"].shape[0])
    e_est, mmd_est = cache.e_distance(all_r, all_p, e_estimator), cache.mmd(all_r, all_p, mmd_estimator)
    e_b, mmd_b = [], []
    dist_sizes = [z["real"].shape[0], z["pred"].shape[0]]
    for ir, ip in resample_indices(dist_sizes, n_bootstrap, bootstrap_fraction, seed + 1):
        e_b.append(cache.e_distance(ir, ip, e_estimator))
        mmd_b.append(cache.mmd(ir, ip, mmd_estimator))
    undefined = lambda: "undefined for these inputs"  # noqa: E731  (distances are always defined)
    rows.append(_row("e_distance", "all", e_est, e_b, genes.size, sp_.name, undefined))
    rows.append(_row("mmd", "all", mmd_est, mmd_b, genes.size, sp_.name, undefined))

    # DEG overlap: top-k of pred vs ctrl against the fixed real top-k
    k = len(deg_list)
    pred_scores = deg_scores(mats["pred"], mats["ctrl"], var_names=genes)
    no_change = has_no_change(pred_scores)
    pred_degs = [] if no_change else top_k(pred_scores, k, deg_direction)
    cnt_b, jac_b = [], []
    if not no_change:
        for _, ip, ic in resample_indices(sizes, n_bootstrap_degs, bootstrap_fraction, seed + 2, pairs):
            sc_b = deg_scores(mats["pred"][ip], mats["ctrl"][ic], var_names=genes)
            if has_no_change(sc_b):
                cnt_b.append(float("nan"))
                jac_b.append(float("nan"))
                continue
            d = top_k(sc_b, k, deg_direction)
            cnt_b.append(float(deg_overlap_count(d, deg_list)))
            jac_b.append(deg_jaccard(d, deg_list))
    nan = float("nan")
    why = lambda: "undefined: prediction has no change (all DEG scores of pred vs control are 0)"  # noqa: E731
    cnt = nan if no_change else float(deg_overlap_count(pred_degs, deg_list))
    jac = nan if no_change else deg_jaccard(pred_degs, deg_list)
    rows.append(_row("deg_overlap_count", deg_set_name, cnt, cnt_b, k, "genes", why))
    rows.append(_row("deg_jaccard", deg_set_name, jac, jac_b, k, "genes", why))

    table = pd.DataFrame(rows, columns=COLUMNS)
    table["n_boot"] = table["n_boot"].astype(int)
    _check_no_silent_nan(table)
    table.attrs["degs"] = deg_list
    table.attrs["deg_direction"] = deg_direction
    table.attrs["pred_degs"] = pred_degs
    table.attrs["space"] = sp_.name
    return table


def _check_no_silent_nan(table: pd.DataFrame) -> None:
    nan_any = table[["value", "ci_low", "ci_high"]].isna().any(axis=1)
    silent = nan_any & (table["note"].str.len() == 0)
    if silent.any():  # a bug, not bad input: every NaN must carry its reason
        raise AssertionError(f"NaN without a note in rows {table.loc[silent, 'metric'].tolist()}")
