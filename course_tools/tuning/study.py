"""Leak-free hyperparameter tuning with Optuna.

The objective trains a model on the training cells, predicts the **validation** cell type's
response and scores it; the test cell type is never touched during tuning (score it once, at
the end, with :func:`course_tools.benchmark.run_benchmark` or :func:`course_tools.scoring.evaluate.evaluate`).

- Intermediate values: the model's per-epoch validation loss (held-out 10% of training cells),
  reported to Optuna so that a pruner (median or Hyperband) stops poor trials early.
- Objective value (minimised): the Euclidean energy distance between predicted and real
  stimulated validation cells, in a 50-component PCA fitted on the real validation cells
  (control + stimulated) only.
- Storage: any of :mod:`course_tools.tuning.storage` (SQLite file, journal file, RDB URL). With
  each, a killed worker's trial is retried once with its parameters, a restarted worker proposes
  new points (:func:`sampler_seed`), and a study ends with exactly the requested number of finished
  trials (:func:`optimise`; ``tests/test_tuning_storages.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from course_tools.threads import fixed_threads
from course_tools.tuning.search_space import validate_space
from course_tools.tuning.storage import make_storage
from tutorial_lib.config import check_seed, get_config
from tutorial_lib.data.split import HoldoutData
from tutorial_lib.models import TrainingOptions

_log = logging.getLogger(__name__)


def search_spaces() -> dict[str, Mapping[str, tuple[str, Any]]]:
    """Method -> search space, for every registered method that has one (the course's table).

    Each space maps a parameter to ``("int"|"float"|"categorical", spec)``: numeric specs are
    ``(low, high, log)``, categorical ones the choices. Read from the method records
    (:attr:`course_tools.methods.MethodSpec.search_space`) at each call, so a method registered
    later is included.
    """
    from course_tools.methods import SPECS

    return {name: spec.search_space for name, spec in SPECS.items() if spec.search_space}


def predict_params(method: str) -> frozenset[str]:
    """Search-space parameters of ``method`` passed to ``predict`` rather than to its constructor."""
    from course_tools.methods import get_spec

    return get_spec(method).predict_params


def train_params(method: str) -> frozenset[str]:
    """Parameters a search space of ``method`` may hold that go to ``train`` (its training options).

    The fields of :class:`tutorial_lib.models.TrainingOptions` (e.g. ``lr``, ``batch_size``), except
    the caps, which :func:`fit_and_score` sets itself (``max_epochs``), and ``max_steps``, which is a
    budget rather than a setting of the model.
    """
    fields = {f.name for f in dataclasses.fields(TrainingOptions)}
    return frozenset(fields - {"max_epochs", "max_steps"})


def suggest(trial: optuna.Trial, space: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    """Draw one value per parameter of ``space`` from ``trial``."""
    params = {}
    for name, (kind, spec) in space.items():
        if kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec))
        elif kind == "int":
            params[name] = trial.suggest_int(name, spec[0], spec[1], log=spec[2])
        else:
            params[name] = trial.suggest_float(name, spec[0], spec[1], log=spec[2])
    return params


def model_class(method: str):
    """The model class tuned for ``method`` (a registered method with a search space, e.g. ``"scgen"``)."""
    spaces = search_spaces()
    if method not in spaces:
        raise ValueError(f"method must be one of {sorted(spaces)} (methods with a search space), got {method!r}")
    from course_tools.methods import get_spec

    return get_spec(method).model


def fit_and_score(
    method: str,
    params: Mapping[str, Any],
    parts: HoldoutData,
    *,
    target: str = "validation",
    max_epochs: int | None = None,
    seed: int = 0,
    on_epoch_end: Callable[[int, float], None] | None = None,
    train_kwargs: Mapping[str, Any] | None = None,
) -> float:
    """Train ``method`` with ``params`` and return the E-distance of its prediction.

    ``params`` go to the model's constructor, to ``predict`` (:func:`predict_params`) or to
    ``train`` (:func:`train_params`: e.g. ``lr``, ``batch_size``), by name.
    ``target="validation"`` predicts the validation group (tuning); ``"test"`` the test group
    (the single final scoring). ``train_kwargs`` go to ``Model.train`` (e.g. ``batch_size``,
    ``lr``; a preset from :func:`course_tools.presets.train_preset`); ``max_epochs`` (the
    epoch cap; ``None``: the mode's budget, :attr:`tutorial_lib.config.RunConfig.max_epochs`, i.e.
    the default schedule (early stopping, step cap), capped only under ``TUTORIAL_SMOKE=1``) and
    ``seed`` are set by their own arguments. Runs under :func:`course_tools.threads.fixed_threads`, so a trial's
    value is reproduced exactly by calling this again with its parameters.
    """
    from tutorial_lib.metrics import e_distance, fit_shared_pca

    if max_epochs is None:
        max_epochs = get_config().max_epochs  # the mode's budget: None (default schedule) unless smoke-testing
    if target == "validation":
        if parts.val is None:
            raise ValueError("the split has no validation cell type; assign_holdout(..., validation_cell_type=...)")
        ctrl, real = parts.val_ctrl, parts.val
    elif target == "test":
        ctrl, real = parts.ctrl, parts.test
    else:
        raise ValueError(f"target must be 'validation' or 'test', got {target!r}")
    cls = model_class(method)
    from course_tools.methods import get_spec

    fixed = dict(get_spec(method).fixed_predict)  # what the method's name means (e.g. scpram: variant='released')
    to_predict, to_train = predict_params(method), train_params(method)
    build = {k: v for k, v in params.items() if k not in to_predict | to_train}
    predict_kwargs = {k: v for k, v in params.items() if k in to_predict}
    train_kwargs = dict(train_kwargs or {})
    clash = sorted(set(train_kwargs) & {"max_epochs", "seed", "on_epoch_end", "progress_bar"})
    if clash:
        raise ValueError(f"train_kwargs may not set {clash}: use max_epochs= and seed= (the others are set here)")
    tuned = {k: v for k, v in params.items() if k in to_train}
    twice = sorted(set(tuned) & set(train_kwargs))
    if twice:
        raise ValueError(f"{twice} are tuned (in params) and fixed (in train_kwargs) at once; drop one")
    train_kwargs.update(tuned)
    with fixed_threads():  # the same numbers whatever the thread variables and whatever ran before
        model = cls(parts.train, **build)
        model.train(**train_kwargs, max_epochs=max_epochs, seed=seed, progress_bar=False, on_epoch_end=on_epoch_end)
        pred = model.predict(adata_to_predict=ctrl, seed=seed, **fixed, **predict_kwargs)
        space = fit_shared_pca(real, ctrl, n_comps=50, seed=seed)
        return e_distance(space.transform(real), space.transform(pred), estimator="u")


def make_objective(
    method: str,
    parts: HoldoutData,
    *,
    max_epochs: int | None = None,
    seed: int = 0,
    space: Mapping[str, tuple[str, Any]] | None = None,
    train_kwargs: Mapping[str, Any] | None = None,
) -> Callable[[optuna.Trial], float]:
    """Optuna objective: validation-set E-distance, with per-epoch validation loss for pruning.

    ``train_kwargs`` (e.g. ``batch_size``, ``lr``) are passed to every trial's training; see
    :func:`fit_and_score` (also for ``max_epochs``).
    """
    model_class(method)  # unknown method fails here, before any trial
    space = search_spaces()[method] if space is None else space
    check_space(method, space)

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space)

        def report(epoch: int, val_loss: float) -> None:
            trial.report(val_loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (validation loss {val_loss:.4g})")

        return fit_and_score(
            method, params, parts, max_epochs=max_epochs, seed=seed, on_epoch_end=report, train_kwargs=train_kwargs
        )

    return objective


def check_space(method: str, space: Mapping[str, tuple[str, Any]]) -> None:
    """Raise ``ValueError`` naming the parameter if a trial of ``method`` could fail on ``space``.

    Checks the form (:func:`course_tools.tuning.search_space.validate_space`), that every name is a
    setting of the method (:func:`default_params`), and that the model accepts every value the space
    can give: both ends of a numeric range and every categorical choice. The values are checked by
    the model's own validation: its torch module (``module_class``, which receives the constructor
    arguments of the same name) is built on PyTorch's ``meta`` device, which allocates no memory and
    needs no data. Parameters of ``predict`` are checked for their form only. Call it before a study
    is created, so that a space a model refuses does not fill a shared study with failed trials.
    """
    validate_space(space)
    default_params(method, space)  # every name is a setting of the method
    cls = model_class(method)
    for name in sorted(set(space) & train_params(method)):  # a training option: the options' own checks
        for label, value in _extremes(*space[name]):
            try:
                cls.train_defaults.replace(**{name: value})
            except (ValueError, TypeError) as err:
                raise ValueError(f"{name}: {cls.__name__}'s training refuses {label}{value!r} ({err})") from None
    module_args = set(inspect.signature(cls.module_class.__init__).parameters)
    constructor_args = set(inspect.signature(cls.__init__).parameters)
    checked = (module_args & constructor_args) - predict_params(method) - {"self", "n_input"}
    for name, (kind, spec) in space.items():
        if name not in checked:
            continue
        for label, value in _extremes(kind, spec):
            problem = _module_refuses(cls, name, value)
            if problem:
                raise ValueError(f"{name}: {cls.__name__} refuses {label}{value!r} ({problem})")


def _extremes(kind: str, spec: Any) -> list[tuple[str, Any]]:
    """The values of a search-space entry a check must try, labelled: every choice, or both ends of a range."""
    return [("choice ", v) for v in spec] if kind == "categorical" else [("low=", spec[0]), ("high=", spec[1])]


def _module_refuses(cls, name: str, value: Any) -> str | None:
    """The error message of ``cls``'s module built with ``name=value`` on the meta device (``None``: accepted)."""
    import torch

    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            cls.module_class(2, **{**cls.fixed_module_kwargs, name: value})
    except (ValueError, TypeError) as err:
        return str(err)
    return None


