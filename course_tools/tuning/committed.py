"""The committed tuning study: which hyperparameters matter for scGen and scPRAM, and does tuning pay off.

Notebook 04's live study shows the machinery of tuning on a few capped trials; this one answers the
original tutorial's question with enough trials. One resumable command makes it::

    python -m course_tools.tuning.committed --out results/tuning_study --workers 8

1. **The study**, per model: ``--n-trials`` finished trials (default 100) of Optuna's TPE sampler
   (random for its first 10 trials, then from its model) over :data:`STUDY_SPACES` (the original
   tutorial's hyperparameters: layers, hidden units, latent size, dropout, KL weight, learning rate,
   batch size), each trial trained with the library's default schedule and scored by the
   E-distance of its prediction of the **validation** cell type (the test cell type held out
   too: :func:`course_tools.tuning.study.fit_and_score`). No pruning: the per-epoch validation loss
   that a pruner compares is not comparable between trials with different KL weights (it includes
   the weighted KL term) or batch sizes (an epoch is a different number of steps). ``--workers``
   processes share the study (:mod:`course_tools.tuning.cli`) through a journal file,
   ``<out>/<method>.log``: plain text, committed, and the same command continues it after a kill
   (a killed worker's trial is retried once with its parameters).
2. **Tuned vs default** on the **test** cell type: the best trial's parameters (``<method>_tuned``)
   against the defaults (``<method>``), both trained as the benchmark grid trains them (the test
   cell type held out, ``balanced``), seeds ``0 .. --seeds - 1``, scored by
   :func:`course_tools.benchmark.run_benchmark` (the grid's metrics and intervals): ``<out>/final.csv.gz``,
   each run with its provenance (commit, versions, machine, device, time), resumable through
   ``<out>/final.work.csv`` (not committed: a clean clone starts it from ``final.csv.gz``, so the
   committed runs are not trained again). A command run for some of the models keeps the other
   models' runs in ``final.csv.gz``.

Read it with :func:`load_study`, :func:`importance_spread` (fANOVA importances with their spread
over bootstrap resamples of the trials) and :func:`tuned_vs_default` (paired verdicts over the
seeds and the test cells); :mod:`course_tools.tuning.committed_report` says what it shows in words,
as far as it has come, and keeps the importances in ``<out>/importances.csv`` (written at the end of
this command, or by ``python -m course_tools.tuning.committed_report --write``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from course_tools.tuning.search_space import validate_space
from course_tools.tuning.storage import make_storage
from tutorial_lib.data.split import DEFAULT_TEST_CELL_TYPE, DEFAULT_VALIDATION_CELL_TYPE

#: The search spaces of the committed study: the hyperparameters of the original tutorial, with each
#: model's default inside its ranges. ``lr`` and ``batch_size`` go to ``train``, the others to the model.
STUDY_SPACES: dict[str, dict[str, tuple[str, Any]]] = {
    "scgen": {
        "n_layers": ("int", (1, 3, False)),
        "n_hidden": ("categorical", (128, 256, 512, 800, 1024)),
        "n_latent": ("categorical", (10, 20, 50, 100)),
        "dropout_rate": ("float", (0.0, 0.5, False)),
        "kl_weight": ("float", (1e-6, 1e-2, True)),
        "lr": ("float", (1e-4, 1e-2, True)),
        "batch_size": ("categorical", (32, 64, 128, 256)),
    },
    "scpram": {
        "n_layers": ("int", (1, 3, False)),
        "n_hidden": ("categorical", (128, 256, 512, 1000)),
        "n_latent": ("categorical", (10, 20, 50, 100)),
        "dropout_rate": ("float", (0.0, 0.5, False)),
        "kl_weight": ("float", (1e-6, 1e-2, True)),
        "lr": ("float", (1e-4, 1e-2, True)),
        "batch_size": ("categorical", (32, 64, 128, 256)),
    },
}

#: Name of each model's study in its journal file.
STUDY_NAME = "committed-{method}"

#: The committed study's folder (relative to the repository root).
STUDY_DIR = Path("results") / "tuning_study"

#: Suffix of the tuned method's name in the final table (``scgen_tuned``).
TUNED = "_tuned"


def journal_path(out: str | Path, method: str) -> Path:
    """The journal file of ``method``'s study in folder ``out``."""
    return Path(out) / f"{method}.log"


