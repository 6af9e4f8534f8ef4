"""Time of one training epoch and of prediction for scGen and scPRAM, with peak memory.

Usage: ``python benchmarks/bench_models.py [--epochs 1] [--genes 2000] [--threads N] [--no-synthetic]``.

Data: the committed real mini subset of Kang 2018 (log-normalised, the ``--genes`` most
variable genes, CD4+ T cells held out) when present, and a synthetic matrix of the full-size
order (4,000 cells × 2,000 genes, 8 cell types). Models use their published architectures
(scGen 2 × 800, scPRAM 2 × 1000, latent 100) and default batch sizes. Each (data, method)
case runs in a fresh process, so its peak RSS is its own (it includes Python, torch and the
data). Times are wall-clock seconds on the device chosen by ``get_device`` (CPU here unless
CUDA is available).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CASES = [
    ("scgen", {}),
    ("scpram", {}),  # the release: exact OT (100,000 iterations), first-cell attention
    ("scpram", {"variant": "percell"}),  # the course variant: per-cell attention
]


def load_data(name: str, n_genes: int):
    import numpy as np

    if name == "kang2018_mini":
        from tutorial_lib.data import load_kang2018, normalise_log

        adata = normalise_log(load_kang2018("mini"))
        x = adata.X
        var = np.asarray(x.power(2).mean(0) - np.square(x.mean(0))).ravel()
        return adata[:, np.sort(np.argsort(-var)[:n_genes])].copy()
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n_cells, types = 4000, [f"type{i}" for i in range(8)]
    cell_type = rng.choice(types, size=n_cells)
    condition = rng.choice(["control", "stimulated"], size=n_cells)
    base = {t: rng.gamma(0.3, 1.0, size=n_genes) for t in types}
    mu = np.stack([base[t] for t in cell_type]) + (condition == "stimulated")[:, None] * (rng.random(n_genes) < 0.05)
    x = np.log1p(rng.poisson(mu * 2).astype(np.float32))
    obs = pd.DataFrame({"cell_type": cell_type, "condition": condition}, index=[f"c{i}" for i in range(n_cells)])
    adata = ad.AnnData(sp.csr_matrix(x), obs=obs)
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    return adata


def run_case(data: str, method: str, predict_kwargs: dict, epochs: int, n_genes: int) -> dict:
    """One measurement (in this process)."""
    import torch

    from tutorial_lib.models import SCGEN, SCPRAM

    adata = load_data(data, n_genes)
    held_out = "CD4+ T cells" if data == "kang2018_mini" else "type0"
    train = adata[~((adata.obs.cell_type == held_out) & (adata.obs.condition == "stimulated")).to_numpy()].copy()
    model = {"scgen": SCGEN, "scpram": SCPRAM}[method](train)
    t0 = time.perf_counter()
    model.train(max_epochs=epochs, early_stopping=False, progress_bar=False)
    t1 = time.perf_counter()
    pred = model.predict(held_out, **predict_kwargs)
    t2 = time.perf_counter()
    return {
        "data": data,
        "cells×genes": f"{train.n_obs}×{train.n_vars}",
        "method": method + (f" ({predict_kwargs['variant']})" if "variant" in predict_kwargs else ""),
        "device": model.device,
        "threads": torch.get_num_threads(),
        "epoch_s": round((t1 - t0) / epochs, 2),
        "predict_s": round(t2 - t1, 2),
        "n_predicted": pred.n_obs,
        "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args()
    if args.case:
        data, method, kwargs = json.loads(args.case)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(run_case(data, method, kwargs, args.epochs, args.genes)))
        return

    import pandas as pd

    from tutorial_lib.config import DATA_DIR

    datasets = ["kang2018_mini"] if (DATA_DIR / "kang2018_mini.h5ad").exists() else []
    datasets += [] if args.no_synthetic and datasets else ["synthetic"]
    rows = []
    for data in datasets:
        for method, kwargs in CASES:
            case = json.dumps([data, method, kwargs])
            cmd = [
                sys.executable,
                __file__,
                "--case",
                case,
                "--epochs",
                str(args.epochs),
                "--genes",
                str(args.genes),
                "--threads",
                str(args.threads),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], file=sys.stderr)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
