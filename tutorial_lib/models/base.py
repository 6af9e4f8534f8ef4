"""User-facing base class shared by scGen and scPRAM (the *model* half of the scvi-tools split).

It owns the AnnData handling (validation, densifying, gene order), training through
:func:`tutorial_lib.models.training.train_vae`, latent encoding/decoding, the decoded
perturbation effect (``decode_delta``/``top_delta_genes``) and ``save``/``load``.

Prediction is pure: ``predict`` never changes the model. What it computes besides the
expression is returned in the prediction (``obsm["delta"]``: each cell's latent shift;
``obsm["X_latent_control"]``: each cell's latent before the shift; ``uns[method]``), and
:meth:`BaseModel.decode_delta` / :meth:`BaseModel.top_delta_genes` take that prediction.

Seeds: the weights are initialised from ``seed`` when :meth:`BaseModel.train` is called on an
untrained model, so ``Model(adata).train(seed=s)`` gives the same weights (and predictions) on
CPU every time. Calling ``train`` again continues training from the current weights.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import inspect
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from tutorial_lib.config import apply_torch_threads, check_seed, check_whole_number, get_device
from tutorial_lib.data.checks import (
    CELL_TYPE_KEY,
    CONDITION_KEY,
    DataValidationError,
    check_log_normalised,
    require_conditions,
    require_obs_keys,
    require_values,
)
from tutorial_lib.models._data import dense_x, obs_labels, require_control_targets, require_unique_genes
from tutorial_lib.models._module import VAE
from tutorial_lib.models.training import DEFAULT_SCHEDULE, EpochCallback, TrainingHistory, train_vae

WEIGHTS_FILE = "model.pt"
SETTINGS_FILE = "settings.json"

#: Values of ``predict(sample=...)``; ``False`` (decode the shifted latents) is the published
#: behaviour, ``"posterior"`` and ``"residual"`` are course variants.
SAMPLE_MODES = (False, True, "posterior", "residual")


def check_sample(sample: bool | str) -> bool | str:
    """Normalise ``predict``'s ``sample`` argument: ``True`` means ``"posterior"``."""
    if sample is True:
        return "posterior"
    if sample is not False and sample not in SAMPLE_MODES:
        raise ValueError(f"sample must be one of {list(SAMPLE_MODES)}; got {sample!r}")
    return sample


