"""Shared fixtures: the committed mini subset of Kang 2018."""

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
