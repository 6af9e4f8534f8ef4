"""One calling convention for every method, for notebooks and benchmarks.

``METHODS[name](train_adata, adata_to_predict, *, cell_type, seed=0, max_epochs=None, **kwargs)``
trains on ``train_adata`` (nothing to train for the baselines) and predicts the stimulated
state of ``adata_to_predict`` (the held-out type's control cells; ``cell_type=None`` when the
held-out group is not one cell type, e.g. donors: labels then come from ``adata_to_predict.obs``),
returning AnnData with
``obs["condition"] == "predicted"``, ``obs["cell_type"]`` and ``obs["method"]`` (the name in
``METHODS``).

Published methods keep their plain names; a variant carries its own:

* ``scgen``: scGen as published (decoded shifted means).
* ``scpram``: scPRAM as released (scpram 0.0.3's prediction steps, ``variant="released"``).
* ``scpram_percell``: course variant, per-cell attention (``variant="percell"``).
* ``scpram_percell_exact``: course variant, per-cell attention and the OT plan run to its
  optimum (the release stops after 100,000 iterations; ``variant="percell_exact"``).
* ``scgen_residual``, ``scpram_percell_residual``: course variants that add each control cell's
  reconstruction residual back (``sample="residual"``; assumption stated in
  :func:`~tutorial_lib.models.base.check_sample`). No claim about the published
  methods rests on them.

For scGen/scPRAM, ``kwargs`` are routed by name to the constructor (e.g. ``n_latent``), to
``train`` (e.g. ``batch_size``, ``on_epoch_end``) and to ``predict`` (e.g. ``ratio``);
``max_epochs`` (the epoch cap) is a whole number >= 1, or ``None`` for
:func:`tutorial_lib.config.get_config`'s (0 is an error, not the default); the progress bar is
off unless ``progress_bar=True``. ``seed`` is an integer from 0 to ``2**32 - 1``, NumPy integers
included (:func:`tutorial_lib.config.check_seed`), passed on as a plain ``int``.
``return_model=True`` returns ``(prediction, model)``.

Variants of one model differ in prediction only, so they share one trained model: the last
model trained per class is kept (with a reference to its training AnnData) and reused when the
same AnnData object, seed, epochs and constructor/training arguments come again (not when an
``on_epoch_end`` callback is given). Training is seeded and deterministic on CPU, so reuse gives
the same predictions as retraining; prediction no longer changes a model, so reuse is safe.
``reuse_trained=False`` always retrains. Do not change ``train_adata`` in place between calls.

Each method is one :class:`MethodSpec` record (model class or baseline function, the predict
options its name fixes, search space, presets, description) in :data:`SPECS`; :data:`METHODS`,
the tuning search spaces and the presets are derived from the records. A new method is one
``register_method(MethodSpec(...))`` call (see ``tests/toy_method.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from anndata import AnnData

from course_tools.baselines import pca_arithmetic
from course_tools.tuning.search_space import validate_space
from tutorial_lib.baselines import mean_shift, no_change
from tutorial_lib.config import check_seed, check_whole_number, get_config
from tutorial_lib.models import TrainingHistory, TrainingOptions
from tutorial_lib.models.base import METHOD_KEY, BaseModel
from tutorial_lib.models.scgen import SCGEN
from tutorial_lib.models.scpram import SCPRAM


class FitPredict(Protocol):
    """A method's fit-and-predict callable: trains on ``train_adata`` and predicts from ``adata_to_predict``."""

    def __call__(
        self,
        train_adata: AnnData,
        adata_to_predict: AnnData,
        *,
        cell_type: str | None,
        seed: int = 0,
        max_epochs: int | None = None,
        **kwargs: Any,
    ) -> AnnData:
        """Fit on ``train_adata`` and return the predicted stimulated cells for ``adata_to_predict``."""
        ...


def _params(fn: Callable) -> set[str]:
    return {
        name
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in {"self", "adata"}
    }


def _train_params(cls: type[BaseModel]) -> set[str]:
    """Arguments of ``cls.train``: its own and the :class:`~tutorial_lib.models.TrainingOptions` it takes by name."""
    return _params(cls.train) | {f.name for f in dataclasses.fields(TrainingOptions)}


