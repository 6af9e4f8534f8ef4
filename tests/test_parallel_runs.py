"""Parallel benchmark runs give the serial run's numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from tutorial_lib.benchmark import BenchmarkConfig, Setting, run_benchmark
from tutorial_lib.parallel_runs import benchmark_jobs, default_n_jobs, run_benchmark_parallel


def test_jobs_keep_each_models_variants_together():
    methods = ["no_change", "scgen", "scpram", "mean_shift", "scpram_percell", "scgen_residual", "scgen"]
    assert benchmark_jobs(methods) == [
        ["no_change", "mean_shift", "scgen", "scgen_residual"],
        ["scpram", "scpram_percell"],
    ]
    assert benchmark_jobs(["mean_shift"]) == [["mean_shift"]]
    assert benchmark_jobs([]) == []
    with pytest.raises(ValueError, match="Unknown method"):
        benchmark_jobs(["nope"])
    assert 1 <= default_n_jobs() <= 2


COMPARED = ["method", "setting", "seed", "metric", "gene_set", "value", "key"]


def test_parallel_equals_serial(_mini_counts):
    methods = ["no_change", "mean_shift", "scgen", "scgen_residual"]
    settings = [Setting("B held out", cell_type="B")]
    config = BenchmarkConfig(n_top_genes=200, max_epochs=1, n_bootstrap=0, n_bootstrap_degs=0, n_top_degs=20)
    serial = run_benchmark(_mini_counts, methods, settings, [0, 1], config=config, progress=False)
    parallel = run_benchmark_parallel(_mini_counts, methods, settings, [0, 1], config=config, n_jobs=2)
    in_process = run_benchmark_parallel(_mini_counts, methods, settings, [0, 1], config=config, n_jobs=1)
    for other in (parallel, in_process):
        pd.testing.assert_frame_equal(serial[COMPARED], other[COMPARED], check_dtype=False)
    with pytest.raises(ValueError, match="n_jobs"):
        run_benchmark_parallel(_mini_counts, methods, settings, [0], config=config, n_jobs=0)
    with pytest.raises(ValueError, match="unique"):
        run_benchmark_parallel(_mini_counts, methods, settings * 2, [0], config=config, n_jobs=1)
