"""A second opinion on the metrics: ours against Arc Institute's ``cell-eval`` on the same predictions.

Usage (repository root, course environment; ``cell-eval`` in its own venv)::

    python3.11 -m venv /work/venvs/celleval && /work/venvs/celleval/bin/pip install cell-eval==0.8.2
    PYTHONPATH=. python benchmarks/compare_metrics.py --celleval-python /work/venvs/celleval/bin/python

Data: the committed mini subset of Kang 2018, 2,000 HVGs chosen on the training cells, CD4+ T
cells held out. Predictions: ``no_change`` is left out (its change is 0, cell-eval's Pearson
is undefined there as ours is), ``mean_shift``, ``pca_arithmetic`` and, trained briefly
(``--epochs``, seed 0), ``scgen``, ``scpram`` and ``scpram_percell``. For each prediction the
worker (``--worker``, run with ``--celleval-python``; it imports cell-eval and anndata only)
builds cell-eval's ``PerturbationAnndataPair`` input: the real AnnData holds the held-out
stimulated cells (``target = "IFN-beta"``) and the control cells (``target = "control"``), the
predicted AnnData the predicted cells and the same control cells; ``MetricsEvaluator(...,
skip_de=True).compute(profile="anndata")``.

Overlapping metrics (same definitions on paper, so they should agree to float precision):

* ``pearson_delta`` (cell-eval) vs our ``pearson_delta`` on gene set ``all``: Pearson
  correlation over genes of mean(pred) − mean(ctrl) and mean(real) − mean(ctrl).
* ``mse`` (cell-eval) vs our ``mse_mean`` on ``all``: mean over genes of
  (mean(pred) − mean(real))².

Not compared: cell-eval's DE metrics (its own Wilcoxon + FDR through ``pdex``, a different DEG
convention from our top-k ranking), and its ``edistance`` / discrimination / clustering metrics,
which correlate or rank *across perturbations* and are undefined with the single perturbation
here. pertpy's distances were not run (pertpy was not installed in this session).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

OVERLAP = {"pearson_delta": "pearson_delta", "mse": "mse_mean"}  # cell-eval name -> ours (gene set "all")


def worker(folder: Path) -> None:
    import anndata as ad
    import numpy as np
    from cell_eval import MetricsEvaluator

    real, ctrl = ad.read_h5ad(folder / "real.h5ad"), ad.read_h5ad(folder / "ctrl.h5ad")
    out = {}
    for path in sorted(folder.glob("pred_*.h5ad")):
        pred = ad.read_h5ad(path)

        def dense(a):
            return np.asarray(a.X.toarray() if hasattr(a.X, "toarray") else a.X, dtype=np.float32)

        def stack(stim):
            x = np.vstack([dense(stim), dense(ctrl)])
            obs = {"target": ["IFN-beta"] * stim.n_obs + ["control"] * ctrl.n_obs}
            a = ad.AnnData(x, obs=obs)
            a.obs_names = [f"c{i}" for i in range(a.n_obs)]
            a.var_names = list(ctrl.var_names)
            return a

        ev = MetricsEvaluator(
            adata_pred=stack(pred),
            adata_real=stack(real),
            control_pert="control",
            pert_col="target",
            skip_de=True,
            num_threads=1,
            outdir=str(folder / "celleval_out"),
        )
        results, _ = ev.compute(profile="anndata", write_csv=False, break_on_error=False)
        row = results.to_dicts()[0]  # one row per perturbation (here one), one column per metric
        out[path.stem.removeprefix("pred_")] = {k: row[k] for k in OVERLAP if row.get(k) is not None}
    (folder / "celleval.json").write_text(json.dumps(out, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--celleval-python", default=sys.executable)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return 0

    import numpy as np
    import pandas as pd

    from course_tools.methods import get_method
    from course_tools.scoring.evaluate import evaluate
    from tutorial_lib.data import load_kang2018, prepare_holdout, split_views

    parts = split_views(prepare_holdout(load_kang2018("mini"), "CD4+ T cells", n_top_genes=2000))
    methods = ["mean_shift", "pca_arithmetic", "scgen", "scpram", "scpram_percell"]
    preds = {
        m: get_method(m)(parts.train, parts.ctrl, cell_type="CD4+ T cells", seed=0, max_epochs=args.epochs)
        for m in methods
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        parts.test.write_h5ad(folder / "real.h5ad")
        parts.ctrl.write_h5ad(folder / "ctrl.h5ad")
        for m, p in preds.items():
            slim = p.copy()
            slim.uns, slim.obsm = {}, {}
            slim.write_h5ad(folder / f"pred_{m}.h5ad")
        subprocess.run([args.celleval_python, __file__, "--worker", str(folder)], check=True)
        theirs = json.loads((folder / "celleval.json").read_text())

    rows = []
    for m, p in preds.items():
        ours = evaluate(parts.test, p, parts.ctrl, n_bootstrap=0, n_bootstrap_degs=0, seed=0)
        ours = ours[ours["gene_set"] == "all"].set_index("metric")["value"]
        for ce_name, our_name in OVERLAP.items():
            a, b = float(ours[our_name]), float(theirs[m].get(ce_name, np.nan))
            rows.append({"method": m, "metric": our_name, "ours": a, "cell_eval": b, "abs_diff": abs(a - b)})
    table = pd.DataFrame(rows)
    with pd.option_context("display.float_format", "{:.6g}".format, "display.width", 120):
        print(table.to_string(index=False))
    worst = table["abs_diff"].max()
    print(f"largest absolute difference {worst:.3g}: {'AGREE' if worst < 1e-4 else 'DIFFER'} (tolerance 1e-4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
