"""Each figure function draws what it promises on small data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import anndata as ad  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from course_tools.scoring.evaluate import evaluate  # noqa: E402
from tutorial_lib.data.checks import DataValidationError  # noqa: E402
from tutorial_lib.metrics import SharedSpace, fit_shared_pca, pairwise_e_distance  # noqa: E402
from tutorial_lib.plotting import (  # noqa: E402
    deg_dotplot,
    distance_heatmap,
    embedding_plot,
    mean_scatter,
    metric_bar_grid,
    metric_bars,
    var_scatter,
)

G = 30


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def cells():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 2.5, G)
    shift = np.r_[np.full(5, 1.5), np.zeros(G - 5)]
    var = pd.DataFrame(index=[f"g{i}" for i in range(G)])

    def make(mean, n):
        return ad.AnnData(np.clip(rng.normal(mean, 0.4, size=(n, G)), 0, None), var=var.copy())

    return {"control": make(base, 50), "real": make(base + shift, 40), "pred": make(base + 0.7 * shift, 50)}


def _points(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


@pytest.mark.parametrize("fn", [mean_scatter, var_scatter])
def test_scatter(cells, fn):
    degs = [f"g{i}" for i in range(5)]
    ax = fn(cells["real"], cells["pred"], degs=degs, n_labels=3)
    title = ax.get_title()
    assert title.count("R²") == 4  # both R² conventions, on all genes and on DEGs
    assert "Pearson²" in title and "CoD" in title
    pts = _points(ax)
    assert [len(p.get_offsets()) for p in pts] == [G - 5, 5]
    assert len(ax.texts) == 3
    assert {t.get_text() for t in ax.texts} == set(degs[:3])
    assert "mean" in ax.get_xlabel() if fn is mean_scatter else "variance" in ax.get_xlabel()


def test_scatter_uses_given_axes_and_no_degs(cells):
    fig, ax = plt.subplots()
    out = mean_scatter(cells["real"], cells["pred"], ax=ax)
    assert out is ax and len(_points(ax)) == 1 and ax.get_title().count("R²") == 2


@pytest.fixture(scope="module")
def table(cells):
    kw = dict(n_bootstrap=5, n_bootstrap_degs=0, n_top_degs=5, n_comps=5)
    parts = []
    for name, pred in (("model", cells["pred"]), ("control baseline", cells["control"]), ("oracle", cells["real"])):
        parts.append(evaluate(cells["real"], pred, cells["control"], **kw).assign(method=name))
    return pd.concat(parts, ignore_index=True)


def test_metric_bars_one_bar_per_method(table):
    ax = metric_bars(table, "e_distance")
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["model", "control baseline", "oracle"]
    assert "e_distance" in ax.get_title()
    # error bars drawn (one errorbar container)
    assert len(ax.containers) >= 1


def test_metric_bars_undefined_is_labelled(table):
    ax = metric_bars(table, "pearson_delta", gene_set="top5_degs")
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.texts] == ["undefined"]  # the control baseline


def test_metric_bars_one_row_per_method_and_grid(table):
    two = pd.concat([table.assign(setting="a"), table.assign(setting="b")], ignore_index=True)
    with pytest.raises(DataValidationError, match="several rows"):
        metric_bars(two, "mmd")
    fig = metric_bar_grid(
        table, [("e_distance", "all"), ("mmd", "all"), ("r2_score_mean", "all"), ("deg_jaccard_by_change", "top5_degs")]
    )
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 4 and all(len(a.patches) == 3 for a in visible)
    with pytest.raises(DataValidationError, match="no rows"):
        metric_bars(table, "not_a_metric")


def test_distance_heatmap(cells):
    space = fit_shared_pca(cells["real"], cells["control"], n_comps=5)
    d = pairwise_e_distance({k: space.transform(v) for k, v in cells.items()})
    ax = distance_heatmap(d)
    assert len(ax.images) == 1
    assert len(ax.texts) == 9
    assert [t.get_text() for t in ax.get_yticklabels()] == list(cells)
    assert len(ax.figure.axes) == 2  # with a colour bar


def test_deg_dotplot(cells):
    genes = ["g0", "g1", "g2", "g10"]
    ax = deg_dotplot(cells, genes)
    dots = _points(ax)[0]
    assert len(dots.get_offsets()) == len(genes) * len(cells)
    assert [t.get_text() for t in ax.get_xticklabels()] == genes
    sizes = dots.get_sizes()
    assert sizes.max() <= 150 and sizes.min() >= 0
    with pytest.raises(DataValidationError, match="XIST"):
        deg_dotplot(cells, ["g0", "XIST"])


def test_embedding_pca(cells):
    space = fit_shared_pca(cells["real"], cells["control"], n_comps=5)
    ax = embedding_plot(cells, space, max_cells=30)
    pts = _points(ax)
    assert [len(p.get_offsets()) for p in pts] == [30, 30, 30]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["control (n=30)", "real (n=30)", "pred (n=30)"]
    assert ax.get_xlabel().startswith("PC1") and ax.get_ylabel().startswith("PC2")
    genes = SharedSpace(var_names=space.var_names, center=space.center, components=None)
    with pytest.raises(DataValidationError, match="PCA space"):
        embedding_plot(cells, genes)


def test_metric_bars_tolerates_rounding_outside_interval():
    """A bootstrap mean one ulp above its percentile (identical resamples) must still plot."""
    import pandas as pd

    from tutorial_lib.plotting import metric_bars

    v = 0.1 + 0.2
    table = pd.DataFrame(
        {
            "method": ["a", "b"],
            "metric": ["m", "m"],
            "gene_set": ["all", "all"],
            "value": [v, 0.5],
            "ci_low": [v, 0.4],
            "ci_high": [0.3, 0.6],
        }
    )
    ax = metric_bars(table, "m")
    assert len(ax.patches) == 2