class BaseModel:
    """AnnData-facing wrapper around a latent ``torch`` module.

    The module is :attr:`module_class`, by default the :class:`~tutorial_lib.models._module.VAE`.

    Parameters
    ----------
    adata
        Training data: log1p-normalised expression in ``X`` (dense or sparse),
        ``obs[condition_key]`` in {"control", "stimulated"} and ``obs[cell_type_key]``.
        Kept by reference (not copied).
    condition_key, cell_type_key
        Columns of ``adata.obs``.
    device
        ``"cpu"``, ``"cuda"``, ...; default: CUDA when available (:func:`tutorial_lib.config.get_device`).
    **module_kwargs
        Hyperparameters of the module (validated there).
    """

    method_name: ClassVar[str] = "vae"
    #: the ``torch.nn.Module`` built as ``module_class(n_genes, **fixed_module_kwargs, **module_kwargs)``;
    #: its ``forward(x, sample=True)`` returns its own loss (see :func:`~tutorial_lib.models.training.train_vae`),
    #: and latent models provide ``encode``, ``decode`` and ``n_latent`` (used by ``get_latent``/``decode``).
    module_class: ClassVar[type[torch.nn.Module]] = VAE
    #: module settings a subclass fixes (not constructor arguments, not saved)
    fixed_module_kwargs: ClassVar[dict[str, Any]] = {}
    #: Keyword arguments of :func:`~tutorial_lib.models.training.train_vae` that ``train`` uses
    #: unless given; subclasses override the optimizer settings (see their docstrings for how
    #: each value was chosen).
    train_defaults: ClassVar[dict[str, Any]] = {
        **DEFAULT_SCHEDULE,
        "batch_size": 128,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "adam_eps": 1e-8,
    }

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
        self.condition_key = condition_key
        self.cell_type_key = cell_type_key
        self.var_names = pd.Index(adata.var_names.astype(str))
        self.device = get_device(device)
        self.module_kwargs = dict(module_kwargs)
        self.module = self._build_module(seed=0)
        self.is_trained = False
        self.history_ = TrainingHistory()

    # -- construction -------------------------------------------------------------------
    def _build_module(self, seed: int) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.module_class(len(self.var_names), **self.fixed_module_kwargs, **self.module_kwargs)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.module_kwargs.items())
        state = "trained" if self.is_trained else "untrained"
        return f"{type(self).__name__}({self.adata.n_obs} cells × {len(self.var_names)} genes, {args}; {state})"

    # -- training -----------------------------------------------------------------------
    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        *,
        max_steps: int | None = None,
        min_steps: int | None = None,
        weight_decay: float | None = None,
        adam_eps: float | None = None,
        lr_schedule: str | None = None,
        warmup_steps: int | None = None,
        final_lr_fraction: float | None = None,
        early_stopping: bool = True,
        patience: int | None = None,
        eval_every: int | None = None,
        smoothing: float | None = None,
        min_delta: float | None = None,
        rel_min_delta: float | None = None,
        validation_fraction: float = 0.1,
        grad_clip_norm: float | None = 10.0,
        seed: int = 0,
        progress_bar: bool = True,
        on_epoch_end: EpochCallback | None = None,
    ) -> TrainingHistory:
        """Train on ``self.adata``; ``None`` settings take the class's ``train_defaults``.

        The default trains to convergence: early stopping on the smoothed validation loss with
        ``patience`` and ``min_steps`` counted in optimizer steps, capped at ``max_steps``.
        ``max_epochs`` adds a cap in epochs (a *capped budget*, e.g. the test suite's: training may
        stop before convergence). See :func:`~tutorial_lib.models.training.train_vae` for all
        arguments. ``seed``: an integer from 0 to ``2**32 - 1``, NumPy integers included
        (:func:`~tutorial_lib.config.check_seed`). Returns the history (also kept as
        ``self.history_``; one row per validation pass; ``self.history_.to_frame()`` for plotting).
        """
        given = {
            "max_epochs": max_epochs,
            "batch_size": batch_size,
            "lr": lr,
            "max_steps": max_steps,
            "min_steps": min_steps,
            "weight_decay": weight_decay,
            "adam_eps": adam_eps,
            "lr_schedule": lr_schedule,
            "warmup_steps": warmup_steps,
            "final_lr_fraction": final_lr_fraction,
            "patience": patience,
            "eval_every": eval_every,
            "smoothing": smoothing,
            "min_delta": min_delta,
            "rel_min_delta": rel_min_delta,
        }
        settings = {**self.train_defaults, **{k: v for k, v in given.items() if v is not None}}
        seed = check_seed(seed)  # before anything is changed: a bad seed leaves the model as it was
        if not self.is_trained:
            self.module = self._build_module(seed)
            self.history_ = TrainingHistory()
        apply_torch_threads()  # one documented thread count (tutorial_lib.config), whatever ran before
        try:
            train_vae(
                self.module,
                dense_x(self.adata),
                **settings,
                validation_fraction=validation_fraction,
                early_stopping=early_stopping,
                grad_clip_norm=grad_clip_norm,
                seed=seed,
                device=self.device,
                progress_bar=progress_bar,
                on_epoch_end=on_epoch_end,
                history=self.history_,
            )
        finally:
            self.is_trained = len(self.history_) > 0
        return self.history_

    # -- latent space -------------------------------------------------------------------
    def _check_trained(self) -> None:
        if not self.is_trained:
            raise RuntimeError(f"{type(self).__name__} is not trained; call .train() first")

    def _batched(self, fn, arr: np.ndarray, batch_size: int, n_out: int) -> np.ndarray:
        apply_torch_threads()
        self.module.to(self.device).eval()
        out = []
        with torch.no_grad():
            for start in range(0, arr.shape[0], batch_size):
                chunk = torch.as_tensor(arr[start : start + batch_size], dtype=torch.float32, device=self.device)
                out.append(fn(chunk).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, n_out), dtype=np.float32)

    def _encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.module.encode(x)[0]

    def get_latent(
        self, adata: AnnData | None = None, *, rng: np.random.Generator | None = None, batch_size: int = 1024
    ) -> np.ndarray:
        """Latent codes of the cells of ``adata`` (default: the training data), cells × n_latent, float32.

        ``rng=None`` gives the posterior means (scGen's latents). With a NumPy generator, each cell's
        code is one draw from its posterior, ``mean + exp(logvar / 2) · rng.standard_normal(...)``,
        as the scPRAM release encodes cells: the same generator in the same state gives the same
        draws, so ``SCPRAM.predict(seed=s)`` can be recomputed from ``np.random.default_rng(s)``.
        ``adata`` is checked like ``predict``'s targets (:meth:`_check_expression`): NaN, raw counts
        or scaled values would give latents that mean nothing, without any other error.
        """
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)) or None; got {rng!r}")
        x = dense_x(self.adata, self.var_names) if adata is None else self._check_expression(adata, "adata")
        n = self.module.n_latent
        if rng is None:
            return self._batched(self._encode_mean, x, batch_size, n)
        stats = self._batched(lambda t: torch.cat(self.module.encode(t), dim=1), x, batch_size, 2 * n)
        mean, logvar = np.split(stats, 2, axis=1)
        noise = rng.standard_normal(mean.shape).astype(np.float32)
        return (mean + np.exp(0.5 * logvar) * noise).astype(np.float32)

    def decode(self, z: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
        """Expression (cells × genes) decoded from latent vectors ``z`` (cells × n_latent)."""
        z = np.atleast_2d(np.asarray(z, dtype=np.float32))
        return self._batched(self.module.decode, z, batch_size, len(self.var_names))

    @classmethod
    def predict_defaults(cls, **fixed: Any) -> dict[str, Any]:
        """The value each ``predict`` setting takes when not given, with ``fixed`` applied.

        ``fixed`` is a method's ``fixed_predict``: the result is what a default prediction of that
        method really uses.
        """
        params = inspect.signature(cls.predict).parameters.items()
        defaults = {k: p.default for k, p in params if p.default is not inspect.Parameter.empty}
        return {**defaults, **fixed}

    # -- prediction helpers -------------------------------------------------------------
    def _shifted_expression(
        self, x: np.ndarray, z: np.ndarray, shift: np.ndarray, *, sample: bool | str, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expression and latents of target cells moved by ``shift`` in latent space.

        ``x``: the targets' expression (cells × genes, model gene order); ``z``: their posterior
        means; ``shift``: one latent delta (broadcast) or one per cell. ``sample`` (see
        :data:`SAMPLE_MODES`):

        * ``False``: decode ``z + shift`` (the published scGen/scPRAM prediction; decoded means
          are smooth, so the predicted cells vary less than real ones).
        * ``"posterior"`` (or ``True``, a course option): draw each target's latent from its
          posterior ``N(mean, exp(logvar))`` (numpy generator seeded with ``seed``), shift it and
          decode.
        * ``"residual"`` (a course variant, not part of either published method; registered as
          ``scgen_residual`` / ``scpram_percell_residual``): decode ``z + shift`` and add back each
          target's reconstruction residual ``x - decode(z)``, clipped at 0. Deterministic.
          Its assumption: the perturbation changes each cell by the decoded shift only, so
          everything the decoder does not reconstruct of a control cell (its noise, its zeros,
          its cell-to-cell variation) carries over unchanged to the stimulated cell. It is a
          nonlinear mean shift that copies the controls' noise and sparsity, which favours
          distributional metrics (variance R², E-distance) without saying anything about the
          published methods; compare it with the baselines, in its own table.
        """
        mode = check_sample(sample)
        if mode == "posterior":
            logvar = self._batched(lambda t: self.module.encode(t)[1], x, 1024, self.module.n_latent)
            noise = np.random.default_rng(seed).standard_normal(z.shape).astype(np.float32)
            z = z + np.exp(0.5 * logvar) * noise
        z_pred = (z + shift).astype(np.float32)
        out = self.decode(z_pred)
        if mode == "residual":
            out = np.clip(out + (x - self.decode(z)), 0.0, None)
        return out, z_pred

    def _targets(self, cell_type: str | None, adata_to_predict: AnnData | None, ctrl_key: str) -> AnnData:
        """The control cells to predict from (a view)."""
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
        mask = (obs_labels(self.adata, self.cell_type_key) == cell_type) & (
            obs_labels(self.adata, self.condition_key) == ctrl_key
        )
        if not mask.any():
            raise DataValidationError(f"No {ctrl_key!r} cells of cell type {cell_type!r} in the training data")
        return self.adata[mask]

    def _check_expression(self, adata: AnnData, what: str = "adata_to_predict") -> np.ndarray:
        """The model's genes of ``adata`` as a dense array, if finite, non-negative and log1p-normalised.

        Checks every value of the model's genes (NaN anywhere would give a NaN predicted cell), with
        the same rules as the training data (:func:`~tutorial_lib.data.checks.check_log_normalised`):
        raw counts or scaled (negative) values are refused instead of being predicted from silently.
        ``what`` names ``adata`` in the errors.
        """
        x = dense_x(adata, self.var_names, what=what)
        bad_rows = ~np.isfinite(x).all(axis=1)
        if bad_rows.any():
            names = list(adata.obs_names[bad_rows][:3])
            raise DataValidationError(
                f"{what}.X has NaN or infinite values in {int(bad_rows.sum())} cells (e.g. {names}); "
                "expected finite log1p-normalised expression"
            )
        try:
            check_log_normalised(x, f"{what}.X")
        except DataValidationError as err:
            raise DataValidationError(f"{err} (the model was trained on log1p-normalised data)") from None
        return x

    def decode_delta(
        self,
        prediction: AnnData | None = None,
        *,
        delta: np.ndarray | None = None,
        z_ref: np.ndarray | None = None,
    ) -> pd.Series:
        """Per-gene effect of a latent shift: ``decode(z_ref + delta) - decode(z_ref)``.

        Pass either ``prediction`` (an AnnData returned by ``predict``: ``delta`` is the mean of
        its ``obsm["delta"]``, ``z_ref`` the mean of its ``obsm["X_latent_control"]``, the
        latents of the control cells it was predicted from) or both ``delta`` and ``z_ref``
        (latent vectors); given arrays take precedence over the prediction's.
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
            if delta is None:
                delta = np.asarray(prediction.obsm["delta"]).mean(axis=0)
            if z_ref is None:
                z_ref = np.asarray(prediction.obsm["X_latent_control"]).mean(axis=0)
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
        """The ``n`` genes the decoded delta moves most (by absolute effect), as a tidy table.

        ``prediction`` and ``kwargs`` (``delta``, ``z_ref``) go to :meth:`decode_delta`.
        Columns: ``gene``, ``effect`` (log-expression change), ``abs_effect``,
        ``direction`` ("up"/"down"), ``rank`` (1 = largest). ``n`` is a whole number >= 1 (more
        than the model's genes gives them all); anything else raises, because a negative ``n``
        would otherwise slice off the last genes instead of keeping the first.
        """
        n = check_whole_number(n, "n", 1, what="a whole number of genes >= 1")
        effect = self.decode_delta(prediction, **kwargs)
        order = np.argsort(-np.abs(effect.to_numpy()), kind="stable")[:n]
        top = effect.iloc[order]
        return pd.DataFrame(
            {
                "gene": top.index.to_numpy(),
                "effect": top.to_numpy(),
                "abs_effect": np.abs(top.to_numpy()),
                "direction": np.where(top.to_numpy() >= 0, "up", "down"),
                "rank": np.arange(1, len(top) + 1),
            }
        )

    def reconstruct(self, adata: AnnData, *, batch_size: int = 1024) -> AnnData:
        """Decoded posterior means of ``adata``'s cells (e.g. *decoded controls*), same obs, the model's genes.

        Used by :func:`tutorial_lib.metrics.decoded.decoded_control_deltas`, which measures the
        predicted response against decoded rather than raw controls.
        """
        self._check_trained()
        x = self.decode(self.get_latent(adata, batch_size=batch_size), batch_size=batch_size)
        out = AnnData(x, obs=adata.obs.copy())
        out.var_names = self.var_names
        return out

    # -- persistence --------------------------------------------------------------------
    def save(self, dir_path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.pt`` (state dict) and ``settings.json`` (hyperparameters, keys, genes, history).

        Each file is written to a ``.part`` file first and renamed into place, weights first, and
        ``settings.json`` records the weights' SHA-256: a save killed half-way never leaves a
        truncated file, and :meth:`load` names a weights file that does not belong to its settings.
        The weights are serialised in memory (the course's models take megabytes) and written with
        plain file writes, so that a full disk raises ``OSError`` (``errno.ENOSPC``) saying that no
        space is left and naming the directory; the ``.part`` files are then removed and a model
        saved there before stays as it was.
        """
        path = Path(dir_path)
        if not overwrite and (path / WEIGHTS_FILE).exists():
            raise FileExistsError(f"{path / WEIGHTS_FILE} exists; pass overwrite=True to replace it")
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        buffer = io.BytesIO()
        torch.save(state, buffer)  # torch's own file writer reports a full disk without saying so
        weights = buffer.getvalue()
        settings = {
            "model": type(self).__name__,
            "condition_key": self.condition_key,
            "cell_type_key": self.cell_type_key,
            "module_kwargs": self.module_kwargs,
            "var_names": list(self.var_names),
            "is_trained": self.is_trained,
            "history": self.history_.to_dict(),
            "weights_sha256": hashlib.sha256(weights).hexdigest(),
        }
        weights_part = path / (WEIGHTS_FILE + ".part")
        settings_part = path / (SETTINGS_FILE + ".part")
        _write_parts({weights_part: weights, settings_part: json.dumps(settings, indent=1).encode()}, path)
        os.replace(weights_part, path / WEIGHTS_FILE)
        os.replace(settings_part, path / SETTINGS_FILE)
        return path

    @classmethod
    def load(cls, dir_path: str | Path, adata: AnnData, *, device: str | None = None) -> BaseModel:
        """A model saved by :meth:`save`, attached to ``adata`` (which must have the same genes).

        Weights are read with ``torch.load(..., weights_only=True)``. A missing, truncated or
        inconsistent directory raises ``ValueError`` (``FileNotFoundError`` when the directory or a
        file is missing) naming the directory and what is wrong; a gene mismatch with ``adata``
        raises :class:`~tutorial_lib.data.checks.DataValidationError`.
        """
        path = Path(dir_path)
        where = f"cannot load a {cls.__name__} from {path}"
        for name in (SETTINGS_FILE, WEIGHTS_FILE):
            if not (path / name).is_file():
                found = sorted(p.name for p in path.iterdir()) if path.is_dir() else None
                raise FileNotFoundError(
                    f"{where}: {'the directory does not exist' if found is None else f'no {name} (found {found})'}; "
                    f"expected a directory written by {cls.__name__}.save()"
                )
        try:
            settings = json.loads((path / SETTINGS_FILE).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _LoadError(f"{where}: {SETTINGS_FILE} is unreadable or truncated ({err})") from err
        required = {
            "model": str,
            "condition_key": str,
            "cell_type_key": str,
            "module_kwargs": dict,
            "var_names": list,
            "is_trained": bool,
            "history": dict,
        }
        wrong = [k for k, t in required.items() if not isinstance(settings, dict) or not isinstance(settings.get(k), t)]
        if wrong:
            raise _LoadError(f"{where}: {SETTINGS_FILE} lacks or has malformed entries {wrong}")
        if settings["model"] != cls.__name__:
            raise _LoadError(f"{where}: it holds a {settings['model']}, not a {cls.__name__}")
        history = _read_history(settings["history"], settings["is_trained"], where)
        saved_genes: Sequence[str] = settings["var_names"]
        if list(map(str, adata.var_names)) != list(saved_genes):
            raise DataValidationError(
                f"adata's genes differ from the saved model's in {path} ({adata.n_vars} vs {len(saved_genes)} genes, "
                "or another order); subset adata to the training genes"
            )
        try:
            model = cls(
                adata,
                condition_key=settings["condition_key"],
                cell_type_key=settings["cell_type_key"],
                device=device,
                **settings["module_kwargs"],
            )
        except DataValidationError:
            raise  # a problem of adata, reported as such
        except (TypeError, ValueError) as err:
            raise _LoadError(f"{where}: its settings do not build a model ({err})") from err
        digest = settings.get("weights_sha256")  # absent in models saved before it was recorded
        if digest is not None and hashlib.sha256((path / WEIGHTS_FILE).read_bytes()).hexdigest() != digest:
            raise _LoadError(
                f"{where}: {WEIGHTS_FILE} is not the file {SETTINGS_FILE} was saved with (SHA-256 differs); "
                "save the model again"
            )
        try:
            state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
            model.module.load_state_dict(state)
        except Exception as err:  # truncated zip, unpickling, shape mismatch, ...: all name the directory
            raise _LoadError(
                f"{where}: {WEIGHTS_FILE} is truncated or does not match {SETTINGS_FILE} ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''})"
            ) from err
        model.module.eval()
        model.is_trained = settings["is_trained"]
        model.history_ = history
        return model


def _history_problem(saved: dict, is_trained: bool) -> str | None:
    """What is wrong with a saved training history (see :func:`_read_history`), or ``None``."""
    scalars = {"best_epoch": (int, float, type(None)), "best_step": (int, type(None)), "stopped_early": (bool,)}
    unknown = sorted(set(saved) - {f.name for f in dataclasses.fields(TrainingHistory)})
    if unknown:
        return f"unknown entries {unknown}"
    if not isinstance(saved.get("epoch"), list):
        return "no list 'epoch'"
    n_rows = len(saved["epoch"])
    if is_trained and n_rows == 0:
        return "no rows, but the model was saved as trained"
    for name, kinds in scalars.items():
        value = saved.get(name)
        if name in saved and (not isinstance(value, kinds) or (isinstance(value, bool) and kinds != (bool,))):
            return f"{name} is {value!r}"
    terms = saved.get("terms", {})
    if not isinstance(terms, dict):
        return f"terms is {terms!r}, not a dict"
    columns = {k: v for k, v in saved.items() if k not in scalars and k != "terms"} | terms
    for name, values in columns.items():
        if not isinstance(values, list):
            return f"column {name!r} is {values!r}, not a list"
        if len(values) not in (0, n_rows):
            return f"column {name!r} has {len(values)} values for {n_rows} rows"
        bad = [x for x in values if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float)))]
        if bad:
            return f"column {name!r} holds {bad[0]!r}, not a number"
    return None


def _read_history(saved: dict, is_trained: bool, where: str) -> TrainingHistory:
    """The training history of ``settings.json``, checked: a malformed one raises :class:`_LoadError`.

    Columns (lists of numbers, ``None`` for NaN) have one value per row (``epoch``), or none (a
    loss term the module does not report; the step columns of histories saved before they
    existed); a trained model has at least one row. Checked so that a damaged file is reported as
    such instead of loading as a model with an empty history.
    """
    problem = _history_problem(saved, is_trained)
    if problem is not None:
        raise _LoadError(f"{where}: {SETTINGS_FILE} holds a malformed training history ({problem}); save it again")
    return TrainingHistory.from_dict(saved)


_DISK_FULL = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())


def _write_parts(parts: dict[Path, bytes], where: Path) -> None:
    """Write each ``.part`` file of a save; if any write fails, remove them all and re-raise.

    A full disk (``ENOSPC``, or a disk quota: ``EDQUOT``) is reported as ``OSError`` with the same
    errno, saying that no space is left and naming ``where``; the files already in ``where`` are
    untouched, because the ``.part`` files were not yet renamed into place.
    """
    try:
        for part, data in parts.items():
            with open(part, "wb") as fh:
                fh.write(data)
    except BaseException as err:
        for part in parts:
            part.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            raise OSError(
                err.errno,
                f"no space left on the device to save the model to {where} ({os.strerror(err.errno)}); "
                f"need about {sum(map(len, parts.values())) / 2**20:.1f} MiB. The partial files were removed; "
                "a model saved there before is unchanged. Free some space or save elsewhere",
            ) from err
        raise


class _LoadError(ValueError):
    """A saved model directory is unreadable, truncated or inconsistent (message names the directory)."""
