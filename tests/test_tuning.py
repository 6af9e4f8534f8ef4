"""Optuna tuning: search-space validation, shared storage across workers, resuming a killed study."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
import warnings

import optuna
import pytest

from course_tools.tuning.search_space import validate_space
from course_tools.tuning.storage import make_storage
from course_tools.tuning.study import (
    create_study,
    default_params,
    fit_and_score,
    make_objective,
    search_spaces,
)

States = optuna.trial.TrialState
WORKER = [
    sys.executable,
    "-m",
    "course_tools.tuning.cli",
    "--method",
    "scgen",
    "--data",
    "mini",
    "--n-top-genes",
    "150",
    "--max-epochs",
    "3",
    "--heartbeat",
    "1",
    "--batch-size",
    "64",
    "--lr",
    "2e-3",
]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "empty"),
        ({"dropout_rate": ("float", (0.5, 0.1, False))}, "dropout_rate: low must be below high"),
        ({"ratio": ("float", (0.0, 0.3, True))}, "ratio: a log-scale range needs low > 0"),
        ({"n_hidden": ("normal", (1, 2, False))}, "n_hidden: kind must be"),
        ({"n_latent": ("categorical", ())}, "n_latent: categorical choices are empty"),
        ({"n_layers": ("int", (1, 3))}, r"n_layers: numeric spec must be \(low, high, log\)"),
    ],
)
def test_bad_search_space_values(space, message):
    with pytest.raises(ValueError, match=message):
        validate_space(space)


def test_course_search_spaces_are_valid_and_have_defaults():
    for method, space in search_spaces().items():
        validate_space(space)
        assert set(default_params(method)) == set(space)
    assert default_params("scgen")["n_hidden"] == 800


def test_objective_needs_a_validation_cell_type(mini_counts):
    from tutorial_lib.data import prepare_holdout, split_views

    parts = split_views(prepare_holdout(mini_counts, n_top_genes=100))
    objective = make_objective("scgen", parts, max_epochs=1)
    study = optuna.create_study()
    with pytest.raises(ValueError, match="no validation cell type"):
        study.optimize(objective, n_trials=1)
    with pytest.raises(ValueError, match="method must be one of"):
        make_objective("cellot", parts)


def test_train_kwargs_reach_every_trial(mini_counts):
    from tutorial_lib.data import prepare_holdout, split_views

    parts = split_views(prepare_holdout(mini_counts, validation_cell_type="B", n_top_genes=100))
    objective = make_objective("scgen", parts, max_epochs=1, train_kwargs={"batch_size": 1})
    with pytest.raises(ValueError, match="batch_size"):  # 1 is refused by the training loop
        optuna.create_study().optimize(objective, n_trials=1)
    with pytest.raises(ValueError, match=r"train_kwargs may not set \['max_epochs'\]"):
        fit_and_score("scgen", {}, parts, train_kwargs={"max_epochs": 3})
    a = fit_and_score("scgen", {"n_hidden": 32, "n_latent": 8}, parts, max_epochs=2, train_kwargs={"batch_size": 64})
    b = fit_and_score("scgen", {"n_hidden": 32, "n_latent": 8}, parts, max_epochs=2, train_kwargs={"batch_size": 256})
    assert a != b  # another batch size, another model


def test_rdb_storage_uses_no_deprecated_optuna_api(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = make_storage(tmp_path / "study.db", heartbeat=5)
    assert storage.heartbeat_interval == 5
    assert storage.grace_period == 15


def test_a_retried_trial_is_not_failed_for_the_heartbeat_it_inherits(tmp_path):
    """A journal study's retried trial is judged by its own heartbeats, not by its predecessor's last one.

    Optuna's retry callback copies the failed trial's system attributes into the re-queued trial, so
    the journal storage's ``heartbeat`` attribute arrives already stale. A worker that takes the
    trial records its first beat only after the trial is running; another worker's stale check in
    between must not fail it, or the retry is lost (a trial is retried once).
    """
    from optuna.storages._heartbeat import fail_stale_trials

    storage = make_storage(tmp_path / "study.log", heartbeat=1)
    study = optuna.create_study(study_name="retry", storage=storage)
    killed = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    storage.record_heartbeat(killed._trial_id)  # its one beat; then its worker dies
    last_beat = storage.get_trial(killed._trial_id).system_attrs["heartbeat"]
    time.sleep(storage.grace_period + 1)
    fail_stale_trials(study)  # as any worker does before it asks for a trial: fails and re-queues it
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [States.FAIL, States.WAITING]
    assert trials[1].system_attrs["heartbeat"] == last_beat  # inherited, as Optuna copies it

    retried = study.ask()  # another worker takes it; its heartbeat thread has not beaten yet
    assert retried.number == 1 and retried.params == killed.params
    fail_stale_trials(study)  # a third worker checks in that moment
    assert study.get_trials(deepcopy=False)[1].state == States.RUNNING
    assert len(study.get_trials(deepcopy=False)) == 2  # nothing failed, nothing re-queued

    time.sleep(storage.grace_period + 1)  # its own beats stop (its worker dies too): now it is stale
    fail_stale_trials(study)
    assert study.get_trials(deepcopy=False)[1].state == States.FAIL


def _env():
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _trials(name: str, storage: str):
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_two_workers_share_one_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    create_study("shared", storage)  # create once, as a user would before starting workers
    n_trials = 4
    procs = [
        subprocess.Popen(
            WORKER + ["--study", "shared", "--storage", storage, "--n-trials", str(n_trials), "--worker", str(k)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for k in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trials = _trials("shared", storage)
    finished = [t for t in trials if t.state in (States.COMPLETE, States.PRUNED)]
    # every trial ended (none lost in "running"), numbers are unique, and exactly the target was
    # reached; a trial that two workers started at the same instant beyond it stopped as "surplus"
    assert all(t.state in (States.COMPLETE, States.PRUNED) or t.user_attrs.get("surplus") for t in trials)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert len(finished) == n_trials
    assert all(t.params for t in finished)


def test_killed_study_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = WORKER + ["--study", "resume", "--storage", storage, "--n-trials", "3"]
    proc = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # wait until a trial has run for > 1 heartbeat (so the storage knows its heartbeat), then kill hard
    while time.time() < deadline:
        try:
            running = [t for t in _trials("resume", storage) if t.state == States.RUNNING]
        except KeyError:
            running = []
        now = datetime.datetime.now()
        if any((now - t.datetime_start).total_seconds() > 1.5 for t in running):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("no trial started within 120 s")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(3.5)  # > 3 missed heartbeats: the stale trial is now failed, and will be retried
    done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = _trials("resume", storage)
    states = [t.state for t in trials]
    assert states.count(States.FAIL) == 1
    assert sum(s in (States.COMPLETE, States.PRUNED) for s in states) == 3
    assert States.RUNNING not in states
    # the killed trial was re-queued once with its parameters, and that copy has run
    failed = next(t for t in trials if t.state == States.FAIL)
    retry = (
        getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    )
    retried = [t for t in trials if retry.retried_trial_number(t) == failed.number]
    assert len(retried) == 1 and retried[0].params == failed.params
    assert retried[0].state in (States.COMPLETE, States.PRUNED)


def test_worker_refuses_bad_arguments_before_loading_anything(tmp_path, capsys):
    from course_tools.tuning.cli import main

    storage = str(tmp_path / "study.db")
    assert (
        main(
            [
                "--study",
                "s",
                "--method",
                "scgen",
                "--storage",
                storage,
                "--n-trials",
                "0",
                "--batch-size",
                "1",
                "--lr",
                "0",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--n-trials must be >= 1, got 0" in err
    assert "--batch-size must be >= 2" in err and "--lr must be a finite number > 0, got 0.0" in err
    assert not (tmp_path / "study.db").exists()


def test_worker_sets_the_thread_count_once_at_start(tmp_path, monkeypatch):
    import course_tools.tuning.cli as cli

    called = []
    monkeypatch.setattr(cli, "apply_torch_threads", lambda: called.append(1))
    args = ["--study", "s", "--method", "scgen", "--storage", str(tmp_path / "s.db"), "--n-trials", "0"]
    assert cli.main(args) == 2  # refused before any work, after the count was set
    assert called == [1]


@pytest.mark.parametrize("ending", ["value", "pruned"])
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_worker_carries_on_when_its_live_trial_is_failed_as_stale(kind, ending, tmp_path):
    """Late heartbeats (a starved CPU) can get a live worker's trial failed by another worker.

    The worker must not crash when it then reports its value, or that the trial was pruned: the
    trial stays failed, and the study still ends with the requested number of finished trials.
    """
    from course_tools.tuning.study import optimise

    url = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else str(tmp_path / "study.log")
    study = optuna.create_study(study_name="stale", storage=make_storage(url, heartbeat=1))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 0:  # what fail_stale_trials in another worker does to a trial it thinks dead
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            if ending == "pruned":
                raise optuna.TrialPruned()
        return x

    optimise(study, objective, n_trials=2)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states[0] == optuna.trial.TrialState.FAIL
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2


def test_worker_still_raises_other_value_errors(tmp_path):
    """Only the failed-as-stale case is caught: an objective's own ``ValueError`` is not hidden."""
    from course_tools.tuning.study import optimise

    study = optuna.create_study(storage=make_storage(str(tmp_path / "study.log"), heartbeat=1))

    def objective(trial: optuna.Trial) -> float:
        raise ValueError("bad objective")

    with pytest.raises(ValueError, match="bad objective"):
        optimise(study, objective, n_trials=1)

    def asserting(trial: optuna.Trial) -> float:
        assert trial.number < 0, "bad assertion"
        return 0.0

    with pytest.raises(AssertionError, match="bad assertion"):  # Optuna failed the trial itself: not hidden
        optimise(study, asserting, n_trials=1)
