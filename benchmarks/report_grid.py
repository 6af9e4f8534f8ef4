"""Print the benchmark grid's verdicts as markdown, or write them into the book's results page.

Usage (from the repository root, course environment)::

    python benchmarks/report_grid.py [results/grid.csv.gz]                          # print the report
    python benchmarks/report_grid.py [results/grid.csv.gz] --write book/results.md  # replace the page's blocks
    python benchmarks/report_grid.py [results/grid.csv.gz] --check book/results.md  # exit 1 if it is stale

The report is :func:`course_tools.grid_report.report_blocks`: the primary question with its
Holm-corrected verdicts (and without the cell types used in development), what the table holds, how
far the models trained, then the exploratory verdicts (per design, per held-out cell type, per donor
cell type, the imbalance questions or why they are withdrawn). The page holds it in two generated
blocks, each between its marker lines (:func:`course_tools.grid_report.markers`): the primary
question at the top of the page, the rest in its benchmark section.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_tools.grid_report import grid_report, page_report, report_blocks, write_report
from course_tools.grid_results import GRID_COMMAND, load_grid


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", nargs="?", default="results/grid.csv.gz", help="the grid's table (default %(default)s)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--write", metavar="PAGE", help="replace the generated blocks of this markdown page")
    what.add_argument("--check", metavar="PAGE", help="exit 1 if the page's generated blocks are stale")
    args = p.parse_args(argv)
    table_path = Path(args.table)
    if not table_path.exists():
        print(f"{table_path} not found; make it with `{GRID_COMMAND}`", file=sys.stderr)
        return 2
    table = load_grid(table_path)
    if args.write:
        changed = write_report(args.write, report_blocks(table))
        print(f"{args.write}: {'updated' if changed else 'already current'}")
        return 0
    report = grid_report(table)
    if args.check:
        if page_report(args.check) != report:
            print(f"{args.check} is stale: run `python benchmarks/report_grid.py {table_path} --write {args.check}`")
            return 1
        print(f"{args.check}: current")
    else:
        print(report, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
