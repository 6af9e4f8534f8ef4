"""scPRAM's OT step on Kang 2018 (full): does the release's 100,000-iteration ``ot.emd`` converge, and at what cost?

Usage (repository root, course environment)::

    python benchmarks/bench_scpram_ot.py [--epochs 6] [--dataset full]

Trains one scPRAM (capped preset, seed 0; CD4+ T cells held out, 2,000 HVGs chosen on the
training cells) and predicts the held-out controls with each named variant, keeping the plans.
Prints per variant: predict seconds (wall clock; note the load printed first), whether the OT
plan reached its optimum, the mean row-max share of the plan, and how often each control cell's
matched stimulated cell agrees with the exact plan's (``plan_sharpness``); also the old course
default (log-domain Sinkhorn, reg 0.05, squared cost / max, pools of 3,000) for comparison.
Only training cells enter the OT step, so nothing here looks at the held-out stimulated cells.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--dataset", default="full")
    args = parser.parse_args()

    from course_tools.presets import train_preset
    from tutorial_lib.data import load_kang2018, prepare_holdout, split_views
    from tutorial_lib.models import SCPRAM, plan_sharpness
    from tutorial_lib.models.scpram import VARIANTS

    print(f"load average at start: {os.getloadavg()}")
    parts = split_views(prepare_holdout(load_kang2018(args.dataset), "CD4+ T cells", n_top_genes=2000))
    model = SCPRAM(parts.train, device="cpu")
    t0 = time.perf_counter()
    model.train(**train_preset("scpram", "capped", max_epochs=args.epochs), seed=0, progress_bar=False)
    print(f"trained {len(model.history_)} epochs in {time.perf_counter() - t0:.1f} s")
    runs = {
        "released": {"variant": "released"},
        "percell_exact": {"variant": "percell_exact"},
        "old course default (Sinkhorn reg 0.05, means, pools of 3,000)": {
            "variant": dataclasses.replace(
                VARIANTS["percell"],
                latent="mean",
                reference="shared",
                max_ot_cells=3000,
                ot_method="sinkhorn_log",
                reg=0.05,
                cost="sqeuclidean",
                cost_normalization="max",
            )
        },
    }
    plans = {}
    for name, kw in runs.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pred = model.predict("CD4+ T cells", adata_to_predict=parts.ctrl, seed=0, keep_plan=True, **kw)
        seconds = time.perf_counter() - t0
        info = pred.uns["scpram"]
        plans[name] = (info["ot_plan"], info["ot_pairs"])
        print(
            f"{name}: {seconds:.1f} s, plan {info['ot_plan'].shape}, converged {info['plan']['converged']}, "
            f"row-max share {info['plan']['row_max_share_mean']:.3f}, "
            f"warnings: {sorted({str(w.message)[:60] for w in caught}) or 'none'}"
        )
    exact, _ = plans["percell_exact"]
    released, _ = plans["released"]
    s = plan_sharpness(released, reference=exact)  # same pools and samples (seed 0): comparable
    print(f"released plan vs exact plan: argmax agreement {s['argmax_agreement']:.3f}")
    sink_plan, sink_pairs = plans["old course default (Sinkhorn reg 0.05, means, pools of 3,000)"]
    exact_sub = model.predict(
        "CD4+ T cells",
        adata_to_predict=parts.ctrl,
        seed=0,
        keep_plan=True,
        variant=dataclasses.replace(
            VARIANTS["percell_exact"], latent="mean", reference="shared", max_ot_cells=3000, cost="sqeuclidean"
        ),
    ).uns["scpram"]["ot_plan"]
    s = plan_sharpness(sink_plan, reference=exact_sub)
    print(
        f"old course default vs exact plan on the same pools and cost: argmax agreement {s['argmax_agreement']:.3f}, "
        f"row-max share {s['row_max_share_mean']:.3f}"
    )
    print(f"load average at end: {os.getloadavg()}; machine: 2 shared cores")


if __name__ == "__main__":
    main()