def load_study(out: str | Path, method: str) -> optuna.Study:
    """``method``'s committed study, read from its journal file in ``out`` (a clear error if it is missing)."""
    path = journal_path(out, method)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: make the study with `python -m course_tools.tuning.committed --out {out}` "
            "(see benchmarks/README.md, 'The committed tuning study')"
        )
    return optuna.load_study(study_name=STUDY_NAME.format(method=method), storage=make_storage(path))


def _space_json(space: Mapping[str, tuple[str, Any]]) -> str:
    return json.dumps({name: [kind, list(spec)] for name, (kind, spec) in space.items()})


def run_study(
    method: str,
    out: Path,
    *,
    n_trials: int,
    workers: int,
    data: str,
    n_top_genes: int,
    max_epochs: int | None,
    validation_cell_type: str,
    test_cell_type: str,
) -> optuna.Study:
    """Run (or continue) ``method``'s study to ``n_trials`` finished trials with ``workers`` worker processes.

    Each worker is ``python -m course_tools.tuning.cli`` on the journal file; its output goes to
    ``<out>/<method>.worker<k>.txt``. A worker that fails stops the command with its output's end.
    A study that already holds ``n_trials`` finished trials is returned as it is.
    """
    out.mkdir(parents=True, exist_ok=True)
    if journal_path(out, method).is_file():  # a finished study starts no worker (each would load the data)
        from course_tools.tuning.study import n_finished

        study = load_study(out, method)
        if n_finished(study) >= n_trials:
            return study
    command = [
        sys.executable,
        "-m",
        "course_tools.tuning.cli",
        "--study",
        STUDY_NAME.format(method=method),
        "--method",
        method,
        "--storage",
        str(journal_path(out, method)),
        "--n-trials",
        str(n_trials),
        "--space",
        _space_json(STUDY_SPACES[method]),
        "--pruner",
        "none",
        "--data",
        data,
        "--n-top-genes",
        str(n_top_genes),
        "--validation-cell-type",
        validation_cell_type,
        "--test-cell-type",
        test_cell_type,
        *(["--max-epochs", str(max_epochs)] if max_epochs is not None else []),
    ]
    logs = [out / f"{method}.worker{k}.txt" for k in range(workers)]
    procs = []
    for k, log in enumerate(logs):
        with open(log, "w") as f:
            procs.append(subprocess.Popen([*command, "--worker", str(k)], stdout=f, stderr=subprocess.STDOUT))
    failed = [(k, p.wait()) for k, p in enumerate(procs)]
    failed = [(k, rc) for k, rc in failed if rc != 0]
    if failed:
        k, rc = failed[0]
        tail = logs[k].read_text()[-3000:]
        raise RuntimeError(f"tuning worker {k} of {method} exited with status {rc}; the end of {logs[k]}:\n{tail}")
    return load_study(out, method)


def run_final(
    adata,
    method: str,
    params: Mapping[str, Any],
    out: Path,
    *,
    seeds: Sequence[int],
    test_cell_type: str,
    max_epochs: int | None,
    n_top_genes: int,
    n_bootstrap: int,
) -> pd.DataFrame:
    """Train ``method`` with its defaults and with ``params`` on the test cell type's split; score both.

    Through :func:`course_tools.benchmark.run_benchmark` (resumable in ``<out>/final.work.csv``): the
    tuned model is the method's own ``fit_predict`` under the name ``<method>_tuned``, with ``params``
    as its keyword arguments (so they are part of its runs' keys). Returns the runs' rows.
    """
    from course_tools.benchmark import BenchmarkConfig, Setting, run_benchmark
    from course_tools.methods import get_method

    tuned = method + TUNED
    config = BenchmarkConfig(
        n_top_genes=n_top_genes,
        max_epochs=max_epochs,
        n_bootstrap=n_bootstrap,
        n_bootstrap_degs=0,
        method_kwargs={tuned: dict(params)},
    )
    setting = Setting(f"loco/{test_cell_type}/balanced", test_cell_type)
    return run_benchmark(
        adata,
        [method, tuned],
        [setting],
        list(seeds),
        config=config,
        results_path=out / "final.work.csv",
        progress=False,
        fit_predicts={tuned: get_method(method)},
    )


