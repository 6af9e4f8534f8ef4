"""Trials per minute that each tuning storage sustains with several workers sharing one study.

Usage (from the repository root)::

    python benchmarks/bench_tuning_storage.py [--workers 4] [--n-trials 24] [--epochs 2]
                                              [--storages sqlite journal postgresql]

For each storage (SQLite file, journal file, a PostgreSQL server started in a temporary folder by
:mod:`course_tools.tuning.postgres`), it creates one study, starts ``--workers`` processes of
``python -m course_tools.tuning.cli`` on it (mini data, tiny scGen networks, no pruning: the trials are
short so that the storage's share of the time shows) and waits until the study holds
``--n-trials`` finished trials. Reported per storage:

* ``trials_per_min``: finished trials / (last trial's end - first trial's start), in minutes: the
  sustained rate once the workers are up, without their start-up;
* ``wall_s``: from starting the workers to the last one exiting (start-up and data loading included);
* ``median_trial_s``: the median duration of a trial;
* ``load_1m``: the 1-minute load average when the storage's run started.

The rate depends on the machine and on its load far more than on the storage when trials are as
long as in a real study; record ``uptime`` with the figures (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import optuna

from course_tools.tuning.postgres import PostgresUnavailable, temporary_server
from course_tools.tuning.storage import make_storage
from course_tools.tuning.study import create_study

SPACE = (
    '{"n_hidden": ["categorical", [16, 32, 64]], "n_latent": ["categorical", [4, 8]], '
    '"dropout_rate": ["float", [0.0, 0.5, false]]}'
)


def run_storage(kind: str, url: str, workers: int, n_trials: int, epochs: int, log_dir: Path) -> dict:
    """Run ``workers`` tune workers on ``url`` until ``n_trials`` finished; return the figures."""
    name = f"bench-{kind}"
    create_study(name, url, heartbeat=2)
    cmd = [
        sys.executable,
        "-m",
        "course_tools.tuning.cli",
        "--study",
        name,
        "--storage",
        url,
        "--method",
        "scgen",
        "--data",
        "mini",
        "--n-top-genes",
        "100",
        "--max-epochs",
        str(epochs),
        "--batch-size",
        "128",
        "--pruner",
        "none",
        "--space",
        SPACE,
        "--heartbeat",
        "2",
        "--n-trials",
        str(n_trials),
    ]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    procs = []
    for k in range(workers):
        log = open(log_dir / f"{kind}-worker{k}.log", "w")
        procs.append(
            subprocess.Popen(
                cmd + ["--worker", str(k)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        )
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"{kind}: worker exit codes {codes}; logs in {log_dir}")
    trials = optuna.load_study(study_name=name, storage=make_storage(url, heartbeat=2)).get_trials(deepcopy=False)
    done = [t for t in trials if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL]
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    return {
        "storage": kind,
        "finished": len(done),
        "surplus": len(trials) - len(done),
        "trials_per_min": 60 * len(done) / span,
        "wall_s": wall,
        "median_trial_s": statistics.median(durations),
        "load_1m": load,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--n-trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--storages",
        nargs="+",
        default=["sqlite", "journal", "postgresql"],
        choices=["sqlite", "journal", "postgresql"],
    )
    args = parser.parse_args(argv)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {os.cpu_count()} CPU cores; {args.workers} workers; "
        f"{args.n_trials} trials of {args.epochs} epochs (mini data, 100 genes, tiny scGen); "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; TUTORIAL_TORCH_THREADS="
        f"{os.environ.get('TUTORIAL_TORCH_THREADS', '(default 1)')}",
        flush=True,
    )
    print("storage\tfinished\tsurplus\ttrials_per_min\twall_s\tmedian_trial_s\tload_1m", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in args.storages:
            server = temporary_server() if kind == "postgresql" else nullcontext(None)
            try:
                with server as pg_url:
                    url = {
                        "sqlite": f"sqlite:///{tmp / 'bench.db'}",
                        "journal": str(tmp / "bench.log"),
                        "postgresql": pg_url,
                    }[kind]
                    r = run_storage(kind, url, args.workers, args.n_trials, args.epochs, tmp)
            except PostgresUnavailable as err:
                print(f"{kind}\tskipped: {err}", flush=True)
                continue
            print(
                f"{r['storage']}\t{r['finished']}\t{r['surplus']}\t{r['trials_per_min']:.1f}\t{r['wall_s']:.1f}\t"
                f"{r['median_trial_s']:.2f}\t{r['load_1m']:.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
