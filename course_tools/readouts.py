"""Printed answers for the teaching notebooks 00-02: comparisons, orderings and gene lists.

The notebooks pose a question in words and let code print the answer from the run's own results,
so that no sentence can be contradicted by a re-run. This module holds the few read-outs that the
paired verdicts of :mod:`course_tools.verdicts` do not cover because there is only one run:

- :func:`interval_comparison` / :func:`describe_interval_comparison`: two methods scored once (e.g.
  the two deterministic baselines) compared metric by metric from their 95% intervals;
- :func:`describe_order`: methods listed best first, with the metric's direction in words (never
  ``>`` for a lower-is-better metric);
- :func:`distance_from_controls`: whether a prediction moves as far from the control cells as the
  real stimulated cells do, or under- or overshoots;
- :data:`INTERFERON_STIMULATED_GENES` / :func:`interferon_stimulated`: a curated gene list instead
  of a name-prefix filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from course_tools.verdicts import better_direction
from tutorial_lib.data.checks import DataValidationError

__all__ = [
    "INTERFERON_STIMULATED_GENES",
    "describe_distance_from_controls",
    "describe_interval_comparison",
    "describe_order",
    "distance_from_controls",
    "interferon_stimulated",
    "interval_comparison",
]

# fmt: off
#: Human interferon-stimulated genes (ISGs) for reading a predicted response as biology.
#:
#: Hand-curated for this course (not exhaustive, and not a database): genes induced by type I
#: interferon that are described as ISGs in the reviews of Schoggins and Rice (2011, Curr. Opin.
#: Virol.) and Schneider, Chevillotte and Rice (2014, Annu. Rev. Immunol.), among them the
#: antiviral effectors (ISG15, the IFIT and IFITM families, MX1/MX2, the OAS family, RSAD2 =
#: viperin, SAT1), chemokines and ligands (CXCL10, CXCL11, TNFSF10 = TRAIL), the signalling and
#: feedback genes (STAT1, STAT2, IRF7, IRF9, SOCS1, USP18) and antigen presentation (TAP1, PSMB8,
#: PSMB9). It replaces the earlier filter on name prefixes (IFI, ISG, MX, OAS), which missed e.g.
#: RSAD2, CXCL10, TNFSF10, SOCS1 and SAT1. For research use a curated resource (e.g. Interferome
#: or the MSigDB hallmark interferon response sets).
INTERFERON_STIMULATED_GENES: frozenset[str] = frozenset(
    {
        # antiviral effectors
        "ISG15", "ISG20", "IFI6", "IFI16", "IFI27", "IFI35", "IFI44", "IFI44L", "IFIH1",
        "IFIT1", "IFIT2", "IFIT3", "IFIT5", "IFITM1", "IFITM2", "IFITM3",
        "MX1", "MX2", "OAS1", "OAS2", "OAS3", "OASL", "RSAD2", "CMPK2", "SAT1",
        "BST2", "HERC5", "HERC6", "EIF2AK2", "ADAR", "APOBEC3A", "APOBEC3G", "XAF1",
        "PLSCR1", "LY6E", "EPSTI1", "SAMD9", "SAMD9L", "DDX58", "RIGI", "DDX60", "ZC3HAV1",
        "TRIM5", "TRIM21", "TRIM22", "TRIM25", "SP100", "SP110", "PML", "GBP1", "GBP2", "GBP4", "GBP5",
        "LGALS3BP", "LGALS9", "PARP9", "PARP12", "PARP14", "DTX3L", "HELZ2", "RTP4", "NMI", "LAMP3",
        # chemokines, ligands and surface proteins
        "CXCL10", "CXCL11", "CCL2", "CCL8", "TNFSF10", "TNFSF13B", "CD274", "IDO1",
        # signalling and negative feedback
        "STAT1", "STAT2", "IRF1", "IRF7", "IRF9", "SOCS1", "USP18",
        # antigen processing
        "TAP1", "PSMB8", "PSMB9", "UBE2L6",
    }
)
# fmt: on


def interferon_stimulated(genes: Iterable[str]) -> list[str]:
    """The genes of ``genes`` that are in :data:`INTERFERON_STIMULATED_GENES`, in their order.

    Gene symbols are compared in upper case (human symbols; ``"Isg15"`` counts as ``ISG15``).
    """
    if isinstance(genes, str):
        raise TypeError("pass a list of gene names, not one string")
    return [g for g in genes if str(g).upper() in INTERFERON_STIMULATED_GENES]


def _check_scores(scores: pd.DataFrame) -> None:
    missing = [c for c in ("method", "metric", "gene_set", "value", "ci_low", "ci_high") if c not in scores.columns]
    if missing:
        raise DataValidationError(
            f"the scores table lacks the columns {missing}; pass evaluate_methods()' table (with its intervals)"
        )


COMPARISON_COLUMNS = [
    "metric",
    "gene_set",
    "direction",
    "method_a",
    "value_a",
    "low_a",
    "high_a",
    "method_b",
    "value_b",
    "low_b",
    "high_b",
    "verdict",
]


def interval_comparison(
    scores: pd.DataFrame,
    method_a: str,
    method_b: str,
    metrics: Sequence[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Compare two methods scored once, metric by metric, from their 95% intervals.

    For one run per method (:func:`course_tools.benchmark.evaluate_methods`), where a paired
    verdict over seeds is not available (or not meaningful: the baselines do not depend on the
    seed). The rule: when the two intervals do not overlap, the method with the better value (by
    the metric's direction, :data:`course_tools.scoring.registry.LOWER_IS_BETTER`) is "better"; when they
    overlap, "no clear difference". Non-overlap of two 95% intervals is a conservative test of a
    difference (stricter than 5%), so the rule errs towards "no clear difference". The intervals
    come from resampling cells: they say nothing about training randomness.

    Parameters
    ----------
    scores
        ``evaluate_methods()``' table: ``method, metric, gene_set, value, ci_low, ci_high``.
    method_a, method_b
        The two methods.
    metrics
        ``(metric, gene_set)`` pairs; default every pair in the table, in table order.

    Returns
    -------
    pandas.DataFrame
        One row per metric (:data:`COMPARISON_COLUMNS`). ``verdict`` is ``"<A> better"``,
        ``"<B> better"``, ``"no clear difference"`` or ``"undefined for <method>"`` (e.g.
        ``pearson_delta`` of ``no_change``, which predicts no change at all).
    """
    _check_scores(scores)
    if method_a == method_b:
        raise ValueError(f"compare two different methods, got {method_a!r} twice")
    for m in (method_a, method_b):
        if not (scores["method"] == m).any():
            raise DataValidationError(f"method {m!r} is not in the scores; it has {sorted(scores['method'].unique())}")
    if metrics is None:
        metrics = list(dict.fromkeys(zip(scores["metric"], scores["gene_set"])))
    rows = []
    for metric, gene_set in metrics:
        sel = scores[(scores["metric"] == metric) & (scores["gene_set"] == gene_set)]
        if sel.empty:
            raise DataValidationError(f"no rows for metric {metric!r} on gene set {gene_set!r}")
        by = sel.drop_duplicates("method").set_index("method")
        a, b = by.loc[method_a], by.loc[method_b]
        direction = better_direction(metric)
        undefined = [m for m, r in ((method_a, a), (method_b, b)) if not np.isfinite(r["value"])]
        if undefined:
            verdict = "undefined for " + " and ".join(undefined)
        elif not all(np.isfinite([a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"]])):
            verdict = "no interval: cannot judge"
        elif a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"]:
            a_higher = a["value"] > b["value"]
            verdict = f"{method_a} better" if a_higher == (direction == "higher") else f"{method_b} better"
        else:
            verdict = "no clear difference"
        rows.append(
            [metric, gene_set, direction, method_a, a["value"], a["ci_low"], a["ci_high"]]
            + [method_b, b["value"], b["ci_low"], b["ci_high"], verdict]
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _shown(value: float, low: float, high: float, digits: int) -> str:
    if not np.isfinite(value):
        return "undefined"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def describe_interval_comparison(table: pd.DataFrame, digits: int = 3) -> str:
    """One line per row of :func:`interval_comparison`, with the metric's direction in words."""
    lines = []
    for r in table.itertuples(index=False):
        lines.append(
            f"{r.metric} ({r.gene_set}; {r.direction} is better): "
            f"{r.method_a} {_shown(r.value_a, r.low_a, r.high_a, digits)} vs "
            f"{r.method_b} {_shown(r.value_b, r.low_b, r.high_b, digits)} -> {r.verdict}"
        )
    return "\n".join(lines)


def describe_order(
    table: pd.DataFrame, metric: str, gene_set: str = "all", *, setting: str | None = None, digits: int = 3
) -> str:
    """Methods best first by one metric, in one line that says which direction is better.

    Separated by commas, never ``>`` (which reads as "larger" and is wrong for a lower-is-better
    metric). With several runs per method each entry is ``mean ± sd`` over the runs. An order is
    not a verdict: whether two neighbours differ is for :func:`interval_comparison` (one run) or
    :func:`course_tools.verdicts.paired_verdict` (several matched runs).
    """
    from course_tools.benchmark import rank_methods

    ranked = rank_methods(table, metric, gene_set, setting=setting)
    shown = ", ".join(
        f"{r.method} {r.mean:.{digits}f}" + (f" ± {r.sd:.{digits}f}" if pd.notna(r.sd) else "")
        for r in ranked.itertuples()
    )
    undefined = sorted(set(table.loc[table["metric"] == metric, "method"]) - set(ranked["method"]))
    tail = f" (undefined for {', '.join(undefined)})" if undefined else ""
    prefix = f"[{setting}] " if setting is not None else ""
    return f"{prefix}{metric} ({gene_set}; {better_direction(metric)} is better), best first: {shown}{tail}"


DISTANCE_COLUMNS = ["prediction", "real_distance", "predicted_distance", "diff", "ci_low", "ci_high", "verdict"]


def distance_from_controls(
    ctrl: np.ndarray,
    real: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    *,
    n_bootstrap: int = 100,
    fraction: float = 0.5,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Whether each prediction moves as far from the control cells as the real stimulated cells do.

    The target of a prediction is not "far from the controls" but the real stimulated cells: its
    E-distance from the controls should be about the real cells' E-distance from them. For each
    prediction, ``diff = E(prediction, controls) - E(real, controls)`` (:func:`tutorial_lib.metrics.e_distance`,
    U-statistic) with an interval from subsampling the cells without replacement (a ``fraction``
    of each group, the rescaled ``"subsample"`` interval of :mod:`course_tools.scoring.bootstrap`,
    the scheme used for E-distances; a prediction made from the control cells one to one is
    subsampled with the same cells as the controls).

    Parameters
    ----------
    ctrl, real
        Control and real stimulated cells, cells x dimensions (e.g. coordinates in the shared PCA).
    predictions
        Name -> predicted cells in the same space.
    n_bootstrap, fraction, level, seed
        Subsamples, the fraction of cells each keeps, the interval's coverage and the seed.

    Returns
    -------
    pandas.DataFrame
        One row per prediction (:data:`DISTANCE_COLUMNS`); ``verdict`` is ``"overshoots"`` (the
        interval of ``diff`` lies above 0), ``"undershoots"`` (below 0) or ``"about the real
        distance (no clear difference)"``.
    """
    from course_tools.scoring.bootstrap import interval, resample_indices
    from course_tools.scoring.pairwise import PairwiseCache
    from tutorial_lib.metrics._inputs import as_points

    ctrl = as_points(ctrl, "control cells")
    real = as_points(real, "real stimulated cells")
    if not predictions:
        raise ValueError("predictions is empty: pass {name: predicted cells}")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    real_cache = PairwiseCache(real, ctrl)
    all_real, all_ctrl = np.arange(real.shape[0]), np.arange(ctrl.shape[0])
    real_full = real_cache.e_distance(all_real, all_ctrl)
    rows = []
    for name, pred in predictions.items():
        pred = as_points(pred, f"prediction {name!r}")
        if pred.shape[1] != ctrl.shape[1]:
            raise DataValidationError(
                f"prediction {name!r} has {pred.shape[1]} dimensions, the control cells {ctrl.shape[1]}: "
                "transform both into one space"
            )
        cache = PairwiseCache(pred, ctrl)
        pred_full = cache.e_distance(np.arange(pred.shape[0]), all_ctrl)
        estimate = pred_full - real_full
        paired = [(0, 2)] if pred.shape[0] == ctrl.shape[0] else []
        sizes = [ctrl.shape[0], real.shape[0], pred.shape[0]]
        resampled = [
            cache.e_distance(ip, ic) - real_cache.e_distance(ir, ic)
            for ic, ir, ip in resample_indices(sizes, n_bootstrap, seed=seed, paired=paired, fraction=fraction)
        ]
        iv = interval(estimate, resampled, "subsample", level=level, fraction=fraction)
        if iv.ci_low > 0:
            verdict = "overshoots"
        elif iv.ci_high < 0:
            verdict = "undershoots"
        else:
            verdict = "about the real distance (no clear difference)"
        rows.append([name, real_full, pred_full, estimate, iv.ci_low, iv.ci_high, verdict])
        del cache
    return pd.DataFrame(rows, columns=DISTANCE_COLUMNS)


def describe_distance_from_controls(table: pd.DataFrame, digits: int = 2) -> str:
    """One line per row of :func:`distance_from_controls`."""
    lines = []
    for r in table.itertuples(index=False):
        lines.append(
            f"{r.prediction}: E-distance from the controls {r.predicted_distance:.{digits}f}, real stimulated cells "
            f"{r.real_distance:.{digits}f}; difference {r.diff:+.{digits}f} "
            f"[{r.ci_low:+.{digits}f}, {r.ci_high:+.{digits}f}] -> {r.verdict}"
        )
    return "\n".join(lines)
