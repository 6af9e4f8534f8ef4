"""One call that scores a prediction against the real stimulated cells: a tidy table."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from course_tools.scoring.bootstrap import (
    bootstrap_weight_chunks,
    check_n_boot,
    interval,
    resample_indices,
    subsample_mask_chunks,
)
from course_tools.scoring.pairwise import PairwiseCache, median_heuristic_bandwidths
from course_tools.scoring.registry import INTERVALS, GeneSummaries, Metric, list_metrics
from course_tools.scoring.scales import check_same_scale, check_scored_input
from tutorial_lib.config import check_seed
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics._inputs import CellsLike, Matrix, aligned_matrices, gene_means, gene_vars, subsample_rows
from tutorial_lib.metrics.degs import DEG_DIRECTIONS, rank_degs, top_k
from tutorial_lib.metrics.space import SharedSpace, fit_shared_pca

#: Columns of the table returned by :func:`evaluate`, in order.
COLUMNS = [
    "metric",
    "gene_set",
    "value",
    "ci_low",
    "ci_high",
    "n_bootstrap",
    "ci_kind",
    "note",
    "estimate",
    "n_genes",
    "space",
    "chance",
]


#: DEG scores below this in absolute value count as "no difference at all".
NO_CHANGE_SCORE = 1e-8


def has_no_change(scores: pd.Series) -> bool:
    """True when every gene's score is ~0: the two groups do not differ, so no gene ranks above another."""
    return bool(np.all(np.abs(scores.to_numpy()) < NO_CHANGE_SCORE))


def deg_gene_set_name(k: int, direction: str = "abs") -> str:
    """Name of the top-k DEG gene set in evaluation tables: ``"top{k}_degs"`` or ``"top{k}_up_degs"``."""
    if direction not in DEG_DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DEG_DIRECTIONS)}; got {direction!r}")
    return f"top{k}_degs" if direction == "abs" else f"top{k}_up_degs"


def gene_space(var_names: Sequence[str]) -> SharedSpace:
    """The identity space on ``var_names`` (distances computed on expression directly)."""
    names = np.asarray(var_names, dtype=str)
    return SharedSpace(var_names=names, center=np.zeros(names.size), components=None)


def check_scales(mats: dict[str, Matrix], what: str) -> None:
    """Raise unless the ``"real"``, ``"ctrl"`` and ``"pred"`` matrices are all log1p-normalised expression.

    Each is checked on its own (:func:`~course_tools.scoring.scales.check_scored_input`), so three
    inputs on another scale are refused even when they agree with each other: raw counts (on any
    number of genes) and centred or z-scored data (mostly negative). A few negative values are
    allowed (synthetic data, a shift that was not clipped at 0). ``real`` and ``ctrl`` are cells,
    bounded like normalised cells; ``pred`` is a model's output, bounded by value.
    """
    check_same_scale(mats, what)  # names the odd one out when only some look like counts
    for name in ("real", "ctrl", "pred"):
        check_scored_input(mats[name], name, prediction=name == "pred")


def _summaries(real: Matrix, pred: Matrix, ctrl: Matrix) -> GeneSummaries:
    return GeneSummaries(gene_means(real), gene_vars(real), gene_means(pred), gene_vars(pred), gene_means(ctrl))


def _gene_values(s: GeneSummaries, idx: np.ndarray, recs: Sequence[Metric], opts: dict) -> dict[str, float]:
    sub = s.subset(idx)
    return {m.name: m.fn(sub, **{o: opts[o] for o in m.options}) for m in recs}


def _row(
    metric: str,
    gene_set: str,
    estimate: float,
    boots: Sequence[float],
    n_genes: int,
    space: str,
    why_undefined: Callable[[], str],
    fraction: float | None = None,
    bounds: tuple[float, float] | None = None,
) -> dict:
    notes = []
    kind = INTERVALS[metric]  # the metric's record
    n_boot = len(boots)
    value = estimate
    lo = hi = float("nan")
    if not np.isfinite(estimate):
        value = float("nan")
        notes.append(why_undefined())
    elif n_boot == 0:
        notes.append("no interval: not resampled (n_bootstrap=0)")
    else:
        iv = interval(estimate, boots, kind, fraction=fraction)
        lo, hi = iv.ci_low, iv.ci_high
        if bounds is not None and np.isfinite(lo):  # a distance, count or share cannot leave its range
            lo, hi = float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))
        if not np.isfinite(lo):
            notes.append(f"no interval: defined on {iv.n_boot - iv.n_undefined} of {iv.n_boot} resamples")
        elif iv.n_undefined:
            notes.append(f"undefined on {iv.n_undefined} of {iv.n_boot} resamples (left out)")
    return {
        "metric": metric,
        "gene_set": gene_set,
        "value": value,
        "ci_low": lo,
        "ci_high": hi,
        "n_bootstrap": n_boot,
        "ci_kind": kind if np.isfinite(lo) else np.nan,  # missing, as a results file reads it back
        "note": "; ".join(notes),
        "estimate": estimate,
        "n_genes": n_genes,
        "space": space,
        "chance": float("nan"),
    }