def training_summary(history: TrainingHistory) -> dict[str, float]:
    """What a benchmark row records of a training run.

    ``train_steps``, ``train_epochs``, ``best_val_loss`` (lowest validation loss, whose weights
    were kept; NaN without validation) and ``stopped_early`` (1.0 if the stopping rule ended
    training, 0.0 if a cap did).
    """
    vals = [v for v in history.val_loss if not math.isnan(v)]
    return {
        "train_steps": float(history.step[-1]) if history.step else math.nan,
        "train_epochs": float(history.epoch[-1]) if history.epoch else math.nan,
        "best_val_loss": float(min(vals)) if vals else math.nan,
        "stopped_early": float(history.stopped_early),
    }


#: class -> (key, training AnnData, trained model): the last model trained per class
_TRAINED: dict[type, tuple[tuple, AnnData, BaseModel]] = {}


def clear_trained_cache() -> None:
    """Forget the trained models kept for reuse by the prediction variants."""
    _TRAINED.clear()


def _trained_model(
    cls: type[BaseModel], train_adata: AnnData, seed: int, max_epochs: int | None, init: dict, train: dict, reuse: bool
) -> BaseModel:
    key = (max_epochs, seed, train_adata.shape, repr(sorted(init.items())), repr(sorted(train.items())))
    cached = _TRAINED.get(cls)
    if reuse and cached is not None and cached[0] == key and cached[1] is train_adata:
        return cached[2]
    model = cls(train_adata, **init)
    model.train(max_epochs=max_epochs, seed=seed, **train)
    if reuse and "on_epoch_end" not in train:
        _TRAINED[cls] = (key, train_adata, model)
    return model


def _epoch_cap(max_epochs: Any, method: str) -> int | None:
    """``max_epochs`` of a method call: ``None`` (the mode's default) or a whole number >= 1.

    0 is refused rather than read as "not given": a cap of no epochs is a mistake, not a request
    for the default.
    """
    if max_epochs is None:
        return None
    return check_whole_number(
        max_epochs, f"{method}: max_epochs", 1, what="a whole number >= 1, or None for the mode's default"
    )


def _model_fit_predict(cls: type[BaseModel], name: str, **fixed_predict: Any) -> FitPredict:
    def fit_predict(
        train_adata: AnnData,
        adata_to_predict: AnnData,
        *,
        cell_type: str | None,
        seed: int = 0,
        max_epochs: int | None = None,
        return_model: bool = False,
        reuse_trained: bool = True,
        **kwargs: Any,
    ) -> AnnData | tuple[AnnData, BaseModel]:
        max_epochs = _epoch_cap(max_epochs, name)
        seed = check_seed(seed)
        targets = {"init": _params(cls.__init__), "train": _train_params(cls), "predict": _params(cls.predict)}
        unknown = set(kwargs) - set().union(*targets.values())
        if unknown:
            raise TypeError(f"{name}: unknown argument(s) {sorted(unknown)}")
        fixed = sorted(set(kwargs) & set(fixed_predict))
        if fixed:
            raise TypeError(f"{name} fixes {fixed} (that is what the name means); use another method name")
        routed = {k: {n: v for n, v in kwargs.items() if n in names} for k, names in targets.items()}
        routed["train"].setdefault("progress_bar", False)
        model = _trained_model(
            cls,
            train_adata,
            seed,
            get_config().max_epochs if max_epochs is None else max_epochs,
            routed["init"],
            routed["train"],
            reuse_trained,
        )
        pred = model.predict(
            cell_type, adata_to_predict=adata_to_predict, seed=seed, **fixed_predict, **routed["predict"]
        )
        pred.obs[METHOD_KEY] = name
        pred.uns["training"] = training_summary(model.history_)
        return (pred, model) if return_model else pred

    fit_predict.__name__ = f"fit_predict_{name}"
    settings = ", ".join(f"{k}={v!r}" for k, v in fixed_predict.items())
    fit_predict.__doc__ = (
        f"Train {cls.__name__} on train_adata and predict adata_to_predict{f' with {settings}' if settings else ''} "
        "(see module docstring)."
    )
    return fit_predict


