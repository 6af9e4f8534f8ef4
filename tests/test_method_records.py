"""One record per method: the registry, tuning and presets read MethodSpec records (issue 16)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from toy_method import TOY_SPEC, ToyShift

from course_tools.benchmark import BenchmarkConfig, Setting, run_benchmark
from course_tools.methods import METHODS, SPECS, MethodSpec, get_method, get_spec, register_method, registered_method
from course_tools.model_files import load_model, save_model
from course_tools.presets import train_preset
from course_tools.tuning.study import fit_and_score, make_objective, model_class, predict_params, search_spaces
from tutorial_lib.models import SCGEN


def _absent(name: str) -> bool:
    return all(name not in table for table in (SPECS, METHODS, search_spaces()))


def test_views_are_derived_from_the_records():
    assert list(METHODS) == list(SPECS)
    assert set(search_spaces()) == {"scgen", "scpram"}
    for name, space in search_spaces().items():
        assert space == get_spec(name).search_space
        assert model_class(name) is get_spec(name).model
        for setting, kwargs in get_spec(name).train_presets.items():
            assert train_preset(name, setting) == kwargs
    assert predict_params("scpram") == {"ratio"}
    assert predict_params("scgen") == frozenset()
    assert get_spec("scpram_percell").fixed_predict == {"variant": "percell"}


def test_a_new_model_in_one_file_runs_in_benchmark_and_tuning(mini_counts):
    from tutorial_lib.data import prepare_holdout, split_views

    assert _absent("toy_shift")
    with registered_method(TOY_SPEC):
        assert {"toy_shift"} <= set(METHODS) & set(search_spaces())
        assert train_preset("toy_shift", "capped") == {"max_epochs": 1, "batch_size": 64}
        config = BenchmarkConfig(n_top_genes=100, max_epochs=1, n_bootstrap=3, n_top_degs=20)
        table = run_benchmark(
            mini_counts, ["no_change", "toy_shift"], [Setting("B", "B")], seeds=[0], config=config, progress=False
        )
        toy = table[table["method"] == "toy_shift"]
        assert len(toy) == len(table[table["method"] == "no_change"]) > 0
        assert np.isfinite(toy["value"].dropna()).all() and toy["value"].notna().any()

        parts = split_views(prepare_holdout(mini_counts, validation_cell_type="B", n_top_genes=100))
        value = fit_and_score("toy_shift", {"n_latent": 4, "scale": 1.0}, parts, max_epochs=1)
        halved = fit_and_score("toy_shift", {"n_latent": 4, "scale": 0.5}, parts, max_epochs=1)
        assert math.isfinite(value) and math.isfinite(halved) and value != halved  # scale reached predict
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
        study.optimize(make_objective("toy_shift", parts, max_epochs=1), n_trials=1)
        assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
        assert set(study.trials[0].params) == {"n_latent", "scale"}

        pred, model = get_method("toy_shift")(
            parts.train, parts.val_ctrl, cell_type="B", max_epochs=1, return_model=True, reuse_trained=False
        )
        assert isinstance(model, ToyShift) and (pred.obs["method"] == "toy_shift").all()
        frame = model.history_.to_frame()  # the module's own loss terms are recorded
        assert {"train_l1", "val_l1", "train_kl", "val_kl"} <= set(frame.columns)
        assert frame["train_l1"].notna().all() and frame["train_recon"].isna().all()
    assert _absent("toy_shift")


def test_history_with_new_terms_survives_save_and_load(mini_counts, tmp_path):
    from tutorial_lib.data import normalise_log

    adata = normalise_log(mini_counts)[:, :50].copy()
    model = ToyShift(adata, n_latent=4)
    model.train(max_epochs=1, progress_bar=False)
    save_model(model, tmp_path / "toy")
    again = load_model(ToyShift, tmp_path / "toy", adata)
    assert again.history_.terms == model.history_.terms
    assert len(again.history_.terms["val_l1"]) == len(model.history_)


def test_registration_is_refused_twice_and_undone():
    with registered_method(TOY_SPEC):
        with pytest.raises(ValueError, match="already registered"):
            register_method(TOY_SPEC)
    assert _absent("toy_shift")
    replaced = MethodSpec("scgen", model=SCGEN, description="replacement")
    with registered_method(replaced, replace=True):
        assert get_spec("scgen").description == "replacement" and "scgen" not in search_spaces()
    assert get_spec("scgen").search_space and list(METHODS) == list(SPECS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of model"),
        ({"model": SCGEN, "fixed_predict": {"variant": "percell"}}, r"fixed_predict \['variant'\]"),
        ({"model": SCGEN, "search_space": {"ratio": ("float", (0.1, 0.2, False))}}, "arguments of neither"),
        ({"model": SCGEN, "search_space": {"n_latent": ("float", (2, 1, False))}}, "low must be below high"),
        ({"model": SCGEN, "train_presets": {"fast": {}}}, "settings \\['fast'\\] unknown"),
        ({"model": SCGEN, "train_presets": {"capped": {"epochs": 3}}}, r"sets \['epochs'\]"),
        ({"model": int}, "BaseModel subclass"),
    ],
)
def test_bad_records_are_refused_with_the_reason(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        MethodSpec("bad_method", **kwargs)


def test_training_loop_names_a_module_that_returns_no_loss_dict():
    import torch

    from tutorial_lib.models import TrainingOptions, train_vae

    class NoDict(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(3, 3)

        def forward(self, x, sample=True):
            return ((self.w(x) - x) ** 2).mean()

    x = np.random.default_rng(0).random((20, 3)).astype(np.float32)
    with pytest.raises(TypeError, match="forward must return a dict with 'loss'"):
        train_vae(NoDict(), x, TrainingOptions(max_epochs=1, batch_size=8), progress_bar=False)
