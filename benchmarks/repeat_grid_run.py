"""Re-run one run of the committed benchmark table here and compare its scores with the table's.

Same data, genes, training default and scoring options as the table (its run key says so); the
difference, if any, is the machine: a trained model's numbers depend on the CPU's floating-point
kernels (the order of their sums). Prints this machine's device string, the table run's, the
comparison of notebook 03's live slice (``grid_results.describe_live``) and per score the two values.

    python benchmarks/repeat_grid_run.py                                  # scGen, CD4+ T cells held out, seed 0
    MKL_CBWR=AVX2 python benchmarks/repeat_grid_run.py                    # the same with MKL's AVX2 code path
    python benchmarks/repeat_grid_run.py --method scpram --cell-type B --seed 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from course_tools.benchmark import run_benchmark
from course_tools.grid import grid_settings, provenance
from course_tools.grid_results import compare_live, describe_live, grid_config, load_grid
from tutorial_lib.data import load_kang2018


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="scgen")
    p.add_argument("--cell-type", default="CD4+ T cells", help="held out, design balanced")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    grid = load_grid()
    adata = load_kang2018()
    setting = grid_settings(adata, cell_types=[args.cell_type], imbalance_cell_types=[], donors=None)[0][0]
    table = grid[(grid["setting"] == setting.name) & (grid["seed"] == args.seed) & (grid["method"] == args.method)]
    if table.empty:
        raise SystemExit(f"the table has no run of {args.method!r}, {setting.name!r}, seed {args.seed}")
    first = table.iloc[0]
    print(f"this machine: {provenance()['device']}")
    print(f"table's run:  {first['device']} (commit {first['git_commit'][:7]}, finished {first['finished_at']})")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        live = run_benchmark(
            adata,
            [args.method],
            [setting],
            [args.seed],
            config=grid_config(grid),
            results_path=Path(tmp) / "run.csv",
            progress=False,
        )
    print(f"re-run in {time.perf_counter() - start:.0f} s")
    comparison = compare_live(live, table)
    print(describe_live(comparison, digits=4))
    print(comparison[["metric", "gene_set", "live", "table", "same_value", "within"]].to_string(index=False))


if __name__ == "__main__":
    main()
