"""Benchmark runner: methods x settings x seeds -> one tidy, cached results table.

Every (method, setting, seed) run is keyed by its settings; finished runs are stored in a CSV
file that is rewritten atomically (``.part`` file, then rename) after each run, so an
interrupted benchmark loses at most the run in progress and a re-run skips what is done.

Genes (``BenchmarkConfig.gene_selection``): by default (``"per_run"``) highly variable genes are
chosen for each run on its setting's training cells *before* an unbalanced setting drops
stimulated cells, so that a balanced and an unbalanced setting with the same held-out cell type are
scored on one gene panel and differ only in their training cells; ``"shared"`` instead chooses one
list on the cells that train in *every* setting. Either way no held-out stimulated cell influences
them, and the top DEGs that are scored come from the real held-out data of each run only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from tqdm import tqdm

from tutorial_lib.config import apply_torch_threads, check_seed, check_whole_number
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.data.split import (
    DEFAULT_TEST_CELL_TYPE,
    SPLIT_KEY,
    assign_donor_holdout,
    assign_holdout,
    normalise_log,
    select_hvg,
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
    score_by
        Score the prediction separately within each group of this ``obs`` key (e.g.
        ``"cell_type"`` for held-out donors, whose control and stimulated cells differ in
        cell-type composition: a pooled score would count the composition shift as part of the
        response). Groups with fewer than :data:`MIN_GROUP_CELLS` real or control cells are not
        scored. The results then carry the group in the column ``score_group``.

    ``donors`` given as one string raises ``TypeError`` (it would be read as its characters).
    """

    name: str
    cell_type: str = DEFAULT_TEST_CELL_TYPE
    donors: tuple[str, ...] | None = None
    stimulated_fraction: float | None = None
    score_by: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.donors, str):
            raise TypeError(
                f"Setting {self.name!r}: donors must be a list of donor names, e.g. ({self.donors!r},); "
                f"got the string {self.donors!r}"
            )

    def assign(self, adata: AnnData) -> None:
        """Write this setting's split into ``adata.obs["split"]`` (in place)."""
        if self.donors is not None:
            assign_donor_holdout(adata, list(self.donors))
        else:
            assign_holdout(adata, self.cell_type)


#: Fewest real and control cells a group needs to be scored under ``Setting.score_by``.
MIN_GROUP_CELLS = 10


@dataclass
class BenchmarkConfig:
    """Options shared by every run of a benchmark.

    ``max_epochs`` is passed to every method as its epoch cap (``None``: the library's training
    default, :func:`tutorial_lib.config.get_config`); ``method_kwargs[name]`` go to that method's
    constructor, ``train`` and ``predict`` by name (e.g. a step budget or patience of the training
    loop, so that two settings can be trained to equal optimizer steps or with the default early stopping).
    ``gene_selection`` is ``"per_run"`` (default: each setting's training cells, before any
    stimulated cells are dropped) or ``"shared"``.
    ``n_bootstrap`` and ``n_bootstrap_degs`` are :func:`~course_tools.scoring.evaluate.evaluate`'s.
    """

    n_top_genes: int = 2000
    max_epochs: int | None = None
    n_bootstrap: int = 100
    n_top_degs: int = 100
    method_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    gene_selection: str = "per_run"
    n_bootstrap_degs: int = 10


def shared_genes(adata: AnnData, settings: Sequence[Setting], n_top_genes: int) -> list[str]:
    """Highly variable genes chosen on the cells that train in every setting (log data in)."""
    common = np.ones(adata.n_obs, dtype=bool)
    work = adata.copy()
    for setting in settings:
        setting.assign(work)
        common &= (work.obs[SPLIT_KEY] == "train").to_numpy()
    return list(select_hvg(work, n_top_genes=min(n_top_genes, adata.n_vars), train_mask=common).var_names)


