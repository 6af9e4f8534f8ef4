"""Benchmark runner: methods x settings x seeds -> one tidy, cached results table.

Every (method, setting, seed) run is keyed by its settings; finished runs are stored in a CSV
file that is rewritten atomically (``.part`` file, then rename) after each run, so an
interrupted benchmark loses at most the run in progress and a re-run skips what is done.

Within one comparison all settings use identical genes: highly variable genes are chosen on
the cells that are training cells in *every* setting (no held-out stimulated cell of any
setting influences them), and the top DEGs that are scored come from the real held-out data
of each setting only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from tqdm import tqdm

from tutorial_lib.data.checks import CELL_TYPE_KEY, DataValidationError
from tutorial_lib.data.preprocess import normalize_log, select_hvg
from tutorial_lib.data.split import (
    DEFAULT_TEST_CELL_TYPE,
    SPLIT_KEY,
    assign_donor_holdout,
    assign_holdout,
    split_views,
    subsample_stimulated,
)

RESULT_COLUMNS = ["method", "setting", "seed", "metric", "gene_set", "value", "ci_low", "ci_high", "key"]


@dataclass(frozen=True)
class Setting:
    """One prediction task of a benchmark.

    Parameters
    ----------
    name
        Label in the results table.
    cell_type
        Cell type whose stimulated cells are held out (ignored when ``donors`` is set).
    donors
        Hold out the stimulated cells of these donors instead.
    stimulated_fraction
        Keep only this fraction of stimulated training cells per cell type (unbalanced data).
    """

    name: str
    cell_type: str = DEFAULT_TEST_CELL_TYPE
    donors: tuple[str, ...] | None = None
    stimulated_fraction: float | None = None

    def assign(self, adata: AnnData) -> None:
        """Write this setting's split into ``adata.obs["split"]`` (in place)."""
        if self.donors is not None:
            assign_donor_holdout(adata, list(self.donors))
        else:
            assign_holdout(adata, self.cell_type)


@dataclass
class BenchmarkConfig:
    """Options shared by every run of a benchmark."""

    n_top_genes: int = 2000
    n_epochs: int = 30
    n_bootstrap: int = 100
    n_top_degs: int = 100
    method_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def shared_genes(adata: AnnData, settings: Sequence[Setting], n_top_genes: int) -> list[str]:
    """Highly variable genes chosen on the cells that train in every setting (log data in)."""
    common = np.ones(adata.n_obs, dtype=bool)
    work = adata.copy()
    for setting in settings:
        setting.assign(work)
        common &= (work.obs[SPLIT_KEY] == "train").to_numpy()
    return list(select_hvg(work, n_top_genes=min(n_top_genes, adata.n_vars), train_mask=common).var_names)