def _baseline_fit_predict(fn: Callable[..., AnnData]) -> FitPredict:
    takes_seed = "seed" in _params(fn)

    def fit_predict(
        train_adata: AnnData,
        adata_to_predict: AnnData,
        *,
        cell_type: str | None,
        seed: int = 0,
        max_epochs: int | None = None,
        **kwargs: Any,
    ) -> AnnData:
        _epoch_cap(max_epochs, fn.__name__)  # nothing to train, but a wrong cap is the caller's mistake all the same
        seed = check_seed(seed)
        if takes_seed:
            kwargs["seed"] = seed
        return fn(train_adata, adata_to_predict, cell_type=cell_type, **kwargs)

    fit_predict.__name__ = f"fit_predict_{fn.__name__}"
    fit_predict.__doc__ = fn.__doc__
    return fit_predict


#: Settings a method's ``train_presets`` may define (see :mod:`course_tools.presets`).
PRESET_SETTINGS = ("default", "capped", "reference")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType({k: (_frozen(v) if isinstance(v, Mapping) else v) for k, v in (mapping or {}).items()})


@dataclass(frozen=True)
class MethodSpec:
    """Everything the library knows about one method, in one record.

    :data:`METHODS` (and :func:`get_method`), the tuning search spaces and model lookup
    (:func:`course_tools.tuning.study.search_spaces`, :func:`~course_tools.tuning.study.model_class`)
    and the presets (:func:`course_tools.presets.train_preset` / ``predict_preset``) are read from
    these records; :func:`register_method` adds one.

    Parameters
    ----------
    name
        The name in :data:`METHODS` (a variant of a published method carries its own name).
    model
        A :class:`~tutorial_lib.models.base.BaseModel` subclass to train and predict with; or
    baseline
        a function ``fn(train_adata, adata_to_predict, *, cell_type, [seed], **kwargs) -> AnnData``
        with nothing to train (exactly one of ``model`` and ``baseline``).
    fixed_predict
        ``predict`` keyword arguments the name fixes (e.g. ``variant="percell"``); a caller
        passing one of them gets an error naming the method.
    search_space
        Hyperparameters tuned by :mod:`course_tools.tuning`: name -> (``"int"``|``"float"``|
        ``"categorical"``, spec); empty: not tunable. Parameters of the model's ``predict``
        (e.g. scPRAM's ``ratio``) go to ``predict``, the others to the constructor.
    train_presets, predict_presets
        Setting (``"default"``, ``"capped"``, ``"reference"``) -> keyword arguments of ``train``
        / ``predict``.
    description
        One line for tables and listings.
    """

    name: str
    model: type[BaseModel] | None = None
    baseline: Callable[..., AnnData] | None = None
    fixed_predict: Mapping[str, Any] = field(default_factory=dict)
    search_space: Mapping[str, tuple[str, Any]] = field(default_factory=dict)
    train_presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    predict_presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"a method name must be a Python identifier such as 'my_model'; got {self.name!r}")
        if (self.model is None) == (self.baseline is None):
            raise ValueError(f"method {self.name!r}: give exactly one of model= (a BaseModel subclass) and baseline=")
        if self.model is not None and not (isinstance(self.model, type) and issubclass(self.model, BaseModel)):
            raise TypeError(f"method {self.name!r}: model must be a BaseModel subclass; got {self.model!r}")
        if self.baseline is not None and not callable(self.baseline):
            raise TypeError(f"method {self.name!r}: baseline must be callable; got {self.baseline!r}")
        for attr in ("fixed_predict", "search_space", "train_presets", "predict_presets"):
            object.__setattr__(self, attr, _frozen(getattr(self, attr)))
        if self.model is None:
            for attr in ("fixed_predict", "search_space", "train_presets", "predict_presets"):
                if getattr(self, attr):
                    raise ValueError(f"method {self.name!r}: a baseline has no {attr}")
            return
        predict_args, train_args = _params(self.model.predict), _train_params(self.model)
        unknown = sorted(set(self.fixed_predict) - predict_args)
        if unknown:
            raise ValueError(
                f"method {self.name!r}: fixed_predict {unknown} are not arguments of {self.model.__name__}.predict"
            )
        if self.search_space:
            validate_space(self.search_space)
            known = _params(self.model.__init__) | predict_args
            unknown = sorted(set(self.search_space) - known)
            if unknown:
                raise ValueError(
                    f"method {self.name!r}: search-space parameters {unknown} are arguments of neither "
                    f"{self.model.__name__}() nor its predict"
                )
        for attr, allowed in (("train_presets", train_args), ("predict_presets", predict_args)):
            table = getattr(self, attr)
            bad = sorted(set(table) - set(PRESET_SETTINGS))
            if bad:
                raise ValueError(
                    f"method {self.name!r}: {attr} settings {bad} unknown; expected {list(PRESET_SETTINGS)}"
                )
            for setting, kwargs in table.items():
                unknown = sorted(set(kwargs) - allowed)
                if unknown:
                    raise ValueError(
                        f"method {self.name!r}: {attr}[{setting!r}] sets {unknown}, not arguments of "
                        f"{self.model.__name__}.{attr.split('_')[0]}"
                    )

    @property
    def predict_params(self) -> frozenset[str]:
        """Search-space parameters passed to ``predict`` (the rest go to the constructor)."""
        if self.model is None:
            return frozenset()
        return frozenset(set(self.search_space) & (_params(self.model.predict) - _params(self.model.__init__)))

    def fit_predict(self) -> FitPredict:
        """The method's callable with the calling convention of the module docstring."""
        if self.model is not None:
            return _model_fit_predict(self.model, self.name, **self.fixed_predict)
        return _baseline_fit_predict(self.baseline)


