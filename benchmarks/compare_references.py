"""Our scGen / scPRAM against the reference implementations (pertpy 1.0.3 ``Scgen``, scpram 0.0.3).

Usage (from the repository root, in the course environment)::

    python benchmarks/compare_references.py                        # ours + baselines (+ references if importable)
    python benchmarks/compare_references.py --reference-python /path/to/ref-env/bin/python
    python benchmarks/compare_references.py --methods scgen --settings default,capped --references none
    python benchmarks/compare_references.py --set scgen.capped.max_epochs=12 --set scpram.capped.lr=2e-3

Task: Kang 2018 ifnb ("full"), log-normalised, 2,000 HVGs chosen on the training cells, the
stimulated CD4+ T cells held out (:func:`tutorial_lib.data.prepare_holdout`). Each of our models
is trained with the presets of :mod:`course_tools.presets` named by ``--settings``
(default: ``"default"``, the library's schedule; overridable with ``--set``); the ``no_change``
and ``mean_shift`` baselines are added; and, when the reference packages can be imported, each
reference is trained with its published settings (pertpy's scGen tutorial: 100 epochs, batch 32,
early stopping with patience 25; scpram 0.0.3's defaults: 100 epochs, batch 128, lr 5e-4) on the
*same* training cells (in a subprocess, so that it may live in another environment: ``--reference-python``,
see ``environments/reference.yml``) and predicts the same control cells.

All predictions are scored with :func:`course_tools.benchmark.evaluate_methods` on one shared
PCA and one DEG list, and a side-by-side table is printed: method, setting, train seconds,
predict seconds, R² of means (squared Pearson, all genes), Pearson delta (top-100 DEGs),
E-distance (shared PCA; lower is better) and R² of variances (all genes), with the 1-minute load
average when each model started training (``load_1m``; the timings are only comparable at a
similar load). ``--sample residual`` (the default) adds, for each of our trained models, the
same model predicting with ``predict(sample="residual")`` (no retraining; same train time).

Torch threads are fixed to ``--threads`` (default: the number of CPU cores) in this process
and in the reference subprocesses (``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` and, for JAX,
``XLA_FLAGS``). Times are wall-clock seconds: note the machine load (``uptime``) with them.

The reference worker (``--worker``) imports neither ``tutorial_lib`` nor the course's
evaluation code: it reads ``train.h5ad``/``ctrl.h5ad`` from a folder, trains, predicts and
writes ``pred.h5ad`` and ``timing.json`` there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCES = {
    # name: (module that must import, method it corresponds to, default settings)
    # pertpy's scGen tutorial: 100 epochs, batch 32, early stopping with patience 25 (epochs)
    "pertpy_scgen": (
        "pertpy",
        "scgen",
        {"max_epochs": 100, "batch_size": 32, "lr": 1e-3, "early_stopping_patience": 25},
    ),
    # scpram 0.0.3's train_SCPRAM defaults: 100 epochs, batch 128, lr 5e-4
    "scpram_0.0.3": ("scpram", "scpram", {"max_epochs": 100, "batch_size": 128, "lr": 5e-4}),
}
METRICS = [
    ("r2_pearson_mean", "all", "r2_mean_all"),
    ("pearson_delta", "top100_degs", "pearson_delta_top100"),
    ("e_distance", None, "e_distance"),
    ("r2_pearson_var", "all", "r2_var_all"),
]
KEY = {
    "condition_key": "condition",
    "cell_type_key": "cell_type",
    "ctrl_key": "control",
    "stim_key": "stimulated",
    "pred_key": "predicted",
}


# --------------------------------------------------------------------------------------------
# Reference worker (runs in the reference environment; no tutorial_lib import)


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def _worker_pertpy_scgen(train, ctrl, cell_type: str, settings: dict, seed: int):
    import numpy as np
    import pertpy as pt
    import scvi

    scvi.settings.seed = seed
    pt.tl.Scgen.setup_anndata(train, batch_key=KEY["condition_key"], labels_key=KEY["cell_type_key"])
    model = pt.tl.Scgen(train)
    stopping = {}
    if settings.get("early_stopping_patience"):
        stopping = {"early_stopping": True, "early_stopping_patience": settings["early_stopping_patience"]}
    t0 = time.perf_counter()
    model.train(
        max_epochs=settings["max_epochs"],
        batch_size=settings["batch_size"],
        plan_kwargs={"lr": settings["lr"]},
        accelerator="cpu",
        **stopping,
    )
    t1 = time.perf_counter()
    settings["epochs_trained"] = len(model.history["elbo_train"])
    pred, _ = model.predict(ctrl_key=KEY["ctrl_key"], stim_key=KEY["stim_key"], adata_to_predict=ctrl)
    t2 = time.perf_counter()
    pred.X = np.asarray(pred.X, dtype=np.float32)
    return pred, t1 - t0, t2 - t1


def _worker_scpram(train, ctrl, cell_type: str, settings: dict, seed: int):
    import anndata as ad
    import numpy as np
    import torch
    from scpram import models

    # scpram reads dense data through AnnData.to_df()
    train = ad.AnnData(
        np.asarray(train.X.toarray() if hasattr(train.X, "toarray") else train.X, dtype=np.float32),
        obs=train.obs.copy(),
        var=train.var[[]].copy(),
    )
    model = models.SCPRAM(input_dim=train.n_vars, device="cpu")
    t0 = time.perf_counter()
    model.train_SCPRAM(train, epochs=settings["max_epochs"], batch_size=settings["batch_size"], lr=settings["lr"])
    t1 = time.perf_counter()
    with torch.no_grad():
        # scpram.predict uses the training data's control cells of ``cell_type`` (= ctrl here)
        pred = model.predict(train, cell_type, KEY, ratio=0.05)
    t2 = time.perf_counter()
    pred.X = np.asarray(pred.X, dtype=np.float32)
    return pred, t1 - t0, t2 - t1


def run_worker(name: str, folder: Path, cell_type: str, settings: dict, seed: int) -> None:
    import anndata as ad

    _seed_everything(seed)
    train = ad.read_h5ad(folder / "train.h5ad")
    ctrl = ad.read_h5ad(folder / "ctrl.h5ad")
    fn = {"pertpy_scgen": _worker_pertpy_scgen, "scpram_0.0.3": _worker_scpram}[name]
    pred, train_s, predict_s = fn(train, ctrl, cell_type, settings, seed)
    out = ad.AnnData(pred.X, obs=pred.obs[[]].copy())
    out.var_names = list(map(str, pred.var_names))
    out.obs_names = list(map(str, pred.obs_names))
    out.write_h5ad(folder / "pred.h5ad")
    epochs = settings.get("epochs_trained", settings["max_epochs"])
    (folder / "timing.json").write_text(json.dumps({"train_s": train_s, "predict_s": predict_s, "epochs": epochs}))


# --------------------------------------------------------------------------------------------
# Driver


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
            "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}",
            "JAX_PLATFORMS": "cpu",
        }
    )
    return env


def reference_available(python: str, module: str) -> bool:
    probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
    return probe.returncode == 0


def parse_overrides(items: list[str]) -> dict[tuple[str, str], dict]:
    """``--set METHOD.SETTING.KEY=VALUE`` (VALUE parsed as JSON when possible)."""
    out: dict[tuple[str, str], dict] = {}
    for item in items:
        lhs, _, value = item.partition("=")
        parts = lhs.rsplit(".", 2)  # METHOD may contain dots (scpram_0.0.3)
        if len(parts) != 3 or not value:
            raise SystemExit(f"--set {item!r}: expected METHOD.SETTING.KEY=VALUE, e.g. scgen.capped.lr=2e-3")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault((parts[0], parts[1]), {})[parts[2]] = parsed
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cell-type", default="CD4+ T cells", help="held-out cell type")
    parser.add_argument("--n-top-genes", type=int, default=2000)
    parser.add_argument("--methods", default="scgen,scpram", help="comma-separated: scgen, scpram")
    parser.add_argument(
        "--settings", default="default", help="comma-separated presets to train (default, capped, reference)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="M.S.KEY=VALUE",
        help="override a train/predict option of a preset, e.g. scgen.capped.max_epochs=12 or "
        "scpram.default.ot_method=sinkhorn_log (an SCPRAMOptions field, set on a copy of the variant); "
        "for references use pertpy_scgen.reference.KEY / scpram_0.0.3.reference.KEY",
    )
    parser.add_argument(
        "--references",
        default="auto",
        help=f"'auto' (those importable), 'none', or a comma-separated list of {', '.join(REFERENCES)}",
    )
    parser.add_argument(
        "--reference-python",
        default=sys.executable,
        help="Python interpreter of the environment with pertpy/scvi-tools and scpram (default: this one)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch/BLAS threads")
    parser.add_argument(
        "--sample",
        default="residual",
        help="comma-separated extra predict(sample=...) modes to score for each of our trained "
        "models (same weights, prediction only): residual, posterior; 'none' for none",
    )
    parser.add_argument("--n-bootstrap", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the summary table as CSV here")
    parser.add_argument("--tidy-out", type=Path, default=None, help="write the full metric table as CSV here")
    # internal: reference worker
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-settings", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        run_worker(args.worker, args.worker_dir, args.cell_type, json.loads(args.worker_settings), args.seed)
        return 0

    import numpy as np
    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    import anndata as ad

    from course_tools.benchmark import evaluate_methods
    from course_tools.methods import get_method
    from course_tools.presets import predict_preset, train_preset
    from tutorial_lib.data import load_kang2018, prepare_holdout, split_views
    from tutorial_lib.models import SCGEN, SCPRAM
    from tutorial_lib.models.scpram import VARIANTS, SCPRAMOptions

    overrides = parse_overrides(args.overrides)
    methods = [m for m in args.methods.split(",") if m]
    settings = [s for s in args.settings.split(",") if s]
    sample_modes = [] if args.sample == "none" else [m for m in args.sample.split(",") if m]
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}  threads={args.threads}  cores={os.cpu_count()}  "
        f"load(1 min) at start={os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.2f}",
        flush=True,
    )

    adata = prepare_holdout(load_kang2018("full"), args.cell_type, n_top_genes=args.n_top_genes)
    views = split_views(adata)
    train, ctrl, real = views.train.copy(), views.ctrl.copy(), views.test.copy()
    print(
        f"# train {train.n_obs} cells, ctrl {ctrl.n_obs}, real stimulated {real.n_obs}; {train.n_vars} genes",
        flush=True,
    )

    preds: dict[str, ad.AnnData] = {}
    rows: list[dict] = []

    def loadavg() -> float:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    def add(label, method, setting, pred, train_s, predict_s, options, load_1m):
        preds[label] = pred
        rows.append(
            {
                "label": label,
                "method": method,
                "setting": setting,
                "train_s": train_s,
                "predict_s": predict_s,
                "load_1m": load_1m,
                "options": json.dumps(options, sort_keys=True),
            }
        )

    for name in ("no_change", "mean_shift"):
        t0 = time.perf_counter()
        pred = get_method(name)(train, ctrl, cell_type=args.cell_type, seed=args.seed)
        add(name, name, "baseline", pred, 0.0, time.perf_counter() - t0, {}, loadavg())

    classes = {"scgen": SCGEN, "scpram": SCPRAM}
    #: scPRAM's prediction settings (SCPRAMOptions' fields): set on a copy of the variant
    option_keys = {f.name for f in dataclasses.fields(SCPRAMOptions)}
    predict_keys = {"sample", "ratio", "variant", "restrict_arithmetic_to", *option_keys}
    for method in methods:
        for setting in settings:
            opts = {
                **train_preset(method, setting),
                **predict_preset(method, setting),
                **overrides.get((method, setting), {}),
            }
            train_kw = {k: v for k, v in opts.items() if k not in predict_keys}
            predict_kw = {k: v for k, v in opts.items() if k in predict_keys and k not in option_keys}
            options = {k: v for k, v in opts.items() if k in option_keys}
            if options:  # e.g. --set scpram.default.ot_method=sinkhorn_log
                if method != "scpram":
                    raise SystemExit(f"--set {method}.{setting}: {sorted(options)} are scPRAM's prediction settings")
                predict_kw["variant"] = dataclasses.replace(VARIANTS[predict_kw.get("variant", "released")], **options)
            print(f"# training {method} [{setting}] {opts}", flush=True)
            model = classes[method](train)
            load_1m = loadavg()
            t0 = time.perf_counter()
            model.train(seed=args.seed, progress_bar=False, **train_kw)
            t1 = time.perf_counter()
            pred = model.predict(args.cell_type, adata_to_predict=ctrl, seed=args.seed, **predict_kw)
            t2 = time.perf_counter()
            add(f"{method} ({setting})", method, setting, pred, t1 - t0, t2 - t1, opts, load_1m)
            ended = "the stopping rule" if model.history_.stopped_early else "a cap"
            print(
                f"#   train {t1 - t0:.1f} s ({model.history_.step[-1]} steps, "
                f"{model.history_.epoch[-1]:.1f} epochs, ended by {ended}), predict {t2 - t1:.1f} s",
                flush=True,
            )
            for mode in sample_modes:
                if predict_kw.get("sample", False) == mode:
                    continue
                t2 = time.perf_counter()
                pred = model.predict(
                    args.cell_type, adata_to_predict=ctrl, seed=args.seed, **{**predict_kw, "sample": mode}
                )
                t3 = time.perf_counter()
                add(
                    f"{method} ({setting}, sample={mode})",
                    method,
                    f"{setting}, sample={mode}",
                    pred,
                    t1 - t0,
                    t3 - t2,
                    {**opts, "sample": mode},
                    load_1m,
                )

    if args.references == "none":
        refs = []
    elif args.references == "auto":
        refs = list(REFERENCES)
    else:
        refs = [r for r in args.references.split(",") if r]
    with tempfile.TemporaryDirectory(prefix="compare_refs_") as tmp:
        if refs:
            train.write_h5ad(Path(tmp) / "train.h5ad")
            ctrl.write_h5ad(Path(tmp) / "ctrl.h5ad")
        for ref in refs:
            if ref not in REFERENCES:
                raise SystemExit(f"unknown reference {ref!r}; choose from {list(REFERENCES)}")
            module, method, defaults = REFERENCES[ref]
            if not reference_available(args.reference_python, module):
                msg = f"# {ref}: `import {module}` fails in {args.reference_python}; skipped"
                if args.references != "auto":
                    raise SystemExit(msg)
                print(msg, flush=True)
                continue
            opts = {**defaults, **overrides.get((ref, "reference"), {})}
            print(f"# training {ref} {opts} with {args.reference_python}", flush=True)
            load_1m = loadavg()
            cmd = [
                args.reference_python,
                str(Path(__file__).resolve()),
                "--worker",
                ref,
                "--worker-dir",
                tmp,
                "--worker-settings",
                json.dumps(opts),
                "--cell-type",
                args.cell_type,
                "--threads",
                str(args.threads),
                "--seed",
                str(args.seed),
            ]
            done = subprocess.run(cmd, env=thread_env(args.threads), capture_output=True, text=True)
            if done.returncode != 0:
                print(f"# {ref} failed:\n{done.stderr[-3000:]}", flush=True)
                continue
            timing = json.loads((Path(tmp) / "timing.json").read_text())
            pred = ad.read_h5ad(Path(tmp) / "pred.h5ad")
            pred = pred[:, list(train.var_names)].copy()
            pred.obs["condition"] = "predicted"
            add(ref, method, "reference package", pred, timing["train_s"], timing["predict_s"], opts, load_1m)
            print(
                f"#   train {timing['train_s']:.1f} s ({timing['epochs']} epochs), predict {timing['predict_s']:.1f} s",
                flush=True,
            )

    tidy = evaluate_methods(real, ctrl, preds, n_bootstrap=args.n_bootstrap, seed=args.seed)
    table = pd.DataFrame(rows).set_index("label")
    for metric, gene_set, column in METRICS:
        sel = tidy[tidy.metric == metric]
        if gene_set is not None:
            sel = sel[sel.gene_set == gene_set]
        table[column] = sel.groupby("method")["value"].first()
    load_end = loadavg()
    summary = table.drop(columns="options").reset_index()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"# load(1 min) at end={load_end:.2f}; e_distance: shared PCA, lower is better", flush=True)
    if args.out is not None:
        table.reset_index().to_csv(args.out, index=False)
    if args.tidy_out is not None:
        tidy.to_csv(args.tidy_out, index=False)
    return 0 if np.isfinite(table["r2_mean_all"]).all() else 1


if __name__ == "__main__":
    sys.exit(main())
