"""Shared fixtures: the committed mini subset of Kang 2018; PyTorch on one thread."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

from tutorial_lib.data import load_kang2018


@pytest.fixture(scope="session")
def _mini_counts():
    return load_kang2018("mini")


@pytest.fixture
def mini_counts(_mini_counts):
    """The mini subset with raw counts (a fresh copy per test)."""
    return _mini_counts.copy()


@pytest.fixture(scope="module")
def one_thread():
    """PyTorch on one thread for a test module (tiny networks are far faster so; xdist workers share the cores).

    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``; the previous count comes back after the module.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
