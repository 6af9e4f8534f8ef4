"""scGen (Lotfollahi et al., Nat. Methods 2019): a VAE and latent vector arithmetic.

Network and optimizer as in the scvi-tools/pertpy port: 2 × 800 hidden units (Linear → BatchNorm
→ LeakyReLU → Dropout 0.2), 100 latent dimensions, KL weight 5e-5, Adam with lr 1e-3, ``eps=0.01``
and weight decay 1e-6 (PyTorch's ``eps=1e-8`` without decay decodes markedly worse means on Kang
2018; ``benchmarks/README.md``). Unlike pertpy: a ReLU output layer (as the original scGen),
batch 128, 10% of the cells held out for early stopping and the best weights kept.

:meth:`SCGEN.predict`, in the paper's order: (1) latents of the training cells (posterior means);
(2) balanced cells: within each condition every cell type resampled to the size of the largest,
then both conditions subsampled to the same size (:func:`balanced_indices`), so that abundant
cell types do not dominate; (3) ``delta`` = mean latent of their stimulated minus control cells;
(4) ``decode(z + delta)`` of the target control cells. The original also puts the held-out
type's controls into the control mean; here only cell types with both conditions enter.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from anndata import AnnData

from tutorial_lib.config import check_seed
from tutorial_lib.data.checks import (
    CELL_TYPE_KEY,
    CONDITION_KEY,
    CONTROL,
    STIMULATED,
    DataValidationError,
    require_obs_keys,
)
from tutorial_lib.models.base import BaseModel, check_sample, module_arguments, obs_labels, shared_cell_types
from tutorial_lib.models.vae import TrainingOptions


def balance_cell_types(indices_by_type: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Resample every group (with replacement) to the size of the largest group; concatenated."""
    n_max = max(len(idx) for idx in indices_by_type)
    return np.concatenate([rng.choice(idx, size=n_max, replace=True) for idx in indices_by_type])


