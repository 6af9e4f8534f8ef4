"""Reading the committed benchmark table (``results/grid.csv.gz``) and answering questions from it.

The table is written by ``python -m course_tools.grid`` (:mod:`course_tools.grid`): one row per
method, setting, seed, score group, metric and gene set, with the setting's ``held_out`` and
``design`` (``balanced``, ``stim20``, ``donors``) and each run's provenance. Notebook 03 reads
its conclusions from it instead of training a grid live; this module holds what that needs:

- :func:`load_grid` and :func:`describe_grid`: the table, what it holds, where and when it was
  computed, and how much compute it took;
- :func:`imbalance_effects`, :func:`imbalance_interactions` and :func:`expectation_most_hurt`:
  the unbalanced-training questions, as paired verdicts (:mod:`course_tools.verdicts`) over runs
  matched by held-out cell type and seed (each held-out cell type one unit, the mean of its seeds,
  when there are several);
- :data:`DEVELOPMENT_CELL_TYPES`, :data:`WITHDRAWN_METRICS`, :func:`same_gene_panels` and
  :func:`scored_in_both`: what the verdicts must say about the units and the scores they rest on;
- :func:`interval_bias`: per metric, how many per-run intervals exclude their own estimate, and the
  bootstrap bias that explains it;
- :func:`describe_verdicts`: one printed line per verdict;
- :func:`per_seed`: one method's values per seed, side by side (the exercises' inputs);
- :func:`compare_live` and :func:`describe_live`: whether a slice recomputed live lies within the
  table's intervals.

Nothing here chooses a setting or a default: every function reads the numbers the table holds
and applies the paired rule of :mod:`course_tools.verdicts` (mean paired contrast, a difference or
for distances a ratio, with a paired-t 95% interval over its units; "no clear difference" when it
includes no-difference; too few units: no verdict).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from course_tools.scoring.bootstrap import bias_from_interval
from course_tools.verdicts import (
    MIN_RANK_UNITS,
    MIN_RUNS,
    RUN_UNIT,
    SAMPLING_SD,
    contrast_name,
    describe_units,
    format_estimate,
    holds_cells,
    interaction,
    is_distance,
    paired_verdict,
    run_sampling_sd,
)
from tutorial_lib.config import REPO_ROOT
from tutorial_lib.data.checks import DataValidationError

#: The committed table (``python -m course_tools.grid`` writes it there by default).
GRID_FILE = REPO_ROOT / "results" / "grid.csv.gz"
#: The command that makes :data:`GRID_FILE` (see benchmarks/README.md, "The benchmark grid").
GRID_COMMAND = "python -m course_tools.grid --out results/grid.csv.gz"
#: Environment variable naming another table for :func:`load_grid` (e.g. a small grid for a workshop).
GRID_ENV = "TUTORIAL_GRID"
#: Columns :func:`load_grid` requires.
GRID_COLUMNS = (
    "method",
    "setting",
    "seed",
    "score_group",
    "metric",
    "gene_set",
    "value",
    "ci_low",
    "ci_high",
    "key",
    "held_out",
    "design",
)
#: Provenance columns of each run (:func:`course_tools.grid.provenance` and the run's timings).
PROVENANCE_COLUMNS = (
    "git_commit",
    "versions",
    "machine",
    "device",
    "finished_at",
    "fit_predict_s",
    "evaluate_s",
    "run_wall_s",
)
#: Keys of one score: the same method, setting, seed, score group, metric and gene set.
SCORE_KEYS = ["method", "setting", "seed", "score_group", "metric", "gene_set"]
#: What reading a damaged CSV or gzip CSV raises: empty, not text, not gzip, or cut short.
UNREADABLE_ERRORS = (
    pd.errors.EmptyDataError,
    pd.errors.ParserError,
    UnicodeDecodeError,
    EOFError,
    gzip.BadGzipFile,
    zlib.error,
)
#: Held-out cell types that were also used while the course was developed, with what for. They are
#: test units of the pooled verdicts all the same; reports show the primary verdicts without them too.
DEVELOPMENT_CELL_TYPES = {
    "B": "defaults",
    "CD14+ Monocytes": "sweeps, tuning",
    "CD4+ T cells": "an acceptance check",
}
#: Metrics whose verdicts are withdrawn from reports, with why; the table keeps their rows.
WITHDRAWN_METRICS = {
    name: (
        "the predicted DEGs were ranked by a Wilcoxon test of prediction vs control, which ranks a "
        "deterministic shift by ties and sparsity rather than by the size of the change; a metric that "
        "ranks genes by the predicted mean change comes with the grid's re-run"
    )
    for name in ("deg_overlap_count", "deg_jaccard")
}
#: Column of the table naming the gene panel a run was scored on (e.g. a hash of its genes), when recorded.
PANEL_COLUMN = "gene_panel"


def damaged_table_message(path: str | Path, error: BaseException) -> str:
    """What to say when the table ``path`` cannot be read: the file, what is wrong, what to do.

    Parameters
    ----------
    path
        The table (``.csv.gz``) that could not be read.
    error
        The exception reading it raised (one of :data:`UNREADABLE_ERRORS`).

    Returns
    -------
    str
        The message: restore a committed table with git, or set the file aside and write it again
        (the grid's work files keep the runs; nothing is deleted for the user).
    """
    quoted = shlex.quote(str(path))
    return (
        f"{path} is damaged: it cannot be read as a benchmark table ({type(error).__name__}: {error}). "
        f"It was left as it is. If it is the committed table, restore it with `git checkout -- {quoted}`; "
        f"otherwise move it aside (`mv {quoted} {quoted}.damaged`) and write it again with "
        f"`python -m course_tools.grid --out {quoted}` and the options it was made with (runs kept in the "
        "grid's work files are not redone; add --gather-only to write it from them without running anything)."
    )


def load_grid(path: str | Path | None = None) -> pd.DataFrame:
    """Read the benchmark table.

    Parameters
    ----------
    path
        A ``.csv.gz`` written by ``python -m course_tools.grid``. ``None``: the file named by the
        environment variable ``TUTORIAL_GRID`` if it is set, else the committed :data:`GRID_FILE`.

    Returns
    -------
    pandas.DataFrame
        The tidy table; ``setting``, ``held_out``, ``score_group`` and ``key`` as strings, and
        ``ci_kind``, the interval scheme of each row (:mod:`course_tools.scoring.bootstrap`). Rows
        written before the table recorded it (no ``ci_kind``) carried percentile intervals for the
        per-gene metrics, which miss the truth for biased metrics such as R² (simulation: about
        0% coverage, see :mod:`course_tools.scoring.bootstrap`): those intervals are withdrawn
        here (``ci_low``/``ci_high`` NaN, ``ci_kind`` ``"percentile (withdrawn)"``, a note says
        why); the other schemes were unchanged and are labelled with their name. A distance's
        interval is clipped at 0 from below (:func:`label_intervals`). Column ``sampling_sd``: the
        test cells' sampling sd of each row's score, from its interval's width before any of that
        (:func:`course_tools.verdicts.run_sampling_sd`); verdicts within one setting use it.

    Raises
    ------
    FileNotFoundError
        When the file does not exist; the message names it and the command that makes it.
    DataValidationError
        When a required column (:data:`GRID_COLUMNS`) is missing, or when the file is damaged (empty,
        not a gzip CSV, cut short): the message names it and how to restore it
        (:func:`damaged_table_message`).
    """
    if path is None:
        path = os.environ.get(GRID_ENV) or GRID_FILE
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"the benchmark table {path} does not exist. It is made by `{GRID_COMMAND}` from the repository "
            "root (hours on 2 CPU cores; resumable; see benchmarks/README.md, 'The benchmark grid'), "
            f"or point {GRID_ENV} at another table written by `python -m course_tools.grid`."
        )
    text = {c: str for c in ("method", "setting", "held_out", "design", "score_group", "key", "metric", "gene_set")}
    try:
        table = pd.read_csv(path, dtype={**text, "ci_kind": str, "note": str})
    except UNREADABLE_ERRORS as e:
        raise DataValidationError(damaged_table_message(path, e)) from e
    missing = [c for c in GRID_COLUMNS if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"{path} lacks the columns {missing}: expected a table written by `python -m course_tools.grid`"
        )
    return label_intervals(table)


#: Note on a per-gene interval withdrawn by :func:`label_intervals`.
WITHDRAWN_NOTE = "interval withdrawn: percentile scheme, biased for this metric (course_tools.scoring.bootstrap)"


def label_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a ``ci_kind`` on every row that has an interval; old percentile intervals withdrawn.

    Rows without a ``ci_kind`` (written before the column existed) took their metric's scheme of
    that time: ``"percentile"`` for the per-gene metrics (now ``"basic"``), the same as today for the
    others. The percentile intervals are set to NaN with :data:`WITHDRAWN_NOTE`; the others are
    labelled with their scheme; every row with an interval keeps its width as :data:`SAMPLING_SD`
    (what a per-setting verdict needs of it, :func:`course_tools.verdicts.cell_sampling_sd`), which
    a withdrawn or clipped bound does not change. A distance's interval (:func:`course_tools.verdicts.is_distance`)
    is clipped at 0 from below, with :data:`CLIPPED_NOTE` and the old bound in ``note``: the subsample
    interval can reach below 0 for a small distance, and no distance is negative. A copy is returned.
    """
    from course_tools.scoring.registry import INTERVALS

    table = table.copy()
    # the width is the same for every scheme of the same resamples: kept before any bound is withdrawn or clipped
    table[SAMPLING_SD] = run_sampling_sd(table)
    if "ci_kind" not in table.columns:
        table["ci_kind"] = np.nan
    table["ci_kind"] = table["ci_kind"].astype(object)
    if "note" not in table.columns:
        table["note"] = ""
    table["note"] = table["note"].fillna("").astype(str)
    unlabelled = table["ci_kind"].isna() & table["ci_low"].notna()
    scheme = table["metric"].map(INTERVALS)
    old = unlabelled & (scheme == "basic")
    table.loc[unlabelled & ~old, "ci_kind"] = scheme[unlabelled & ~old]
    table.loc[old, ["ci_low", "ci_high"]] = np.nan
    table.loc[old, "ci_kind"] = "percentile (withdrawn)"
    table.loc[old, "note"] = [f"{n}; {WITHDRAWN_NOTE}" if n else WITHDRAWN_NOTE for n in table.loc[old, "note"]]
    table["ci_kind"] = table["ci_kind"].fillna("")
    distance = table["metric"].map(lambda m: is_distance(str(m))).astype(bool)
    below = distance & (table["ci_low"] < 0)
    if below.any():
        notes = [f"{CLIPPED_NOTE} (was {lo:.4g})" for lo in table.loc[below, "ci_low"]]
        table.loc[below, "note"] = [f"{n}; {c}" if n else c for n, c in zip(table.loc[below, "note"], notes)]
        table.loc[below, "ci_low"] = 0.0
        table.loc[below & (table["ci_high"] < 0), "ci_high"] = 0.0
    return table


#: Note on a distance's interval whose lower bound :func:`label_intervals` raised to 0.
CLIPPED_NOTE = "interval lower bound clipped at 0: a distance is >= 0"


def interval_bias(table: pd.DataFrame) -> pd.DataFrame:
    """How often a run's interval excludes its own estimate, per metric, gene set and interval scheme.

    A basic (or subsample) interval excludes its estimate when nearly all resamples lie on one side
    of it: the metric is biased (e.g. sampling noise lowers an R² of means), the estimate carries the
    bias and the interval, reflected around it, does not (:mod:`course_tools.scoring.bootstrap`).
    The table keeps no resamples, so the bias is read from each interval
    (:func:`~course_tools.scoring.bootstrap.bias_from_interval`: the midpoint of the resamples'
    2.5-97.5% percentiles minus the estimate).

    Returns
    -------
    pandas.DataFrame
        One row per ``metric, gene_set, ci_kind`` with intervals: ``intervals`` (rows with one),
        ``outside`` (rows whose value lies outside its own interval), ``bias_median``, ``bias_low``
        and ``bias_high`` (median and range of the bias over those rows; NaN when there are none),
        ``half_width_median`` (their intervals' median half-width) and ``clipped`` (distance
        intervals whose lower bound was raised to 0 by :func:`label_intervals`).
    """
    keys = ["metric", "gene_set", "ci_kind"]
    rows = table[table["ci_low"].notna() & table["ci_high"].notna() & table["value"].notna()].copy()
    for column in ("ci_kind", "note"):  # a table not read by load_grid may lack them
        rows[column] = rows[column].fillna("").astype(str) if column in rows.columns else ""
    if rows.empty:
        return pd.DataFrame(
            columns=[
                *keys,
                "intervals",
                "outside",
                "bias_median",
                "bias_low",
                "bias_high",
                "half_width_median",
                "clipped",
            ]
        )
    rows["outside"] = (rows["value"] < rows["ci_low"]) | (rows["value"] > rows["ci_high"])
    rows["bias"] = np.nan
    for kind, part in rows.groupby("ci_kind", sort=False):
        rows.loc[part.index, "bias"] = bias_from_interval(part["value"], part["ci_low"], part["ci_high"], str(kind))
    rows["half_width"] = (rows["ci_high"] - rows["ci_low"]) / 2
    rows["clipped"] = rows["note"].str.contains(CLIPPED_NOTE, regex=False)
    out = []
    for key, part in rows.groupby(keys, sort=False):
        out_rows = part[part["outside"]]
        out.append(
            {
                **dict(zip(keys, key)),
                "intervals": len(part),
                "outside": len(out_rows),
                "bias_median": float(out_rows["bias"].median()) if len(out_rows) else np.nan,
                "bias_low": float(out_rows["bias"].min()) if len(out_rows) else np.nan,
                "bias_high": float(out_rows["bias"].max()) if len(out_rows) else np.nan,
                "half_width_median": float(out_rows["half_width"].median()) if len(out_rows) else np.nan,
                "clipped": int(part["clipped"].sum()),
            }
        )
    return pd.DataFrame(out)


def _runs(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run (its ``key``), with the columns that are constant within a run."""
    return table.drop_duplicates("key")


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "unknown"
    hours, rest = divmod(int(round(seconds)), 3600)
    if hours:
        return f"{hours} h {rest // 60:02d} min"
    return f"{rest // 60} min {rest % 60:02d} s" if rest >= 60 else f"{rest} s"


def describe_seeds(part: pd.DataFrame, by: str = "held_out") -> str:
    """The seeds of a design, e.g. ``"seeds 0, 1, 2"``; per group of ``by`` when the groups differ.

    A grid committed part-way (or a design extended later) can hold more seeds for some held-out
    cell types than for others: then each set of seeds is listed with its groups, e.g.
    ``"seeds 0, 1, 2, 3, 4 (CD4+ T cells, B); 0, 1 (DC)"``, so that a pooled verdict's reader sees how
    many seeds each unit (the mean of its seeds) stands for.
    """
    groups = _seed_sets(part, by)
    if len(groups) <= 1:
        return "seeds " + ", ".join(map(str, sorted(part["seed"].unique())))
    ordered = sorted(groups.items(), key=lambda item: (-len(item[0]), item[0]))
    return "seeds " + "; ".join(f"{', '.join(map(str, s))} ({', '.join(g)})" for s, g in ordered)


def _seed_sets(part: pd.DataFrame, by: str) -> dict[tuple, list[str]]:
    """Each distinct set of seeds among the ``by`` groups, with the groups that have it."""
    groups: dict[tuple, list[str]] = {}
    for group, seeds in part.groupby(by, sort=False)["seed"].agg(lambda s: tuple(sorted(s.unique()))).items():
        groups.setdefault(seeds, []).append(str(group))
    return groups


def describe_grid(table: pd.DataFrame) -> str:
    """What the table holds, how it was computed and how much compute it took, as printable lines.

    Lists the methods, the designs with their held-out cell types (or donors), the seeds (per held-out
    cell type when they differ, see :func:`describe_seeds`), the
    score groups of the donor setting, the number of runs and rows; the total of ``run_wall_s``
    over runs (training + prediction + scoring, summed: the compute, not the elapsed time when
    runs shared a machine) and per method; and the provenance: commits, machines, devices,
    package versions and the dates of the first and last run. Every count is read from the table.
    """
    runs = _runs(table)
    lines = [
        f"{len(runs)} runs, {len(table)} rows",
        "methods: " + ", ".join(dict.fromkeys(table["method"])),
        "seeds: " + ", ".join(str(s) for s in sorted(table["seed"].unique())),
    ]
    for design, part in table.groupby("design", sort=False):
        held = list(dict.fromkeys(part["held_out"]))
        n = part["key"].nunique()
        lines.append(f"design {design!r}: held out {', '.join(held)} ({n} runs)")
        if len(_seed_sets(part, "held_out")) > 1:  # some held-out groups have fewer seeds than others
            lines.append(f"    {describe_seeds(part)}")
        groups = sorted(set(part["score_group"]) - {"all"})
        if groups:
            lines.append(f"    scored within {len(groups)} groups (score_group): {', '.join(groups)}")
    metrics = list(dict.fromkeys(zip(table["metric"], table["gene_set"])))
    lines.append(f"{len(metrics)} (metric, gene set) pairs")
    if "run_wall_s" in runs.columns:
        total = pd.to_numeric(runs["run_wall_s"], errors="coerce")
        lines.append(f"total compute (sum of run_wall_s over runs): {_duration(float(total.sum()))}")
        per = total.groupby(runs["method"], sort=False).sum()
        lines.append("    per method: " + ", ".join(f"{m} {_duration(float(s))}" for m, s in per.items()))
    for col, label in (("git_commit", "commits"), ("machine", "machines"), ("device", "devices")):
        if col in runs.columns:
            lines.append(f"{label}: " + "; ".join(str(v) for v in dict.fromkeys(runs[col].fillna("unknown"))))
    if "finished_at" in runs.columns:
        done = pd.to_datetime(runs["finished_at"], errors="coerce", utc=True).dropna()
        if len(done):
            lines.append(f"runs finished between {done.min():%Y-%m-%d %H:%M} and {done.max():%Y-%m-%d %H:%M} UTC")
    if "versions" in runs.columns:
        for v in dict.fromkeys(runs["versions"].dropna()):
            try:
                lines.append("versions: " + ", ".join(f"{k} {w}" for k, w in json.loads(v).items()))
            except (TypeError, ValueError):
                lines.append(f"versions: {v}")
    return "\n".join(lines)


def per_seed(
    table: pd.DataFrame, methods: Sequence[str], metric: str, gene_set: str, setting: str, score_group: str = "all"
) -> pd.DataFrame:
    """Values of ``methods`` per seed (rows, sorted) in one setting and score group.

    Seeds where any of the methods is undefined are dropped.
    """
    rows = table[
        (table["setting"] == setting)
        & (table["score_group"] == score_group)
        & (table["metric"] == metric)
        & (table["gene_set"] == gene_set)
        & table["method"].isin(methods)
    ]
    if rows.empty:
        raise DataValidationError(
            f"no rows for {metric!r} / {gene_set!r} in setting {setting!r} (score group {score_group!r}); "
            f"settings: {sorted(table['setting'].unique())}"
        )
    wide = rows.pivot_table(index="seed", columns="method", values="value", aggfunc="first")
    return wide.reindex(columns=list(methods)).dropna().sort_index()


def top_degs_gene_set(table: pd.DataFrame) -> str:
    """The table's gene set of the top DEGs (``top<k>_degs``; ``k`` is the grid's ``--n-top-degs``)."""
    found = sorted(g for g in table["gene_set"].unique() if re.fullmatch(r"top\d+_degs", str(g)))
    if len(found) != 1:
        raise DataValidationError(f"expected one gene set 'top<k>_degs' in the table, found {found}")
    return found[0]


def grid_config(table: pd.DataFrame):
    """The :class:`~course_tools.benchmark.BenchmarkConfig` of the table's scoring, read from its columns.

    ``n_top_genes`` from ``n_genes`` of the all-genes rows, ``n_top_degs`` from the DEG gene set's
    name, ``n_bootstrap`` and ``n_bootstrap_degs`` from ``n_bootstrap`` of the non-DEG and DEG-overlap
    rows. Training options are not in the table: ``max_epochs`` is ``None`` (the library's
    default, what the grid uses unless told otherwise) and ``method_kwargs`` empty; a live run
    with this config has the table's run key (:func:`compare_live`'s ``same_run``) exactly when
    those assumptions and the library's training defaults hold.
    """
    from course_tools.benchmark import BenchmarkConfig

    missing = [c for c in ("n_genes", "n_bootstrap") if c not in table.columns]
    if missing:
        raise DataValidationError(f"the table lacks the columns {missing} needed to read its configuration")
    if not (table["gene_set"] == "all").any():
        raise DataValidationError("the table has no rows on all genes (gene_set 'all'): cannot read n_top_genes")
    degs = table["metric"].isin(["deg_jaccard", "deg_overlap_count", "deg_jaccard_by_change", "deg_overlap_by_change"])
    n_top_degs = int(re.fullmatch(r"top(\d+)_degs", top_degs_gene_set(table)).group(1))
    return BenchmarkConfig(
        n_top_genes=int(table.loc[table["gene_set"] == "all", "n_genes"].max()),
        max_epochs=None,
        n_bootstrap=int(table.loc[~degs, "n_bootstrap"].max()),
        n_bootstrap_degs=int(table.loc[degs, "n_bootstrap"].max()) if degs.any() else 0,
        n_top_degs=n_top_degs,
    )


def imbalance_design(table: pd.DataFrame) -> str | None:
    """The table's one unbalanced design (``stim<percent>``, e.g. ``"stim20"``); ``None`` if it has none.

    A table with several unbalanced designs is refused (say which to compare with ``levels``).
    """
    found = sorted(d for d in table["design"].unique() if str(d).startswith("stim"))
    if len(found) > 1:
        raise DataValidationError(f"expected one unbalanced design 'stim<percent>' in the table, found {found}")
    return found[0] if found else None


def _default_levels(table: pd.DataFrame) -> tuple[str, str]:
    unbalanced = imbalance_design(table)
    if unbalanced is None:
        raise DataValidationError(
            "the table has no unbalanced design (stim<percent>): run the grid with --imbalance-cell-types"
        )
    return unbalanced, "balanced"


def _imbalance_rows(table: pd.DataFrame, levels: tuple[str, str]) -> pd.DataFrame:
    """Rows of the two designs, restricted to the held-out cell types that have both."""
    rows = table[table["design"].isin(levels)]
    both = set(rows.loc[rows["design"] == levels[0], "held_out"]) & set(
        rows.loc[rows["design"] == levels[1], "held_out"]
    )
    if not both:
        raise DataValidationError(f"no held-out cell type has both designs {levels}")
    return rows[rows["held_out"].isin(both)]


def _not_testable(n: int, unit: str, min_units: int) -> str:
    what = "matched runs" if unit == RUN_UNIT else f"blocks by {unit}"
    return f"not testable (n={n} {what}; a rank test needs {min_units} to reach p < 0.05)"


def same_gene_panels(table: pd.DataFrame, levels: tuple[str, str]) -> bool:
    """Whether the runs of the two designs were scored on the same gene panels.

    True only when the table records each run's panel (column :data:`PANEL_COLUMN`) and every
    held-out cell type and seed run in both designs has one panel in both (the comparisons pair
    only those). A table without the column cannot
    show it: runs that chose their genes on their own training cells (the grid before it chose an
    unbalanced setting's genes on its balanced twin's cells) were scored on different panels, which
    moves every method's score, ``no_change``'s too.
    """
    if PANEL_COLUMN not in table.columns:
        return False
    rows = _imbalance_rows(table, levels)
    designs = rows.groupby(["held_out", "seed"])["design"].nunique()
    paired = designs[designs == 2].index  # the held-out cell types and seeds run in both designs
    if not len(paired):
        return False
    rows = rows.set_index(["held_out", "seed"]).loc[paired]
    if rows[PANEL_COLUMN].isna().any():
        return False
    return bool((rows.groupby(level=["held_out", "seed"])[PANEL_COLUMN].nunique() == 1).all())


def scored_in_both(
    table: pd.DataFrame, metrics: Sequence[tuple[str, str]], levels: tuple[str, str]
) -> list[tuple[str, str]]:
    """The ``(metric, gene_set)`` pairs of ``metrics`` that the table scores in both designs of ``levels``.

    An imbalance comparison pairs a metric's scores in the two designs, so it can only use these
    (a metric added after one design ran is missing from it). Order of ``metrics`` kept.
    """
    rows = table[table["design"].isin(levels)]
    designs = rows.groupby(["metric", "gene_set"])["design"].nunique()
    return [tuple(k) for k in metrics if designs.get(tuple(k), 0) == 2]


def imbalance_effects(
    table: pd.DataFrame,
    metrics: Sequence[tuple[str, str]],
    methods: Sequence[str] | None = None,
    *,
    levels: tuple[str, str] | None = None,
    min_runs: int = MIN_RUNS,
    min_units: int = MIN_RANK_UNITS,
) -> pd.DataFrame:
    """Does unbalanced training change each method's score? Paired verdicts, design vs design.

    For each method and metric, :func:`course_tools.verdicts.paired_verdict` of the unbalanced
    design against the balanced one (``compare="design"``), matched by held-out cell type and
    seed (the same test cells; only the training data differ), over the cell types that have both
    designs; with several such cell types each is one unit (the mean of its seeds). Distances are
    compared as ratios. Read it only when both designs were scored on the same genes
    (:func:`same_gene_panels`).

    Parameters
    ----------
    levels
        ``(unbalanced, balanced)``; default ``(imbalance_design(table), "balanced")``.
    min_units
        Fewest units for a judgement (default :data:`~course_tools.verdicts.MIN_RANK_UNITS`: with
        fewer, no distribution-free test could reach 5%); below it ``effect`` says "not testable".

    Returns
    -------
    pandas.DataFrame
        ``method`` then the verdict columns (``method_a``/``method_b`` hold the two designs;
        ``estimate`` is unbalanced - balanced, or unbalanced / balanced), and ``effect``:
        ``"imbalance hurts"``, ``"imbalance helps"``, ``"no clear change"``, ``"not testable (...)"``
        or the too-few-runs sentence.
    """
    levels = levels or _default_levels(table)
    rows = _imbalance_rows(table, levels)
    methods = list(dict.fromkeys(rows["method"])) if methods is None else list(methods)
    out = []
    for method in methods:
        part = rows[rows["method"] == method]
        for metric, gene_set in metrics:
            sub = part[(part["metric"] == metric) & (part["gene_set"] == gene_set)]
            if sub["value"].notna().sum() == 0:
                continue  # undefined for this method (e.g. no_change's pearson_delta)
            v = paired_verdict(
                sub,
                levels[0],
                levels[1],
                metric,
                gene_set,
                compare="design",
                match_on=("held_out", "seed"),
                min_runs=min_runs,
            )
            if v["n"] >= min_runs and v["n"] < min_units:
                effect = _not_testable(v["n"], v["unit"], min_units)
            elif v["verdict"] == f"{levels[0]} better":
                effect = "imbalance helps"
            elif v["verdict"] == f"{levels[1]} better":
                effect = "imbalance hurts"
            elif v["verdict"] == "no clear difference":
                effect = "no clear change"
            else:
                effect = v["verdict"]
            out.append({"method": method, **v, "effect": effect})
    return pd.DataFrame(out)


def _hurt_words(row: dict, unbalanced: str, min_runs: int, min_units: int) -> str:
    a, b = row["method_a"], row["method_b"]
    if row["n"] < min_runs:
        return row["verdict"]
    if row["n"] < min_units:
        return _not_testable(row["n"], row["unit"], min_units)
    if row["verdict"] == "no clear interaction":
        return "no clear difference"
    # A fares better against B when unbalanced: imbalance is worse for B (it lost more, or gained less)
    a_gains = row["verdict"].endswith(f" at {unbalanced}")
    return f"{WORSE_FOR} {b} than for {a}" if a_gains else f"{WORSE_FOR} {a} than for {b}"


#: Words of an interaction that favours one method (:func:`imbalance_interactions`, ``hurt``).
WORSE_FOR = "imbalance is worse for"


def imbalance_interactions(
    table: pd.DataFrame,
    metrics: Sequence[tuple[str, str]],
    pairs: Sequence[tuple[str, str]],
    *,
    levels: tuple[str, str] | None = None,
    min_runs: int = MIN_RUNS,
    min_units: int = MIN_RANK_UNITS,
) -> pd.DataFrame:
    """Does imbalance hurt method A more than method B? The method x design interaction per pair.

    :func:`course_tools.verdicts.interaction` with ``factor="design"`` and ``levels=(unbalanced,
    balanced)``, matched by held-out cell type and seed: per unit, (A - B when unbalanced) minus
    (A - B when balanced), i.e. A's change minus B's change (for distances the ratio of the two
    ratios A / B), with its paired-t interval. ``hurt`` reads it with the metric's direction:
    ``"imbalance is worse for A than for B"`` (A's score moved further in the worse direction than
    B's, or less far in the better one), the reverse, ``"no clear difference"`` (the interval
    includes no-difference), ``"not testable (...)"`` (fewer than ``min_units`` units) or the
    too-few-units sentence. Pairs with no matched unit on a metric (a method undefined there) are left out.
    """
    levels = levels or _default_levels(table)
    rows = _imbalance_rows(table, levels)
    out = []
    for a, b in pairs:
        for metric, gene_set in metrics:
            sub = rows[(rows["metric"] == metric) & (rows["gene_set"] == gene_set) & rows["method"].isin([a, b])]
            defined = sub.dropna(subset=["value"])
            if set(defined["method"]) != {a, b}:
                continue
            r = interaction(
                sub,
                a,
                b,
                metric,
                gene_set,
                factor="design",
                levels=levels,
                match_on=("held_out", "seed"),
                min_runs=min_runs,
            )
            out.append({**r, "hurt": _hurt_words(r, levels[0], min_runs, min_units)})
    return pd.DataFrame(out)


def expectation_most_hurt(
    interactions: pd.DataFrame,
    method: str,
    metric: str,
    gene_set: str,
    others: Sequence[str] | None = None,
) -> dict:
    """Test the expectation "imbalance hurts ``method`` most" on one metric, from :func:`imbalance_interactions`.

    Reads the rows that pair ``method`` with another method (one of ``others``; default every
    method it is paired with) on ``metric``/``gene_set``:

    - ``"not testable"`` if any pair has too few units for a judgement (its ``hurt`` says so);
    - ``"refuted"`` if any says that imbalance is worse for the other method;
    - ``"supported"`` if every one says that it hurts ``method`` more;
    - ``"no clear difference"`` otherwise (at least one pair cannot be told apart);
    - ``"too few runs to judge"`` if no pair had enough matched units.

    Returns
    -------
    dict
        ``expectation``, ``metric``, ``gene_set``, ``verdict`` and ``lines`` (the pairs' ``hurt`` words).
    """
    rows = interactions[
        (interactions["metric"] == metric)
        & (interactions["gene_set"] == gene_set)
        & ((interactions["method_a"] == method) | (interactions["method_b"] == method))
    ]
    if others is not None:
        other = rows["method_b"].where(rows["method_a"] == method, rows["method_a"])
        rows = rows[other.isin(list(others))]
    if rows.empty:
        raise DataValidationError(f"no interaction pairs {method!r} with another method on {metric!r}/{gene_set!r}")
    judged = [h for h in rows["hurt"] if h.startswith(WORSE_FOR) or h == "no clear difference"]
    if any(h.startswith("not testable") for h in rows["hurt"]):
        verdict = "not testable"
    elif not judged:
        verdict = "too few runs to judge"
    elif any(h.startswith(WORSE_FOR) and not h.startswith(f"{WORSE_FOR} {method} ") for h in judged):
        verdict = "refuted"
    elif len(judged) == len(rows) and all(h.startswith(f"{WORSE_FOR} {method} ") for h in judged):
        verdict = "supported"
    else:
        verdict = "no clear difference"
    return {
        "expectation": f"imbalance hurts {method} most",
        "metric": metric,
        "gene_set": gene_set,
        "verdict": verdict,
        "lines": list(rows["hurt"]),
    }


def describe_verdicts(verdicts: pd.DataFrame, by: Sequence[str] = (), digits: int = 3) -> str:
    """One line per row of a :func:`~course_tools.verdicts.verdict_table` (or of :func:`imbalance_effects`).

    A line names its group (the ``by`` columns), the metric with its direction ("lower is
    better" or "higher is better"), ``A - B`` (or ``A / B`` for distances) with its 95%
    interval, the number of units (matched runs, or blocks of them:
    :func:`course_tools.verdicts.describe_units`; "and their test cells" where the interval
    holds their sampling) and the verdict; :func:`imbalance_interactions` rows print their
    interaction and ``hurt`` words.
    """
    lines, skipped = [], []
    for row in verdicts.to_dict("records"):
        group = " / ".join(str(row[c]) for c in by)
        if row["n"] == 0:  # a metric undefined for one method (e.g. no_change's pearson_delta)
            skipped.append(f"{group + ': ' if group else ''}{row['method_a']} vs {row['method_b']} on {row['metric']}")
            continue
        scale = row.get("scale", "difference")
        metric = f"{row['metric']} ({row['gene_set']}, {row['direction']} is better)"
        unit = row.get("unit", RUN_UNIT)
        if "interaction" in row:
            change = "ratio" if scale == "ratio" else "change"
            of = "/" if scale == "ratio" else "-"
            text = (
                f"{metric}: {change} of {row['method_a']} {of} {change} of {row['method_b']} ({row['levels']}) = "
                f"{format_estimate(row['interaction'], row['ci_low'], row['ci_high'], scale, digits)} "
                f"over {describe_units(row['n'], unit, 'matched units')}"
                f"{' and their test cells' if holds_cells(row) else ''} -> {row['hurt']}"
            )
        else:
            verdict = row.get("effect", row["verdict"])
            cells = " and their test cells" if holds_cells(row) else ""
            text = (
                f"{metric}: {contrast_name(row['method_a'], row['method_b'], scale)} = "
                f"{format_estimate(row['estimate'], row['ci_low'], row['ci_high'], scale, digits)} "
                f"over {describe_units(row['n'], unit)}{cells} -> {verdict}"
            )
        prefix = f"[{row['method']}] " if "effect" in row else ""
        lines.append(f"{group}: {prefix}{text}" if group else prefix + text)
    if skipped:
        lines.append("not compared (the metric is undefined for one of the two methods): " + "; ".join(skipped))
    return "\n".join(lines)


def tally_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """How many groups gave each verdict, per method pair and metric (rows with no matched run left out).

    For a :func:`~course_tools.verdicts.verdict_table` with one row per group (e.g. per held-out
    cell type): columns ``method_a, method_b, metric, gene_set, direction`` and one count column
    per verdict found, plus ``groups`` (their total).
    """
    rows = verdicts[verdicts["n"] > 0]
    keys = ["method_a", "method_b", "metric", "gene_set", "direction"]
    if rows.empty:
        return pd.DataFrame(columns=[*keys, "groups"])
    counts = rows.groupby(keys, sort=False)["verdict"].value_counts().unstack(fill_value=0)
    counts["groups"] = counts.sum(axis=1)
    counts.columns.name = None
    return counts.reset_index()


def compare_live(
    live: pd.DataFrame, table: pd.DataFrame, metrics: Sequence[tuple[str, str]] | None = None
) -> pd.DataFrame:
    """Check whether each live value lies within the table's interval for the same score.

    Parameters
    ----------
    live
        :func:`course_tools.benchmark.run_benchmark` output for a slice of the grid (its setting
        names as the grid writes them, e.g. ``loco/CD4+ T cells/balanced``).
    table
        The benchmark table (:func:`load_grid`).
    metrics
        ``(metric, gene_set)`` pairs to compare (default: every pair of ``live``).

    Returns
    -------
    pandas.DataFrame
        One row per live score: :data:`SCORE_KEYS`, ``live`` (the live value), ``table``,
        ``ci_low``, ``ci_high`` (the table's value and 95% interval), ``within`` (True/False; NaN
        where either value is undefined or the table has no such score) and ``same_run`` (the live
        run's cache key equals the table run's: same data, genes, training and scoring
        configuration, so the same seed should give the same numbers), ``same_value`` (the live
        value equals the table's to 1e-6) and ``table_within`` (whether the table's own value lies
        within its own interval; NaN where the table has none, e.g. a withdrawn one, see
        :func:`load_grid`).
    """
    live = live.copy()
    if "score_group" not in live.columns:
        live["score_group"] = "all"
    missing = [c for c in [*SCORE_KEYS, "value"] if c not in live.columns]
    if missing:
        raise DataValidationError(f"the live table lacks the columns {missing}; pass run_benchmark()'s output")
    if metrics is not None:
        wanted = set(metrics)
        live = live[[(m, g) in wanted for m, g in zip(live["metric"], live["gene_set"])]]
    cols = [*SCORE_KEYS, "value", "ci_low", "ci_high", "key"]
    left = live[[c for c in [*SCORE_KEYS, "value", "key"] if c in live.columns]].rename(
        columns={"value": "live", "key": "live_key"}
    )
    right = table[cols].rename(columns={"value": "table", "key": "table_key"})
    for frame in (left, right):
        frame["seed"] = frame["seed"].astype(int)
        for c in ("method", "setting", "score_group", "metric", "gene_set"):
            frame[c] = frame[c].astype(str)
    out = left.merge(right, on=SCORE_KEYS, how="left")
    out["same_value"] = np.isclose(out["live"], out["table"], rtol=1e-6, atol=1e-9)
    out["table_within"] = (out["table"] >= out["ci_low"]) & (out["table"] <= out["ci_high"])
    defined = out["live"].notna() & out["ci_low"].notna() & out["ci_high"].notna()
    within = (out["live"] >= out["ci_low"]) & (out["live"] <= out["ci_high"])
    out["within"] = within.where(defined).astype(object).where(defined, np.nan)
    if "live_key" in out.columns:
        out["same_run"] = out["live_key"].astype(str) == out["table_key"].astype(str)
    else:
        out["same_run"] = False
    both_undefined = out["live"].isna() & out["table"].isna() & out["table_key"].notna()
    out = out[~both_undefined]
    cols = [*SCORE_KEYS, "live", "table", "ci_low", "ci_high", "within", "same_run", "same_value", "table_within"]
    return out[cols].reset_index(drop=True)


def describe_live(comparison: pd.DataFrame, digits: int = 3) -> str:
    """Printable answer to "does the live slice agree with the table?" for :func:`compare_live` output.

    First says whether the live runs are the table's runs (same cache keys) or differ in
    configuration, in which case agreement is not expected and the comparison is not one; then
    how many live values lie within the table's 95% interval, how many equal the table's, the
    methods whose values differ although the runs are the same (e.g. trained on another CPU), and
    each score outside the interval.
    """
    found = comparison["table"].notna() | comparison["ci_low"].notna()
    if not found.any():
        return (
            "not comparable: the table has none of the live scores (other settings, seeds or metrics); "
            "the live slice must use the grid's setting names and seeds"
        )
    lines = []
    same = comparison.loc[found, "same_run"]
    if same.all():
        lines.append("the live runs have the table's run keys: same data, genes, training and scoring configuration")
    else:
        lines.append(
            f"not comparable: {int((~same).sum())} of {len(same)} live scores come from runs whose configuration "
            "(data set, genes, training budget or scoring options; the run key) differs from the table's, "
            "so agreement with the table's intervals is not expected"
        )
    judged = comparison["within"].notna()
    n_in = int((comparison.loc[judged, "within"] == True).sum())  # noqa: E712 (object column)
    lines.append(
        f"{n_in} of {int(judged.sum())} live values lie within the table's 95% interval "
        "(same method, setting, seed, score group, metric and gene set)"
    )
    no_interval = int((found & comparison["table"].notna() & comparison["ci_low"].isna()).sum())
    if no_interval:
        lines.append(
            f"{no_interval} live values have no table interval to compare with (undefined, or withdrawn: see load_grid)"
        )
    n_same = int(comparison.loc[found, "same_value"].sum())
    lines.append(f"{n_same} of {int(found.sum())} live values equal the table's value (to 1e-6)")
    differ = found & comparison["same_run"] & comparison["table"].notna() & ~comparison["same_value"]
    if differ.any():
        methods = ", ".join(dict.fromkeys(comparison.loc[differ, "method"].astype(str)))
        lines.append(
            f"    same run, other value: {methods}. A trained model's numbers depend on the CPU's floating-point "
            "kernels (the order of its sums): the same seed repeats them on the same machine, and can move "
            "them in the last digits on another (the table's column `device`)"
        )
    for r in comparison[judged & (comparison["within"] == False)].itertuples():  # noqa: E712
        lines.append(
            f"    outside: {r.method} {r.metric} ({r.gene_set}) live {r.live:.{digits}f}, "
            f"table {r.table:.{digits}f} [{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"
            + ("" if r.table_within else " (the table's own value lies outside its interval)")
        )
    return "\n".join(lines)
