"""Run a benchmark's independent trainings in parallel processes, with the numbers of a serial run.

:func:`tutorial_lib.benchmark.run_benchmark` trains one model after the other. On a laptop with two
or more cores, the trainings of different seeds and different models are independent, so they can
run side by side: :func:`run_benchmark_parallel` cuts the methods x settings x seeds grid into jobs
(:func:`benchmark_jobs`: per setting and seed, one job per trained model class, which keeps every
prediction-only variant in the job that trains its model, so that it reuses that model as in a
serial run) and runs each job with ``run_benchmark`` in its own process.

Same numbers as a serial run: each job computes its split, genes, DEGs and shared PCA from the
same seed, and PyTorch trains with a fixed thread count (:func:`tutorial_lib.config.torch_threads`,
one by default) in every process, so the results table equals ``run_benchmark``'s up to the timing
columns (checked in ``tests/test_parallel_runs.py``). Processes are started with ``"spawn"`` (a
fresh interpreter each; safe in notebooks and with PyTorch, on every operating system).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
from anndata import AnnData

from tutorial_lib.benchmark import BenchmarkConfig, Setting, run_benchmark

__all__ = ["benchmark_jobs", "default_n_jobs", "run_benchmark_parallel"]


def default_n_jobs(limit: int = 2) -> int:
    """Processes to use: the machine's cores, at most ``limit`` (default 2, the course's laptop)."""
    return max(1, min(limit, os.cpu_count() or 1))


def benchmark_jobs(methods: Sequence[str]) -> list[list[str]]:
    """Split ``methods`` into groups that can train in separate processes.

    One group per trained model class (:data:`tutorial_lib.models.registry.SPECS`), holding every
    method that predicts with that model (e.g. ``scpram`` and ``scpram_percell``), in the order of
    ``methods``; the baselines (nothing to train) join the first group. Unknown names raise.
    """
    from tutorial_lib.models.registry import get_spec

    groups: dict[object, list[str]] = {}
    baselines: list[str] = []
    for name in dict.fromkeys(methods):
        spec = get_spec(name)
        if spec.model is None:
            baselines.append(name)
        else:
            groups.setdefault(spec.model, []).append(name)
    jobs = list(groups.values())
    if not jobs:
        return [baselines] if baselines else []
    jobs[0] = baselines + jobs[0]
    return jobs


def _run_job(adata: AnnData, methods: list[str], setting: Setting, seed: int, config: BenchmarkConfig) -> pd.DataFrame:
    return run_benchmark(adata, methods, [setting], [seed], config=config, progress=False)


def run_benchmark_parallel(
    adata: AnnData,
    methods: Sequence[str],
    settings: Sequence[Setting],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    config: BenchmarkConfig | None = None,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """:func:`~tutorial_lib.benchmark.run_benchmark` with its trainings spread over ``n_jobs`` processes.

    Parameters
    ----------
    adata, methods, settings, seeds, config
        As for ``run_benchmark`` (no results file: the table is returned).
    n_jobs
        Processes (default :func:`default_n_jobs`). ``1`` runs the jobs one after the other in this
        process.

    Returns
    -------
    pandas.DataFrame
        ``run_benchmark``'s tidy table, rows ordered by setting, seed and the order of ``methods``.
    """
    config = config or BenchmarkConfig()
    n_jobs = default_n_jobs() if n_jobs is None else int(n_jobs)
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"setting names must be unique, got {names}")
    groups = benchmark_jobs(methods)
    if not groups:
        raise ValueError("methods is empty: name at least one method")
    # every seed of one model group before the next group (list the most expensive model first to start it first)
    jobs = [(group, setting, seed) for group in groups for setting in settings for seed in seeds]
    if n_jobs == 1:
        tables = [_run_job(adata, g, s, seed, config) for g, s, seed in jobs]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=context) as pool:
            futures = [pool.submit(_run_job, adata, g, s, seed, config) for g, s, seed in jobs]
            tables = [f.result() for f in futures]
    table = pd.concat(tables, ignore_index=True)
    order = {m: i for i, m in enumerate(dict.fromkeys(methods))}
    where = {s.name: i for i, s in enumerate(settings)}
    rank = table.assign(_s=table["setting"].map(where), _m=table["method"].map(order))
    rank = rank.sort_values(["_s", "seed", "_m"], kind="stable")
    return rank.drop(columns=["_s", "_m"]).reset_index(drop=True)