def importance_spread(
    study: optuna.Study, *, n_resamples: int = 100, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """The fANOVA importance of each hyperparameter, and its spread over bootstrap resamples of the trials.

    ``importance`` is Optuna's fANOVA importance (Hutter et al. 2014) on the study's completed
    trials: the share of the objective's variance over the search space that each parameter explains
    alone. It rests on a random forest fitted to a finite set of trials, so it moves with the trials
    that happened to be drawn: ``low``/``high`` are the middle ``level`` share of the importances over
    ``n_resamples`` bootstrap resamples of the completed trials (each refitted), a measure of that
    spread rather than a confidence interval with a checked coverage. Sorted by importance.
    """
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    trials = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(trials) < 2:
        raise ValueError(f"importances need at least 2 completed trials; the study has {len(trials)}")

    def importances(chosen: Sequence[optuna.trial.FrozenTrial], evaluator_seed: int) -> dict[str, float]:
        study = optuna.create_study(direction=study_direction)
        study.add_trials(chosen)
        return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=evaluator_seed))

    study_direction = study.direction
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not one "study created" line per resample
    try:
        full = importances(trials, seed)
        rng = np.random.default_rng(seed)
        draws = []
        for b in range(n_resamples):
            idx = rng.integers(0, len(trials), len(trials))
            draws.append(importances([trials[i] for i in idx], seed + b + 1))
    finally:
        optuna.logging.set_verbosity(verbosity)
    spread = pd.DataFrame(draws).reindex(columns=list(full)).fillna(0.0)
    tail = (1 - level) / 2
    return pd.DataFrame(
        {
            "param": list(full),
            "importance": list(full.values()),
            "low": spread.quantile(tail).to_numpy(),
            "high": spread.quantile(1 - tail).to_numpy(),
            "n_trials": len(trials),
            "n_resamples": n_resamples,
        }
    )


