"""What scGen and scPRAM share: AnnData in and out, training, encoding and decoding.

:class:`BaseModel` is the *model* half of the scvi-tools split (the ``torch`` module,
:class:`~tutorial_lib.models.vae.VAE`, is the other); each subclass writes its own ``predict``.
``Model(adata).train(seed=s)`` initialises the weights from ``s``: the same weights and
predictions on CPU every time. Prediction never changes the model: what it computes besides the
expression is returned in the prediction (``obsm["delta"]``, ``obsm["X_latent_control"]``, ``uns``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData

from tutorial_lib.config import check_seed, check_whole_number, get_device
from tutorial_lib.data.checks import (
    CELL_TYPE_KEY,
    CONDITION_KEY,
    CONTROL,
    STIMULATED,
    DataValidationError,
    check_log_normalised,
    require_conditions,
    require_obs_keys,
    require_values,
)
from tutorial_lib.models.vae import VAE, EpochCallback, TrainingHistory, TrainingOptions, train_vae

METHOD_KEY = "method"


# -- AnnData helpers shared by the models and the baselines ----------------------------------------
def require_unique_genes(adata: AnnData, what: str, genes: Sequence[str] | None = None) -> None:
    """Raise if gene names (of ``genes`` only, if given) occur twice in ``adata``: selecting one is ambiguous."""
    names = adata.var_names
    dup = list(names[names.duplicated()].unique())
    dup = [g for g in dup if genes is None or g in set(genes)]
    if dup:
        raise DataValidationError(
            f"{what} has duplicated gene names: {dup[:5]}"
            + (f" ({len(dup)} in all)" if len(dup) > 5 else "")
            + "; expected one column per gene: drop or rename the duplicates (e.g. adata.var_names_make_unique())"
        )


def dense_x(adata: AnnData, var_names: Sequence[str] | pd.Index | None = None, *, what: str = "adata") -> np.ndarray:
    """``adata.X`` as a dense float32 array, genes in the order of ``var_names`` (all there, each once)."""
    x = adata.X
    if var_names is not None and not adata.var_names.equals(pd.Index(var_names)):
        var_names = pd.Index(var_names)
        require_unique_genes(adata, what, var_names)
        missing = var_names.difference(adata.var_names)
        if len(missing):
            raise DataValidationError(
                f"{what} lacks {len(missing)} of the model's {len(var_names)} genes (e.g. {list(missing[:5])}); "
                "use the same genes as the training data"
            )
        unique = ~adata.var_names.duplicated(keep=False)
        x = adata.X[:, np.flatnonzero(unique)[adata.var_names[unique].get_indexer(var_names)]]
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    return np.ascontiguousarray(x, dtype=np.float32)


def require_control_targets(adata: AnnData, condition_key: str, ctrl_key: str, what: str = "adata_to_predict") -> None:
    """Raise if the cells to predict from hold another condition than ``ctrl_key`` (it would be shifted too)."""
    if condition_key not in adata.obs.columns:
        return
    labels = adata.obs[condition_key].astype(str)
    other = labels[labels != ctrl_key].value_counts()
    if len(other):
        found = ", ".join(f"{n} {label!r}" for label, n in other.items())
        raise DataValidationError(
            f"{what}.obs[{condition_key!r}] holds {found} cell(s) besides {int((labels == ctrl_key).sum())} "
            f"{ctrl_key!r} cell(s); expected only {ctrl_key!r} cells: a prediction shifts each cell it is given "
            f"and returns it as 'predicted'. Pass adata[adata.obs[{condition_key!r}] == {ctrl_key!r}]"
        )


def obs_labels(adata: AnnData, key: str) -> np.ndarray:
    """``adata.obs[key]`` as an array of ``str``."""
    require_obs_keys(adata, [key])
    return adata.obs[key].astype(str).to_numpy()


def shared_cell_types(
    cell_types, conditions, *, ctrl_key=CONTROL, stim_key=STIMULATED, exclude=(), restrict_to=None
) -> list[str]:
    """Cell types with both control and stimulated cells (those a response can be learnt from), minus ``exclude``."""
    types = sorted((set(cell_types[conditions == ctrl_key]) & set(cell_types[conditions == stim_key])) - set(exclude))
    if restrict_to is not None:
        types = [t for t in types if t in set(restrict_to)]
    if not types:
        raise DataValidationError(
            f"No cell type has both {ctrl_key!r} and {stim_key!r} cells (after excluding {sorted(set(exclude))}); "
            "cannot learn a perturbation effect"
        )
    return types


def prediction_adata(
    x, source: AnnData, var_names, *, method: str, condition_key: str, cell_type_key: str, cell_type=None, obsm=None
) -> AnnData:
    """Predicted cells: ``source``'s obs (names ``-pred``), condition ``"predicted"``, ``method``, ``source_cell``."""
    obs = source.obs.copy()
    obs["source_cell"] = source.obs_names.to_numpy()
    obs.index = pd.Index([f"{name}-pred" for name in source.obs_names])
    obs[condition_key] = "predicted"
    if cell_type_key not in obs.columns:
        if cell_type is None:
            raise DataValidationError(f"adata.obs has no column {cell_type_key!r} and no cell_type was given")
        obs[cell_type_key] = cell_type
    obs[cell_type_key] = obs[cell_type_key].astype(str)
    obs[METHOD_KEY] = method
    out = AnnData(X=np.asarray(x, dtype=np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(var_names, dtype=str)))
    for key, value in (obsm or {}).items():
        out.obsm[key] = value
    return out


