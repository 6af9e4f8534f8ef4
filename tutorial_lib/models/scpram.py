"""scPRAM (Jiang et al., Bioinformatics 2024): denoising VAE + optimal transport + attention.

Network defaults follow the scPRAM release (0.0.3): encoder and decoder 2 × 1000 hidden
units with ReLU (no batch norm, no dropout), 100 latent dimensions, ReLU output, Gaussian input
noise 0.1 during training, KL weight 5e-4, Adam (lr 5e-4, weight decay 1e-5, batch 128),
gradient norm clipped at 10 (as the release's ``clip_grad_norm(..., 10)``). Differences in
training, all from :meth:`~tutorial_lib.models.base.BaseModel.train`: it holds out 10% of the
cells for a validation loss, stops early on it and restores the best weights at the end, while
the release trains every epoch on all training cells and keeps the last weights; the encoder's
log-variance is clamped to [-15, 15] (the release does not clamp).

Prediction (:meth:`SCPRAM.predict`) comes in named variants (:data:`VARIANTS`); every
setting can also be overridden by keyword.

``"released"`` — exactly the steps of scpram 0.0.3's ``SCPRAM.predict`` (``models.py``):

1. Latents are *posterior samples* (the release's ``get_latent_adata`` encodes with the
   reparameterisation trick), here drawn from a numpy generator seeded with ``seed``, in the
   release's order: reference controls, reference stimulated cells, targets.
2. Reference pools (``reference="all"``): every control cell not of ``cell_type``
   and every stimulated cell of the training data, no subsampling, no cell-type balancing.
   (The release always names a cell type; without one, e.g. for held-out donors, the control
   pool leaves out the target cells themselves: every training control cell with a target's
   expression on the model's genes and its annotations, whatever the cells' names.)
3. Exact optimal transport (``ot.emd``, uniform marginals, at most 100,000 network-simplex
   iterations as released) on the unscaled *Euclidean* cost between stimulated (rows) and
   control (columns) latents, computed in float32.
4. Each reference control cell takes the stimulated cell with the most mass in its column of
   the plan (argmax); its delta is that cell's latent minus its own.
5. Attention: cosine similarity of the *first* target cell to all reference control cells,
   the top ``ceil(0.05 · n)`` kept, weights ``cos / sum(cos)`` (negative similarities not
   clipped); this one weighted mean of deltas is added to every target's latent, which is decoded.

``"percell"`` (a course variant) — the released steps with one change: every target cell
computes its own attention weights (step 5 per cell), so each cell gets its own delta. No
parameter was tuned for it (it keeps the release's ratio 0.05 and weighting), so nothing was
chosen on the test cell type.

``"percell_exact"`` (a course variant) — ``"percell"`` with the exact OT plan: the network
simplex runs until it reaches the optimum (``num_iter_max=None``, i.e. up to ``max(100_000,
50·n·m)`` iterations). The release stops ``ot.emd`` after 100,000 iterations; on pools of a few
thousand cells that is not enough: on Kang 2018 with CD4+ T cells held out (4,522 reference
controls × 4,788 stimulated cells, fast preset, seed 0) the truncated plan's matches agreed with
the optimal plan's for 36% of the control cells, and the exact plan took 20 s against 12 s on a
loaded 2-core machine (``benchmarks/bench_scpram_ot.py``). So the released matching is then not
exact OT; each prediction reports whether its plan converged
(``uns["scpram"]["plan"]["converged"]``; a warning only when a limit other than the release's
stopped it). No parameter is tuned.

Other settings reachable by keyword (course options, not published): posterior means
(``latent="mean"``), reference pools restricted to cell types with both conditions
(``reference="shared"``) and subsampled (``max_ot_cells``), entropic OT (``ot_method=
"sinkhorn_log"`` with ``reg``, squared or max-normalised cost), barycentric matching, softmax
or clipped attention weights. Before this module had variants, its default was such a mix
(log-domain Sinkhorn at ``reg=0.05`` on the max-normalised squared cost, argmax, softmax(cos /
0.1), posterior means, pools of at most 3,000 cells); at that ``reg`` the plan is nearly uniform
within a cluster: on Kang 2018 a row's largest entry held 0.7% of its mass and the argmax agreed
with the exact plan on the same pools for 21% of the cells (``benchmarks/bench_scpram_ot.py``); use
:func:`~tutorial_lib.models.ot_attention.plan_sharpness` (reported in every prediction's
``uns["scpram"]["plan"]``) before relying on Sinkhorn matches.

Prediction is pure: the model is not changed. The by-products are returned in the prediction:
``obsm["delta"]`` (each target's latent delta), ``obsm["X_latent_control"]`` (each target's
latent before the shift) and ``uns["scpram"]`` with ``variant``, ``settings``,
``reference_cells`` (reference control cells and their cell types), ``attention`` (targets ×
reference control cells, sparse), ``cell_deltas``, ``ot_pairs`` (each reference control cell's
partner, its cost and plan mass) and ``plan`` (sharpness diagnostics and ``converged``);
the plan itself only with ``keep_plan=True`` (``uns["scpram"]["ot_plan"]``, controls ×
stimulated). :func:`attention_by_cell_type` reads them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData

from tutorial_lib._renames import renamed_keywords
from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED, DataValidationError
from tutorial_lib.models._data import dense_x, obs_labels, prediction_adata, rows_in, shared_cell_types
from tutorial_lib.models._params import check_choice, check_float, check_int
from tutorial_lib.models.base import BaseModel, check_sample
from tutorial_lib.models.ot_attention import (
    EMD_MAX_ITER_RELEASE,
    attention_weights,
    cost_matrix,
    match,
    plan_sharpness,
    transport_plan,
)

ATTENTION_MODES = ("per_cell", "first_cell")
LATENT_MODES = ("sample", "mean")
REFERENCE_MODES = ("all", "shared")


class _FromVariant:
    """Default of a :meth:`SCPRAM.predict` setting: take the value of the chosen variant."""

    def __repr__(self) -> str:
        return "FROM_VARIANT"


FROM_VARIANT: Any = _FromVariant()

_RELEASED: dict[str, Any] = {
    "latent": "sample",
    "reference": "all",
    "max_ot_cells": None,
    "ot_method": "emd",
    "num_iter_max": EMD_MAX_ITER_RELEASE,
    "reg": 0.05,
    "cost": "euclidean",
    "cost_normalization": None,
    "matching": "argmax",
    "attention": "first_cell",
    "ratio": 0.05,
    "weighting": "normalised",
    "temperature": 0.1,
}

#: Prediction settings of each named variant (see the module docstring for what each is).
VARIANTS: dict[str, dict[str, Any]] = {
    "released": dict(_RELEASED),
    "percell": {**_RELEASED, "attention": "per_cell"},
    "percell_exact": {**_RELEASED, "attention": "per_cell", "num_iter_max": None},
}


def subsample(idx: np.ndarray, n_max: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``n_max`` of ``idx`` (without replacement, sorted)."""
    return idx if len(idx) <= n_max else np.sort(rng.choice(idx, size=n_max, replace=False))


