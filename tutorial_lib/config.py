"""Run-time settings of the course: fast/full mode, seeds, device and paths.

Everything that depends on the environment is resolved here, once, so that notebooks,
library and tests agree.

Fast mode (``TUTORIAL_FAST=1`` or ``CI`` set), the live session's, uses the small committed
subset of Kang 2018 with the same training schedule as full mode: on the subset the stopping rule
ends training within a minute or two, so learners see converged models. The test suite adds
``TUTORIAL_SMOKE=1``: the subset with training capped at a few epochs (the *smoke-test budget*),
which checks that the code runs and gives no numbers worth reading. Full mode uses the whole data set and
trains scGen and scPRAM with their default schedule (early stopping on the validation loss with a
step cap, see :func:`tutorial_lib.models.training.train_vae`; on the full data they usually reach
the cap).
"""

from __future__ import annotations

import operator
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DATA_DIR = REPO_ROOT / "data"


def _flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"Environment variable {name}={value!r} is not a boolean; use 1/0, true/false.")


def is_fast_mode() -> bool:
    """True when ``TUTORIAL_FAST`` or ``TUTORIAL_SMOKE`` is set to a true value, or when ``CI`` is set.

    ``TUTORIAL_FAST=0`` forces full mode even on CI.
    """
    fast = _flag("TUTORIAL_FAST")
    if fast is not None:
        return fast
    return bool(_flag("TUTORIAL_SMOKE")) or os.environ.get("CI", "").strip().lower() not in _FALSE


def is_smoke_test() -> bool:
    """True when ``TUTORIAL_SMOKE`` is set to a true value: fast mode's data, training capped (tests only)."""
    return bool(_flag("TUTORIAL_SMOKE"))


@dataclass(frozen=True)
class RunConfig:
    """Settings that differ between fast and full mode.

    ``max_epochs`` caps training in epochs; ``None`` (full and fast mode) means no cap beyond the
    models' own default schedule: early stopping on the validation loss with a step cap.
    ``smoke`` marks the test suite's budget (fast mode's data, ``max_epochs`` set).
    """

    fast: bool
    max_epochs: int | None
    n_seeds: int
    n_bootstrap: int
    n_top_genes: int
    dataset: str
    smoke: bool = False

    @property
    def mode(self) -> str:
        """The mode's name: ``"fast"`` or ``"full"``."""
        return "fast" if self.fast else "full"

    @property
    def training(self) -> str:
        """What scGen and scPRAM train in this mode, in words (printed by :func:`setup_notebook`)."""
        if self.max_epochs is None:
            from tutorial_lib.models.training import DEFAULT_SCHEDULE as s

            return (
                f"the default schedule: early stopping on the smoothed validation loss (patience {s['patience']} "
                f"steps, at least {s['min_steps']}), capped at {s['max_steps']} steps; "
                "each training says which ended it"
            )
        if self.smoke:
            return (
                f"the smoke-test budget (TUTORIAL_SMOKE=1, for the test suite): capped at {self.max_epochs} epochs, "
                "so the models stop long before they converge and their scores are no result"
            )
        return f"capped at {self.max_epochs} epochs (a fixed budget: the models may stop before they converge)"


#: The live session's mode: the committed subset, the default training schedule.
FAST = RunConfig(fast=True, max_epochs=None, n_seeds=2, n_bootstrap=20, n_top_genes=1000, dataset="mini")
#: The test suite's budget (``TUTORIAL_SMOKE=1``): fast mode's data with training capped at 5 epochs.
SMOKE = RunConfig(fast=True, max_epochs=5, n_seeds=2, n_bootstrap=20, n_top_genes=1000, dataset="mini", smoke=True)
FULL = RunConfig(fast=False, max_epochs=None, n_seeds=3, n_bootstrap=100, n_top_genes=2000, dataset="full")


def get_config(fast: bool | None = None, smoke: bool | None = None) -> RunConfig:
    """The run configuration for ``fast`` and ``smoke`` (default: from the environment).

    Full mode ignores ``smoke``; fast mode with ``smoke`` is the test suite's capped budget.
    """
    if fast is None:
        fast = is_fast_mode()
    if not fast:
        return FULL
    if smoke is None:
        smoke = is_smoke_test()
    return SMOKE if smoke else FAST


