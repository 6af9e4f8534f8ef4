"""One name per idea: the epoch cap is ``max_epochs`` everywhere; ``n_epochs`` warns (issue 16)."""

from __future__ import annotations

import pytest

from tutorial_lib.benchmark import BenchmarkConfig
from tutorial_lib.config import get_config
from tutorial_lib.models import get_method
from tutorial_lib.tune import main as tune_main
from tutorial_lib.tuning import make_objective


def test_benchmark_config_old_name_warns_and_means_the_same():
    with pytest.warns(FutureWarning, match="'n_epochs' is now called 'max_epochs'"):
        config = BenchmarkConfig(n_epochs=3)
    assert config.max_epochs == 3
    with pytest.warns(FutureWarning):
        assert config.n_epochs == 3
    with pytest.warns(FutureWarning):
        assert BenchmarkConfig(n_epochs=None).max_epochs is None
    with pytest.warns(FutureWarning), pytest.raises(TypeError, match="got both max_epochs=2"):
        BenchmarkConfig(max_epochs=2, n_epochs=3)


def test_run_config_old_name_is_a_warning_alias():
    for fast in (True, False):
        cfg = get_config(fast)
        with pytest.warns(FutureWarning, match="RunConfig"):
            assert cfg.n_epochs == cfg.max_epochs
    assert get_config(True).max_epochs == 5 and get_config(False).max_epochs is None


def test_fit_predict_and_tuning_accept_the_old_keyword(mini_counts):
    from tutorial_lib.data import normalize_log

    adata = normalize_log(mini_counts)
    train, ctrl = (
        adata[adata.obs["cell_type"] != "B"],
        adata[(adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "control")],
    )
    new = get_method("mean_shift")(train, ctrl, cell_type="B", max_epochs=2)
    with pytest.warns(FutureWarning, match="mean_shift: 'n_epochs'"):
        old = get_method("mean_shift")(train, ctrl, cell_type="B", n_epochs=2)
    assert (new.X == old.X).all()
    with pytest.warns(FutureWarning), pytest.raises(TypeError, match="got both"):
        get_method("scgen")(train, ctrl, cell_type="B", max_epochs=1, n_epochs=2)
    with pytest.warns(FutureWarning, match="make_objective"):
        make_objective("scgen", None, n_epochs=1)


def test_tune_cli_old_flag_warns_and_is_checked_like_the_new_one(capsys):
    args = ["--study", "s", "--method", "scgen", "--n-trials", "1"]
    with pytest.warns(FutureWarning, match="--max-epochs"):
        assert tune_main([*args, "--n-epochs", "0"]) == 2
    assert "--max-epochs must be >= 1, got 0" in capsys.readouterr().err
    with pytest.warns(FutureWarning):
        assert tune_main([*args, "--n-epochs", "3", "--max-epochs", "3"]) == 2
    assert "give --max-epochs only" in capsys.readouterr().err
