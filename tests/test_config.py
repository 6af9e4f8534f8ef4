"""Fast/full mode, cache directory and device selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tutorial_lib import config


@pytest.mark.parametrize(
    ("env", "fast"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"TUTORIAL_FAST": "1"}, True),
        ({"CI": "true", "TUTORIAL_FAST": "0"}, False),
    ],
)
def test_fast_mode_from_environment(monkeypatch, env, fast):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TUTORIAL_FAST", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert config.is_fast_mode() is fast
    assert config.get_config().dataset == ("mini" if fast else "full")


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
