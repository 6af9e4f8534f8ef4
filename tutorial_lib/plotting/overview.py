"""Overview figures of the data and of trained models (used by the teaching notebooks)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED, require_obs_keys
from tutorial_lib.plotting._common import get_ax

ISG_GENES = ["ISG15", "IFIT1", "IFIT3", "MX1", "IFI6", "ISG20"]
"""Interferon-stimulated genes shown in the course's figures."""


def umap_overview(
    adata: AnnData,
    color: Sequence[str] = (CONDITION_KEY, CELL_TYPE_KEY),
    *,
    n_pcs: int = 30,
    max_cells: int | None = 6000,
    seed: int = 0,
) -> Figure:
    """UMAP of log-normalised cells, one panel per categorical ``obs`` key in ``color``.

    Seeded PCA (``n_pcs`` components) then a seeded UMAP (umap-learn, 15 neighbours) on at most
    ``max_cells`` cells (a seeded subsample); the input is not modified. For display only:
    UMAP distances are not metrics.
    """
    import umap
    from sklearn.decomposition import TruncatedSVD

    require_obs_keys(adata, list(color))
    rng = np.random.default_rng(seed)
    idx = np.arange(adata.n_obs)
    if max_cells is not None and adata.n_obs > max_cells:
        idx = np.sort(rng.choice(adata.n_obs, size=max_cells, replace=False))
    x = adata.X[idx]
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    x = x - x.mean(axis=0)
    n_comps = int(min(n_pcs, min(x.shape) - 1))
    pcs = TruncatedSVD(n_components=n_comps, random_state=seed).fit_transform(x)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random_state.*")
        emb = umap.UMAP(n_neighbors=15, random_state=seed).fit_transform(pcs)
    fig, axes = plt.subplots(1, len(color), figsize=(6.0 * len(color), 4.8), squeeze=False)
    for ax, key in zip(axes[0], color):
        labels = adata.obs[key].astype(str).to_numpy()[idx]
        for i, label in enumerate(sorted(set(labels))):
            mask = labels == label
            ax.scatter(
                emb[mask, 0],
                emb[mask, 1],
                s=2,
                alpha=0.6,
                color=plt.cm.tab10(i % 10),
                label=f"{label} ({mask.sum()})",
                rasterized=True,
            )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        ax.set_title(f"UMAP coloured by {key} ({len(idx)} cells)")
        ax.legend(fontsize=7, markerscale=4, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def response_by_cell_type(
    adata: AnnData,
    genes: Sequence[str] = ISG_GENES,
    *,
    condition_key: str = CONDITION_KEY,
    cell_type_key: str = CELL_TYPE_KEY,
) -> pd.DataFrame:
    """Mean log-expression change (stimulated − control) of ``genes`` per cell type (cell types × genes)."""
    require_obs_keys(adata, [condition_key, cell_type_key])
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise KeyError(f"genes not in var_names: {missing}")
    x = adata[:, list(genes)].X
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    frame = pd.DataFrame(x, columns=list(genes))
    frame["cell_type"] = adata.obs[cell_type_key].astype(str).to_numpy()
    frame["condition"] = adata.obs[condition_key].astype(str).to_numpy()
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
    for col in ("epoch", "train_loss", "val_loss"):
        if col not in history.columns:
            raise KeyError(f"history has no column {col!r}; pass model.history_.to_frame()")
    ax = get_ax(ax, figsize=(5, 3.5))
    ax.plot(history["epoch"], history["train_loss"], marker="o", ms=3, label="training")
    if history["val_loss"].notna().any():
        ax.plot(history["epoch"], history["val_loss"], marker="o", ms=3, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per cell")
    ax.set_title(title)
    ax.legend()
    return ax


def attention_heatmap(
    by_cell_type: pd.DataFrame,
    ax: Axes | None = None,
    max_targets: int = 60,
    seed: int = 0,
) -> Axes:
    """Attention mass of target cells (rows, a seeded sample) on reference cell types (columns)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(by_cell_type.shape[0], size=min(max_targets, by_cell_type.shape[0]), replace=False))
    data = by_cell_type.iloc[rows]
    ax = get_ax(ax, figsize=(1.5 + 0.6 * data.shape[1], 4.5))
    im = ax.imshow(data.to_numpy(), cmap="magma", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(data.shape[1]), data.columns, rotation=45, ha="right")
    ax.set_ylabel(f"target cells ({data.shape[0]} of {by_cell_type.shape[0]})")
    ax.set_yticks([])
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
    _, _, vt = np.linalg.svd(pooled - centre, full_matrices=False)
    proj = lambda z: (z - centre) @ vt[:2].T  # noqa: E731
    pc, ps = proj(z_ctrl), proj(z_stim)
    ax = get_ax(ax, figsize=(5, 4.5))
    ax.scatter(pc[:, 0], pc[:, 1], s=3, alpha=0.3, color="#7f7f7f", label="training control", rasterized=True)
    ax.scatter(ps[:, 0], ps[:, 1], s=3, alpha=0.3, color="#1f77b4", label="training stimulated", rasterized=True)
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(partner), size=min(n_pairs, len(partner)), replace=False):
        a, b = pc[i], ps[partner[i]]
        ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "->", "lw": 0.5, "color": "#d62728", "alpha": 0.6})
    ax.set_xlabel("latent PC1")
    ax.set_ylabel("latent PC2")
    ax.set_title("Optimal-transport matches (arrows: control → stimulated)")
    ax.legend(fontsize=7, markerscale=3)
    return ax


def delta_spread_hist(spread: np.ndarray, ax: Axes | None = None, bins: int = 30) -> Axes:
    """Histogram of each cell's distance from the mean latent delta (:func:`~tutorial_lib.analysis.delta_spread`).

    One bar at 0 for a method with one shared delta (scGen, scPRAM as released); a spread for
    per-cell deltas (the course's ``variant="percell"``).
    """
    spread = np.asarray(spread, dtype=np.float64).ravel()
    if spread.size == 0 or not np.all(np.isfinite(spread)):
        raise ValueError("spread must be a non-empty vector of finite distances (delta_spread's output)")
    ax = get_ax(ax, figsize=(5, 3.5))
    ax.hist(spread, bins=bins, color="#d62728")
    ax.set_xlabel("distance of a cell's delta from the mean delta (latent units)")
    ax.set_ylabel("held-out control cells")
    ax.set_title("Per-cell heterogeneity of scPRAM's deltas")
    return ax
