"""Figures of modules 00-02: the data, trained models and their scores.

Each function draws on ``ax`` (a new figure when ``None``) and returns its Axes, or the Figure of
a multi-panel plot. UMAP and PCA views are for display only: their distances are not metrics.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED, DataValidationError
from tutorial_lib.metrics import SharedSpace, gene_means, gene_vars, r2_pearson, r2_score
from tutorial_lib.metrics._inputs import CellsLike, aligned_matrices, subsample_rows, to_dense

ISG_GENES = ["ISG15", "IFIT1", "IFIT3", "MX1", "IFI6", "ISG20"]
"""Interferon-stimulated genes shown in the course's figures."""


def get_ax(ax: Axes | None, figsize: tuple[float, float] = (4.5, 4.5)) -> Axes:
    """``ax`` itself, or the axes of a new figure of size ``figsize``."""
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def _scatter_groups(ax: Axes, xy: np.ndarray, labels: Sequence[str], size: float, rank: bool = False) -> None:
    """One colour per label (sorted when ``rank``, else in order of appearance), its count in the legend."""
    labels = np.asarray(labels)
    names = sorted(set(labels)) if rank else list(dict.fromkeys(labels))
    for i, name in enumerate(names):
        m = labels == name
        label = f"{name} (n={m.sum()})"
        ax.scatter(*xy[m].T, s=size, alpha=0.6, color=plt.cm.tab10(i % 10), label=label, rasterized=True)