def cache_dir() -> Path:
    """Directory of downloaded data.

    ``TUTORIAL_CACHE_DIR`` if set, else ``<repository root>/.cache`` when the package is a
    source checkout, else ``~/.cache/tutorial_lib``. Never the working directory, so that
    notebook kernels (which run inside ``notebooks/``) share one cache with the tests.
    """
    env = os.environ.get("TUTORIAL_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / ".cache"
    return Path.home() / ".cache" / "tutorial_lib"


SEED_MAX = 2**32 - 1
"""Largest seed accepted: the range every seeded library of the course takes (``np.random.seed``'s)."""


def check_whole_number(value: Any, name: str, low: int = 0, high: int | None = None, *, what: str = "") -> int:
    """``value`` as a plain ``int`` if it is a whole number in ``[low, high]``; else a clear error.

    Python and NumPy integers (also 0-d integer arrays) are accepted, so that ``for s in np.arange(3)``
    and ``df["seed"]`` values work like ``0, 1, 2``. ``bool``, floats (even ``1.0``), strings and
    ``None`` raise ``TypeError``; a number outside the range raises ``ValueError``. Both messages
    name the argument (``name``) and the accepted range (``what`` describes it in words, if given).
    """
    expected = what or (f"an integer >= {low}" if high is None else f"an integer from {low} to {high}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Integral, np.integer, np.ndarray)):
        raise TypeError(f"{name} must be {expected}; got {value!r} of type {type(value).__name__}")
    try:
        number = operator.index(value)  # 0-d integer arrays too; float arrays raise TypeError
    except TypeError:
        raise TypeError(f"{name} must be {expected}; got {value!r} of type {type(value).__name__}") from None
    if number < low or (high is not None and number > high):
        raise ValueError(f"{name} must be {expected}; got {number}")
    return int(number)


def check_seed(seed: Any, name: str = "seed") -> int:
    """The one check of a seed, wherever a seed enters: returns it as a plain ``int``.

    A seed is a Python or NumPy integer from 0 to ``2**32 - 1`` (:data:`SEED_MAX`, the range of
    ``np.random.seed``; Python's ``random``, NumPy's ``default_rng`` and PyTorch take it too).
    ``None`` (which would seed from the operating system: not reproducible), floats, strings and
    ``bool`` raise ``TypeError``; integers outside the range raise ``ValueError``; both messages name
    the argument (``name``, e.g. ``"seeds[2]"``) and the range. Converting NumPy integers matters
    because ``random.seed`` refuses them.
    """
    return check_whole_number(seed, name, 0, SEED_MAX, what="an integer from 0 to 2**32 - 1 (Python or NumPy)")


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and (if installed) PyTorch; ``seed`` as :func:`check_seed` accepts it."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.manual_seed(seed)


TORCH_THREADS_DEFAULT = 1
"""PyTorch's thread count for training and prediction unless ``TUTORIAL_TORCH_THREADS`` says otherwise.

One thread, because a different count changes the order of floating-point sums and with it the last
digits of every loss, score and tuning trial (issue #15: a trial scored 16.67 with one BLAS thread
and 15.93 with two). The count must also not follow the environment by accident: scanpy's numba
kernels share libgomp with PyTorch and raise its thread count to one per core as a side effect
(after ``sc.pp.normalize_total``, even with ``OMP_NUM_THREADS=1``), so the numbers would depend on
which notebook or test ran first. With one fixed setting, the same seed gives the same numbers on
the same machine. Not across machines: the CPU's floating-point kernels also fix the order of
sums (MKL picks its code path by CPU), so a model trained on another CPU moves in the last digits
(``benchmarks/repeat_grid_run.py``; ``benchmarks/README.md``, "Repeating a run of the table").
The course's models are small; more threads speed training up by well under 2x on a
laptop (set ``TUTORIAL_TORCH_THREADS=4`` to trade exact reproducibility for speed). One thread is
also the setting a busy laptop slows least: beside one busy process on 2 cores, scGen's steps took
as long as on the idle machine with one thread and 8.7x as long with two
(``benchmarks/bench_busy.py``).
"""


def torch_threads() -> int:
    """PyTorch's thread count for training/prediction: ``TUTORIAL_TORCH_THREADS`` or :data:`TORCH_THREADS_DEFAULT`."""
    value = os.environ.get("TUTORIAL_TORCH_THREADS", "").strip()
    if not value:
        return TORCH_THREADS_DEFAULT
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"Environment variable TUTORIAL_TORCH_THREADS={value!r} must be a whole number >= 1")
    return n


def apply_torch_threads() -> int:
    """Set PyTorch's thread count to :func:`torch_threads` (call right before training or predicting).

    Called again before every training and prediction, not once at import, because other libraries
    (numba through libgomp) change the count behind PyTorch's back. Returns the count.
    """
    import torch

    n = torch_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@contextmanager
def fixed_threads() -> Iterator[int]:
    """Within the block: PyTorch and the BLAS behind NumPy/SciPy use :func:`torch_threads` threads.

    For whole computations that mix both (a tuning trial: training, then PCA and distances in
    NumPy), so that their numbers do not depend on ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` or on
    what ran before. The BLAS limit is set through ``threadpoolctl`` (a scikit-learn dependency)
    and undone at the end of the block.
    """
    n = apply_torch_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        yield n
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield n


def get_device(device: str | None = None) -> str:
    """``"cuda"`` when a GPU is available (or ``device`` if given), else ``"cpu"``."""
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def setup_notebook(seed: int = 0, fast: bool | None = None) -> RunConfig:
    """First call of every notebook: seed everything, print the mode, device and versions.

    Returns the :class:`RunConfig` of the mode (fast when ``TUTORIAL_FAST=1`` or ``CI`` is set).
    """
    import warnings
    from importlib.metadata import PackageNotFoundError, version

    seed = check_seed(seed)
    cfg = get_config(fast)
    set_seed(seed)
    try:  # some dependencies import tqdm.auto, which warns in notebooks without ipywidgets
        from tqdm import TqdmExperimentalWarning, TqdmWarning

        warnings.filterwarnings("ignore", category=TqdmWarning)
        warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        pass
    names = ["tutorial_lib", "numpy", "scanpy", "anndata", "torch", "pot", "optuna"]
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    print(f"mode: {cfg.mode} (data: {cfg.dataset}, bootstrap resamples: {cfg.n_bootstrap})")
    print(f"training of scGen/scPRAM: {cfg.training}")
    print(f"device: {get_device()}; seed: {seed}")
    print("versions: " + ", ".join(versions))
    return cfg
