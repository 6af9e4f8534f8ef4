"""What a busy laptop costs: scGen's training steps with 1 and 2 PyTorch threads, idle and beside a busy process.

Usage (from the repository root, course environment, on an otherwise idle machine)::

    python benchmarks/bench_busy.py                      # 600 steps per run, full Kang, 2,000 genes
    python benchmarks/bench_busy.py --steps 300 --dataset mini

Each run is a fresh process that prepares the task of the notebooks (CD4+ T cells held out,
log-normalised, HVGs chosen on the training cells), then trains scGen for exactly ``--steps``
optimizer steps of the default schedule (``min_steps = max_steps``, so the stopping rule cannot
end it early) with ``TUTORIAL_TORCH_THREADS`` set to 1 or 2. Only the ``train`` call is timed.
"Busy" starts ``--busy`` competing processes that each keep one core busy with a pure-Python
loop (as a browser tab or a video call does) from before the data are prepared until the run
ends. The table gives seconds per 1,000 steps and the slowdown against the idle run of the same
thread count; the 1-minute load average is printed before every run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
from tutorial_lib.data import load_kang2018, prepare_holdout, split_views
from tutorial_lib.models import SCGEN
steps, dataset, genes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
parts = split_views(prepare_holdout(load_kang2018(dataset), "CD4+ T cells", n_top_genes=genes))
model = SCGEN(parts.train)
start = time.perf_counter()
history = model.train(max_steps=steps, min_steps=steps, seed=0, progress_bar=False)
print(json.dumps({"train_s": time.perf_counter() - start, "steps": history.step[-1]}))
"""

BUSY = "while True: pass"


def run(threads: int, busy: int, steps: int, dataset: str, genes: int) -> dict:
    """One training run in a fresh process, beside ``busy`` busy-loop processes."""
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
    try:
        time.sleep(2.0 if busy else 0.0)
        load = os.getloadavg()[0]
        env = {**os.environ, "TUTORIAL_TORCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(steps), dataset, str(genes)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"threads": threads, "busy": busy, "load_before": load, **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--dataset", default="full", choices=["full", "mini"])
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--busy", type=int, default=1, help="competing busy processes in the busy runs")
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; {args.steps} steps of scGen's default schedule per run; data {args.dataset}")
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        for busy in (0, args.busy):
            row = run(threads, busy, args.steps, args.dataset, args.genes)
            rows.append(row)
            print(
                f"threads {threads}, busy processes {busy}: load before {row['load_before']:.2f}, "
                f"train {row['train_s']:.1f} s for {row['steps']} steps",
                flush=True,
            )
    print("\n| PyTorch threads | busy processes | s per 1,000 steps | slowdown vs idle |")
    print("|---:|---:|---:|---:|")
    idle = {r["threads"]: r["train_s"] / r["steps"] for r in rows if r["busy"] == 0}
    for r in rows:
        per = r["train_s"] / r["steps"]
        print(f"| {r['threads']} | {r['busy']} | {1000 * per:.1f} | {per / idle[r['threads']]:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