def umap_overview(
    adata: AnnData,
    color: Sequence[str] = (CONDITION_KEY, CELL_TYPE_KEY),
    *,
    max_cells: int | None = 6000,
    seed: int = 0,
) -> Figure:
    """UMAP of log-normalised cells, one panel per categorical ``obs`` key in ``color``.

    Seeded PCA (30 components) then a seeded UMAP (umap-learn, 15 neighbours) on at most
    ``max_cells`` cells (a seeded subsample); the input is not modified.
    """
    import umap
    from sklearn.decomposition import TruncatedSVD

    idx = subsample_rows(adata.n_obs, max_cells, np.random.default_rng(seed))
    x = to_dense(adata.X[idx])
    x = x - x.mean(axis=0)
    pcs = TruncatedSVD(n_components=int(min(30, min(x.shape) - 1)), random_state=seed).fit_transform(x)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random_state.*")
        emb = umap.UMAP(n_neighbors=15, random_state=seed).fit_transform(pcs)
    fig, axes = plt.subplots(1, len(color), figsize=(6.0 * len(color), 4.8), squeeze=False)
    for ax, key in zip(axes[0], color):
        _scatter_groups(ax, emb, adata.obs[key].astype(str).to_numpy()[idx], size=2, rank=True)
        ax.set(xticks=[], yticks=[], xlabel="UMAP 1", ylabel="UMAP 2")
        ax.set_title(f"UMAP coloured by {key} ({len(idx)} cells)")
        ax.legend(fontsize=7, markerscale=4, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def response_by_cell_type(adata: AnnData, genes: Sequence[str] = ISG_GENES) -> pd.DataFrame:
    """Mean log-expression change (stimulated − control) of ``genes`` per cell type (cell types × genes)."""
    frame = pd.DataFrame(to_dense(adata[:, list(genes)].X), columns=list(genes))
    frame["cell_type"] = adata.obs[CELL_TYPE_KEY].astype(str).to_numpy()
    frame["condition"] = adata.obs[CONDITION_KEY].astype(str).to_numpy()
    means = frame.groupby(["cell_type", "condition"]).mean()
    return means.xs(STIMULATED, level="condition") - means.xs(CONTROL, level="condition")


def response_heatmap(change: pd.DataFrame, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Heatmap of a cell types × genes table of expression changes (e.g. :func:`response_by_cell_type`)."""
    ax = get_ax(ax, figsize=(1.0 + 0.7 * change.shape[1], 1.0 + 0.4 * change.shape[0]))
    lim = float(np.nanmax(np.abs(change.to_numpy()))) or 1.0
    im = ax.imshow(change.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(change.shape[1]), change.columns, rotation=45, ha="right")
    ax.set_yticks(range(change.shape[0]), change.index)
    for (i, j), v in np.ndenumerate(change.to_numpy()):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7, color="white" if abs(v) > lim / 2 else "black")
    ax.figure.colorbar(im, ax=ax, label="mean log1p change (stimulated − control)")
    ax.set_title(title or "Interferon response per cell type")
    return ax


def training_curves(history, ax: Axes | None = None, title: str = "Training curve") -> Axes:
    """Training and validation loss per epoch (``model.history_`` or its ``to_frame()``)."""
    if hasattr(history, "to_frame"):
        history = history.to_frame()
    if "epoch" not in history.columns and history.index.name == "epoch":
        history = history.reset_index()
    ax = get_ax(ax, figsize=(5, 3.5))
    ax.plot(history["epoch"], history["train_loss"], marker="o", ms=3, label="training")
    if history["val_loss"].notna().any():
        ax.plot(history["epoch"], history["val_loss"], marker="o", ms=3, label="validation")
    ax.set(xlabel="epoch", ylabel="loss per cell", title=title)
    ax.legend()
    return ax


def attention_heatmap(by_cell_type: pd.DataFrame, ax: Axes | None = None, max_targets: int = 60, seed: int = 0) -> Axes:
    """Attention mass of target cells (rows, a seeded sample) on reference cell types (columns)."""
    n = by_cell_type.shape[0]
    data = by_cell_type.iloc[np.sort(np.random.default_rng(seed).choice(n, size=min(max_targets, n), replace=False))]
    ax = get_ax(ax, figsize=(1.5 + 0.6 * data.shape[1], 4.5))
    im = ax.imshow(data.to_numpy(), cmap="magma", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(data.shape[1]), data.columns, rotation=45, ha="right")
    ax.set(yticks=[], ylabel=f"target cells ({data.shape[0]} of {n})")
    ax.figure.colorbar(im, ax=ax, label="attention weight (row sums to 1)")
    ax.set_title("Which training cell types each target attends to")
    return ax


def ot_matching_plot(
    z_ctrl: np.ndarray,
    z_stim: np.ndarray,
    partner: np.ndarray,
    ax: Axes | None = None,
    n_pairs: int = 150,
    seed: int = 0,
) -> Axes:
    """Matched control→stimulated pairs in the first two principal components of the latents.

    ``partner[i]`` is the index in ``z_stim`` matched to control cell ``i``; a seeded sample of
    ``n_pairs`` pairs is drawn as arrows.
    """
    pooled = np.vstack([z_ctrl, z_stim])
    centre = pooled.mean(axis=0)
    vt = np.linalg.svd(pooled - centre, full_matrices=False)[2][:2].T
    pc, ps = (z_ctrl - centre) @ vt, (z_stim - centre) @ vt
    ax = get_ax(ax, figsize=(5, 4.5))
    ax.scatter(*pc.T, s=3, alpha=0.3, color="#7f7f7f", label="training control", rasterized=True)
    ax.scatter(*ps.T, s=3, alpha=0.3, color="#1f77b4", label="training stimulated", rasterized=True)
    for i in np.random.default_rng(seed).choice(len(partner), size=min(n_pairs, len(partner)), replace=False):
        arrow = {"arrowstyle": "->", "lw": 0.5, "color": "#d62728", "alpha": 0.6}
        ax.annotate("", xy=ps[partner[i]], xytext=pc[i], arrowprops=arrow)
    ax.set(xlabel="latent PC1", ylabel="latent PC2", title="Optimal-transport matches (arrows: control → stimulated)")
    ax.legend(fontsize=7, markerscale=3)
    return ax


def delta_spread_hist(spread: np.ndarray, ax: Axes | None = None, bins: int = 30) -> Axes:
    """Histogram of each cell's distance from the mean latent delta (:func:`~tutorial_lib.analysis.delta_spread`).

    One bar at 0 for one shared delta (scGen, scPRAM as released); a spread for per-cell deltas
    (the course's ``variant="percell"``).
    """
    spread = np.asarray(spread, dtype=np.float64).ravel()
    if spread.size == 0 or not np.all(np.isfinite(spread)):
        raise ValueError("spread must be a non-empty vector of finite distances (delta_spread's output)")
    ax = get_ax(ax, figsize=(5, 3.5))
    ax.hist(spread, bins=bins, color="#d62728")
    ax.set(xlabel="distance of a cell's delta from the mean delta (latent units)", ylabel="held-out control cells")
    ax.set_title("Per-cell heterogeneity of scPRAM's deltas")
    return ax


def _summary_scatter(real, pred, stat, degs, n_labels=5, ax=None, title=None, var_names=None) -> Axes:
    mats, genes = aligned_matrices({"real": real, "pred": pred}, var_names=var_names)
    f = gene_means if stat == "mean" else gene_vars
    x, y = f(mats["real"]), f(mats["pred"])
    ax = get_ax(ax)
    is_deg = np.isin(genes, list(degs)) if degs else np.zeros(genes.size, bool)

    def r2s(m) -> str:
        vals = {"Pearson²": r2_pearson(x[m], y[m]), "CoD": r2_score(x[m], y[m])}
        return ", ".join(f"R²({k}) = " + (f"{v:.3f}" if np.isfinite(v) else "undefined") for k, v in vals.items())

    ax.scatter(x[~is_deg], y[~is_deg], s=6, c="#b0b0b0", alpha=0.6, label="all genes", rasterized=True)
    lines = [f"all: {r2s(slice(None))}"]
    if is_deg.any():
        ax.scatter(x[is_deg], y[is_deg], s=14, c="#d62728", label=f"top {int(is_deg.sum())} DEGs")
        lines.append(f"DEGs: {r2s(is_deg)}")
        pos = {g: i for i, g in enumerate(genes)}
        for g in [g for g in degs if g in pos][:n_labels]:
            ax.annotate(str(g), (x[pos[g]], y[pos[g]]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    ax.plot([lo, hi], [lo, hi], ls="--", lw=0.8, c="k", label="y = x")
    word = "mean" if stat == "mean" else "variance"
    ax.set(xlabel=f"real {word} per gene", ylabel=f"predicted {word} per gene")
    ax.set_title((title + "\n" if title else "") + "\n".join(lines), fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    return ax


def mean_scatter(real: CellsLike, pred: CellsLike, degs: Sequence[str] | None = None, **kwargs) -> Axes:
    """Predicted against real mean of each gene (AnnData or matrices), one dot per gene.

    All genes in grey, ``degs`` in red (the first ``n_labels=5`` named), the line y = x, and in the
    title both R² on all genes and on the DEGs: ``r2_pearson`` (squared Pearson, the convention of
    scGen and scPRAM) and ``r2_score`` (coefficient of determination, CoD). Other keywords: ``ax``,
    ``title``, ``var_names`` (gene names of plain matrices).
    """
    return _summary_scatter(real, pred, "mean", degs, **kwargs)


def var_scatter(real: CellsLike, pred: CellsLike, degs: Sequence[str] | None = None, **kwargs) -> Axes:
    """:func:`mean_scatter` of per-gene (population) variances."""
    return _summary_scatter(real, pred, "var", degs, **kwargs)


def embedding_plot(
    groups: Mapping[str, CellsLike],
    space: SharedSpace,
    ax: Axes | None = None,
    max_cells: int | None = 2000,
    seed: int = 0,
    var_names: Sequence[str] | None = None,
) -> Axes:
    """The cells of each group on the first two components of the comparison's shared PCA.

    ``space`` comes from :func:`~tutorial_lib.metrics.fit_shared_pca` (fitted on real cells only).
    At most ``max_cells`` cells per group are drawn.
    """
    if not groups:
        raise DataValidationError("embedding_plot needs at least one group")
    if space.components is None:
        raise DataValidationError("embedding_plot needs a PCA space (fit_shared_pca), not the gene space")
    rng = np.random.default_rng(seed)
    coords = []
    for cells in groups.values():
        z = space.transform(cells, var_names=var_names)
        coords.append(z[subsample_rows(z.shape[0], max_cells, rng)])
    pooled, labels = np.vstack(coords), np.repeat(list(groups), [len(z) for z in coords])
    ax = get_ax(ax)
    _scatter_groups(ax, pooled[:, :2], labels, size=4)
    ax.set(xlabel=f"PC1 ({100 * space.explained_variance_ratio[0]:.1f}%)")
    ax.set(ylabel=f"PC2 ({100 * space.explained_variance_ratio[1]:.1f}%)")
    ax.set_title(f"shared {space.name} space", fontsize=9)
    ax.legend(fontsize=7, markerscale=3)
    return ax


def distance_heatmap(
    distances: pd.DataFrame,
    ax: Axes | None = None,
    cmap: str = "viridis",
    title: str = "E-distance",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Axes:
    """Heatmap of a square table, e.g. :func:`~tutorial_lib.metrics.pairwise_e_distance` or correlations.

    Each cell is annotated with its value; ``vmin``/``vmax`` fix the colour scale
    (default: this table's range), so that two heatmaps can share one.
    """
    if distances.shape[0] != distances.shape[1] or list(distances.index) != list(distances.columns):
        raise DataValidationError("distances must be a square table with the same labels on rows and columns")
    n = len(distances)
    ax = get_ax(ax, figsize=(1.0 * n + 2, 0.9 * n + 1.5))
    vals = distances.to_numpy(float)
    im = ax.imshow(vals, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    labels = [str(x) for x in distances.index]
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    mid = np.mean(im.get_clim())  # white text on the dark lower half of the scale
    for (i, j), v in np.ndenumerate(vals):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < mid else "black")
    ax.set_title(title, fontsize=9)
    return ax


def deg_dotplot(
    groups: Mapping[str, CellsLike],
    genes: Sequence[str],
    threshold: float = 0.0,
    ax: Axes | None = None,
    var_names: Sequence[str] | None = None,
) -> Axes:
    """Dot plot of genes (columns) × groups of cells (rows), as ``scanpy.pl.dotplot``.

    Dot size: fraction of cells with expression above ``threshold`` (predictions are continuous, so
    "expressing" means above it); colour: mean expression. ``groups`` maps labels (e.g. "control",
    "scGen") to AnnData or matrices on the same genes.
    """
    genes = [str(g) for g in genes]
    if not groups or not genes:
        raise DataValidationError("deg_dotplot needs at least one group and one gene")
    mats, names = aligned_matrices(dict(groups), var_names=var_names)
    pos = {g: i for i, g in enumerate(names)}
    missing = [g for g in genes if g not in pos]
    if missing:
        raise DataValidationError(f"{len(missing)} gene(s) not in the data: {missing[:5]}")
    subs = [to_dense(x[:, [pos[g] for g in genes]]) for x in mats.values()]
    frac = np.array([(s > threshold).mean(axis=0) for s in subs])
    mean = np.array([s.mean(axis=0) for s in subs])
    ax = get_ax(ax, figsize=(0.35 * len(genes) + 2.5, 0.45 * len(mats) + 1.5))
    gx, gy = np.meshgrid(np.arange(len(genes)), np.arange(len(mats)))
    dots = ax.scatter(gx.ravel(), gy.ravel(), s=150 * frac.ravel(), c=mean.ravel(), cmap="Reds", ec="k", lw=0.3)
    ax.figure.colorbar(dots, ax=ax, label="mean expression", fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(genes)), genes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(mats)), list(mats))
    ax.set(xlim=(-0.6, len(genes) - 0.4), ylim=(len(mats) - 0.5, -0.5))
    for f in (0.25, 0.5, 1.0):
        ax.scatter([], [], s=150 * f, c="w", ec="k", label=f"{int(f * 100)}%")
    ax.legend(title="expressing", fontsize=7, loc="upper left", bbox_to_anchor=(1.25, 1), frameon=False)
    return ax


def metric_bars(
    table: pd.DataFrame,
    metric: str,
    gene_set: str | None = "all",
    ax: Axes | None = None,
    *,
    lower_is_better: Collection[str] | None = None,
) -> Axes:
    """One bar per ``method`` of a scores table: ``value`` with its interval ``[ci_low, ci_high]``.

    ``table`` has one row per method, metric and gene set (e.g.
    ``course_tools.benchmark.evaluate_methods``'s output). A NaN value is an empty slot labelled
    "undefined" (the reason is in its ``note``). The y label says which direction is better when
    the caller names the metrics where lower is better (``lower_is_better``, e.g. the metric
    registry's ``LOWER_IS_BETTER``) or the table has a boolean ``lower_is_better`` column.
    """
    sub = table[table["metric"] == metric]
    if gene_set is not None and "gene_set" in sub.columns:
        sub = sub[sub["gene_set"] == gene_set]
    if sub.empty:
        have = sorted(set(zip(table["metric"], table.get("gene_set", [None] * len(table)))))
        raise DataValidationError(f"no rows for metric {metric!r}, gene_set {gene_set!r}; available: {have[:12]}")
    if sub["method"].duplicated().any():
        raise DataValidationError(f"several rows per method for {metric!r}, {gene_set!r}: filter the table")
    ax = get_ax(ax, figsize=(max(3.5, 0.9 * len(sub) + 1.5), 3.5))
    val, lo, hi = (sub[c].to_numpy(float) for c in ("value", "ci_low", "ci_high"))
    # clipped: the bootstrap mean of identical resamples can exceed their percentile by rounding
    err = np.clip([np.where(np.isfinite(lo), val - lo, 0), np.where(np.isfinite(hi), hi - val, 0)], 0, None)
    xs = np.arange(len(sub))
    ax.bar(xs, np.nan_to_num(val), width=0.76, yerr=np.nan_to_num(err), capsize=3)
    for x in xs[~np.isfinite(val)]:
        ax.text(x, 0, "undefined", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(xs, sub["method"], rotation=30, ha="right")
    if lower_is_better is None and "lower_is_better" in sub.columns:
        lower_is_better = {metric} if sub["lower_is_better"].iloc[0] else set()
    if lower_is_better is not None:
        better = "lower is better ↓" if metric in lower_is_better else "higher is better ↑"
    ax.set_ylabel(metric if lower_is_better is None else f"{metric}\n({better})", fontsize=8)
    ax.set_title(metric + (f" ({gene_set})" if gene_set else ""), fontsize=9)
    return ax


def metric_bar_grid(
    table: pd.DataFrame,
    metrics: Sequence[tuple[str, str | None]] | None = None,
    ncols: int = 3,
    *,
    lower_is_better: Collection[str] | None = None,
) -> Figure:
    """A grid of :func:`metric_bars`, one panel per ``(metric, gene_set)`` (default: all in ``table``)."""
    metrics = list(dict.fromkeys(zip(table["metric"], table["gene_set"]))) if metrics is None else list(metrics)
    if not metrics:
        raise DataValidationError("no metrics to plot")
    ncols = min(ncols, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.5 * nrows), squeeze=False)
    for ax, (m, gs) in zip(axes.ravel(), metrics):
        metric_bars(table, m, gs, ax=ax, lower_is_better=lower_is_better)
    for ax in axes.ravel()[len(metrics) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
