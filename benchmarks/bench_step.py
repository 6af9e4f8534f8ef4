"""Cost of one training step of scGen's and scPRAM's networks, lever by lever (issue 12).

Usage (from the repository root, course environment, ideally on an idle machine)::

    python benchmarks/bench_step.py                      # every lever, both networks
    python benchmarks/bench_step.py --steps 100 --csv out.csv

What one row measures: ``--steps`` optimizer steps (after ``--warmup`` untimed ones) of exactly
what :func:`tutorial_lib.models.vae.train_vae` does per step (minibatch from a tensor held in
memory, forward with the module's own loss, backward, gradient clipping at 10, Adam), on random
log-normal-like data of 2,000 genes (the cost does not depend on the values). Columns: network,
threads, batch size, variant, milliseconds per step, cells per second, achieved GFLOP/s
(6 × batch × Σ in×out over the Linear layers per step: forward 2, backward 4; BatchNorm,
activations and the optimizer are overhead) and that figure over the measured float32 matmul peak
(2048², same threads).

Variants (each changes one thing from ``eager``, the library's loop):

* ``eager``: as the library trains (Adam's default ``foreach`` path).
* ``fused_adam``: ``torch.optim.Adam(fused=True)`` (one kernel for the update).
* ``compile``: ``torch.compile`` of the module (the compile time is in the warm-up, not timed;
  it is printed separately because a workshop pays it once per model).
* ``bf16_autocast``: forward under ``torch.autocast("cpu", dtype=torch.bfloat16)``; changes the
  numbers, so it is a speed figure only (this CPU may lack native bf16 matmul).

The machine's 1-minute load average is printed before each network; compare rows of one run only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import linear_macs, matmul_peak  # noqa: E402  (the same figures as bench_training)

from tutorial_lib.models.scgen import SCGEN  # noqa: E402
from tutorial_lib.models.scpram import SCPRAM  # noqa: E402
from tutorial_lib.models.vae import VAE  # noqa: E402

NETWORKS = {
    "scgen": {
        **SCGEN.fixed_module_kwargs,
        "n_latent": 100,
        "n_layers": 2,
        "n_hidden": 800,
        "dropout_rate": 0.2,
        "kl_weight": 5e-5,
        "use_batch_norm": True,
    },
    "scpram": {
        **SCPRAM.fixed_module_kwargs,
        "n_latent": 100,
        "n_layers": 2,
        "n_hidden": 1000,
        "dropout_rate": 0.0,
        "kl_weight": 5e-4,
        "use_batch_norm": False,
        "noise_rate": 0.1,
    },
}
VARIANTS = ("eager", "fused_adam", "compile", "bf16_autocast")


def time_steps(network: str, batch: int, variant: str, steps: int, warmup: int, n_genes: int = 2000) -> dict:
    """Seconds per step of one (network, batch, variant), and the compile time if any."""
    torch.manual_seed(0)
    module = VAE(n_genes, **NETWORKS[network])
    macs = linear_macs(module)
    x = torch.log1p(torch.distributions.Exponential(1.0).sample((11_000, n_genes)))
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, fused=(variant == "fused_adam"))
    model = torch.compile(module) if variant == "compile" else module
    ctx = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if variant == "bf16_autocast" else contextlib.nullcontext
    )
    module.train()

    def step(i: int) -> None:
        idx = torch.randint(0, x.shape[0], (batch,))
        with ctx():
            out = model(x[idx])
        opt.zero_grad(set_to_none=True)
        out["loss"].float().backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 10.0)
        opt.step()

    t0 = time.perf_counter()
    for i in range(warmup):
        step(i)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    per_step = (time.perf_counter() - t0) / steps
    return {"s_per_step": per_step, "warmup_s": warm_s, "gflop_per_step": 6 * batch * macs / 1e9}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", default="scgen,scpram")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batches", default="128,256,512")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--csv", type=Path, default=None)
    args = p.parse_args(argv)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        peak = matmul_peak()
        print(f"# threads {threads}: float32 matmul peak {peak:.1f} GFLOP/s, load {os.getloadavg()[0]:.2f}", flush=True)
        for network in args.networks.split(","):
            for batch in [int(b) for b in args.batches.split(",")]:
                for variant in args.variants.split(","):
                    if variant not in VARIANTS:
                        raise SystemExit(f"unknown variant {variant!r}; expected one of {VARIANTS}")
                    r = time_steps(network, batch, variant, args.steps, args.warmup)
                    row = {
                        "network": network,
                        "threads": threads,
                        "batch": batch,
                        "variant": variant,
                        "ms_per_step": 1e3 * r["s_per_step"],
                        "cells_per_s": batch / r["s_per_step"],
                        "gflop_s": r["gflop_per_step"] / r["s_per_step"],
                        "peak_gflop_s": peak,
                        "warmup_s": r["warmup_s"],
                        "load1": os.getloadavg()[0],
                    }
                    row["of_peak"] = row["gflop_s"] / peak
                    rows.append(row)
                    print(
                        f"{network:7s} t={threads} b={batch:4d} {variant:14s} {row['ms_per_step']:7.1f} ms/step "
                        f"{row['cells_per_s']:8.0f} cells/s {row['gflop_s']:6.1f} GFLOP/s "
                        f"({row['of_peak']:.0%} of peak)"
                        f"  warm-up {row['warmup_s']:.1f} s, load {row['load1']:.2f}",
                        flush=True,
                    )
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
