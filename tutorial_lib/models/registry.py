"""One calling convention for every method, for notebooks and benchmarks.

``METHODS[name](train_adata, ctrl_adata, *, cell_type, seed=0, n_epochs=None, **kwargs)``
trains on ``train_adata`` (nothing to train for the baselines) and predicts the stimulated
state of ``ctrl_adata`` (the held-out type's control cells; ``cell_type=None`` when the
held-out group is not one cell type, e.g. donors: labels then come from ``ctrl_adata.obs``),
returning AnnData with
``obs["condition"] == "predicted"``, ``obs["cell_type"]`` and ``obs["method"]``.

For scGen/scPRAM, ``kwargs`` are routed by name to the constructor (e.g. ``n_latent``), to
``train`` (e.g. ``batch_size``, ``on_epoch_end``) and to ``predict`` (e.g. ``ratio``);
``n_epochs`` defaults to :func:`tutorial_lib.config.get_config`'s; the progress bar is off
unless ``progress_bar=True``. ``return_model=True`` returns ``(prediction, model)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

from anndata import AnnData

from tutorial_lib.config import get_config
from tutorial_lib.models import baselines
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


def _model_fit_predict(cls: type[BaseModel]) -> FitPredict:
    def fit_predict(
        train_adata: AnnData,
        ctrl_adata: AnnData,
        *,
        cell_type: str | None,
        seed: int = 0,
        n_epochs: int | None = None,
        return_model: bool = False,
        **kwargs: Any,
    ) -> AnnData | tuple[AnnData, BaseModel]:
        targets = {"init": _params(cls.__init__), "train": _params(cls.train), "predict": _params(cls.predict)}
        unknown = set(kwargs) - set().union(*targets.values())
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown argument(s) {sorted(unknown)}")
        routed = {k: {n: v for n, v in kwargs.items() if n in names} for k, names in targets.items()}
        routed["train"].setdefault("progress_bar", False)
        model = cls(train_adata, **routed["init"])
        model.train(max_epochs=n_epochs or get_config().n_epochs, seed=seed, **routed["train"])
        pred = model.predict(cell_type, adata_to_predict=ctrl_adata, seed=seed, **routed["predict"])
        return (pred, model) if return_model else pred

    fit_predict.__name__ = f"fit_predict_{cls.method_name}"
    fit_predict.__doc__ = f"Train {cls.__name__} on train_adata and predict ctrl_adata (see module docstring)."
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
    "scgen": _model_fit_predict(SCGEN),
    "scpram": _model_fit_predict(SCPRAM),
}


def get_method(name: str) -> FitPredict:
    """The ``fit_predict`` callable of method ``name`` (one of ``METHODS``)."""
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; choose from {list(METHODS)}")
    return METHODS[name]
