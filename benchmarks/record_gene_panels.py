"""Record the gene panel of each leave-one-cell-type-out run of the benchmark table (column ``gene_panel``).

A run's key (:func:`course_tools.benchmark.run_key`) is a digest of everything that fixes its numbers,
the genes it was scored on included. For every ``loco`` run this script recomputes the genes that the
grid's rule chooses for its setting (highly variable genes on the setting's training cells, before an
unbalanced setting drops stimulated cells: :func:`course_tools.benchmark.run_genes`), recomputes the run
key from them, and writes the panel's digest into ``gene_panel`` only where the recomputed key equals the
table's: the run was then provably scored on that panel. Runs whose key does not match (made under an
older rule or older training defaults) get no panel. Donor runs get none either (scored within cell
types on one panel per run; not compared across designs).

    python benchmarks/record_gene_panels.py results/grid.csv.gz            # report only
    python benchmarks/record_gene_panels.py results/grid.csv.gz --write    # write the column in place
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import pandas as pd

from course_tools.benchmark import BenchmarkConfig, Setting, run_genes, run_key
from course_tools.grid import STIMULATED_FRACTION
from course_tools.grid_results import PANEL_COLUMN, grid_config
from tutorial_lib.data import load_kang2018, normalise_log


def panel_digest(genes: list[str]) -> str:
    """A short digest naming a gene panel (its genes in order)."""
    return hashlib.sha256("\n".join(genes).encode()).hexdigest()[:12]


def record(table: pd.DataFrame, adata, config: BenchmarkConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table with ``gene_panel`` filled where the run key confirms it, and a per-setting summary."""
    table = table.copy()
    table[PANEL_COLUMN] = None
    rows = []
    for setting_name, runs in table[table["design"] != "donors"].groupby("setting"):
        held_out = runs["held_out"].iloc[0]
        design = runs["design"].iloc[0]
        fraction = STIMULATED_FRACTION if design != "balanced" else None
        setting = Setting(setting_name, held_out, stimulated_fraction=fraction)
        work = adata.copy()
        setting.assign(work)
        genes = run_genes(work, config.n_top_genes)
        digest = panel_digest(genes)
        keys = runs[["method", "seed", "key"]].drop_duplicates("key")
        confirmed = [
            k for m, s, k in keys.itertuples(index=False) if run_key(m, setting, int(s), config, genes) == str(k)
        ]
        table.loc[table["key"].astype(str).isin(confirmed), PANEL_COLUMN] = digest
        rows.append((setting_name, design, len(keys), len(confirmed), digest))
    return table, pd.DataFrame(rows, columns=["setting", "design", "runs", "confirmed", "panel"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("--write", action="store_true", help="write the column into the table (in place)")
    args = parser.parse_args(argv)
    table = pd.read_csv(args.table, dtype={"setting": str, "method": str, "key": str})
    config = grid_config(table)
    adata = load_kang2018("full")
    if "log1p" not in adata.uns:
        adata = normalise_log(adata)
    recorded, summary = record(table, adata, config)
    print(summary.to_string(index=False))
    unconfirmed = summary["runs"] - summary["confirmed"]
    n, ok = int(summary["runs"].sum()), int(summary["confirmed"].sum())
    print(f"{ok} of {n} loco runs confirmed; {int(unconfirmed.sum())} not")
    if args.write:
        part = args.table.with_name(args.table.name + ".part")
        recorded.to_csv(part, index=False, compression="gzip")
        part.replace(args.table)
        print(f"wrote {PANEL_COLUMN} into {args.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
