"""Fast/full mode, cache directory and device selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tutorial_lib import config


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, config.FULL),
        ({"CI": "true"}, config.FAST),
        ({"TUTORIAL_FAST": "1"}, config.FAST),
        ({"CI": "true", "TUTORIAL_FAST": "0"}, config.FULL),
        ({"TUTORIAL_SMOKE": "1"}, config.SMOKE),
        ({"TUTORIAL_FAST": "1", "TUTORIAL_SMOKE": "1"}, config.SMOKE),
        ({"TUTORIAL_FAST": "0", "TUTORIAL_SMOKE": "1"}, config.FULL),
    ],
)
def test_mode_from_environment(monkeypatch, env, expected):
    for key in ("CI", "TUTORIAL_FAST", "TUTORIAL_SMOKE"):
        monkeypatch.delenv(key, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert config.is_fast_mode() is expected.fast
    assert config.get_config() == expected


def test_the_live_session_and_the_test_suite_have_their_own_budgets():
    assert config.FAST.dataset == config.SMOKE.dataset == "mini"
    assert config.FAST.max_epochs is None and config.FULL.max_epochs is None  # the same schedule as the book
    assert config.SMOKE.max_epochs == 5 and config.SMOKE.smoke and not config.FAST.smoke
    assert "smoke-test budget" in config.SMOKE.training and "capped at 5 epochs" in config.SMOKE.training
    assert config.FAST.training == config.FULL.training and "default schedule" in config.FAST.training
    assert config.get_config(True, smoke=False) is config.FAST and config.get_config(True, smoke=True) is config.SMOKE
    assert config.get_config(False, smoke=True) is config.FULL


def test_bad_flag_value(monkeypatch):
    monkeypatch.setenv("TUTORIAL_FAST", "maybe")
    with pytest.raises(ValueError, match="TUTORIAL_FAST"):
        config.is_fast_mode()


def test_cache_dir_is_not_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("TUTORIAL_CACHE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert config.cache_dir() == config.REPO_ROOT / ".cache"
    monkeypatch.setenv("TUTORIAL_CACHE_DIR", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c"


def test_device_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.get_device() == "cpu"


def test_set_seed_repeats_numbers():
    config.set_seed(3)
    a = np.random.rand(3), torch.rand(3)
    config.set_seed(3)
    b = np.random.rand(3), torch.rand(3)
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_thread_count_survives_scanpys_numba_kernels(tmp_path):
    """scanpy's first numba kernel starts an OpenMP pool that PyTorch shares; it must not raise the count.

    Run in a fresh process without the test suite's thread variables, in a notebook's order.
    """
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import torch
        from tutorial_lib.config import setup_notebook

        setup_notebook()  # as every notebook starts
        from tutorial_lib.data import load_kang2018, prepare_holdout

        adata = load_kang2018(subset="mini")
        torch.get_num_threads()  # any PyTorch work (a first model) starts its thread pool before scanpy's kernels
        prepare_holdout(adata, n_top_genes=200)
        print(torch.get_num_threads())
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")}
    env["TUTORIAL_TORCH_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "1"
