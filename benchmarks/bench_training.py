"""Training schedules of scGen and scPRAM side by side: wall time, steps, validation loss, test metrics.

Usage (from the repository root, course environment)::

    python benchmarks/bench_training.py --schedule new --seeds 0,1,2
    python benchmarks/bench_training.py --schedule old --seeds 0          # the old library default
    python benchmarks/bench_training.py --schedule new --subsample 2000   # random 2,000 Kang cells
    python benchmarks/bench_training.py --schedule new --cell-type B      # a validation cell type

Schedules:

* ``old``: the library default before issue 12 (commit 4d06f1a): up to 100 epochs, early
  stopping with a patience of 25 *epochs* on the per-epoch validation loss; scGen batch 32,
  lr 1e-3; scPRAM batch 128, lr 5e-4. Run it with the old library on ``PYTHONPATH`` (e.g. a
  ``git archive 4d06f1a`` copy) or with the new one; the arguments are the same.
* ``new``: each model's current ``train_defaults`` (``model.train()`` with no arguments).

Task: Kang 2018 ("full", or ``--subsample N`` random cells of it, seeded by ``--subsample-seed``),
log-normalised, ``--genes`` HVGs chosen on the training cells, the stimulated cells of
``--cell-type`` held out (:func:`tutorial_lib.data.prepare_holdout`). Each trained model predicts
the held-out type's control cells and is scored with :func:`course_tools.benchmark.evaluate_methods`
(one shared PCA, one DEG list; point estimates on all cells, no bootstrap) beside the
``no_change`` and ``mean_shift`` baselines.

Columns: wall seconds of ``train`` (not counting data preparation), optimizer steps, epochs,
best validation loss (10% of the training cells, seeded), R² of means (all genes), Pearson-Δ on
the top-100 DEGs, E-distance (shared PCA; lower is better), R² of variances (all genes), and the
achieved GFLOP/s of training: 6 × batch × Σ(in × out) of the Linear layers per step (forward 2,
backward 4) times the steps, over the wall time, next to a measured float32 matmul peak (2048²,
same threads). Validation passes are counted in the wall time but not in the FLOPs.

Times are wall-clock seconds on whatever else the machine is doing: the 1-minute load average
is printed before each model; compare rows of one run only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

OLD = {
    "scgen": {"max_epochs": 100, "batch_size": 32, "lr": 1e-3, "patience": 25},
    "scpram": {"max_epochs": 100, "batch_size": 128, "lr": 5e-4, "patience": 25},
}
METRICS = [
    ("r2_pearson_mean", "all", "r2_mean"),
    ("pearson_delta", "top100_degs", "pdelta_top100"),
    ("e_distance", None, "e_distance"),
    ("r2_pearson_var", "all", "r2_var"),
]


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` float32 GFLOP/s of an ``n × n`` matmul with torch's current threads."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def linear_macs(module) -> int:
    """Σ in × out over the Linear layers of ``module`` (multiply-adds per cell, forward)."""
    import torch

    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear))


def git_commit(path: Path) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schedule", choices=["old", "new"], default="new")
    p.add_argument("--methods", default="scgen,scpram")
    p.add_argument("--seeds", default="0")
    p.add_argument("--cell-type", default="CD4+ T cells")
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--subsample", type=int, default=None, help="random cells of Kang 2018 to keep")
    p.add_argument("--subsample-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument(
        "--validation-cell-type",
        default=None,
        help="also hold out this type's stimulated cells and score on it instead of --cell-type "
        "(for choosing settings; the test type's cells are then never scored)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="extra train() option for the new schedule, e.g. lr=2e-3 (repeatable)",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=JSON: a named set of train() options to run beside the schedule, e.g. "
        'big=\'{"batch_size": 256, "lr": 2e-3}\' (repeatable)',
    )
    p.add_argument("--csv", type=Path, default=None, help="also write the rows to this CSV")
    p.add_argument(
        "--histories",
        type=Path,
        default=None,
        help="folder for each model's training history (one CSV per model: the validation passes)",
    )
    args = p.parse_args(argv)

    import numpy as np
    import pandas as pd
    import torch

    # the library applies TUTORIAL_TORCH_THREADS before every training and prediction
    os.environ["TUTORIAL_TORCH_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    import tutorial_lib
    from course_tools.benchmark import evaluate_methods
    from course_tools.methods import get_method
    from tutorial_lib.data import load_kang2018, prepare_holdout, split_views
    from tutorial_lib.models import SCGEN, SCPRAM

    lib_dir = Path(tutorial_lib.__file__).resolve().parent
    overrides = {}
    for item in args.overrides:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    peak = matmul_peak()
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M %Z')}  schedule={args.schedule}  lib={lib_dir} ({git_commit(lib_dir)})  "
        f"torch {torch.__version__}  threads={torch.get_num_threads()}  cores={os.cpu_count()}  "
        f"load(1 min)={os.getloadavg()[0]:.2f}  matmul peak={peak:.1f} GFLOP/s (2048², float32)",
        flush=True,
    )

    adata = load_kang2018("full")
    if args.subsample is not None:
        keep = np.sort(np.random.default_rng(args.subsample_seed).choice(adata.n_obs, args.subsample, replace=False))
        adata = adata[keep].copy()
    views = split_views(
        prepare_holdout(adata, args.cell_type, validation_cell_type=args.validation_cell_type, n_top_genes=args.genes)
    )
    train = views.train
    if args.validation_cell_type is None:
        scored, ctrl, real = args.cell_type, views.ctrl, views.test
    else:
        scored, ctrl, real = args.validation_cell_type, views.val_ctrl, views.val
        print(f"# scoring on the validation type {scored!r}; {args.cell_type!r} held out and not scored", flush=True)
    print(
        f"# {'subsample ' + str(args.subsample) + ' cells; ' if args.subsample else ''}train {train.n_obs} cells, "
        f"ctrl {ctrl.n_obs}, real stimulated {real.n_obs}; {train.n_vars} genes; held out {args.cell_type!r}",
        flush=True,
    )

    preds, rows = {}, []
    for name in ("no_change", "mean_shift"):
        preds[name] = get_method(name)(train, ctrl, cell_type=scored, seed=0)
        rows.append({"label": name, "method": name, "schedule": "baseline", "seed": 0})
    classes = {"scgen": SCGEN, "scpram": SCPRAM}
    for method in [m for m in args.methods.split(",") if m]:
        base = dict(OLD[method]) if args.schedule == "old" else dict(overrides)
        variants = [(args.schedule, base)] + [
            (v.split("=", 1)[0], {**base, **json.loads(v.split("=", 1)[1])}) for v in args.variant
        ]
        for (name, settings), seed in [(v, s) for v in variants for s in [int(x) for x in args.seeds.split(",") if x]]:
            settings = dict(settings)
            model = classes[method](train)
            defaults = dataclasses.asdict(model.train_defaults.replace(**settings))
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            hist = model.train(seed=seed, progress_bar=False, **settings)
            wall = time.perf_counter() - t0
            n_fit = train.n_obs - int(round(0.1 * train.n_obs))
            batch = defaults["batch_size"]
            per_epoch = sum(1 for start in range(0, n_fit, batch) if n_fit - start >= 2)
            steps = hist.step[-1] if getattr(hist, "step", None) else len(hist) * per_epoch  # old lib: per epoch
            epochs = steps / per_epoch
            gflop = 6 * batch * linear_macs(model.module) * steps / 1e9
            label = f"{method} ({name}, seed {seed})"
            if args.histories is not None:
                args.histories.mkdir(parents=True, exist_ok=True)
                hist.to_frame().to_csv(args.histories / f"{method}_{name}_seed{seed}.csv")
            preds[label] = model.predict(scored, adata_to_predict=ctrl, seed=seed)
            rows.append(
                {
                    "label": label,
                    "method": method,
                    "schedule": name,
                    "seed": seed,
                    "train_s": round(wall, 1),
                    "steps": int(steps),
                    "epochs": round(epochs, 1),
                    "best_val_loss": round(float(np.nanmin(hist.val_loss)), 3),
                    "gflops": round(gflop / wall, 1),
                    "load_1m": round(load, 2),
                    "settings": json.dumps({k: v for k, v in defaults.items()}, sort_keys=True),
                }
            )
            print(
                f"# {label}: {wall:.1f} s, {steps} steps ({epochs:.1f} epochs), best val "
                f"{np.nanmin(hist.val_loss):.3f}, load {load:.2f}, stopped early: {hist.stopped_early}",
                flush=True,
            )

    scores = evaluate_methods(real, ctrl, preds, n_bootstrap=0, n_bootstrap_degs=0, seed=0)
    table = pd.DataFrame(rows).set_index("label")
    for metric, subset, column in METRICS:
        sel = scores[scores["metric"] == metric]
        if subset is not None:
            sel = sel[sel["gene_set"] == subset]
        table[column] = sel.groupby("method")["value"].first().reindex(table.index).round(3)
    table["peak_gflops"] = round(peak, 1)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.drop(columns=["settings"]).to_string())
    print("# settings:")
    for label, s in table["settings"].dropna().items():
        print(f"#   {label}: {s}")
    if args.csv is not None:
        table.to_csv(args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