def check_sample(sample: bool | str) -> bool | str:
    """``predict``'s decoding: ``False`` (as published) or ``"residual"``, a course variant.

    ``"residual"`` adds each control cell's reconstruction residual ``x - decode(z)`` back (clipped
    at 0): it copies the controls' noise and sparsity, which favours distributional metrics.
    """
    if sample is not False and sample != "residual":
        raise ValueError(f"sample must be one of [False, 'residual']; got {sample!r}")
    return sample


def module_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The module's hyperparameters among a model constructor's arguments (its ``locals()``)."""
    other = ("self", "adata", "condition_key", "cell_type_key", "device", "__class__")
    return {k: v for k, v in arguments.items() if k not in other}


class BaseModel:
    """AnnData-facing wrapper around a latent ``torch`` module (by default the :class:`VAE`).

    ``adata``: the training data, kept by reference: log1p-normalised ``X`` (dense or sparse),
    ``obs[condition_key]`` in {"control", "stimulated"} and ``obs[cell_type_key]``. ``device``:
    default CUDA when available. ``module_kwargs``: the module's hyperparameters.
    """

    method_name: ClassVar[str] = "vae"
    #: ``module_class(n_genes, **fixed_module_kwargs, **module_kwargs)``; has ``encode``, ``decode``, ``n_latent``
    module_class: ClassVar[type[torch.nn.Module]] = VAE
    fixed_module_kwargs: ClassVar[dict[str, Any]] = {}
    train_defaults: ClassVar[TrainingOptions] = TrainingOptions()  # subclasses: their release's Adam settings

    def __init__(
        self,
        adata: AnnData,
        *,
        condition_key: str = CONDITION_KEY,
        cell_type_key: str = CELL_TYPE_KEY,
        device: str | None = None,
        **module_kwargs: Any,
    ) -> None:
        require_obs_keys(adata, [condition_key, cell_type_key])
        require_conditions(adata, condition_key)
        if adata.n_obs < 2:
            raise DataValidationError(f"adata has {adata.n_obs} cells; at least 2 are needed to train")
        require_unique_genes(adata, "adata")
        check_log_normalised(adata.X, "adata.X")
        self.adata = adata
        self.condition_key, self.cell_type_key = condition_key, cell_type_key
        self.var_names = pd.Index(adata.var_names.astype(str))
        self.device = get_device(device)
        self.module_kwargs = dict(module_kwargs)
        self.module = self._build_module(seed=0)
        self.is_trained = False
        self.history_ = TrainingHistory()

    def _build_module(self, seed: int) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.module_class(len(self.var_names), **self.fixed_module_kwargs, **self.module_kwargs)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.module_kwargs.items())
        state = "trained" if self.is_trained else "untrained"
        return f"{type(self).__name__}({self.adata.n_obs} cells × {len(self.var_names)} genes, {args}; {state})"

    def train(
        self,
        options: TrainingOptions | None = None,
        *,
        seed: int = 0,
        progress_bar: bool = True,
        on_epoch_end: EpochCallback | None = None,
        **changes: Any,
    ) -> TrainingHistory:
        """Train on ``self.adata``; returns the history (also ``self.history_``).

        ``options`` (default: the class's ``train_defaults``, to convergence) with ``changes``
        applied, e.g. ``model.train(max_epochs=5)`` (:class:`~tutorial_lib.models.vae.TrainingOptions`).
        """
        options = self.train_defaults if options is None else options
        if not isinstance(options, TrainingOptions):
            raise TypeError(
                f"options must be a TrainingOptions; got {options!r} (pass settings by name, e.g. max_epochs=5)"
            )
        options = options.replace(**changes)
        seed = check_seed(seed)  # before anything changes: a bad seed leaves the model as it was
        if not self.is_trained:
            self.module = self._build_module(seed)
            self.history_ = TrainingHistory()
        try:
            train_vae(
                self.module,
                dense_x(self.adata),
                options,
                seed=seed,
                device=self.device,
                progress_bar=progress_bar,
                on_epoch_end=on_epoch_end,
                history=self.history_,
            )
        finally:
            self.is_trained = len(self.history_) > 0
        return self.history_

    # -- the latent space ----------------------------------------------------------------------
    def _check_trained(self) -> None:
        if not self.is_trained:
            raise RuntimeError(f"{type(self).__name__} is not trained; call .train() first")

    def _batched(self, fn, arr: np.ndarray, batch_size: int, n_out: int) -> np.ndarray:
        self.module.to(self.device).eval()
        out = []
        with torch.no_grad():
            for start in range(0, arr.shape[0], batch_size):
                chunk = torch.as_tensor(arr[start : start + batch_size], dtype=torch.float32, device=self.device)
                out.append(fn(chunk).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, n_out), dtype=np.float32)

    def get_latent(
        self, adata: AnnData | None = None, *, rng: np.random.Generator | None = None, batch_size: int = 1024
    ) -> np.ndarray:
        """Latent codes of ``adata``'s cells (default: the training data), cells × n_latent.

        ``rng=None``: posterior means (scGen). A NumPy generator: one draw per cell from its
        posterior, ``mean + exp(logvar / 2) · rng.standard_normal(...)`` (the scPRAM release).
        """
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)) or None; got {rng!r}")
        x = dense_x(self.adata, self.var_names) if adata is None else self._check_expression(adata, "adata")
        n = self.module.n_latent
        if rng is None:
            return self._batched(lambda t: self.module.encode(t)[0], x, batch_size, n)
        stats = self._batched(lambda t: torch.cat(self.module.encode(t), dim=1), x, batch_size, 2 * n)
        mean, logvar = np.split(stats, 2, axis=1)
        noise = rng.standard_normal(mean.shape).astype(np.float32)
        return (mean + np.exp(0.5 * logvar) * noise).astype(np.float32)

    def decode(self, z: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
        """Expression (cells × genes) decoded from latent vectors ``z`` (cells × n_latent)."""
        z = np.atleast_2d(np.asarray(z, dtype=np.float32))
        return self._batched(self.module.decode, z, batch_size, len(self.var_names))

    def reconstruct(self, adata: AnnData, *, batch_size: int = 1024) -> AnnData:
        """Decoded posterior means of ``adata``'s cells (*decoded controls*), same obs, the model's genes."""
        self._check_trained()
        x = self.decode(self.get_latent(adata, batch_size=batch_size), batch_size=batch_size)
        out = AnnData(x, obs=adata.obs.copy())
        out.var_names = self.var_names
        return out

    # -- what every predict does first -----------------------------------------------------------
    def _targets(self, cell_type: str | None, adata_to_predict: AnnData | None, ctrl_key: str) -> AnnData:
        """The control cells to predict from: ``adata_to_predict`` (checked), else ``cell_type``'s training controls."""
        if adata_to_predict is not None:
            if adata_to_predict.n_obs == 0:
                raise DataValidationError("adata_to_predict is empty")
            if cell_type is None and self.cell_type_key not in adata_to_predict.obs.columns:
                raise DataValidationError(f"adata_to_predict.obs has no column {self.cell_type_key!r}; pass cell_type")
            require_control_targets(adata_to_predict, self.condition_key, ctrl_key)
            self._check_expression(adata_to_predict)
            return adata_to_predict
        if cell_type is None:
            raise ValueError("pass cell_type (a cell type of the training data) or adata_to_predict")
        require_values(self.adata, self.cell_type_key, [cell_type], "cell type")
        types, conditions = obs_labels(self.adata, self.cell_type_key), obs_labels(self.adata, self.condition_key)
        mask = (types == cell_type) & (conditions == ctrl_key)
        if not mask.any():
            raise DataValidationError(f"No {ctrl_key!r} cells of cell type {cell_type!r} in the training data")
        return self.adata[mask]

    def _check_expression(self, adata: AnnData, what: str = "adata_to_predict") -> np.ndarray:
        """The model's genes of ``adata``, dense, if finite and log1p-normalised like the training data."""
        x = dense_x(adata, self.var_names, what=what)
        bad_rows = ~np.isfinite(x).all(axis=1)
        if bad_rows.any():
            raise DataValidationError(
                f"{what}.X has NaN or infinite values in {int(bad_rows.sum())} cells (e.g. "
                f"{list(adata.obs_names[bad_rows][:3])}); expected finite log1p-normalised expression"
            )
        try:
            check_log_normalised(x, f"{what}.X")
        except DataValidationError as err:
            raise DataValidationError(f"{err} (the model was trained on log1p-normalised data)") from None
        return x

    def _prediction(self, x: np.ndarray, targets: AnnData, cell_type: str | None, **obsm: np.ndarray) -> AnnData:
        """Predicted expression ``x`` of ``targets`` as AnnData (:func:`prediction_adata`)."""
        keys = {"condition_key": self.condition_key, "cell_type_key": self.cell_type_key}
        return prediction_adata(
            x, targets, self.var_names, method=self.method_name, cell_type=cell_type, **keys, obsm=obsm
        )

    def _add_residual(self, x_pred: np.ndarray, targets: AnnData, z: np.ndarray) -> np.ndarray:
        """``sample="residual"`` (:func:`check_sample`): each target's ``x - decode(z)`` added back, clipped at 0."""
        return np.clip(x_pred + (dense_x(targets, self.var_names) - self.decode(z)), 0.0, None)

    # -- reading a prediction --------------------------------------------------------------------
    def decode_delta(self, prediction: AnnData | None = None, *, delta=None, z_ref=None) -> pd.Series:
        """Per-gene effect of a latent shift: ``decode(z_ref + delta) - decode(z_ref)``.

        From a ``prediction`` (the means of its ``obsm["delta"]`` and ``obsm["X_latent_control"]``)
        or from both latent vectors.
        """
        if prediction is not None:
            if not isinstance(prediction, AnnData):
                raise TypeError(
                    f"prediction must be the AnnData returned by predict(); got {type(prediction).__name__} "
                    "(pass n= by keyword to top_delta_genes)"
                )
            missing = [k for k in ("delta", "X_latent_control") if k not in prediction.obsm]
            if missing:
                raise ValueError(
                    f"prediction.obsm lacks {missing}: pass the AnnData returned by {type(self).__name__}.predict"
                )
            delta = np.asarray(prediction.obsm["delta"]).mean(axis=0) if delta is None else delta
            z_ref = np.asarray(prediction.obsm["X_latent_control"]).mean(axis=0) if z_ref is None else z_ref
        if delta is None or z_ref is None:
            raise ValueError("pass the prediction returned by predict(), or both delta and z_ref")
        delta = np.asarray(delta, dtype=np.float32).ravel()
        z_ref = np.asarray(z_ref, dtype=np.float32).ravel()
        n = self.module.n_latent
        if delta.shape != (n,) or z_ref.shape != (n,):
            raise ValueError(
                f"delta and z_ref must be latent vectors of length {n}; got {delta.shape} and {z_ref.shape}"
            )
        x = self.decode(np.stack([z_ref + delta, z_ref]))
        return pd.Series(x[0] - x[1], index=self.var_names, name="effect")

    def top_delta_genes(self, prediction: AnnData | None = None, n: int = 20, **kwargs: Any) -> pd.DataFrame:
        """The ``n`` genes the decoded delta moves most, as a table.

        ``prediction`` and ``kwargs`` go to :meth:`decode_delta`. Columns: ``gene``, ``effect``
        (log-expression change), ``abs_effect``, ``direction`` ("up"/"down"), ``rank`` (1 = largest).
        """
        n = check_whole_number(n, "n", 1, what="a whole number of genes >= 1")
        effect = self.decode_delta(prediction, **kwargs)
        top = effect.iloc[np.argsort(-np.abs(effect.to_numpy()), kind="stable")[:n]]
        table = pd.DataFrame(
            {"gene": top.index.to_numpy(), "effect": top.to_numpy(), "abs_effect": top.abs().to_numpy()}
        )
        table["direction"] = np.where(table["effect"] >= 0, "up", "down")
        table["rank"] = np.arange(1, len(table) + 1)
        return table