def run_key(method: str, setting: Setting, seed: int, config: BenchmarkConfig, genes: Sequence[str]) -> str:
    """A digest of everything that determines a run's numbers."""
    payload = {
        "method": method,
        "setting": asdict(setting),
        "seed": int(seed),
        "n_epochs": config.n_epochs,
        "n_bootstrap": config.n_bootstrap,
        "n_top_degs": config.n_top_degs,
        "kwargs": dict(config.method_kwargs.get(method, {})),
        "genes": hashlib.sha256("\n".join(genes).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a results table written by :func:`run_benchmark` (empty table if absent)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    table = pd.read_csv(path, dtype={"setting": str, "method": str, "key": str})
    missing = set(RESULT_COLUMNS) - set(table.columns)
    if missing:
        raise DataValidationError(f"{path} is not a benchmark results file: columns {sorted(missing)} are missing")
    if "note" in table.columns:  # CSV stores "" as an empty field, read back as NaN
        table["note"] = table["note"].fillna("")
    return table


RUN_ROWS = "run_rows"
"""Column of the results file: how many rows the run of that row wrote (its completeness marker)."""


def complete_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``table`` that belong to whole runs; rows of a run cut short are dropped.

    A run counts as finished only when all its rows are present: as many rows with its ``key`` as
    its :data:`RUN_ROWS` column says. Files written before that column existed fall back to the
    largest number of rows of any run in the file (every run of ``evaluate`` writes the same
    metrics and gene sets). A row cut in the middle (its ``key`` or
    ``value`` missing) never counts.
    """
    if table.empty:
        return table
    keys = table["key"].astype(str)
    counts = keys.map(keys.value_counts())
    if RUN_ROWS in table.columns:
        expected = pd.to_numeric(table[RUN_ROWS], errors="coerce")
        per_key = expected.groupby(keys).transform(lambda v: v.max() if v.nunique(dropna=False) == 1 else np.nan)
    else:  # every run of evaluate() writes the same metrics x gene sets
        per_key = pd.Series(counts.max(), index=table.index)
    whole = (counts == per_key) & table["key"].notna() & table["metric"].notna()
    whole &= whole.groupby(keys).transform("all")
    return table[whole].reset_index(drop=True)


def write_results(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` to ``path`` atomically (a reader never sees a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    table.to_csv(part, index=False)
    os.replace(part, path)


def run_benchmark(
    adata: AnnData,
    methods: Sequence[str],
    settings: Sequence[Setting],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    config: BenchmarkConfig | None = None,
    results_path: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every method on every setting with every seed and score it.

    Parameters
    ----------
    adata
        Raw counts (``layers["counts"]``) or log-normalised data of the whole data set.
    methods
        Names known to :func:`tutorial_lib.models.get_method` (models and baselines).
    settings
        The prediction tasks.
    seeds
        Seeds of model training and of the bootstrap.
    config
        Shared options (genes, epochs, bootstrap, per-method keyword arguments).
    results_path
        CSV file caching finished runs; ``None`` keeps results in memory only.

    Returns
    -------
    Tidy table with columns ``method, setting, seed, metric, gene_set, value, ci_low, ci_high``
    (plus ``key``, the run's cache key, and any further columns of ``evaluate``).
    """
    from tutorial_lib.metrics import evaluate, rank_degs
    from tutorial_lib.models import get_method

    config = config or BenchmarkConfig()
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"setting names must be unique, got {names}")
    fit_predicts = {m: get_method(m) for m in methods}  # fails early on an unknown name

    data = adata.copy()
    if data.uns.get("x_kind") != "log":
        normalize_log(data)
    genes = shared_genes(data, settings, config.n_top_genes)
    data = data[:, genes].copy()

    done = read_results(results_path) if results_path is not None else pd.DataFrame(columns=RESULT_COLUMNS)
    done = complete_runs(done)
    tables = [done] if len(done) else []
    finished = set(done["key"].astype(str))
    jobs = [(s, seed, m) for s in settings for seed in seeds for m in methods]
    bar = tqdm(total=len(jobs), disable=not progress, desc="benchmark")
    for setting in settings:
        work = data.copy()
        setting.assign(work)
        degs = None
        for seed in seeds:
            run = work
            if setting.stimulated_fraction is not None:
                run = subsample_stimulated(work, setting.stimulated_fraction, seed=seed)
            parts = split_views(run)
            if degs is None:
                degs = rank_degs(parts.test, parts.ctrl, k=config.n_top_degs)
            for method in methods:
                key = run_key(method, setting, seed, config, genes)
                bar.set_postfix_str(f"{setting.name} / {method} / seed {seed}")
                if key not in finished:
                    cell_type = setting.cell_type if setting.donors is None else None
                    pred = fit_predicts[method](
                        parts.train, parts.ctrl, cell_type=cell_type, seed=seed,
                        n_epochs=config.n_epochs, **dict(config.method_kwargs.get(method, {})),
                    )
                    scores = evaluate(parts.test, pred, parts.ctrl, degs=degs, n_top_degs=config.n_top_degs,
                                      n_bootstrap=config.n_bootstrap, seed=seed)
                    scores.insert(0, "seed", seed)
                    scores.insert(0, "setting", setting.name)
                    scores.insert(0, "method", method)
                    scores["key"] = key
                    scores[RUN_ROWS] = len(scores)  # lets a resumed run tell a whole run from a cut one
                    tables.append(scores)
                    finished.add(key)
                    if results_path is not None:
                        write_results(pd.concat(tables, ignore_index=True), results_path)
                bar.update()
    bar.close()
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=RESULT_COLUMNS)
    wanted = {run_key(m, s, seed, config, genes) for s in settings for seed in seeds for m in methods}
    table = table[table["key"].astype(str).isin(wanted)].reset_index(drop=True)
    return table.drop(columns=[RUN_ROWS], errors="ignore")