def create_study(
    name: str,
    storage: str | Path | None = None,
    *,
    seed: int = 0,
    pruner: str = "median",
    heartbeat: int = 10,
) -> optuna.Study:
    """Create or resume (``load_if_exists``) a minimising study with a seeded TPE sampler.

    The sampler's seed is derived from ``seed`` and the number of trials already in the study
    (:func:`sampler_seed`): a fresh study with the same ``seed`` gives the same trials, and a worker
    restarted on a study that has trials draws new points instead of repeating the ones it drew
    before its restart (with a plain ``seed``, its random start-up trials were the same again).
    ``seed`` is checked by :func:`tutorial_lib.config.check_seed` (0 to ``2**32 - 1``, the range of
    NumPy's generators and so of Optuna's TPE sampler); it, ``pruner`` and ``storage`` are checked
    before the storage is opened.
    """
    seed = check_seed(seed)
    pruners = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=2),
        "none": optuna.pruners.NopPruner,
    }
    if pruner not in pruners:
        raise ValueError(f"pruner must be one of {sorted(pruners)}, got {pruner!r}")
    study = optuna.create_study(
        study_name=name,
        storage=make_storage(storage, heartbeat=heartbeat),
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruners[pruner](),
        direction="minimize",
        load_if_exists=True,
    )
    n_existing = len(study.get_trials(deepcopy=False))
    if n_existing:
        study.sampler = optuna.samplers.TPESampler(seed=sampler_seed(seed, n_existing))
    return study