#: The released tutorials' schedule: constant rate, no warm-up, no stop before the cap.
_AS_RELEASED = {"lr_schedule": "constant", "warmup_steps": 0, "min_steps": 10**9}
_NO_PREDICT_PRESETS = {setting: {} for setting in PRESET_SETTINGS}

#: The built-in methods. How the presets were chosen: :mod:`course_tools.presets`;
#: the search spaces are the course's (the seed slides' hyperparameter table).
BUILTIN_SPECS: tuple[MethodSpec, ...] = (
    MethodSpec("no_change", baseline=no_change, description="control cells as the prediction"),
    MethodSpec(
        "mean_shift",
        baseline=mean_shift,
        description="controls shifted by the training cell types' mean response",
    ),
    MethodSpec("pca_arithmetic", baseline=pca_arithmetic, description="latent arithmetic in PCA space"),
    MethodSpec(
        "scgen",
        model=SCGEN,
        description="scGen as published (decoded shifted means)",
        search_space={
            "n_layers": ("int", (1, 3, False)),
            "n_latent": ("categorical", (10, 20, 50, 100)),
            "n_hidden": ("categorical", (128, 256, 512, 800)),
            "dropout_rate": ("float", (0.0, 0.5, False)),
        },
        train_presets={
            "default": {},
            "capped": {"max_epochs": 10, "batch_size": 128, "lr": 1e-3},
            "reference": {"max_epochs": 10, "batch_size": 32, "lr": 1e-3, **_AS_RELEASED},
        },
        predict_presets=_NO_PREDICT_PRESETS,
    ),
    MethodSpec(
        "scpram",
        model=SCPRAM,
        fixed_predict={"variant": "released"},
        description="scPRAM as released (scpram 0.0.3's prediction steps)",
        search_space={
            "n_latent": ("categorical", (10, 20, 50, 100)),
            "n_hidden": ("categorical", (128, 256, 512, 1000)),
            "noise_rate": ("float", (0.0, 0.3, False)),
            "ratio": ("float", (0.01, 0.3, True)),
        },
        train_presets={
            "default": {},
            "capped": {"max_epochs": 6, "batch_size": 128, "lr": 1e-3},
            "reference": {"max_epochs": 10, "batch_size": 128, "lr": 5e-5, **_AS_RELEASED},
        },
        predict_presets=_NO_PREDICT_PRESETS,
    ),
    MethodSpec(
        "scpram_percell",
        model=SCPRAM,
        fixed_predict={"variant": "percell"},
        description="course variant of scPRAM: per-cell attention",
    ),
    MethodSpec(
        "scpram_percell_exact",
        model=SCPRAM,
        fixed_predict={"variant": "percell_exact"},
        description="course variant of scPRAM: per-cell attention, OT plan run to its optimum",
    ),
    MethodSpec(
        "scgen_residual",
        model=SCGEN,
        fixed_predict={"sample": "residual"},
        description="course variant of scGen: control cells' reconstruction residual added back",
    ),
    MethodSpec(
        "scpram_percell_residual",
        model=SCPRAM,
        fixed_predict={"variant": "percell", "sample": "residual"},
        description="course variant of scPRAM: per-cell attention and reconstruction residual",
    ),
)