def summarise(results: pd.DataFrame, by: Sequence[str] = ("method", "setting", "metric", "gene_set")) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each metric (the spread the notebooks report).

    ``n_runs`` counts the runs, ``n_defined`` those where the metric is defined; ``note`` keeps
    the reason when it is undefined in every run (e.g. ``pearson_delta`` of no change).
    """
    grouped = results.groupby(list(by), observed=True, sort=False)
    out = grouped["value"].agg(mean="mean", std="std", n_defined="count", n_runs="size").reset_index()
    if "note" in results.columns:
        notes = grouped["note"].agg(lambda s: next((n for n in s if isinstance(n, str) and n), "")).reset_index(drop=True)
        out["note"] = notes.where(out["n_defined"] == 0, "")
    return out


def evaluate_methods(
    real: AnnData,
    ctrl: AnnData,
    predictions: Mapping[str, AnnData],
    *,
    n_top_degs: int = 100,
    n_bootstrap: int = 100,
    seed: int = 0,
    **evaluate_kwargs: Any,
) -> pd.DataFrame:
    """Score several predictions of one held-out group on equal terms.

    One shared PCA (fitted on ``real`` and ``ctrl`` only) and one DEG list (real vs control)
    serve every method, so their numbers are comparable. Returns :func:`evaluate`'s table with a
    leading ``method`` column.
    """
    from tutorial_lib.metrics import evaluate, fit_shared_pca, rank_degs

    if not predictions:
        raise ValueError("predictions is empty: pass {method name: predicted AnnData}")
    space = fit_shared_pca(real, ctrl, seed=seed)
    degs = rank_degs(real, ctrl, k=n_top_degs)
    tables = []
    for method, pred in predictions.items():
        table = evaluate(real, pred, ctrl, degs=degs, n_top_degs=n_top_degs, n_bootstrap=n_bootstrap, seed=seed,
                         space=space, **evaluate_kwargs)
        table.insert(0, "method", method)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def format_scores(scores: pd.DataFrame, methods: Sequence[str] | None = None, digits: int = 3) -> pd.DataFrame:
    """Wide display of a scores table: one row per (metric, gene set), one column per method.

    Cells read ``value [ci_low, ci_high]``; an undefined value reads ``undefined``.
    """
    methods = list(dict.fromkeys(scores["method"])) if methods is None else list(methods)

    def cell(row) -> str:
        if pd.isna(row["value"]):
            return "undefined"
        if pd.isna(row["ci_low"]):
            return f"{row['value']:.{digits}f}"
        return f"{row['value']:.{digits}f} [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"

    shown = scores.assign(shown=scores.apply(cell, axis=1))
    wide = shown.pivot_table(index=["metric", "gene_set"], columns="method", values="shown", aggfunc="first", sort=False)
    return wide[methods]


def rank_methods(
    table: pd.DataFrame,
    metric: str,
    gene_set: str = "all",
    *,
    setting: str | None = None,
) -> pd.DataFrame:
    """Methods best first by one metric: one row per method.

    ``table`` is :func:`evaluate_methods`' scores (one run per method) or :func:`run_benchmark`'s
    results (one run per seed; pick a ``setting`` when it holds several). Columns: ``mean`` over
    the runs, ``sd`` over the runs (seeds; NaN with one run), ``half_width`` (mean half-width of
    the runs' bootstrap intervals: cell-to-cell sampling), ``n`` (runs where the metric is
    defined). "Best" follows :data:`tutorial_lib.metrics.LOWER_IS_BETTER`; methods whose metric is
    undefined in every run are left out.
    """
    from tutorial_lib.metrics import LOWER_IS_BETTER

    missing = [c for c in ("method", "metric", "gene_set", "value") if c not in table.columns]
    if missing:
        raise DataValidationError(f"table lacks the columns {missing}; pass evaluate_methods() or run_benchmark() output")
    rows = table[(table["metric"] == metric) & (table["gene_set"] == gene_set)]
    if setting is not None:
        if "setting" not in rows.columns:
            raise DataValidationError("setting= was given but the table has no 'setting' column")
        rows = rows[rows["setting"] == setting]
    elif "setting" in rows.columns and rows["setting"].nunique() > 1:
        raise DataValidationError(f"the table holds several settings {sorted(rows['setting'].unique())}; pass setting=")
    if rows.empty:
        known = sorted(set(zip(table["metric"], table["gene_set"])))
        raise DataValidationError(f"no rows for metric {metric!r} on gene set {gene_set!r}; the table has {known}")
    half = (rows["ci_high"] - rows["ci_low"]) / 2 if {"ci_low", "ci_high"} <= set(rows.columns) else np.nan
    ranked = (
        rows.assign(half_width=half)
        .groupby("method", sort=False)
        .agg(mean=("value", "mean"), sd=("value", "std"), half_width=("half_width", "mean"), n=("value", "count"))
        .query("n > 0")
        .sort_values("mean", ascending=metric in LOWER_IS_BETTER, kind="stable")
    )
    return ranked.reset_index()


def leader_margin(ranked: pd.DataFrame) -> dict[str, float | bool]:
    """Is the first method of :func:`rank_methods` ahead of the second by more than the noise?

    Returns ``gap`` (|mean #1 − mean #2|), ``sd`` (the larger of their seed sds), ``half_width``
    (the larger of their bootstrap half-widths) and ``clear`` (``gap`` exceeds both; an
    undefined spread counts as 0).
    """
    if len(ranked) < 2:
        raise ValueError(f"need at least 2 ranked methods, got {len(ranked)}")
    first, second = ranked.iloc[0], ranked.iloc[1]
    gap = float(abs(first["mean"] - second["mean"]))
    sd = float(np.nanmax([first["sd"], second["sd"], 0.0]))
    half = float(np.nanmax([first["half_width"], second["half_width"], 0.0]))
    return {"gap": gap, "sd": sd, "half_width": half, "clear": gap > max(sd, half)}


def describe_ranking(
    table: pd.DataFrame,
    metric: str,
    gene_set: str = "all",
    *,
    setting: str | None = None,
    digits: int = 3,
) -> str:
    """One line per ranking, best first (``mean ± sd`` when there are several runs), and a second
    line saying whether #1 leads #2 by more than the seed sd and the bootstrap half-width."""
    from tutorial_lib.metrics import LOWER_IS_BETTER

    ranked = rank_methods(table, metric, gene_set, setting=setting)
    shown = " > ".join(
        f"{r.method} {r.mean:.{digits}f}" + (f" ± {r.sd:.{digits}f}" if pd.notna(r.sd) else "")
        for r in ranked.itertuples()
    )
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    prefix = f"[{setting}] " if setting is not None else ""
    text = f"{prefix}{metric} ({gene_set}, {direction} is better): {shown}"
    if len(ranked) >= 2:
        m = leader_margin(ranked)
        verdict = "larger" if m["clear"] else "NOT larger"
        n = int(ranked.iloc[:2]["n"].min())
        if n >= 2:
            spread = (f"{verdict} than both the seed sd {m['sd']:.{digits}f} (n={n} runs) and the bootstrap "
                      f"half-width {m['half_width']:.{digits}f}")
        else:
            spread = (f"{verdict} than the bootstrap half-width {m['half_width']:.{digits}f} "
                      "(one run each: no seed-to-seed sd)")
        text += f"\n    gap #1-#2 = {m['gap']:.{digits}f}: {spread}"
    return text


def mean_sd_table(
    summary: pd.DataFrame,
    metrics: Sequence[tuple[str, str]],
    *,
    digits: int = 3,
) -> pd.DataFrame:
    """Wide display of :func:`summarise` output: one row per method, one column per (metric,
    gene set, setting), in the order of ``metrics``; cells ``mean ± sd`` over seeds
    (``undefined`` when no run defines the metric)."""
    parts = []
    for metric, gene_set in metrics:
        rows = summary[(summary["metric"] == metric) & (summary["gene_set"] == gene_set)]
        if rows.empty:
            raise DataValidationError(f"summary has no rows for metric {metric!r} on gene set {gene_set!r}")
        parts.append(rows)
    rows = pd.concat(parts)
    shown = [
        "undefined" if pd.isna(m) else (f"{m:.{digits}f} ± {s:.{digits}f}" if pd.notna(s) else f"{m:.{digits}f}")
        for m, s in zip(rows["mean"], rows["std"])
    ]
    return rows.assign(shown=shown).pivot_table(
        index="method", columns=["metric", "gene_set", "setting"], values="shown", aggfunc="first", sort=False
    )