def sampler_seed(seed: int, n_existing: int) -> int:
    """Seed of the TPE sampler of a worker that joins a study holding ``n_existing`` trials.

    ``seed`` itself for an empty study (so a fresh study is reproducible from ``seed``), else a
    number mixed from both by NumPy's ``SeedSequence``.
    """
    if n_existing == 0:
        return seed
    return int(np.random.SeedSequence([seed, n_existing]).generate_state(1)[0])


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def n_finished(study: optuna.Study) -> int:
    """Number of completed or pruned trials of ``study``."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


class SurplusTrial(Exception):
    """A trial started after the study's target was already taken by earlier trials."""


def _surplus(study: optuna.Study, number: int, n_trials: int) -> bool:
    """Whether trial ``number`` is beyond the target: ``n_trials`` earlier trials finished or are under way."""
    counted = FINISHED + (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    earlier = [t for t in study.get_trials(deepcopy=False, states=counted) if t.number < number]
    return len(earlier) >= n_trials


def optimise(study: optuna.Study, objective: Callable, n_trials: int, *, poll: float | None = None) -> optuna.Study:
    """Run trials until ``study`` holds exactly ``n_trials`` finished ones (shared by all workers).

    Workers on any number of machines call this with the same ``n_trials``. Each worker, in a loop:
    fails stale trials of killed workers (Optuna re-queues each once with its parameters); stops
    once ``n_trials`` trials are finished; runs a queued trial if there is one; waits (``poll``
    seconds, default the heartbeat interval) while the trials under way would reach the target;
    otherwise runs one new trial. Two workers may still start a trial at the same instant; a trial that finds
    ``n_trials`` earlier trials finished, running or queued stops at once, before drawing
    parameters, and is recorded as failed with the user attribute ``surplus`` (ignored by the
    sampler). Hence the study never holds more than ``n_trials`` finished trials, and a worker
    returns only when it holds that many.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    from optuna.storages._heartbeat import fail_stale_trials, is_heartbeat_enabled

    storage = study._storage
    beat = storage.get_heartbeat_interval() if is_heartbeat_enabled(storage) else None
    poll = poll if poll is not None else float(beat or 1)

    started: list[optuna.Trial] = []  # the trial this worker is running
    returned: list[optuna.Trial] = []  # the same, once its objective returned a value

    def guarded(trial: optuna.Trial) -> float:
        started[:] = [trial]
        returned.clear()
        if _surplus(study, trial.number, n_trials):
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(
                f"trial {trial.number} is not needed: {n_trials} earlier trials are finished or under way"
            )
        value = objective(trial)
        returned.append(trial)
        return value

    while True:
        if beat is not None:
            fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        finished = sum(t.state in FINISHED for t in trials)
        if finished >= n_trials:
            return study
        waiting = sum(t.state == optuna.trial.TrialState.WAITING for t in trials)
        running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        if not waiting and finished + running >= n_trials:
            time.sleep(poll)  # the last trials are under way elsewhere; if their worker dies they are re-queued
            continue
        try:
            study.optimize(guarded, n_trials=1, catch=(SurplusTrial,))  # takes a queued (retried) trial first
        except (ValueError, AssertionError) as err:  # Optuna: "Cannot tell a FAIL trial" (some versions assert)
            # Optuna's own words say the trial was failed before this worker told its end (a value, or
            # pruned); without them only a returned objective counts, so that an objective's own
            # ValueError or AssertionError (after which Optuna fails the trial itself) is not hidden
            ours = started if "Cannot tell a FAIL trial" in str(err) else returned
            if not (ours and _failed_as_stale(study, ours[0]._trial_id)):
                raise
            # this worker's heartbeats were late (a starved CPU) and another worker failed the trial
            # as stale; its retry (queued with the same parameters) counts instead, so carry on
            _log.warning("trial %d was failed as stale while it ran here; its retry takes its place", ours[0].number)


def _failed_as_stale(study: optuna.Study, trial_id: int) -> bool:
    """Whether trial ``trial_id``, whose objective returned, was marked failed by another worker."""
    return study._storage.get_trial(trial_id).state == optuna.trial.TrialState.FAIL


@dataclass
class TuningResult:
    """Best parameters of a study and its trials as a table."""

    best_params: dict[str, Any]
    best_value: float
    trials: Any


def summarise_study(study: optuna.Study) -> TuningResult:
    """Best parameters, best value and the tidy trials table of ``study``."""
    return TuningResult(study.best_params, study.best_value, study.trials_dataframe())


def predict_defaults(cls: type, **fixed: Any) -> dict[str, Any]:
    """The value each ``predict`` setting of model class ``cls`` takes when not given, with ``fixed`` applied.

    ``fixed`` is a method's ``fixed_predict``: the result is what a default prediction of that
    method really uses (scPRAM's ``ratio=None``, "the variant's", is resolved to that ratio).
    """
    params = inspect.signature(cls.predict).parameters.items()
    settings = {k: p.default for k, p in params if p.default is not inspect.Parameter.empty} | fixed
    if "variant" in settings and "ratio" in settings:
        from tutorial_lib.models.scpram import resolve_options

        settings["ratio"] = resolve_options(settings["variant"], settings["ratio"])[1].ratio
    return settings


def default_params(method: str, space: Mapping[str, tuple[str, Any]] | None = None) -> dict[str, Any]:
    """The defaults of ``method`` for the parameters of its search space (for the final comparison).

    Constructor defaults, the values a default prediction of ``method`` uses (its name's fixed
    options applied, e.g. scPRAM's released variant), as :func:`predict_defaults` gives them, and
    the model's training defaults (``train_defaults``) for :func:`train_params`.
    """
    from course_tools.methods import get_spec

    cls = model_class(method)
    space = search_spaces()[method] if space is None else space
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}
    defaults.update(predict_defaults(cls, **get_spec(method).fixed_predict))
    training = dataclasses.asdict(cls.train_defaults)
    defaults.update({k: training[k] for k in train_params(method)})
    missing = [k for k in space if k not in defaults or defaults[k] is inspect.Parameter.empty]
    if missing:
        raise ValueError(f"{cls.__name__} has no default for {missing}")
    return {k: defaults[k] for k in space}