def run_genes(adata: AnnData, n_top_genes: int) -> list[str]:
    """Highly variable genes chosen on the training cells of ``adata`` (its ``obs["split"]``; log data in)."""
    train = (adata.obs[SPLIT_KEY] == "train").to_numpy()
    return list(select_hvg(adata, n_top_genes=min(n_top_genes, adata.n_vars), train_mask=train).var_names)


def run_key(method: str, setting: Setting, seed: int, config: BenchmarkConfig, genes: Sequence[str]) -> str:
    """A digest of everything that determines a run's numbers (the method's training defaults included)."""
    from course_tools.methods import training_fingerprint

    payload = {
        "method": method,
        "setting": asdict(setting),
        "seed": int(seed),
        "n_epochs": config.max_epochs,
        "training": training_fingerprint(method),
        "n_bootstrap": config.n_bootstrap,
        "n_bootstrap_degs": config.n_bootstrap_degs,
        "n_top_degs": config.n_top_degs,
        "gene_selection": config.gene_selection,
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
    fit_predicts: Mapping[str, Any] | None = None,
    run_missing: bool = True,
) -> pd.DataFrame:
    """Run every method on every setting with every seed and score it.

    Parameters
    ----------
    adata
        Raw counts (``layers["counts"]``) or log-normalised data of the whole data set.
    methods
        Names known to :func:`course_tools.methods.get_method` (models and baselines).
    settings
        The prediction tasks.
    seeds
        Seeds of model training and of the bootstrap: integers from 0 to ``2**32 - 1``, NumPy
        integers included (e.g. ``np.arange(3)``; :func:`tutorial_lib.config.check_seed`). They are
        recorded as plain ``int``.
    config
        Shared options (genes, epochs, bootstrap, per-method keyword arguments).
    results_path
        CSV file caching finished runs; ``None`` keeps results in memory only.
    fit_predicts
        Callables to use instead of :func:`~course_tools.methods.get_method`'s for some method
        names (same calling convention), e.g. prediction-only variants that reuse one trained
        model (:mod:`course_tools.grid`).
    run_missing
        ``False``: run nothing; return the runs of these methods, settings and seeds that
        ``results_path`` already holds (whole runs only), e.g. to write a table of a grid that is
        still running.

    Returns
    -------
    Tidy table with columns ``method, setting, seed, metric, gene_set, value, ci_low, ci_high``
    (plus ``key``, the run's cache key, ``fit_predict_s`` and ``evaluate_s``, the seconds spent
    training + predicting and scoring the run, for trained models the columns of
    :func:`~course_tools.methods.training_summary` (``train_steps``, ``best_val_loss``,
    ...), ``score_group`` for settings scored within groups
    (``"all"`` otherwise), and any further columns of ``evaluate``). The shared PCA space and the
    real DEG list are computed once per (setting, seed, group) and serve every method.
    """
    from course_tools.methods import get_method
    from course_tools.scoring.bootstrap import check_n_boot
    from course_tools.scoring.evaluate import evaluate
    from tutorial_lib.metrics import fit_shared_pca, rank_degs

    config = config or BenchmarkConfig()
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a list of seeds, e.g. [0, 1, 2]; got {seeds!r}")
    seeds = [check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]
    # the shared options are checked before any data are prepared or models trained
    check_n_boot(config.n_bootstrap, "config.n_bootstrap")
    check_n_boot(config.n_bootstrap_degs, "config.n_bootstrap_degs")
    if config.max_epochs is not None:
        check_whole_number(
            config.max_epochs, "config.max_epochs", 1, what="a whole number >= 1, or None for the mode's default"
        )
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"setting names must be unique, got {names}")
    custom = dict(fit_predicts or {})
    fit_predicts = {m: custom[m] if m in custom else get_method(m) for m in methods}  # fails early on an unknown name
    if config.gene_selection not in ("per_run", "shared"):
        raise ValueError(f"gene_selection must be 'per_run' or 'shared', got {config.gene_selection!r}")

    data = adata.copy()
    if "log1p" not in data.uns:
        normalise_log(data)
    genes = None
    if config.gene_selection == "shared":
        genes = shared_genes(data, settings, config.n_top_genes)
        data = data[:, genes].copy()

    done = read_results(results_path) if results_path is not None else pd.DataFrame(columns=RESULT_COLUMNS)
    done = complete_runs(done)
    tables = [done] if len(done) else []
    finished = set(done["key"].astype(str))
    jobs = [(s, seed, m) for s in settings for seed in seeds for m in methods]
    wanted: set[str] = set()
    bar = tqdm(total=len(jobs), disable=not progress, desc="benchmark")
    for setting in settings:
        work = data.copy()
        setting.assign(work)
        for seed in seeds:
            # genes are chosen on the setting's training cells before any stimulated cells are dropped,
            # so an unbalanced setting is scored on the same gene panel as its balanced twin
            run_genes_ = genes if genes is not None else run_genes(work, config.n_top_genes)
            run = work
            if setting.stimulated_fraction is not None:
                run = subsample_stimulated(work, setting.stimulated_fraction, seed=seed)
            if genes is None:
                run = run[:, run_genes_].copy()
            parts = split_views(run)
            scoring = None  # (group, real, ctrl, degs, space) per scored group, computed once for all methods
            for method in methods:
                key = run_key(method, setting, seed, config, run_genes_)
                wanted.add(key)
                bar.set_postfix_str(f"{setting.name} / {method} / seed {seed}")
                if key not in finished and run_missing:
                    if scoring is None:
                        scoring = []
                        for group, test, ctrl in _score_groups(parts, setting.score_by):
                            degs = rank_degs(test, ctrl, k=config.n_top_degs)
                            scoring.append((group, test, ctrl, degs, fit_shared_pca(test, ctrl, seed=seed)))
                    cell_type = setting.cell_type if setting.donors is None else None
                    # scanpy's first numba call (rank_degs above) raises PyTorch's thread count to one per
                    # core; the documented count makes training repeatable (tutorial_lib.config)
                    apply_torch_threads()
                    start = time.perf_counter()
                    pred = fit_predicts[method](
                        parts.train,
                        parts.ctrl,
                        cell_type=cell_type,
                        seed=seed,
                        max_epochs=config.max_epochs,
                        **dict(config.method_kwargs.get(method, {})),
                    )
                    fit_s = time.perf_counter() - start
                    start = time.perf_counter()
                    parts_scores = []
                    for group, test, ctrl, degs, space in scoring:
                        p = pred if setting.score_by is None else _group_of(pred, parts.ctrl, setting.score_by, group)
                        sc = evaluate(
                            test,
                            p,
                            ctrl,
                            degs=degs,
                            n_top_degs=config.n_top_degs,
                            n_bootstrap=config.n_bootstrap,
                            n_bootstrap_degs=config.n_bootstrap_degs,
                            seed=seed,
                            space=space,
                        )
                        sc.insert(0, "score_group", group)
                        parts_scores.append(sc)
                    scores = pd.concat(parts_scores, ignore_index=True)
                    scores.insert(0, "seed", seed)
                    scores.insert(0, "setting", setting.name)
                    scores.insert(0, "method", method)
                    scores["key"] = key
                    scores["fit_predict_s"] = fit_s
                    for column, value in pred.uns.get("training", {}).items():  # trained models: steps, loss
                        scores[column] = value
                    scores["evaluate_s"] = time.perf_counter() - start
                    scores[RUN_ROWS] = len(scores)  # lets a resumed run tell a whole run from a cut one
                    tables.append(scores)
                    finished.add(key)
                    if results_path is not None:
                        write_results(pd.concat(tables, ignore_index=True), results_path)
                bar.update()
    bar.close()
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=RESULT_COLUMNS)
    table = table[table["key"].astype(str).isin(wanted)].reset_index(drop=True)
    return table.drop(columns=[RUN_ROWS], errors="ignore")