def tuned_vs_default(
    final: pd.DataFrame, method: str, metrics: Sequence[tuple[str, str]] | None = None
) -> pd.DataFrame:
    """Paired verdicts of ``<method>_tuned`` against ``<method>`` on the test cell type (exploratory).

    One setting, matched by seed; the intervals cover the seeds and the sampling of the test cells
    (:func:`course_tools.verdicts.paired_verdict`). ``metrics`` default to the course's key metrics.
    """
    from course_tools.verdicts import verdict_table
    from tutorial_lib.metrics import KEY_METRICS

    metrics = [(k.metric, k.gene_set) for k in KEY_METRICS] if metrics is None else list(metrics)
    return verdict_table(final, metrics, [(method + TUNED, method)], by=())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m course_tools.tuning.committed",
        description="The committed tuning study: a TPE study per model on the validation cell type, then "
        "tuned vs default on the test cell type. Resumable: run the same command again.",
    )
    p.add_argument("--out", default=str(STUDY_DIR), help="folder of the journals and the final table")
    p.add_argument("--methods", nargs="+", default=list(STUDY_SPACES), choices=list(STUDY_SPACES))
    p.add_argument("--n-trials", type=int, default=100, help="finished trials per study (default %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="worker processes per study (default %(default)s)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 of the final comparison (default %(default)s)")
    p.add_argument("--data", choices=["mini", "full"], default="full")
    p.add_argument("--n-top-genes", type=int, default=2000)
    p.add_argument("--max-epochs", type=int, default=None, help="epoch cap (default: the library's schedule)")
    p.add_argument("--n-bootstrap", type=int, default=100, help="resamples of each final score's interval")
    p.add_argument("--validation-cell-type", default=DEFAULT_VALIDATION_CELL_TYPE)
    p.add_argument("--test-cell-type", default=DEFAULT_TEST_CELL_TYPE)
    return p


def _start_work_from_final(final_path: Path, work_path: Path) -> None:
    """Copy the runs of ``final_path`` that ``work_path`` lacks into it (a clean clone has no work table)."""
    from course_tools.benchmark import read_results, write_results

    if not final_path.is_file():
        return
    work, final = read_results(work_path), read_results(final_path)
    missing = final[~final["key"].astype(str).isin(set(work["key"].astype(str)))]
    if len(missing):
        write_results(pd.concat([work, missing], ignore_index=True), work_path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the committed study (module docstring); returns the exit status."""
    from course_tools.benchmark import read_results, write_results
    from course_tools.grid import provenance, stamp_provenance
    from course_tools.tuning.study import check_space
    from tutorial_lib.config import apply_torch_threads
    from tutorial_lib.data import load_kang2018

    args = _parser().parse_args(argv)
    problems = [
        f"{name} must be >= {low}, got {value}"
        for name, value, low in [
            ("--n-trials", args.n_trials, 1),
            ("--workers", args.workers, 1),
            ("--seeds", args.seeds, 2),
            ("--n-top-genes", args.n_top_genes, 2),
            ("--n-bootstrap", args.n_bootstrap, 0),
        ]
        if value < low
    ]
    if args.max_epochs is not None and args.max_epochs < 1:
        problems.append(f"--max-epochs must be >= 1, got {args.max_epochs}")
    if args.validation_cell_type == args.test_cell_type:
        problems.append(f"--validation-cell-type must differ from --test-cell-type (both {args.test_cell_type!r})")
    for method in args.methods:
        try:
            validate_space(STUDY_SPACES[method])
            check_space(method, STUDY_SPACES[method])
        except ValueError as err:
            problems.append(f"{method}: {err}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    apply_torch_threads()
    out = Path(args.out)
    info = provenance()
    adata = None
    final_path, work_path = out / "final.csv.gz", out / "final.work.csv"
    _start_work_from_final(final_path, work_path)
    tables = []
    for method in args.methods:
        study = run_study(
            method,
            out,
            n_trials=args.n_trials,
            workers=args.workers,
            data=args.data,
            n_top_genes=args.n_top_genes,
            max_epochs=args.max_epochs,
            validation_cell_type=args.validation_cell_type,
            test_cell_type=args.test_cell_type,
        )
        print(f"{method}: {len(study.trials)} trials; best validation E-distance {study.best_value:.4g}")
        print(f"    with {study.best_params}")
        if adata is None:
            adata = load_kang2018(args.data)
        tables.append(
            run_final(
                adata,
                method,
                study.best_params,
                out,
                seeds=range(args.seeds),
                test_cell_type=args.test_cell_type,
                max_epochs=args.max_epochs,
                n_top_genes=args.n_top_genes,
                n_bootstrap=args.n_bootstrap,
            )
        )
        # the runs this process finished get its provenance
        write_results(stamp_provenance(read_results(work_path), info), work_path)
    work = read_results(work_path)
    keys = set(pd.concat(tables)["key"].astype(str))
    if final_path.is_file():  # the other models' final runs stay
        ours = [m for method in args.methods for m in (method, method + TUNED)]
        earlier = read_results(final_path)
        keys |= set(earlier.loc[~earlier["method"].isin(ours), "key"].astype(str))
    final = work[work["key"].astype(str).isin(keys)]
    final.to_csv(final_path.with_name(final_path.name + ".part"), index=False, compression="gzip")
    final_path.with_name(final_path.name + ".part").replace(final_path)
    for method in args.methods:
        v = tuned_vs_default(final, method)
        print(v[["method_a", "method_b", "metric", "gene_set", "estimate", "ci_low", "ci_high", "verdict"]].to_string())
    print(f"wrote {final_path}")
    from course_tools.tuning.committed_report import write_importances

    kept = write_importances(out)  # every study's importances: what notebook 04 reads without refitting
    if kept is not None:
        print(f"wrote {kept}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