def _weighted_summaries(x: Matrix, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene means and population variances of every bootstrap resample (rows of ``w``) at once."""
    n = x.shape[0]
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float64)
        mean = np.asarray((x.T @ w.T).T) / n
        sq = np.asarray((x.multiply(x).T @ w.T).T) / n
    else:
        x = np.asarray(x, dtype=np.float64)
        mean = (w @ x) / n
        sq = (w @ (x * x)) / n
    return mean, np.clip(sq - mean**2, 0.0, None)


def _bootstrap_summaries(mats: dict[str, Matrix], n_boot: int, seed: int, paired: bool) -> Iterator[GeneSummaries]:
    """Per-gene summaries of ``n_boot`` n-out-of-n bootstrap resamples of the cells of each group.

    Works on precomputed per-cell quantities (counts times ``x`` and ``x**2``): no row indexing.
    Predicted cells reuse the control cells' draws when ``paired``. The resamples are drawn and
    summarised in chunks (:func:`~course_tools.scoring.bootstrap.bootstrap_weight_chunks`), so
    memory does not grow with ``n_boot``; the draws are those of one generator seeded with ``seed``
    (every real resample, then every control one, then every predicted one), chunked or not.
    """
    if n_boot == 0:
        return
    sizes = [mats[k].shape[0] for k in ("real", "pred", "ctrl")]
    per_resample = 8 * 9 * mats["real"].shape[1]  # mean, square and variance per gene of each group
    for w in bootstrap_weight_chunks(sizes, n_boot, seed, paired=paired, bytes_per_resample=per_resample):
        stats_ = {k: _weighted_summaries(mats[k], w[k]) for k in ("real", "pred", "ctrl")}
        for b in range(w["real"].shape[0]):
            yield GeneSummaries(
                stats_["real"][0][b],
                stats_["real"][1][b],
                stats_["pred"][0][b],
                stats_["pred"][1][b],
                stats_["ctrl"][0][b],
            )


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
    subsample_fraction: float = 0.5,
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
        another order are aligned to ``real``; different genes raise an error naming them. Each input
        must be on the log1p-normalised scale (:func:`check_scales`):
        raw counts, on any number of genes, and centred or z-scored data are refused even when all
        three agree. float16 matrices are scored in float32.
    n_top_degs
        k of the "top-k DEGs" gene set: :func:`~tutorial_lib.metrics.rank_degs` of real vs control
        (never of the predictions). Ignored when ``degs`` is given.
    n_bootstrap, subsample_fraction, seed
        ``value`` is always the estimate on all cells; ``ci_low``/``ci_high`` is a 95% interval
        from ``n_bootstrap`` resamples, by the scheme :data:`INTERVALS` names for each metric
        (:mod:`course_tools.scoring.bootstrap` explains each): per-gene metrics, an n-out-of-n
        bootstrap of cells (basic interval, which corrects for the bias of R²- and MSE-type
        metrics under resampling); ``e_distance`` and ``mmd``, subsamples of
        ``subsample_fraction`` of each group's cells without replacement, rescaled by
        ``sqrt(f/(1-f))`` (basic interval; at the default 0.5 the factor is 1). Coverage of both
        checked by simulation (``tests/test_metrics_bootstrap.py``). ``n_bootstrap=0``: no
        interval; more than :data:`~course_tools.scoring.bootstrap.MANY_RESAMPLES` warn (resamples
        are processed in chunks of bounded memory). ``seed``: an integer from 0 to ``2**32 - 1``
        (:func:`~tutorial_lib.config.check_seed`). Same seed, same table.
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
        Bootstrap resamples for the DEG overlap metrics (each reruns two Wilcoxon tests, so fewer
        than ``n_bootstrap``; 0 for none); the interval is ``estimate ± t * se`` over them
        (``"normal"`` in :mod:`~course_tools.scoring.bootstrap`). Real, control and predicted cells
        are all resampled and the real top-k list is re-ranked on each resample (by
        :func:`~tutorial_lib.metrics.rank_degs`, k = the number of DEGs), so the interval carries
        the sampling noise of the real DEG list too. When predicted and control cells do not
        differ at all (every score 0) no gene ranks above another and the overlap is reported as
        undefined.
    paired
        Resample predicted and control cells with the same indices (each predicted cell made from
        one control cell). Default: paired when both groups have the same number of cells. This
        keeps a control-as-prediction baseline at exactly zero change in every resample.
    e_estimator, mmd_estimator, mmd_bandwidths, kde_measure
        Options of the metrics that name them in their record (``Metric.options``). Passed to
        :func:`~tutorial_lib.metrics.e_distance`, :func:`~course_tools.scoring.pairwise.mmd` and
        :func:`~course_tools.scoring.kde.mean_var_kde_distance`. MMD bandwidths default to the
        median heuristic on real + control cells (not predictions), so every model of a comparison
        gets the same kernel.
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
        n_bootstrap, note, estimate, n_genes, space``. ``gene_set`` is ``"all"`` or ``"top{k}_degs"``;
        cell-level distances are reported under ``"all"`` (their space in ``space``). Metrics: one
        row set per :class:`~course_tools.scoring.registry.Metric` registered (in registration
        order within each level: per-gene, cells, DEGs); built in: ``r2_pearson_mean``,
        ``r2_score_mean``, ``r2_pearson_var``, ``r2_score_var``, ``pearson_delta``, ``mse_mean``,
        ``mean_var_kde_distance`` (per gene set), ``e_distance``, ``mmd``, ``deg_overlap_by_change``,
        ``deg_jaccard_by_change`` (with their chance level in ``chance``). A value that is undefined (e.g.
        ``pearson_delta`` of a prediction with no change) is NaN with the reason in ``note``;
        ``note`` is never empty where a number is NaN.
    """
    n_bootstrap = check_n_boot(n_bootstrap, "n_bootstrap")
    n_bootstrap_degs = check_n_boot(n_bootstrap_degs, "n_bootstrap_degs")
    seed = check_seed(seed)
    opts = {"kde_measure": kde_measure, "e_estimator": e_estimator, "mmd_estimator": mmd_estimator}
    for m in list_metrics():
        unknown = [o for o in m.options if o not in opts]
        if unknown:
            raise ValueError(f"metric {m.name!r} asks for options {unknown}; evaluate() passes on only {list(opts)}")
    mats, genes = aligned_matrices({"real": real, "pred": pred, "ctrl": ctrl}, var_names=var_names)
    check_scales(mats, "evaluate(real, pred, ctrl)")
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

    # per-gene metrics, on all cells and on bootstrap resamples
    gene_recs = list_metrics("genes")
    full = _summaries(mats["real"], mats["pred"], mats["ctrl"])
    est = {gs: _gene_values(full, idx, gene_recs, opts) for gs, idx in gene_sets.items()}
    boots: dict[str, dict[str, list[float]]] = {gs: {m.name: [] for m in gene_recs} for gs in gene_sets}
    for s in _bootstrap_summaries(mats, n_bootstrap, seed, paired):
        for gs, idx in gene_sets.items():
            for m, v in _gene_values(s, idx, gene_recs, opts).items():
                boots[gs][m].append(v)
    for gs, idx in gene_sets.items():
        for m in gene_recs:
            rows.append(
                _row(
                    m.name,
                    gs,
                    est[gs][m.name],
                    boots[gs][m.name],
                    idx.size,
                    "genes",
                    lambda m=m, idx=idx: m.why_undefined(full.subset(idx)),
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
    dist_sizes = [z["real"].shape[0], z["pred"].shape[0]]
    if n_bootstrap and min(dist_sizes) < 3:
        raise DataValidationError(f"subsampling intervals need at least 3 cells per group, got {dist_sizes}")
    cell_recs = list_metrics("cells")
    d_b: dict[str, list[float]] = {m.name: [] for m in cell_recs}
    if n_bootstrap:  # the subsamples in chunks of bounded memory, each scored by every metric
        for masks in subsample_mask_chunks(dist_sizes, n_bootstrap, subsample_fraction, seed + 1):
            for m in cell_recs:
                d_b[m.name].extend(cache.statistic_many(m.fn, *masks, opts[m.options[0]]))
    for m in cell_recs:
        estimator = opts[m.options[0]]
        d_est = cache.statistic(m.fn, all_r, all_p, estimator)
        frac = subsample_fraction
        rows.append(
            _row(
                m.name, "all", d_est, d_b[m.name], genes.size, sp_.name, m.why_undefined, fraction=frac, bounds=m.bounds
            )
        )

    # DEG overlap: the prediction's k genes of largest predicted mean change against the real top-k DEGs
    deg_recs = list_metrics("degs")
    k = len(deg_list)
    pred_change = pd.Series(full.pred_mean - full.ctrl_mean, index=genes)
    no_change = has_no_change(pred_change)
    pred_degs = [] if no_change else top_k(pred_change, k, deg_direction)
    deg_b: dict[str, list[float]] = {m.name: [] for m in deg_recs}
    if not no_change:
        for ir, ip, ic in resample_indices(sizes, n_bootstrap_degs, seed + 2, pairs):
            change_b = pd.Series(gene_means(mats["pred"][ip]) - gene_means(mats["ctrl"][ic]), index=genes)
            if has_no_change(change_b):
                for m in deg_recs:
                    deg_b[m.name].append(float("nan"))
                continue
            d = top_k(change_b, k, deg_direction)
            # a given DEG list is fixed; a ranked one is re-ranked on the same resample of real cells
            ref = (
                deg_list
                if degs is not None
                else rank_degs(mats["real"][ir], mats["ctrl"][ic], k=k, var_names=genes, direction=deg_direction)
            )
            for m in deg_recs:
                deg_b[m.name].append(m.fn(d, ref))
    for m in deg_recs:
        value = float("nan") if no_change else m.fn(pred_degs, deg_list)
        row = _row(m.name, deg_set_name, value, deg_b[m.name], k, "genes", m.why_undefined, bounds=m.bounds)
        row["chance"] = m.chance(k, genes.size) if m.chance is not None else float("nan")
        rows.append(row)

    table = pd.DataFrame(rows, columns=COLUMNS)
    table["n_bootstrap"] = table["n_bootstrap"].astype(int)
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
