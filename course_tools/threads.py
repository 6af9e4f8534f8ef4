"""Thread limits for computations the course tools must repeat exactly (tuning trials)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

from tutorial_lib.config import apply_torch_threads


@contextmanager
def fixed_threads() -> Iterator[int]:
    """Within the block, PyTorch and the BLAS behind NumPy/SciPy use :func:`tutorial_lib.config.torch_threads` threads.

    For computations that mix both (a tuning trial: training, then PCA and distances in NumPy), so
    that their numbers do not depend on ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` or on what ran before.
    """
    n = apply_torch_threads()
    with threadpool_limits(limits=n, user_api="blas"):
        yield n
