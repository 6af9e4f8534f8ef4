"""Run-time settings from the environment: fast/full mode, seeds, threads, device, paths.

Full mode uses the whole Kang 2018 data; fast mode (``TUTORIAL_FAST=1``, or ``CI`` set) the small
committed subset, both with the default training schedule; ``TUTORIAL_SMOKE=1`` (the test suite)
caps training at 5 epochs, which checks that the code runs and gives no numbers worth reading.
"""

from __future__ import annotations

import operator
import os
import random
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _flag(name: str) -> bool | None:
    if (value := os.environ.get(name)) is None:
        return None
    if (value := value.strip().lower()) not in _TRUE | _FALSE:
        raise ValueError(f"Environment variable {name}={value!r} is not a boolean; use 1/0, true/false.")
    return value in _TRUE


def is_fast_mode() -> bool:
    """True when ``TUTORIAL_FAST`` or ``TUTORIAL_SMOKE`` is true, or ``CI`` is set; ``TUTORIAL_FAST=0`` wins."""
    if (fast := _flag("TUTORIAL_FAST")) is not None:
        return fast
    return bool(_flag("TUTORIAL_SMOKE")) or os.environ.get("CI", "").strip().lower() not in _FALSE


@dataclass(frozen=True)
class RunConfig:
    """Settings that differ between modes; ``max_epochs=None``: the models' default schedule."""

    fast: bool
    max_epochs: int | None
    n_bootstrap: int
    n_top_genes: int
    dataset: str
    smoke: bool = False

    @property
    def mode(self) -> str:
        """``"fast"`` or ``"full"``."""
        return "fast" if self.fast else "full"

    @property
    def training(self) -> str:
        """How scGen and scPRAM train in this mode, in words."""
        if self.max_epochs is not None:
            smoke = "the smoke-test budget (TUTORIAL_SMOKE=1, for the test suite): " if self.smoke else ""
            return f"{smoke}capped at {self.max_epochs} epochs: the models may stop before they converge"
        return (
            "the default schedule (tutorial_lib.models.TrainingOptions): early stopping on the smoothed "
            "validation loss, capped in steps; each training says which ended it"
        )


FAST = RunConfig(fast=True, max_epochs=None, n_bootstrap=20, n_top_genes=1000, dataset="mini")
SMOKE = RunConfig(fast=True, max_epochs=5, n_bootstrap=20, n_top_genes=1000, dataset="mini", smoke=True)
FULL = RunConfig(fast=False, max_epochs=None, n_bootstrap=100, n_top_genes=2000, dataset="full")


def get_config(fast: bool | None = None, smoke: bool | None = None) -> RunConfig:
    """The :class:`RunConfig` for ``fast`` and ``smoke`` (default: from the environment); full ignores smoke."""
    if not (is_fast_mode() if fast is None else fast):
        return FULL
    return SMOKE if (bool(_flag("TUTORIAL_SMOKE")) if smoke is None else smoke) else FAST


def cache_dir() -> Path:
    """``TUTORIAL_CACHE_DIR``, else ``<checkout>/.cache``, else ``~/.cache/tutorial_lib``; never the cwd."""
    if env := os.environ.get("TUTORIAL_CACHE_DIR"):
        return Path(env).expanduser().resolve()
    return REPO_ROOT / ".cache" if (REPO_ROOT / "pyproject.toml").exists() else Path.home() / ".cache" / "tutorial_lib"


SEED_MAX = 2**32 - 1  # the range of np.random.seed, which Python, NumPy and PyTorch all accept


def check_whole_number(value: Any, name: str, low: int = 0, high: int | None = None, *, what: str = "") -> int:
    """``value`` (a Python or NumPy integer in ``[low, high]``) as an ``int``; else ``TypeError`` or ``ValueError``."""
    expected = what or (f"an integer >= {low}" if high is None else f"an integer from {low} to {high}")
    wrong_type = TypeError(f"{name} must be {expected}; got {value!r} of type {type(value).__name__}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Integral, np.integer, np.ndarray)):
        raise wrong_type
    try:
        number = operator.index(value)  # 0-d integer arrays too; float arrays raise TypeError
    except TypeError:
        raise wrong_type from None
    if number < low or (high is not None and number > high):
        raise ValueError(f"{name} must be {expected}; got {number}")
    return int(number)


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed (integer from 0 to :data:`SEED_MAX`, NumPy too; not ``None``) as the plain ``int`` ``random`` needs."""
    return check_whole_number(seed, name, 0, SEED_MAX, what="an integer from 0 to 2**32 - 1 (Python or NumPy)")


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch."""
    import torch

    for seeder in (random.seed, np.random.seed, torch.manual_seed):
        seeder(check_seed(seed))


TORCH_THREADS_DEFAULT = 1


def torch_threads() -> int:
    """PyTorch's thread count: ``TUTORIAL_TORCH_THREADS`` (a whole number >= 1), default 1.

    Fixed, because the count changes the order of floating-point sums and so the last digits of
    every result (same seed, same numbers on one machine); the small models gain little from more.
    """
    value = os.environ.get("TUTORIAL_TORCH_THREADS", "").strip() or str(TORCH_THREADS_DEFAULT)
    if not value.isdecimal() or int(value) < 1:
        raise ValueError(f"Environment variable TUTORIAL_TORCH_THREADS={value!r} must be a whole number >= 1")
    return int(value)


def apply_torch_threads() -> int:
    """Set PyTorch's thread count to :func:`torch_threads` (at the start of a session) and return it.

    numba's thread pool starts first: started later, by scanpy's first kernel, it would raise
    PyTorch's count to one per core (both use the same OpenMP runtime).
    """
    import numba
    import torch

    numba.get_num_threads()
    torch.set_num_threads(n := torch_threads())
    return n


def get_device(device: str | None = None) -> str:
    """``device`` if given, else ``"cuda"`` when a GPU is available, else ``"cpu"``."""
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def setup_notebook(seed: int = 0, fast: bool | None = None) -> RunConfig:
    """First call of every notebook: seed, fix the thread count, print mode, device and versions."""
    import warnings
    from importlib.metadata import PackageNotFoundError, version

    from tqdm import TqdmWarning

    seed = check_seed(seed)
    cfg = get_config(fast)
    set_seed(seed)
    apply_torch_threads()
    warnings.filterwarnings("ignore", category=TqdmWarning)  # tqdm.auto warns without ipywidgets
    versions = []
    for name in ["tutorial_lib", "numpy", "scanpy", "anndata", "torch", "pot", "optuna"]:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    print(f"mode: {cfg.mode} (data: {cfg.dataset}, bootstrap resamples: {cfg.n_bootstrap})")
    print(f"training of scGen/scPRAM: {cfg.training}")
    print(f"device: {get_device()}; seed: {seed}")
    print("versions: " + ", ".join(versions))
    return cfg