def balanced_indices(
    cell_types: np.ndarray,
    conditions: np.ndarray,
    *,
    ctrl_key: str = CONTROL,
    stim_key: str = STIMULATED,
    restrict_to: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cell indices (control, stimulated) over which scGen averages latents (seeded).

    Cell types with cells in both conditions (only ``restrict_to``, a list, if given; minus
    ``exclude``) are balanced within each condition (:func:`balance_cell_types`), then the larger
    side is subsampled without replacement to the size of the smaller one.
    """
    seed = check_seed(seed)
    cell_types, conditions = np.asarray(cell_types).astype(str), np.asarray(conditions).astype(str)
    if restrict_to is not None:
        if isinstance(restrict_to, str):
            raise TypeError(
                f"restrict_arithmetic_to must be a list of cell types, e.g. [{restrict_to!r}]; got the string "
                f"{restrict_to!r}"
            )
        restrict_to = [str(t) for t in restrict_to]
        usable = shared_cell_types(cell_types, conditions, ctrl_key=ctrl_key, stim_key=stim_key, exclude=exclude)
        if not set(restrict_to) & set(usable):
            raise DataValidationError(
                f"restrict_arithmetic_to={restrict_to} names none of the cell types with both {ctrl_key!r} and "
                f"{stim_key!r} training cells: {usable}"
            )
    types = shared_cell_types(
        cell_types, conditions, ctrl_key=ctrl_key, stim_key=stim_key, exclude=exclude, restrict_to=restrict_to
    )
    rng = np.random.default_rng(seed)
    pools = [
        balance_cell_types([np.flatnonzero((conditions == cond) & (cell_types == t)) for t in types], rng)
        for cond in (ctrl_key, stim_key)
    ]
    n_eq = min(len(p) for p in pools)
    ctrl_idx, stim_idx = (rng.choice(p, size=n_eq, replace=False) for p in pools)
    return ctrl_idx, stim_idx


class SCGEN(BaseModel):
    """scGen: predicts a cell type's response by latent vector arithmetic.

    ``adata``, ``condition_key``, ``cell_type_key``, ``device``: see
    :class:`~tutorial_lib.models.base.BaseModel`; the others are the network's hyperparameters
    (:class:`~tutorial_lib.models.vae.VAE`; defaults: the published scGen, no input noise).
    """

    method_name = "scgen"
    fixed_module_kwargs = {"activation": "leaky_relu", "output_activation": "relu"}
    #: the default schedule with pertpy's Adam settings; batch 128 (pertpy: 32): a step costs
    #: about twice the time but sees four times the cells (``benchmarks/README.md``)
    train_defaults = TrainingOptions(weight_decay=1e-6, adam_eps=0.01)

    def __init__(
        self,
        adata: AnnData,
        condition_key: str = CONDITION_KEY,
        cell_type_key: str = CELL_TYPE_KEY,
        *,
        n_latent: int = 100,
        n_layers: int = 2,
        n_hidden: int = 800,
        dropout_rate: float = 0.2,
        kl_weight: float = 5e-5,
        use_batch_norm: bool = True,
        noise_rate: float = 0.0,
        device: str | None = None,
    ) -> None:
        network = module_arguments(locals())  # n_latent, ..., noise_rate as given
        super().__init__(adata, condition_key=condition_key, cell_type_key=cell_type_key, device=device, **network)

    def predict(
        self,
        cell_type: str | None = None,
        *,
        adata_to_predict: AnnData | None = None,
        ctrl_key: str = CONTROL,
        stim_key: str = STIMULATED,
        restrict_arithmetic_to: Iterable[str] | None = None,
        seed: int = 0,
        sample: bool | str = False,
    ) -> AnnData:
        """Predicted stimulated cells, one per control cell of the target: ``decode(z + delta)``.

        ``cell_type``: the cell type whose training controls are shifted (pertpy's
        ``celltype_to_predict``), or ``adata_to_predict``: control cells to shift instead.
        ``restrict_arithmetic_to``: a list of the cell types ``delta`` is computed on (default: all
        with both conditions); ``seed`` seeds the balancing; ``sample``: ``False`` (as published) or
        ``"residual"`` (:func:`~tutorial_lib.models.base.check_sample`). Returns AnnData with
        ``obs[condition_key] == "predicted"``, ``obsm["X_latent"]`` (shifted latents),
        ``obsm["X_latent_control"]`` (before the shift), ``obsm["delta"]`` and ``uns["scgen"]``.
        """
        self._check_trained()
        check_sample(sample)
        seed = check_seed(seed)
        targets = self._targets(cell_type, adata_to_predict, ctrl_key)
        # 1. latents of the training cells (posterior means)
        z_train = self.get_latent()
        # 2. balanced cell indices of each condition
        types, conditions = obs_labels(self.adata, self.cell_type_key), obs_labels(self.adata, self.condition_key)
        ctrl_idx, stim_idx = balanced_indices(
            types, conditions, ctrl_key=ctrl_key, stim_key=stim_key, restrict_to=restrict_arithmetic_to, seed=seed
        )
        # 3. delta: the difference of their mean latents
        delta = z_train[stim_idx].mean(axis=0) - z_train[ctrl_idx].mean(axis=0)
        # 4. the target control cells' latents, moved by delta and decoded
        z = self.get_latent(targets)
        z_pred = z + delta
        x_pred = self.decode(z_pred)
        if sample == "residual":
            x_pred = self._add_residual(x_pred, targets, z)
        deltas = np.broadcast_to(delta, z.shape).copy()
        pred = self._prediction(x_pred, targets, cell_type, X_latent=z_pred, X_latent_control=z, delta=deltas)
        pred.uns["scgen"] = {"delta": delta}
        return pred

    def batch_removal(self, adata: AnnData | None = None, batch_key: str = "batch") -> AnnData:
        """Batch-corrected expression by latent mean alignment (``obsm``: ``X_latent``, ``X_latent_corrected``).

        Per cell type, each batch's latents are shifted so that the batch's mean equals the cell
        type's mean over all batches (the original scGen aligns to the largest batch), then decoded.
        """
        self._check_trained()
        adata = self.adata if adata is None else adata
        require_obs_keys(adata, [batch_key, self.cell_type_key])
        z = self.get_latent(adata)
        batches, types = obs_labels(adata, batch_key), obs_labels(adata, self.cell_type_key)
        z_corr = z.copy()
        for t in np.unique(types):
            in_type = types == t
            type_mean = z[in_type].mean(axis=0)
            for b in np.unique(batches[in_type]):
                sel = in_type & (batches == b)
                z_corr[sel] += type_mean - z[sel].mean(axis=0)
        out = AnnData(self.decode(z_corr), obs=adata.obs.copy())
        out.var_names = self.var_names
        out.obsm["X_latent"] = z
        out.obsm["X_latent_corrected"] = z_corr
        return out