def _in_group(adata: AnnData, key: str, group: str) -> np.ndarray:
    return (adata.obs[key].astype(str) == group).to_numpy()


def _group_of(pred: AnnData, ctrl: AnnData, key: str, group: str) -> AnnData:
    """The predicted cells of ``group``: by their own ``obs[key]``, else by the control cells they came from."""
    if key in pred.obs:
        return pred[_in_group(pred, key, group)]
    if pred.n_obs == ctrl.n_obs:
        return pred[_in_group(ctrl, key, group)]
    raise DataValidationError(
        f"cannot score the prediction within {key} groups: it has no obs[{key!r}] and {pred.n_obs} cells "
        f"for {ctrl.n_obs} control cells"
    )


def _score_groups(parts, score_by: str | None) -> list[tuple[str, AnnData, AnnData]]:
    """``(group, real, control)`` to score: everything (``"all"``), or each group with enough cells."""
    if score_by is None:
        return [("all", parts.test, parts.ctrl)]
    for what, a in (("held-out stimulated", parts.test), ("control", parts.ctrl)):
        if score_by not in a.obs:
            raise DataValidationError(f"score_by={score_by!r} is not a column of the {what} cells' obs")
    groups = sorted(set(parts.test.obs[score_by].astype(str)) & set(parts.ctrl.obs[score_by].astype(str)))
    out = []
    for g in groups:
        test, ctrl = parts.test[_in_group(parts.test, score_by, g)], parts.ctrl[_in_group(parts.ctrl, score_by, g)]
        if min(test.n_obs, ctrl.n_obs) >= MIN_GROUP_CELLS:
            out.append((g, test, ctrl))
    if not out:
        raise DataValidationError(f"no {score_by} group has {MIN_GROUP_CELLS} held-out stimulated and control cells")
    return out


