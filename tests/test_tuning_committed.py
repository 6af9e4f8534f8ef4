"""The committed tuning study's command, its resume, and its readers (course_tools.tuning.committed)."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from course_tools.tuning import committed as tc
from course_tools.tuning.study import check_space, default_params, fit_and_score, train_params


@pytest.mark.parametrize("method", list(tc.STUDY_SPACES))
def test_study_spaces_hold_the_tutorials_hyperparameters_and_each_models_defaults(method):
    space = tc.STUDY_SPACES[method]
    check_space(method, space)  # every value one the model and its training accept
    assert set(space) == {"n_layers", "n_hidden", "n_latent", "dropout_rate", "kl_weight", "lr", "batch_size"}
    assert {"lr", "batch_size"} <= train_params(method)
    for name, value in default_params(method, space).items():
        kind, spec = space[name]
        assert value in spec if kind == "categorical" else spec[0] <= value <= spec[1], (name, value)


def test_training_options_in_params_go_to_train(mini_counts, monkeypatch):
    """``lr`` and ``batch_size`` in a trial's params reach ``train``; the model settings its constructor."""
    from tutorial_lib.data import prepare_holdout, split_views
    from tutorial_lib.models.scgen import SCGEN

    parts = split_views(prepare_holdout(mini_counts, validation_cell_type="B", n_top_genes=100))
    seen = {}
    train, init = SCGEN.train, SCGEN.__init__

    def spy_train(self, *args, **kwargs):
        seen["train"] = kwargs
        return train(self, *args, **kwargs)

    def spy_init(self, *args, **kwargs):
        seen["init"] = kwargs
        return init(self, *args, **kwargs)

    monkeypatch.setattr(SCGEN, "train", spy_train)
    monkeypatch.setattr(SCGEN, "__init__", spy_init)
    value = fit_and_score("scgen", {"batch_size": 32, "lr": 3e-3, "n_hidden": 64}, parts, max_epochs=1)
    assert np.isfinite(value)
    assert seen["train"]["batch_size"] == 32 and seen["train"]["lr"] == 3e-3 and seen["init"] == {"n_hidden": 64}
    with pytest.raises(ValueError, match="tuned .* and fixed"):
        fit_and_score("scgen", {"batch_size": 32}, parts, max_epochs=1, train_kwargs={"batch_size": 64})


def _study(values: dict[str, np.ndarray], objective: np.ndarray) -> optuna.Study:
    study = optuna.create_study(direction="minimize")
    dists = {k: optuna.distributions.FloatDistribution(0.0, 1.0) for k in values}
    for i, y in enumerate(objective):
        study.add_trial(
            optuna.trial.create_trial(
                params={k: float(v[i]) for k, v in values.items()}, distributions=dists, value=float(y)
            )
        )
    return study


def test_importance_spread_finds_the_parameter_that_matters_and_how_sure_it_is():
    rng = np.random.default_rng(0)
    x = {"matters": rng.random(60), "noise": rng.random(60)}
    study = _study(x, (x["matters"] - 0.3) ** 2 + 0.01 * rng.normal(size=60))
    out = tc.importance_spread(study, n_resamples=20)
    assert list(out["param"]) == ["matters", "noise"] and (out["n_trials"] == 60).all()
    top, other = out.iloc[0], out.iloc[1]
    assert top["importance"] > 0.8 and top["low"] > other["high"]
    assert (out["low"] <= out["high"]).all()
    # with fewer trials the resampled importances spread more
    few_x = {k: v[:12] for k, v in x.items()}
    few = tc.importance_spread(_study(few_x, (few_x["matters"] - 0.3) ** 2), n_resamples=20)
    assert (few["high"] - few["low"]).max() > (out["high"] - out["low"]).max()
    with pytest.raises(ValueError, match="at least 2 completed"):
        tc.importance_spread(optuna.create_study())


def test_the_command_checks_its_arguments_before_anything_runs(tmp_path, capsys):
    assert tc.main(["--out", str(tmp_path), "--n-trials", "0", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--n-trials must be >= 1, got 0" in err and "--workers must be >= 1, got 0" in err
    assert tc.main(["--out", str(tmp_path), "--test-cell-type", "B", "--validation-cell-type", "B"]) == 2
    assert "must differ" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written
    with pytest.raises(FileNotFoundError, match="python -m course_tools.tuning.committed"):
        tc.load_study(tmp_path, "scgen")


@pytest.mark.slow
def test_the_committed_study_runs_resumes_and_compares_tuned_with_default(tmp_path):
    """Two workers, 3 trials, then tuned vs default over 2 seeds; the same command again runs nothing new."""
    args = ["--out", str(tmp_path), "--methods", "scgen", "--n-trials", "3", "--workers", "2", "--seeds", "2"]
    args += ["--data", "mini", "--n-top-genes", "200", "--max-epochs", "1", "--n-bootstrap", "5"]
    assert tc.main(args) == 0
    study = tc.load_study(tmp_path, "scgen")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3 and {t.user_attrs["worker"] for t in done} <= {0, 1}
    assert all(set(t.params) == set(tc.STUDY_SPACES["scgen"]) for t in done)
    assert all(t.user_attrs["git_commit"] and t.user_attrs["device"] for t in done)
    final = pd.read_csv(tmp_path / "final.csv.gz")
    runs = final.drop_duplicates(["method", "seed"])
    assert sorted(runs["method"].unique()) == ["scgen", "scgen_tuned"] and sorted(runs["seed"].unique()) == [0, 1]
    assert final["finished_at"].notna().all() and final["device"].notna().all()
    assert (final["setting"] == "loco/CD4+ T cells/balanced").all()
    v = tc.tuned_vs_default(final, "scgen")
    assert set(v["method_a"]) == {"scgen_tuned"} and (v["n"] == 2).all()
    # resume: no new trial (and no worker started), no new training
    for log in tmp_path.glob("scgen.worker*.txt"):
        log.unlink()
    assert tc.main(args) == 0
    assert not list(tmp_path.glob("scgen.worker*.txt"))
    assert len(tc.load_study(tmp_path, "scgen").trials) == len(study.trials)
    again = pd.read_csv(tmp_path / "final.csv.gz")
    pd.testing.assert_series_equal(again["finished_at"], final["finished_at"])
    # a clean clone has the committed final.csv.gz but no final.work.csv: nothing is trained again
    (tmp_path / "final.work.csv").unlink()
    assert tc.main(args) == 0
    pd.testing.assert_series_equal(pd.read_csv(tmp_path / "final.csv.gz")["finished_at"], final["finished_at"])
    # the other model, run on its own: its runs join the final table and scGen's stay as they were
    assert tc.main([*args[:2], "--methods", "scpram", *args[4:]]) == 0
    both = pd.read_csv(tmp_path / "final.csv.gz")
    assert sorted(both["method"].unique()) == ["scgen", "scgen_tuned", "scpram", "scpram_tuned"]
    scgen = both[both["method"].str.startswith("scgen")]
    assert sorted(zip(scgen["key"], scgen["finished_at"])) == sorted(zip(final["key"], final["finished_at"]))
