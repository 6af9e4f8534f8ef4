"""One record per metric of :func:`~course_tools.scoring.evaluate.evaluate`: the single place a metric is declared.

A :class:`Metric` names the function that computes it (the formula is documented there), the
cells or genes it sees (``level``), which direction is better, its interval scheme and why it can
be undefined. The rows of ``evaluate``, :data:`INTERVALS`, :data:`GENE_METRICS`,
:data:`LOWER_IS_BETTER` (the direction of plots, rankings and verdicts) all follow these records.
Add a metric with ``register_metric(Metric(...))`` (CONTRIBUTING.md, "Add a metric"); in a test,
``with registered(Metric(...)):``.

Levels
------
``"genes"``
    ``fn(s, **options) -> float`` on the :class:`GeneSummaries` of one gene set; one row per gene
    set (``"all"`` and the DEGs). Interval: n-out-of-n bootstrap of cells (``"basic"``).
``"cells"``
    ``fn`` is a :class:`~course_tools.scoring.pairwise.PairDistance` between real and predicted
    cells in the shared space; one row, gene set ``"all"``. Interval: subsampling (``"subsample"``).
``"degs"``
    ``fn(pred_degs, real_degs) -> float`` on the real top-k DEGs (Wilcoxon, real stimulated vs
    control) and the prediction's k genes of largest mean change from control; one row, with the
    value a random list of k genes reaches on average (``chance``). Interval: few bootstrap
    resamples (``"normal"``), clipped to the metric's ``bounds``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import hypergeom

from course_tools.scoring.bootstrap import INTERVAL_KINDS
from course_tools.scoring.kde import mean_var_kde_distance
from course_tools.scoring.pairwise import ENERGY, RBF_MMD
from tutorial_lib.metrics import means as mm
from tutorial_lib.metrics.degs import deg_jaccard, deg_overlap_count

Level = Literal["genes", "cells", "degs"]

#: The interval each level carries by default (schemes in :mod:`course_tools.scoring.bootstrap`).
DEFAULT_INTERVAL = {"genes": "basic", "cells": "subsample", "degs": "normal"}


@dataclass(frozen=True)
class GeneSummaries:
    """Per-gene summaries of one gene set: what a ``"genes"`` metric sees.

    Means and population variances over cells of the real stimulated, predicted and control cells,
    one entry per gene of the set (all cells, or one bootstrap resample of them).
    """

    real_mean: np.ndarray
    real_var: np.ndarray
    pred_mean: np.ndarray
    pred_var: np.ndarray
    ctrl_mean: np.ndarray

    def subset(self, idx: np.ndarray) -> GeneSummaries:
        """The same summaries for the genes ``idx``."""
        return GeneSummaries(
            self.real_mean[idx], self.real_var[idx], self.pred_mean[idx], self.pred_var[idx], self.ctrl_mean[idx]
        )


@dataclass(frozen=True)
class Metric:
    """One metric of :func:`~course_tools.scoring.evaluate.evaluate`.

    Attributes
    ----------
    name
        The ``metric`` column of the table; says what is computed (e.g. ``r2_score_mean``).
    fn
        The computation; its signature depends on ``level`` (see the module docstring). Document
        the formula in its docstring (or in the function it calls), nowhere else.
    level
        ``"genes"`` (per-gene summaries, each gene set), ``"cells"`` (a distance between cells) or
        ``"degs"`` (overlap of DEG lists).
    lower_is_better
        Direction used by plots, rankings and verdicts (default: higher is better).
    interval
        Interval scheme of :func:`~course_tools.scoring.bootstrap.interval`; default by level
        (:data:`DEFAULT_INTERVAL`), the one whose coverage was checked for that kind of statistic.
    undefined
        Why the value is NaN, for the ``note`` column: ``"genes"``: ``(s) -> str`` with the
        full-sample :class:`GeneSummaries` of the gene set; other levels: ``() -> str``. Default
        ``"undefined for these inputs"``.
    options
        Names of :func:`~course_tools.scoring.evaluate.evaluate` keyword arguments passed on to ``fn`` (for
        ``"cells"``: the one naming the U- or V-statistic, e.g. ``"e_estimator"``).
    doc
        One line for tables of metrics: what it measures, in words.
    bounds
        The range of the metric (e.g. ``(0, 1)`` for a share): interval limits are clipped to it.
    chance
        ``"degs"`` only: ``(k, n_genes) -> float``, the expected value for a random list of k of the
        n genes, printed beside the value (column ``chance`` of the table).
    """

    name: str
    fn: Callable
    level: Level = "genes"
    lower_is_better: bool = False
    interval: str | None = None
    undefined: Callable[..., str] | None = None
    options: tuple[str, ...] = ()
    doc: str = ""
    bounds: tuple[float, float] | None = None
    chance: Callable[[int, int], float] | None = None

    def __post_init__(self) -> None:
        if self.level not in DEFAULT_INTERVAL:
            raise ValueError(f"level must be one of {list(DEFAULT_INTERVAL)}, got {self.level!r}")
        if self.interval is None:
            object.__setattr__(self, "interval", DEFAULT_INTERVAL[self.level])
        if self.interval not in INTERVAL_KINDS:
            raise ValueError(f"interval must be one of {INTERVAL_KINDS}, got {self.interval!r}")
        if self.level == "cells" and len(self.options) != 1:
            raise ValueError(
                "a 'cells' metric names exactly one option: the evaluate() argument choosing its estimator"
            )

    def why_undefined(self, *args) -> str:
        """The note for a NaN value (arguments as for ``undefined``)."""
        return self.undefined(*args) if self.undefined is not None else "undefined for these inputs"


_REGISTRY: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to :func:`~course_tools.scoring.evaluate.evaluate`'s table (after the metrics of its level)."""
    if not isinstance(metric, Metric):
        raise TypeError(f"register_metric takes a Metric, got {type(metric).__name__}")
    if metric.name in _REGISTRY:
        raise ValueError(f"a metric named {metric.name!r} is already registered; unregister it first")
    _REGISTRY[metric.name] = metric
    return metric