class SCPRAM(BaseModel):
    """scPRAM: per-cell perturbation vectors from OT-matched cells, combined by attention.

    Parameters
    ----------
    adata, condition_key, cell_type_key, device
        See :class:`~tutorial_lib.models.base.BaseModel`.
    n_latent, n_layers, n_hidden, dropout_rate, kl_weight, use_batch_norm, use_layer_norm
        Network hyperparameters (defaults: the scPRAM release).
    noise_rate, noise_type
        Input corruption of the denoising VAE (see :mod:`tutorial_lib.models._module`).
    """

    method_name = "scpram"
    fixed_module_kwargs = {"activation": "relu", "output_activation": "relu"}
    #: The default schedule (:data:`~tutorial_lib.models.training.DEFAULT_SCHEDULE`: to convergence)
    #: with the scPRAM release's Adam settings (batch 128, lr 5e-4 as peak rate, weight decay 1e-5).
    #: Compared with lr 2e-3 on a random 2,000-cell subsample of Kang 2018, B cells as the held-out
    #: validation type (CD4+ T held out too, not scored), same schedule: best validation loss 126.0
    #: at lr 5e-4 vs 130.8 at 2e-3 (one seed; ``benchmarks/README.md``), so 5e-4 stays.
    train_defaults = {**BaseModel.train_defaults, "batch_size": 128, "lr": 5e-4, "weight_decay": 1e-5}

    def __init__(
        self,
        adata: AnnData,
        condition_key: str = CONDITION_KEY,
        cell_type_key: str = CELL_TYPE_KEY,
        *,
        n_latent: int = 100,
        n_layers: int = 2,
        n_hidden: int = 1000,
        dropout_rate: float = 0.0,
        kl_weight: float = 5e-4,
        use_batch_norm: bool = False,
        use_layer_norm: bool = False,
        noise_rate: float = 0.1,
        noise_type: str = "gaussian",
        device: str | None = None,
    ) -> None:
        super().__init__(
            adata,
            condition_key=condition_key,
            cell_type_key=cell_type_key,
            device=device,
            n_latent=n_latent,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
            kl_weight=kl_weight,
            use_batch_norm=use_batch_norm,
            use_layer_norm=use_layer_norm,
            noise_rate=noise_rate,
            noise_type=noise_type,
        )

    @classmethod
    def predict_defaults(cls, **fixed: Any) -> dict[str, Any]:
        """``predict``'s defaults with ``fixed`` applied and ``FROM_VARIANT`` settings resolved.

        Every ``FROM_VARIANT`` setting is replaced by the value of its variant (:data:`VARIANTS`).
        """
        settings = super().predict_defaults(**fixed)
        variant = VARIANTS[settings["variant"]]
        return {k: (variant[k] if v is FROM_VARIANT else v) for k, v in settings.items()}

    @renamed_keywords(celltype_to_predict="cell_type")
    def predict(
        self,
        cell_type: str | None = None,
        *,
        adata_to_predict: AnnData | None = None,
        ctrl_key: str = CONTROL,
        stim_key: str = STIMULATED,
        variant: str = "released",
        latent: str = FROM_VARIANT,
        reference: str = FROM_VARIANT,
        max_ot_cells: int | None = FROM_VARIANT,
        ot_method: str = FROM_VARIANT,
        num_iter_max: int | None = FROM_VARIANT,
        reg: float = FROM_VARIANT,
        cost: str = FROM_VARIANT,
        cost_normalization: str | None = FROM_VARIANT,
        matching: str = FROM_VARIANT,
        attention: str = FROM_VARIANT,
        ratio: float = FROM_VARIANT,
        weighting: str = FROM_VARIANT,
        temperature: float = FROM_VARIANT,
        seed: int = 0,
        keep_plan: bool = False,
        return_attention: bool = False,
        sample: bool | str = False,
    ) -> AnnData | tuple[AnnData, sp.csr_matrix]:
        """Predicted stimulated cells, one per control cell of the target (see the module docstring).

        Every setting left at ``FROM_VARIANT`` takes the value of ``VARIANTS[variant]``.

        Parameters
        ----------
        cell_type, adata_to_predict, ctrl_key, stim_key
            As in :meth:`tutorial_lib.models.scgen.SCGEN.predict` (``celltype_to_predict``, pertpy's
            name for ``cell_type``, still works with a ``FutureWarning``).
        variant
            ``"released"`` (scpram 0.0.3), ``"percell"`` (per-cell attention) or ``"percell_exact"``
            (per-cell attention, OT run to its optimum), see :data:`VARIANTS`.
        latent
            ``"sample"`` (posterior samples, seeded with ``seed``; the release) or ``"mean"``.
        reference
            Reference pools: ``"all"`` (every control cell not of the target type, every
            stimulated cell; the release) or ``"shared"`` (cell types with both conditions).
        max_ot_cells
            ``None`` (no subsampling, the release) or the maximum reference cells per condition
            (seeded subsample) to keep OT tractable.
        ot_method, num_iter_max, reg, cost, cost_normalization, matching
            Optimal transport settings (:func:`~tutorial_lib.models.ot_attention.transport_plan`,
            :func:`~tutorial_lib.models.ot_attention.cost_matrix`, :func:`~tutorial_lib.models.ot_attention.match`).
        attention
            ``"first_cell"`` (the first target's weights for every target; the release) or ``"per_cell"``.
        ratio, weighting, temperature
            Attention: the fraction of reference control cells each target attends to, in (0, 1],
            and the weights (:func:`~tutorial_lib.models.ot_attention.attention_weights`).
        seed
            Seed of the posterior samples and of the subsampling (and of ``sample="posterior"``).
        keep_plan
            Also return the transport plan (controls × stimulated, float32) in ``uns["scpram"]["ot_plan"]``.
        return_attention
            Also return the attention matrix (targets × reference control cells).
        sample
            Decoding: ``False`` (as published) decodes the shifted latents; ``"residual"`` is the
            course variant of :meth:`~tutorial_lib.models.base.BaseModel._shifted_expression`;
            ``"posterior"``/``True`` draws target latents, only with ``latent="mean"``.

        Returns
        -------
        AnnData like :meth:`SCGEN.predict` (``obs["method"] == "scpram"``, ``obsm["X_latent"]``,
        ``obsm["delta"]``, ``obsm["X_latent_control"]``, ``uns["scpram"]``: see the module
        docstring); with ``return_attention``, also the attention matrix.
        """
        self._check_trained()
        mode = check_sample(sample)
        check_choice("variant", variant, VARIANTS)
        given = {
            "latent": latent,
            "reference": reference,
            "max_ot_cells": max_ot_cells,
            "ot_method": ot_method,
            "num_iter_max": num_iter_max,
            "reg": reg,
            "cost": cost,
            "cost_normalization": cost_normalization,
            "matching": matching,
            "attention": attention,
            "ratio": ratio,
            "weighting": weighting,
            "temperature": temperature,
        }
        opts = {k: VARIANTS[variant][k] if v is FROM_VARIANT else v for k, v in given.items()}
        check_choice("latent", opts["latent"], LATENT_MODES)
        check_choice("reference", opts["reference"], REFERENCE_MODES)
        check_choice("attention", opts["attention"], ATTENTION_MODES)
        if opts["max_ot_cells"] is not None:
            check_int("max_ot_cells", opts["max_ot_cells"], 2)
        check_float("reg", opts["reg"], 0.0, low_inclusive=False)  # checked even when the solver ignores it
        if mode == "posterior" and opts["latent"] == "sample":
            raise ValueError(
                "sample='posterior' draws the targets' latents, but latent='sample' already does; "
                "pass latent='mean' with sample='posterior', or sample=False"
            )
        targets = self._targets(cell_type, adata_to_predict, ctrl_key)
        types = obs_labels(self.adata, self.cell_type_key)
        conds = obs_labels(self.adata, self.condition_key)
        exclude = [cell_type] if cell_type is not None else []
        ctrl_mask, stim_mask = conds == ctrl_key, conds == stim_key
        if opts["reference"] == "shared":
            ref_types = shared_cell_types(types, conds, ctrl_key=ctrl_key, stim_key=stim_key, exclude=exclude)
            ctrl_mask, stim_mask = ctrl_mask & np.isin(types, ref_types), stim_mask & np.isin(types, ref_types)
        elif exclude:
            ctrl_mask &= ~np.isin(types, exclude)
        else:  # no cell type to leave out (e.g. held-out donors): leave out the target cells themselves
            ctrl_mask &= ~self._copies_of(targets, ctrl_mask)
        if ctrl_mask.sum() == 0 or stim_mask.sum() == 0:
            raise DataValidationError(
                f"No reference {ctrl_key!r} or {stim_key!r} cells in the training data outside {exclude}; "
                "scPRAM needs both to learn a response"
            )
        rng = np.random.default_rng(seed)
        ctrl_idx, stim_idx = np.flatnonzero(ctrl_mask), np.flatnonzero(stim_mask)
        if opts["max_ot_cells"] is not None:
            ctrl_idx = subsample(ctrl_idx, opts["max_ot_cells"], rng)
            stim_idx = subsample(stim_idx, opts["max_ot_cells"], rng)

        x_t = dense_x(targets, self.var_names)
        z_ctrl = self._latents(dense_x(self.adata[ctrl_idx], self.var_names), opts["latent"], rng)
        z_stim = self._latents(dense_x(self.adata[stim_idx], self.var_names), opts["latent"], rng)
        z_t = self._latents(x_t, opts["latent"], rng)

        # the release solves stimulated (rows) x control (columns) and takes each column's argmax;
        # solving that orientation and transposing reproduces it, ties and iteration limit included
        dtype = np.float32 if opts["cost"] == "euclidean" and opts["cost_normalization"] is None else np.float64
        cost_sc = cost_matrix(
            z_stim, z_ctrl, metric=opts["cost"], normalization=opts["cost_normalization"], dtype=dtype
        )
        with warnings.catch_warnings():
            if opts["num_iter_max"] == EMD_MAX_ITER_RELEASE:
                # the release stops ot.emd at this limit: a truncated plan is the published method,
                # recorded in uns["scpram"]["plan"]["converged"], not a fault worth a warning
                warnings.filterwarnings("ignore", message="ot.emd stopped after", category=UserWarning)
            plan_sc, log = transport_plan(
                cost_sc,
                method=opts["ot_method"],
                reg=opts["reg"],
                num_iter_max=opts["num_iter_max"],
                device=self.device,
                return_log=True,
            )
        plan = plan_sc.T
        z_matched, partner = match(plan, z_stim, mode=opts["matching"])
        cell_deltas = (np.asarray(z_matched, dtype=np.float64) - z_ctrl).astype(np.float32)

        first_only = opts["attention"] == "first_cell"  # the release computes the first target's weights only
        weights = attention_weights(
            z_t[:1] if first_only else z_t,
            z_ctrl,
            ratio=opts["ratio"],
            temperature=opts["temperature"],
            weighting=opts["weighting"],
        )
        if first_only:
            weights = sp.csr_matrix(sp.vstack([weights] * len(z_t)))
        deltas = np.asarray(weights @ cell_deltas, dtype=np.float32)
        x_pred, z_pred = self._shifted_expression(x_t, z_t, deltas, sample=mode, seed=seed)

        ctrl_names, stim_names = self.adata.obs_names[ctrl_idx], self.adata.obs_names[stim_idx]
        rows = np.arange(len(partner))
        ot_pairs = pd.DataFrame(
            {
                "ctrl_cell": ctrl_names,
                "ctrl_cell_type": types[ctrl_idx],
                "stim_cell": stim_names[partner],
                "stim_cell_type": types[stim_idx][partner],
                "cost": cost_sc.T[rows, partner],
                "plan_mass": plan[rows, partner],
                "row_max_share": plan[rows, partner] * len(partner),
            }
        )
        by_products: dict[str, Any] = {
            "variant": variant,
            "settings": {k: ("none" if v is None else v) for k, v in opts.items()},
            "reference_cells": pd.DataFrame(
                {self.cell_type_key: types[ctrl_idx]}, index=pd.Index(ctrl_names, dtype=str)
            ),
            "attention": weights,
            "cell_deltas": cell_deltas,
            "ot_pairs": ot_pairs,
            "plan": {
                **plan_sharpness(plan).drop("argmax_agreement").to_dict(),
                "converged": log["converged"],
                "n_stim": len(stim_idx),
            },
        }
        if keep_plan:
            by_products["ot_plan"] = plan.astype(np.float32)
        pred = prediction_adata(
            x_pred,
            targets,
            self.var_names,
            method=self.method_name,
            condition_key=self.condition_key,
            cell_type_key=self.cell_type_key,
            cell_type=cell_type,
            obsm={"X_latent": z_pred, "delta": deltas, "X_latent_control": z_t.astype(np.float32)},
        )
        pred.uns["scpram"] = by_products
        return (pred, weights) if return_attention else pred

    def _copies_of(self, targets: AnnData, candidates: np.ndarray) -> np.ndarray:
        """Mask of the training cells among ``candidates`` (a mask) that are copies of a target.

        Targets are usually copies of training cells (held-out donors' controls stay in training).
        A copy is recognised by its content, not its name (names can change, and ``AnnData(array)``
        names any cells ``'0'``, ``'1'``...): the same expression on the model's genes and the same
        annotations in the ``obs`` columns both have (condition, cell type, donor...).
        """
        idx = np.flatnonzero(candidates)
        copies = np.zeros(len(candidates), dtype=bool)
        if len(idx):
            train = self.adata[idx]
            shared = [c for c in train.obs.columns if c in targets.obs.columns]
            copies[idx] = rows_in(
                dense_x(train, self.var_names),
                dense_x(targets, self.var_names),
                train.obs[shared],
                targets.obs[shared],
            )
        return copies

    def _latents(self, x: np.ndarray, latent: str, rng: np.random.Generator) -> np.ndarray:
        """Posterior means of ``x``, or seeded posterior samples (one ``rng.standard_normal`` draw per call)."""
        if latent == "mean":
            return self._batched(self._encode_mean, x, 1024, self.module.n_latent)
        stats = self._batched(lambda t: torch.cat(self.module.encode(t), dim=1), x, 1024, 2 * self.module.n_latent)
        mean, logvar = np.split(stats, 2, axis=1)
        noise = rng.standard_normal(mean.shape).astype(np.float32)
        return (mean + np.exp(0.5 * logvar) * noise).astype(np.float32)

    def attention_by_cell_type(self, prediction: AnnData) -> pd.DataFrame:
        """Attention mass of each target cell on each reference cell type (see :func:`attention_by_cell_type`)."""
        return attention_by_cell_type(prediction, cell_type_key=self.cell_type_key)


