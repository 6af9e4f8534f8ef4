"""Control, real and predicted cells in one shared embedding."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from matplotlib.axes import Axes

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics._inputs import CellsLike, subsample_rows
from tutorial_lib.metrics.space import SharedSpace
from tutorial_lib.plotting._common import get_ax


def embedding_plot(
    groups: Mapping[str, CellsLike],
    space: SharedSpace,
    method: Literal["pca", "umap"] = "pca",
    ax: Axes | None = None,
    max_cells: int | None = 2000,
    seed: int = 0,
    components: tuple[int, int] = (0, 1),
    colors: Sequence[str] | None = None,
    var_names: Sequence[str] | None = None,
) -> Axes:
    """Scatter of the cells of each group in the shared space (one colour per group).

    ``space`` is the :class:`~tutorial_lib.metrics.SharedSpace` of the comparison (fitted on real
    cells only). ``method="pca"`` plots two of its components; ``method="umap"`` runs UMAP (needs
    ``umap-learn``, seeded) on the pooled coordinates of all groups, for display only (UMAP
    distances are not metrics). At most ``max_cells`` cells per group are drawn.
    """
    if not groups:
        raise DataValidationError("embedding_plot needs at least one group")
    rng = np.random.default_rng(seed)
    coords = {}
    for name, cells in groups.items():
        z = space.transform(cells, var_names=var_names)
        coords[name] = z[subsample_rows(z.shape[0], max_cells, rng)]
    if method == "pca":
        if space.components is None:
            raise DataValidationError("method='pca' needs a PCA space (fit_shared_pca), not the gene space")
        a, b = components
        xy = {k: v[:, [a, b]] for k, v in coords.items()}
        ratio = space.explained_variance_ratio
        labels = [f"PC{a + 1} ({100 * ratio[a]:.1f}%)", f"PC{b + 1} ({100 * ratio[b]:.1f}%)"]
    elif method == "umap":
        try:
            import umap
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("method='umap' needs umap-learn: pip install umap-learn") from err
        pooled = np.vstack(list(coords.values()))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
            emb = umap.UMAP(random_state=seed, n_neighbors=min(15, pooled.shape[0] - 1)).fit_transform(pooled)
        splits = np.cumsum([v.shape[0] for v in coords.values()])[:-1]
        xy = dict(zip(coords, np.split(emb, splits)))
        labels = ["UMAP 1", "UMAP 2"]
    else:
        raise ValueError(f"method must be 'pca' or 'umap', got {method!r}")
    ax = get_ax(ax)
    for i, (name, pts) in enumerate(xy.items()):
        kw = {"color": colors[i]} if colors is not None else {}
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.5, label=f"{name} (n={pts.shape[0]})", rasterized=True, **kw)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(f"shared {space.name} space" + (" - UMAP" if method == "umap" else ""), fontsize=9)
    ax.legend(fontsize=7, markerscale=3)
    return ax
