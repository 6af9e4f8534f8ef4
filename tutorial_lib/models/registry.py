"""One calling convention for every method, for notebooks and benchmarks.

``METHODS[name](train_adata, ctrl_adata, *, cell_type, seed=0, n_epochs=None, **kwargs)``
trains on ``train_adata`` (nothing to train for the baselines) and predicts the stimulated
state of ``ctrl_adata`` (the held-out type's control cells; ``cell_type=None`` when the
held-out group is not one cell type, e.g. donors: labels then come from ``ctrl_adata.obs``),
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
  :meth:`~tutorial_lib.models.base.BaseModel._shifted_expression`). No claim about the published
  methods rests on them.

For scGen/scPRAM, ``kwargs`` are routed by name to the constructor (e.g. ``n_latent``), to
``train`` (e.g. ``batch_size``, ``on_epoch_end``) and to ``predict`` (e.g. ``ratio``);
``n_epochs`` defaults to :func:`tutorial_lib.config.get_config`'s; the progress bar is off
unless ``progress_bar=True``. ``return_model=True`` returns ``(prediction, model)``.

Variants of one model differ in prediction only, so they share one trained model: the last
model trained per class is kept (with a reference to its training AnnData) and reused when the
same AnnData object, seed, epochs and constructor/training arguments come again (not when an
``on_epoch_end`` callback is given). Training is seeded and deterministic on CPU, so reuse gives
the same predictions as retraining; prediction no longer changes a model, so reuse is safe.
``reuse_trained=False`` always retrains. Do not change ``train_adata`` in place between calls.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

from anndata import AnnData

from tutorial_lib.config import get_config
from tutorial_lib.models import baselines
from tutorial_lib.models._data import METHOD_KEY
from tutorial_lib.models.base import BaseModel
from tutorial_lib.models.scgen import SCGEN
from tutorial_lib.models.scpram import SCPRAM


class FitPredict(Protocol):
    def __call__(
        self, train_adata: AnnData, ctrl_adata: AnnData, *, cell_type: str | None, seed: int = 0,
        n_epochs: int | None = None, **kwargs: Any,
    ) -> AnnData: ...


def _params(fn: Callable) -> set[str]:
    return {
        name for name, p in inspect.signature(fn).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in {"self", "adata"}
    }


#: class -> (key, training AnnData, trained model): the last model trained per class
_TRAINED: dict[type, tuple[tuple, AnnData, BaseModel]] = {}


def clear_trained_cache() -> None:
    """Forget the trained models kept for reuse by the prediction variants."""
    _TRAINED.clear()


def _trained_model(
    cls: type[BaseModel], train_adata: AnnData, seed: int, n_epochs: int, init: dict, train: dict, reuse: bool
) -> BaseModel:
    key = (n_epochs, seed, train_adata.shape, repr(sorted(init.items())), repr(sorted(train.items())))
    cached = _TRAINED.get(cls)
    if reuse and cached is not None and cached[0] == key and cached[1] is train_adata:
        return cached[2]
    model = cls(train_adata, **init)
    model.train(max_epochs=n_epochs, seed=seed, **train)
    if reuse and "on_epoch_end" not in train:
        _TRAINED[cls] = (key, train_adata, model)
    return model


def _model_fit_predict(cls: type[BaseModel], name: str, **fixed_predict: Any) -> FitPredict:
    def fit_predict(
        train_adata: AnnData,
        ctrl_adata: AnnData,
        *,
        cell_type: str | None,
        seed: int = 0,
        n_epochs: int | None = None,
        return_model: bool = False,
        reuse_trained: bool = True,
        **kwargs: Any,
    ) -> AnnData | tuple[AnnData, BaseModel]:
        targets = {"init": _params(cls.__init__), "train": _params(cls.train), "predict": _params(cls.predict)}
        unknown = set(kwargs) - set().union(*targets.values())
        if unknown:
            raise TypeError(f"{name}: unknown argument(s) {sorted(unknown)}")
        fixed = sorted(set(kwargs) & set(fixed_predict))
        if fixed:
            raise TypeError(f"{name} fixes {fixed} (that is what the name means); use another method name")
        routed = {k: {n: v for n, v in kwargs.items() if n in names} for k, names in targets.items()}
        routed["train"].setdefault("progress_bar", False)
        model = _trained_model(
            cls, train_adata, seed, n_epochs or get_config().n_epochs, routed["init"], routed["train"], reuse_trained
        )
        pred = model.predict(cell_type, adata_to_predict=ctrl_adata, seed=seed, **fixed_predict, **routed["predict"])
        pred.obs[METHOD_KEY] = name
        return (pred, model) if return_model else pred

    fit_predict.__name__ = f"fit_predict_{name}"
    settings = ", ".join(f"{k}={v!r}" for k, v in fixed_predict.items())
    fit_predict.__doc__ = (
        f"Train {cls.__name__} on train_adata and predict ctrl_adata{f' with {settings}' if settings else ''} "
        "(see module docstring)."
    )
    return fit_predict


def _baseline_fit_predict(fn: Callable[..., AnnData]) -> FitPredict:
    takes_seed = "seed" in _params(fn)

    def fit_predict(
        train_adata: AnnData, ctrl_adata: AnnData, *, cell_type: str | None, seed: int = 0, n_epochs: int | None = None,
        **kwargs: Any,
    ) -> AnnData:
        if takes_seed:
            kwargs["seed"] = seed
        return fn(train_adata, ctrl_adata, cell_type=cell_type, **kwargs)

    fit_predict.__name__ = f"fit_predict_{fn.__name__}"
    fit_predict.__doc__ = fn.__doc__
    return fit_predict


METHODS: dict[str, FitPredict] = {
    "no_change": _baseline_fit_predict(baselines.no_change),
    "mean_shift": _baseline_fit_predict(baselines.mean_shift),
    "pca_arithmetic": _baseline_fit_predict(baselines.pca_arithmetic),
    "scgen": _model_fit_predict(SCGEN, "scgen"),
    "scpram": _model_fit_predict(SCPRAM, "scpram", variant="released"),
    "scpram_percell": _model_fit_predict(SCPRAM, "scpram_percell", variant="percell"),
    "scpram_percell_exact": _model_fit_predict(SCPRAM, "scpram_percell_exact", variant="percell_exact"),
    "scgen_residual": _model_fit_predict(SCGEN, "scgen_residual", sample="residual"),
    "scpram_percell_residual": _model_fit_predict(SCPRAM, "scpram_percell_residual", variant="percell", sample="residual"),
}


def get_method(name: str) -> FitPredict:
    """The ``fit_predict`` callable of method ``name`` (one of ``METHODS``)."""
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; choose from {list(METHODS)}")
    return METHODS[name]