def attention_by_cell_type(prediction: AnnData, *, cell_type_key: str = CELL_TYPE_KEY) -> pd.DataFrame:
    """Attention mass each target cell puts on each reference cell type (targets × cell types; rows sum to 1).

    ``prediction`` is an AnnData returned by :meth:`SCPRAM.predict` (it reads
    ``uns["scpram"]["attention"]`` and ``["reference_cells"]``); rows are named after the
    target (control) cells (``obs["source_cell"]``).
    """
    info = prediction.uns.get("scpram") if isinstance(prediction, AnnData) else None
    if not info or "attention" not in info or "reference_cells" not in info:
        raise ValueError("pass the AnnData returned by SCPRAM.predict (it needs uns['scpram']['attention'])")
    attention = sp.csr_matrix(info["attention"])
    labels = info["reference_cells"][cell_type_key].astype(str).to_numpy()
    if attention.shape != (prediction.n_obs, len(labels)):
        raise ValueError(
            f"uns['scpram']['attention'] has shape {attention.shape}; expected {(prediction.n_obs, len(labels))} "
            "(cells × reference cells): was the prediction subset? Use the full prediction"
        )
    cats = np.unique(labels)
    onehot = sp.csr_matrix(
        (np.ones(len(labels)), (np.arange(len(labels)), np.searchsorted(cats, labels))), shape=(len(labels), len(cats))
    )
    index = prediction.obs["source_cell"] if "source_cell" in prediction.obs else prediction.obs_names
    return pd.DataFrame(np.asarray((attention @ onehot).todense()), index=pd.Index(index, dtype=str), columns=cats)
