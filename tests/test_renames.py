"""One name per idea (issue 16): every old name still works, warns ``FutureWarning`` and means the same.

``n_epochs`` -> ``max_epochs``; ``ctrl_adata`` -> ``adata_to_predict``; ``celltype_to_predict`` ->
``cell_type``; American -> British spellings (``normalize_log``, ``optimize``, ``optimization_history``).
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import optuna
import pytest
from test_models import HELD_OUT, TINY, make_synthetic

from course_tools.benchmark import BenchmarkConfig
from course_tools.methods import get_method
from course_tools.tuning import study as tuning
from course_tools.tuning.cli import main as tune_main
from course_tools.tuning.study import make_objective
from tutorial_lib import plotting
from tutorial_lib.config import get_config
from tutorial_lib.data import normalise_log, normalize_log
from tutorial_lib.models import SCGEN, SCPRAM, baselines


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
        cfg = get_config(fast, smoke=True)
        with pytest.warns(FutureWarning, match="RunConfig"):
            assert cfg.n_epochs == cfg.max_epochs
    assert get_config(True, smoke=True).max_epochs == 5 and get_config(False).max_epochs is None


def test_fit_predict_and_tuning_accept_the_old_keyword(mini_counts):
    adata = normalise_log(mini_counts)
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


@pytest.fixture(scope="module")
def split():
    full = make_synthetic(n_cells=30, n_genes=20)
    held = (full.obs["cell_type"] == HELD_OUT).to_numpy()
    train = full[~(held & (full.obs["condition"] == "stimulated").to_numpy())].copy()
    ctrl = full[held & (full.obs["condition"] == "control").to_numpy()].copy()
    return train, ctrl


def _dense(x):
    return np.asarray(x.todense() if hasattr(x, "todense") else x)


def _renamed_warnings(seen) -> list[str]:
    return [str(w.message) for w in seen if "is now called" in str(w.message)]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", ["no_change", "mean_shift", "pca_arithmetic", "scgen"])
def test_registry_old_name_of_adata_to_predict_warns_and_predicts_the_same(split, name):
    train, ctrl = split
    fit_predict = get_method(name)
    assert "adata_to_predict" in inspect.signature(fit_predict).parameters
    assert "ctrl_adata" not in inspect.signature(fit_predict).parameters
    kw = {"cell_type": HELD_OUT, "seed": 1, "max_epochs": 1}
    kw.update({"n_latent": 4, "n_hidden": 8} if name == "scgen" else {})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        new = fit_predict(train, adata_to_predict=ctrl, **kw)
    assert _renamed_warnings(seen) == []  # the new name alone warns nothing
    with pytest.warns(FutureWarning, match="'ctrl_adata' is now called 'adata_to_predict'"):
        old = fit_predict(train, ctrl_adata=ctrl, **kw)
    np.testing.assert_array_equal(np.asarray(new.X), np.asarray(old.X))
    assert old.n_obs == ctrl.n_obs and (old.obs["method"] == name).all()
    with pytest.raises(TypeError, match=f"{name}: got both 'adata_to_predict' and its old name 'ctrl_adata'"):
        fit_predict(train, ctrl, ctrl_adata=ctrl, **kw)
    with pytest.raises(TypeError, match="got both"):
        fit_predict(train, adata_to_predict=ctrl, ctrl_adata=ctrl, **kw)


def test_baselines_take_the_old_keyword_too(split):
    train, ctrl = split
    new = baselines.mean_shift(train, ctrl, cell_type=HELD_OUT)
    with pytest.warns(FutureWarning, match="mean_shift: 'ctrl_adata'"):
        old = baselines.mean_shift(train, ctrl_adata=ctrl, cell_type=HELD_OUT)
    np.testing.assert_array_equal(new.X, old.X)
    with pytest.raises(TypeError, match="got both"):
        baselines.no_change(train, ctrl, ctrl_adata=ctrl)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("cls", [SCGEN, SCPRAM])
def test_predict_old_name_of_cell_type_warns_and_predicts_the_same(split, cls):
    train, ctrl = split
    model = cls(train, **TINY)
    model.train(max_epochs=1, progress_bar=False)
    assert list(inspect.signature(cls.predict).parameters)[1] == "cell_type"
    assert "pertpy" in (SCGEN.predict.__doc__ or "")  # the docstring names where the old name comes from
    new = model.predict(HELD_OUT, seed=2)
    assert model.predict(cell_type=HELD_OUT, seed=2).X.tolist() == new.X.tolist()
    with pytest.warns(FutureWarning, match=f"{cls.__name__}.predict: 'celltype_to_predict' is now called 'cell_type'"):
        old = model.predict(celltype_to_predict=HELD_OUT, seed=2)
    np.testing.assert_array_equal(new.X, old.X)
    assert (old.obs["cell_type"] == HELD_OUT).all()
    for both in ({"cell_type": HELD_OUT}, {}):
        args = () if both else (HELD_OUT,)
        with pytest.raises(TypeError, match="got both 'cell_type' and its old name 'celltype_to_predict'"):
            model.predict(*args, celltype_to_predict=HELD_OUT, **both)


def test_american_spellings_are_warning_aliases_of_the_british_names(mini_counts):
    new = normalise_log(mini_counts.copy())
    with pytest.warns(FutureWarning, match="'normalize_log' is now called 'normalise_log'"):
        old = normalize_log(mini_counts.copy())
    np.testing.assert_array_equal(_dense(new.X), _dense(old.X))
    assert normalize_log.__name__ == "normalize_log" and "normalise_log" in normalize_log.__doc__

    def objective(trial):
        return trial.suggest_float("x", 0.0, 1.0)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with pytest.warns(FutureWarning, match="'optimize' is now called 'optimise'"):
        study = tuning.optimize(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)), objective, 2)
    assert len(study.trials) == 2
    with pytest.warns(FutureWarning, match="'optimization_history' is now called 'optimisation_history'"):
        ax = plotting.optimization_history(study)
    assert ax.get_title() == plotting.optimisation_history(study).get_title()