def summarise(results: pd.DataFrame, by: Sequence[str] = ("method", "setting", "metric", "gene_set")) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each metric (the spread the notebooks report).

    ``n_runs`` counts the runs, ``n_defined`` those where the metric is defined; ``note`` keeps
    the reason when it is undefined in every run (e.g. ``pearson_delta`` of no change).
    """
    grouped = results.groupby(list(by), observed=True, sort=False)
    out = grouped["value"].agg(mean="mean", std="std", n_defined="count", n_runs="size").reset_index()
    if "note" in results.columns:
        notes = (
            grouped["note"].agg(lambda s: next((n for n in s if isinstance(n, str) and n), "")).reset_index(drop=True)
        )
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
    leading ``method`` column and a trailing boolean ``lower_is_better`` (the metric's direction).

    ``predictions`` is a mapping ``{method name: predicted AnnData}``. The shared arguments
    (``n_top_degs``, ``n_bootstrap``, ``n_bootstrap_degs``, ``seed``) are checked first; an error
    in scoring one prediction names it (``predictions['name']: ...``), keeping the error's type.
    """
    from course_tools.scoring.bootstrap import check_n_boot
    from course_tools.scoring.evaluate import evaluate
    from course_tools.scoring.registry import is_lower_better
    from tutorial_lib.metrics import fit_shared_pca, rank_degs

    if not isinstance(predictions, Mapping):
        raise TypeError(
            f"predictions must be a mapping {{method name: predicted AnnData}}; got a {type(predictions).__name__}"
        )
    if not predictions:
        raise ValueError("predictions is empty: pass {method name: predicted AnnData}")
    bad_names = [m for m in predictions if not isinstance(m, str)]
    if bad_names:
        raise TypeError(f"the method names (keys of predictions) must be strings; got {bad_names}")
    n_top_degs = check_whole_number(n_top_degs, "n_top_degs", 1)
    n_bootstrap = check_n_boot(n_bootstrap, "n_bootstrap")
    if "n_bootstrap_degs" in evaluate_kwargs:
        evaluate_kwargs["n_bootstrap_degs"] = check_n_boot(evaluate_kwargs["n_bootstrap_degs"], "n_bootstrap_degs")
    seed = check_seed(seed)
    space = fit_shared_pca(real, ctrl, seed=seed)
    degs = rank_degs(real, ctrl, k=n_top_degs)
    tables = []
    for method, pred in predictions.items():
        try:
            table = evaluate(
                real,
                pred,
                ctrl,
                degs=degs,
                n_top_degs=n_top_degs,
                n_bootstrap=n_bootstrap,
                seed=seed,
                space=space,
                **evaluate_kwargs,
            )
        except (ValueError, TypeError) as err:
            raise _naming(err, f"predictions[{method!r}]") from err
        table.insert(0, "method", method)
        tables.append(table)
    scores = pd.concat(tables, ignore_index=True)
    scores["lower_is_better"] = scores["metric"].map(is_lower_better)  # read by tutorial_lib.plotting's bars
    return scores