#: name -> record of every registered method (:func:`register_method` adds, :func:`unregister_method` removes).
SPECS: dict[str, MethodSpec] = {}

#: name -> ``fit_predict`` of every registered method, derived from :data:`SPECS` (kept in step with it).
METHODS: dict[str, FitPredict] = {}


def register_method(spec: MethodSpec, *, replace: bool = False) -> MethodSpec:
    """Add ``spec`` to :data:`SPECS` and its ``fit_predict`` to :data:`METHODS`; returns ``spec``.

    After this, the method runs in :func:`~course_tools.benchmark.run_benchmark` and the grid,
    is tuned by :mod:`course_tools.tuning` (if it has a search space) and has presets (if it has
    any). A name already registered is refused unless ``replace=True``. Undo with
    :func:`unregister_method`, or use :func:`registered_method` (a context manager, e.g. in tests).
    """
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"register_method takes a MethodSpec; got {type(spec).__name__}")
    if spec.name in SPECS and not replace:
        raise ValueError(f"method {spec.name!r} is already registered; pass replace=True or choose another name")
    fit_predict = spec.fit_predict()
    SPECS[spec.name] = spec
    METHODS[spec.name] = fit_predict
    return spec


def unregister_method(name: str) -> MethodSpec:
    """Remove method ``name`` (and any trained model kept for it); returns its record."""
    if name not in SPECS:
        raise ValueError(f"method {name!r} is not registered; registered: {list(SPECS)}")
    spec = SPECS.pop(name)
    METHODS.pop(name, None)
    if spec.model is not None and not any(s.model is spec.model for s in SPECS.values()):
        _TRAINED.pop(spec.model, None)
    return spec


@contextmanager
def registered_method(spec: MethodSpec, *, replace: bool = False) -> Iterator[MethodSpec]:
    """Register ``spec`` for the ``with`` block only; the previous record (if replaced) comes back after."""
    previous = SPECS.get(spec.name)
    register_method(spec, replace=replace)
    try:
        yield spec
    finally:
        unregister_method(spec.name)
        if previous is not None:
            register_method(previous)


def training_fingerprint(name: str) -> dict[str, Any]:
    """What, besides a benchmark's own options, fixes method ``name``'s numbers.

    That is the model's training defaults, fixed module settings and the prediction options its
    name fixes (empty for a baseline or an unregistered name). Part of a benchmark run's key, so
    that results cached under an older training default are not reused.
    """
    spec = SPECS.get(name)
    if spec is None or spec.model is None:
        return {}
    return {
        "model": spec.model.__name__,
        # the options every model shares were not part of the key when the table was made
        "train_defaults": {
            k: v
            for k, v in dataclasses.asdict(spec.model.train_defaults).items()
            if k not in ("max_epochs", "validation_fraction", "early_stopping", "grad_clip_norm")
        },
        "fixed_module_kwargs": dict(spec.model.fixed_module_kwargs),
        "fixed_predict": dict(spec.fixed_predict),
    }


def get_spec(name: str) -> MethodSpec:
    """The record of method ``name`` (one of :data:`SPECS`)."""
    if name not in SPECS:
        raise ValueError(f"Unknown method {name!r}; choose from {list(SPECS)}")
    return SPECS[name]


for _spec in BUILTIN_SPECS:
    register_method(_spec)


def get_method(name: str) -> FitPredict:
    """The ``fit_predict`` callable of method ``name`` (one of ``METHODS``)."""
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; choose from {list(METHODS)}")
    return METHODS[name]