def unregister_metric(name: str) -> Metric:
    """Remove the metric ``name`` and return its record."""
    if name not in _REGISTRY:
        raise KeyError(f"no metric named {name!r}; registered: {list(_REGISTRY)}")
    return _REGISTRY.pop(name)


@contextmanager
def registered(metric: Metric) -> Iterator[Metric]:
    """Register ``metric`` for the duration of a ``with`` block (tests, experiments)."""
    register_metric(metric)
    try:
        yield metric
    finally:
        unregister_metric(metric.name)


def get_metric(name: str) -> Metric:
    """The record of ``name``."""
    if name not in _REGISTRY:
        raise KeyError(f"no metric named {name!r}; registered: {list(_REGISTRY)}")
    return _REGISTRY[name]


def list_metrics(level: Level | None = None) -> list[Metric]:
    """Registered metrics (of one ``level``), in the order of the rows of ``evaluate``."""
    return [m for m in _REGISTRY.values() if level is None or m.level == level]


def is_lower_better(metric: str) -> bool:
    """Whether lower values of ``metric`` are better (unknown names: higher is better)."""
    m = _REGISTRY.get(metric)
    return bool(m is not None and m.lower_is_better)


class _LowerIsBetter(AbstractSet):
    """Live set of the registered metrics where lower is better."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and is_lower_better(name)

    def __iter__(self) -> Iterator[str]:
        return iter([m.name for m in _REGISTRY.values() if m.lower_is_better])

    def __len__(self) -> int:
        return sum(m.lower_is_better for m in _REGISTRY.values())

    def __repr__(self) -> str:
        return f"LOWER_IS_BETTER({sorted(self)})"


class _Intervals(Mapping):
    """Live mapping metric name -> interval scheme."""

    def __getitem__(self, name: str) -> str:
        return get_metric(name).interval

    def __iter__(self) -> Iterator[str]:
        return iter(list(_REGISTRY))

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return f"INTERVALS({dict(self)})"


class _GeneMetrics(Sequence):
    """Live list of the names of the ``"genes"`` metrics."""

    def _names(self) -> list[str]:
        return [m.name for m in list_metrics("genes")]

    def __getitem__(self, i):
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"GENE_METRICS({self._names()})"


#: Metrics where a lower value is better (derived from the records; all others: higher is better).
LOWER_IS_BETTER: AbstractSet[str] = _LowerIsBetter()
#: The interval scheme of each metric (derived from the records).
INTERVALS: Mapping[str, str] = _Intervals()
#: Names of the metrics computed on per-gene summaries, for each gene set (derived from the records).
GENE_METRICS: Sequence[str] = _GeneMetrics()


# ---------------------------------------------------------------------------------------------
# The built-in metrics, in the order of evaluate()'s table.


def _constant_note(stat: str, pearson: bool) -> Callable[[GeneSummaries], str]:
    """Why an R² of per-gene ``stat`` ("means"/"variances") is undefined."""

    def note(s: GeneSummaries) -> str:
        real, pred = (s.real_mean, s.pred_mean) if stat == "means" else (s.real_var, s.pred_var)
        if mm.is_constant(real):
            return f"undefined: real per-gene {stat} are constant across genes"
        if pearson and mm.is_constant(pred):
            return f"undefined: predicted per-gene {stat} are constant across genes"
        return "undefined for these inputs"

    return note


def pearson_delta_note(real_mean: np.ndarray, pred_mean: np.ndarray, ctrl_mean: np.ndarray) -> str:
    """Why :func:`~tutorial_lib.metrics.pearson_delta` is undefined for these means ("" when it is defined)."""
    real_mean, pred_mean, ctrl_mean = (
        np.asarray(v, dtype=np.float64).ravel() for v in (real_mean, pred_mean, ctrl_mean)
    )
    scale = mm.delta_scale(real_mean, pred_mean, ctrl_mean)
    if mm.is_constant(pred_mean - ctrl_mean, scale):
        return "undefined: prediction has no change (predicted mean - control mean is constant across genes)"
    if mm.is_constant(real_mean - ctrl_mean, scale):
        return "undefined: real data have no change from control"
    return ""


def chance_overlap(k: int, n_genes: int) -> float:
    """Expected overlap of a random list of ``k`` of ``n_genes`` genes with a fixed list of ``k``: k²/n."""
    return k * k / n_genes


def chance_jaccard(k: int, n_genes: int) -> float:
    """Expected Jaccard index of a random list of ``k`` of ``n_genes`` genes with a fixed list of ``k``.

    The overlap ``o`` is hypergeometric; the index is ``o / (2k - o)``, averaged over its distribution.
    """
    o = np.arange(k + 1)
    pmf = hypergeom(n_genes, k, k).pmf(o)
    return float(np.sum(pmf * o / (2 * k - o)))


_NO_CHANGE = "undefined: prediction has no change (its mean equals the controls' in every gene)"

for _m in (
    Metric(
        "r2_pearson_mean",
        lambda s: mm.r2_pearson(s.real_mean, s.pred_mean),
        undefined=_constant_note("means", True),
        doc="squared Pearson r of real vs predicted per-gene means",
    ),
    Metric(
        "r2_score_mean",
        lambda s: mm.r2_score(s.real_mean, s.pred_mean),
        undefined=_constant_note("means", False),
        doc="coefficient of determination of per-gene means",
    ),
    Metric(
        "r2_pearson_var",
        lambda s: mm.r2_pearson(s.real_var, s.pred_var),
        undefined=_constant_note("variances", True),
        doc="squared Pearson r of real vs predicted per-gene variances",
    ),
    Metric(
        "r2_score_var",
        lambda s: mm.r2_score(s.real_var, s.pred_var),
        undefined=_constant_note("variances", False),
        doc="coefficient of determination of per-gene variances",
    ),
    Metric(
        "pearson_delta",
        lambda s: mm.pearson_delta(s.real_mean, s.pred_mean, s.ctrl_mean),
        undefined=lambda s: pearson_delta_note(s.real_mean, s.pred_mean, s.ctrl_mean),
        doc="Pearson r of predicted vs real change of per-gene means from control",
    ),
    Metric(
        "mse_mean",
        lambda s: mm.mse(s.real_mean, s.pred_mean),
        lower_is_better=True,
        undefined=_constant_note("means", False),
        doc="mean squared error of per-gene means",
    ),
    Metric(
        "mean_var_kde_distance",
        lambda s, kde_measure="js": mean_var_kde_distance(
            s.real_mean, s.real_var, s.pred_mean, s.pred_var, measure=kde_measure
        ),
        lower_is_better=True,
        options=("kde_measure",),
        undefined=_constant_note("variances", False),
        doc="distance between smoothed (mean, variance) densities of genes",
    ),
    Metric(
        "e_distance",
        ENERGY,
        level="cells",
        lower_is_better=True,
        options=("e_estimator",),
        doc="energy distance between real and predicted cells in the shared space",
        bounds=(0.0, np.inf),
    ),
    Metric(
        "mmd",
        RBF_MMD,
        level="cells",
        lower_is_better=True,
        options=("mmd_estimator",),
        doc="squared MMD (RBF mixture) between real and predicted cells in the shared space",
        bounds=(0.0, np.inf),
    ),
    Metric(
        "deg_overlap_by_change",
        lambda pred, real: float(deg_overlap_count(pred, real)),
        level="degs",
        undefined=lambda: _NO_CHANGE,
        doc="number of the real top-k DEGs among the k genes of largest predicted mean change",
        bounds=(0.0, np.inf),
        chance=chance_overlap,
    ),
    Metric(
        "deg_jaccard_by_change",
        deg_jaccard,
        level="degs",
        undefined=lambda: _NO_CHANGE,
        doc="Jaccard index of the real top-k DEGs and the k genes of largest predicted mean change",
        bounds=(0.0, 1.0),
        chance=chance_jaccard,
    ),
):
    register_metric(_m)
del _m