def _naming(err: Exception, where: str) -> Exception:
    """``err`` with ``where`` in front of its message, same type (``err`` itself if its type cannot be rebuilt so)."""
    try:
        return type(err)(f"{where}: {err}")
    except Exception:  # an exception type with other constructor arguments
        return err


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
    wide = shown.pivot_table(
        index=["metric", "gene_set"], columns="method", values="shown", aggfunc="first", sort=False
    )
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
    defined). "Best" follows :data:`course_tools.scoring.registry.LOWER_IS_BETTER`; methods whose metric is
    undefined in every run are left out.
    """
    from course_tools.scoring.registry import LOWER_IS_BETTER

    missing = [c for c in ("method", "metric", "gene_set", "value") if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"table lacks the columns {missing}; pass evaluate_methods() or run_benchmark() output"
        )
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


def describe_ranking(
    table: pd.DataFrame,
    metric: str,
    gene_set: str = "all",
    *,
    setting: str | None = None,
    digits: int = 3,
) -> str:
    """One line per ranking, best first, and a line with the paired verdict of #1 against #2.

    The ranking shows ``mean ± sd`` when there are several runs. The verdict is
    :func:`course_tools.verdicts.paired_verdict` over their matched runs; with fewer than 3 it says so
    instead of judging.
    """
    from course_tools.scoring.registry import LOWER_IS_BETTER
    from course_tools.verdicts import describe_verdict, paired_verdict

    ranked = rank_methods(table, metric, gene_set, setting=setting)
    shown = " > ".join(
        f"{r.method} {r.mean:.{digits}f}" + (f" ± {r.sd:.{digits}f}" if pd.notna(r.sd) else "")
        for r in ranked.itertuples()
    )
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    prefix = f"[{setting}] " if setting is not None else ""
    text = f"{prefix}{metric} ({gene_set}, {direction} is better): {shown}"
    if len(ranked) >= 2:
        rows = table if setting is None else table[table["setting"] == setting]
        match_on = [c for c in ("setting", "seed", "score_group") if c in rows.columns]
        if not match_on:  # one run per method (evaluate_methods' table): a constant key matches them
            rows, match_on = rows.assign(run=0), ["run"]
        v = paired_verdict(
            rows, ranked["method"].iloc[0], ranked["method"].iloc[1], metric, gene_set, match_on=match_on
        )
        text += "\n    #1 vs #2: " + describe_verdict(v, digits).split(": ", 1)[1]
    return text


def mean_sd_table(
    summary: pd.DataFrame,
    metrics: Sequence[tuple[str, str]],
    *,
    digits: int = 3,
) -> pd.DataFrame:
    """Wide display of :func:`summarise` output: one row per method, one column per metric.

    Columns are (metric, gene set, setting), in the order of ``metrics``; cells ``mean ± sd`` over seeds
    (``undefined`` when no run defines the metric).
    """
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
