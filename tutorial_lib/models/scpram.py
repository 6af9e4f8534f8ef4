"""scPRAM (Jiang et al., Bioinformatics 2024): denoising VAE + optimal transport + attention.

scPRAM predicts a held-out cell type's response from pairs of training cells: optimal transport
matches each control cell of the other cell types with a stimulated cell, each pair gives a
response vector in latent space, and a new control cell borrows the responses of the paired
control cells it resembles, weighted by attention.

Network defaults follow the scPRAM release (0.0.3): encoder and decoder 2 × 1000 hidden
units with ReLU (no batch norm, no dropout), 100 latent dimensions, ReLU output, Gaussian input
noise 0.1 during training, KL weight 5e-4, Adam (lr 5e-4, weight decay 1e-5, batch 128),
gradient norm clipped at 10 (as the release's ``clip_grad_norm(..., 10)``). Differences in
training, all from :meth:`~tutorial_lib.models.base.BaseModel.train`: it holds out 10% of the
cells for a validation loss, stops early on it and restores the best weights at the end, while
the release trains every epoch on all training cells and keeps the last weights; the encoder's
log-variance is clamped to [-15, 15] (the release does not clamp).

Prediction (:meth:`SCPRAM.predict`) follows the steps of scpram 0.0.3's ``SCPRAM.predict``
(``models.py``), each a building block of :mod:`tutorial_lib.models.ot_attention` whose
defaults are the release's:

1. Reference pools: every training control cell not of the target cell type and every
   stimulated training cell, no subsampling, no cell-type balancing. (The release always names
   a cell type; without one, e.g. for held-out donors, the control pool leaves out the target
   cells themselves, recognised by their expression and annotations.)
2. Latents: one posterior *sample* per cell (the release's ``get_latent_adata`` uses the
   reparameterisation trick), drawn from ``np.random.default_rng(seed)`` in the order
   reference controls, stimulated cells, targets (:meth:`~tutorial_lib.models.base.BaseModel.get_latent`).
3. Cost matrix: unscaled Euclidean distances, stimulated (rows) × reference controls
   (columns), in float32 (:func:`~tutorial_lib.models.ot_attention.cost_matrix`).
4. OT plan: exact optimal transport with uniform marginals, ``ot.emd`` stopped after 100,000
   iterations (:func:`~tutorial_lib.models.ot_attention.transport_plan`).
5. Matched pairs: each reference control cell takes the stimulated cell with the most mass in
   its column; its delta is that cell's latent minus its own.
6. Attention: cosine similarity of the *first* target cell to every reference control cell, the
   top ``ceil(0.05 · n)`` kept, weights ``cos / sum(cos)``
   (:func:`~tutorial_lib.models.ot_attention.attention_weights`); this one weighted mean of the
   deltas is added to every target's latent.
7. Decoding: ``decode(z + delta)``.

The settings are one :class:`SCPRAMOptions`; :data:`VARIANTS` names the release's and the
course's variants, each a copy of the release with one change:

* ``"percell"``: every target cell computes its own attention weights (step 6 per cell) and
  gets its own delta. No parameter was tuned for it (it keeps the release's ratio and weights).
* ``"percell_exact"``: ``"percell"`` with the OT of step 4 run to its optimum
  (``num_iter_max=None``). On pools of a few thousand cells the release's 100,000 iterations
  stop before the optimum: on Kang 2018 with CD4+ T cells held out (4,522 reference controls ×
  4,788 stimulated cells) the truncated plan's matches agreed with the optimal plan's for 36% of
  the control cells (``benchmarks/bench_scpram_ot.py``). Each prediction records whether its
  plan converged (``uns["scpram"]["plan"]["converged"]``).

Other :class:`SCPRAMOptions` are course options, not published: posterior means
(``latent="mean"``), pools restricted to cell types with both conditions (``reference="shared"``)
or subsampled (``max_ot_cells``), entropic OT (``ot_method="sinkhorn_log"`` with ``reg``, best on
a max-normalised squared cost), barycentric matching, softmax or clipped attention weights. An
entropic plan at ``reg=0.05`` is nearly uniform within a cluster (on Kang 2018 a row's largest
entry held 0.7% of its mass and its argmax agreed with the exact plan for 21% of the cells), so
check :func:`~tutorial_lib.models.ot_attention.plan_sharpness` (reported in every prediction's
``uns["scpram"]["plan"]``) before relying on its matches.

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

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED, DataValidationError
from tutorial_lib.models._data import dense_x, obs_labels, prediction_adata, rows_in, shared_cell_types
from tutorial_lib.models._params import check_choice, check_float, check_int
from tutorial_lib.models.base import BaseModel, check_sample
from tutorial_lib.models.ot_attention import (
    COST_METRICS,
    COST_NORMALISATIONS,
    EMD_MAX_ITER_RELEASE,
    MATCHINGS,
    OT_METHODS,
    WEIGHTINGS,
    attention_weights,
    cost_matrix,
    match,
    plan_sharpness,
    transport_plan,
)

ATTENTION_MODES = ("first_cell", "per_cell")
LATENT_MODES = ("sample", "mean")
REFERENCE_MODES = ("all", "shared")


@dataclass(frozen=True)
class SCPRAMOptions:
    """Settings of :meth:`SCPRAM.predict`; the defaults are the release's (scpram 0.0.3).

    Parameters
    ----------
    latent
        ``"sample"`` (one seeded posterior draw per cell; the release) or ``"mean"``.
    reference
        Reference pools: ``"all"`` (every control cell not of the target type, every stimulated
        cell; the release) or ``"shared"`` (only cell types with both conditions).
    max_ot_cells
        ``None`` (no subsampling, the release) or the most reference cells per condition kept
        (a seeded subsample), to keep OT tractable.
    cost, cost_normalization
        Cost of the OT (:func:`~tutorial_lib.models.ot_attention.cost_matrix`): ``"euclidean"``
        and ``None`` as released, computed in float32 then; any other cost in float64.
    ot_method, num_iter_max, reg
        The OT solver (:func:`~tutorial_lib.models.ot_attention.transport_plan`): ``"emd"`` with
        the release's 100,000 iterations, ``num_iter_max=None`` to run it to the optimum, or an
        entropic solver with regularisation ``reg``.
    matching
        ``"argmax"`` (the release) or ``"barycentric"`` (:func:`~tutorial_lib.models.ot_attention.match`).
    attention
        ``"first_cell"`` (the first target's weights for every target; the release) or ``"per_cell"``.
    ratio, weighting, temperature
        Attention (:func:`~tutorial_lib.models.ot_attention.attention_weights`): the fraction of
        reference control cells each target attends to, in (0, 1], and the weights
        (``"normalised"``: cos / sum cos, the release; ``temperature`` only for ``"softmax"``).
    """

    latent: str = "sample"
    reference: str = "all"
    max_ot_cells: int | None = None
    cost: str = "euclidean"
    cost_normalization: str | None = None
    ot_method: str = "emd"
    num_iter_max: int | None = EMD_MAX_ITER_RELEASE
    reg: float = 0.05
    matching: str = "argmax"
    attention: str = "first_cell"
    ratio: float = 0.05
    weighting: str = "normalised"
    temperature: float = 0.1

    def __post_init__(self) -> None:
        check_choice("latent", self.latent, LATENT_MODES)
        check_choice("reference", self.reference, REFERENCE_MODES)
        if self.max_ot_cells is not None:
            check_int("max_ot_cells", self.max_ot_cells, 2)
        check_choice("cost", self.cost, COST_METRICS)
        check_choice("cost_normalization", self.cost_normalization, COST_NORMALISATIONS)
        check_choice("ot_method", self.ot_method, OT_METHODS)
        if self.num_iter_max is not None:
            check_int("num_iter_max", self.num_iter_max, 1)
        check_float("reg", self.reg, 0.0, low_inclusive=False)  # checked even when the solver ignores it
        check_choice("matching", self.matching, MATCHINGS)
        check_choice("attention", self.attention, ATTENTION_MODES)
        check_float("ratio", self.ratio, 0.0, 1.0, low_inclusive=False)
        check_choice("weighting", self.weighting, WEIGHTINGS)
        check_float("temperature", self.temperature, 0.0, low_inclusive=False)

    @property
    def cost_dtype(self) -> type:
        """Precision of the cost matrix: float32 for the release's cost (as released), else float64."""
        return np.float32 if (self.cost, self.cost_normalization) == ("euclidean", None) else np.float64


#: The named prediction settings: the release and the course's variants (see the module docstring).
VARIANTS: dict[str, SCPRAMOptions] = {
    "released": SCPRAMOptions(),
    "percell": SCPRAMOptions(attention="per_cell"),
    "percell_exact": SCPRAMOptions(attention="per_cell", num_iter_max=None),
}


def resolve_options(variant: str | SCPRAMOptions, ratio: float | None = None) -> tuple[str, SCPRAMOptions]:
    """``(name, options)`` of a ``variant`` (a name of :data:`VARIANTS` or options), ``ratio`` applied.

    The name of options passed as such is the variant they equal, else ``"custom"``.
    """
    if isinstance(variant, SCPRAMOptions):
        options = variant
        name = next((k for k, v in VARIANTS.items() if v == options), "custom")
    elif isinstance(variant, str) and variant in VARIANTS:
        name, options = variant, VARIANTS[variant]
    else:
        raise ValueError(f"variant must be one of {list(VARIANTS)} or an SCPRAMOptions; got {variant!r}")
    if ratio is not None:
        options = dataclasses.replace(options, ratio=ratio)
    return name, options


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
        """``predict``'s defaults with ``fixed`` applied, ``ratio`` resolved from the variant."""
        settings = super().predict_defaults(**fixed)
        settings["ratio"] = resolve_options(settings["variant"], settings["ratio"])[1].ratio
        return settings

    def predict(
        self,
        cell_type: str | None = None,
        *,
        adata_to_predict: AnnData | None = None,
        ctrl_key: str = CONTROL,
        stim_key: str = STIMULATED,
        variant: str | SCPRAMOptions = "released",
        ratio: float | None = None,
        seed: int = 0,
        sample: bool | str = False,
        keep_plan: bool = False,
        return_attention: bool = False,
    ) -> AnnData | tuple[AnnData, sp.csr_matrix]:
        """Predicted stimulated cells, one per control cell of the target (steps: module docstring).

        Parameters
        ----------
        cell_type, adata_to_predict, ctrl_key, stim_key
            As in :meth:`tutorial_lib.models.scgen.SCGEN.predict`.
        variant
            ``"released"`` (scpram 0.0.3), ``"percell"`` (per-cell attention), ``"percell_exact"``
            (per-cell attention, OT run to its optimum), or any :class:`SCPRAMOptions`, e.g.
            ``dataclasses.replace(VARIANTS["percell"], ot_method="sinkhorn_log")``.
        ratio
            The fraction of reference control cells each target attends to (the one setting
            tuned, :mod:`course_tools.tuning`); ``None``: the variant's.
        seed
            Seed of the posterior samples and of the subsampling (and of ``sample="posterior"``).
        sample
            Decoding: ``False`` (as published) decodes the shifted latents; ``"residual"`` is the
            course variant of :meth:`~tutorial_lib.models.base.BaseModel._shifted_expression`;
            ``"posterior"``/``True`` draws target latents, only with ``latent="mean"``.
        keep_plan
            Also return the transport plan (controls × stimulated, float32) in ``uns["scpram"]["ot_plan"]``.
        return_attention
            Also return the attention matrix (targets × reference control cells).

        Returns
        -------
        AnnData like :meth:`SCGEN.predict` (``obs["method"] == "scpram"``, ``obsm["X_latent"]``,
        ``obsm["delta"]``, ``obsm["X_latent_control"]``, ``uns["scpram"]``: see the module
        docstring); with ``return_attention``, also the attention matrix.
        """
        self._check_trained()
        mode = check_sample(sample)
        name, opts = resolve_options(variant, ratio)
        if mode == "posterior" and opts.latent == "sample":
            raise ValueError(
                "sample='posterior' draws the targets' latents, but latent='sample' already does; "
                "pass variant=SCPRAMOptions(latent='mean', ...) with sample='posterior', or sample=False"
            )
        targets = self._targets(cell_type, adata_to_predict, ctrl_key)
        rng = np.random.default_rng(seed)
        ref_idx, stim_idx = self._reference_pools(targets, cell_type, ctrl_key, stim_key, opts, rng)  # 1.

        draw = rng if opts.latent == "sample" else None  # 2. latents, drawn in the release's order
        z_ref = self.get_latent(self.adata[ref_idx], rng=draw)
        z_stim = self.get_latent(self.adata[stim_idx], rng=draw)
        z_t = self.get_latent(targets, rng=draw)

        cost = cost_matrix(  # 3. stimulated (rows) × reference controls (columns), as released
            z_stim, z_ref, metric=opts.cost, normalization=opts.cost_normalization, dtype=opts.cost_dtype
        )
        plan, log = transport_plan(  # 4.
            cost,
            method=opts.ot_method,
            num_iter_max=opts.num_iter_max,
            reg=opts.reg,
            device=self.device,
            return_log=True,
        )
        z_matched, partner = match(plan.T, z_stim, mode=opts.matching)  # 5. each reference control's partner
        cell_deltas = (np.asarray(z_matched, dtype=np.float64) - z_ref).astype(np.float32)

        first_only = opts.attention == "first_cell"  # 6. the release computes the first target's weights only
        weights = attention_weights(
            z_t[:1] if first_only else z_t,
            z_ref,
            ratio=opts.ratio,
            weighting=opts.weighting,
            temperature=opts.temperature,
        )
        if first_only:
            weights = sp.csr_matrix(sp.vstack([weights] * len(z_t)))
        deltas = np.asarray(weights @ cell_deltas, dtype=np.float32)

        if mode is False:  # 7. decode the shifted latents (as published)
            z_pred = z_t + deltas
            x_pred = self.decode(z_pred)
        else:  # course variants of the decoding
            x_pred, z_pred = self._shifted_expression(
                dense_x(targets, self.var_names), z_t, deltas, sample=mode, seed=seed
            )

        pred = prediction_adata(
            x_pred,
            targets,
            self.var_names,
            method=self.method_name,
            condition_key=self.condition_key,
            cell_type_key=self.cell_type_key,
            cell_type=cell_type,
            obsm={"X_latent": z_pred, "delta": deltas, "X_latent_control": z_t},
        )
        pred.uns["scpram"] = self._by_products(
            name, opts, ref_idx, stim_idx, cost, plan, log, partner, weights, cell_deltas, keep_plan
        )
        return (pred, weights) if return_attention else pred

    def _reference_pools(
        self,
        targets: AnnData,
        cell_type: str | None,
        ctrl_key: str,
        stim_key: str,
        opts: SCPRAMOptions,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training cells of the reference control and stimulated pools (step 1)."""
        types = obs_labels(self.adata, self.cell_type_key)
        conds = obs_labels(self.adata, self.condition_key)
        exclude = [cell_type] if cell_type is not None else []
        ctrl_mask, stim_mask = conds == ctrl_key, conds == stim_key
        if opts.reference == "shared":
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
        ref_idx, stim_idx = np.flatnonzero(ctrl_mask), np.flatnonzero(stim_mask)
        if opts.max_ot_cells is not None:
            ref_idx = subsample(ref_idx, opts.max_ot_cells, rng)
            stim_idx = subsample(stim_idx, opts.max_ot_cells, rng)
        return ref_idx, stim_idx

    def _by_products(
        self,
        name: str,
        opts: SCPRAMOptions,
        ref_idx: np.ndarray,
        stim_idx: np.ndarray,
        cost: np.ndarray,
        plan: np.ndarray,
        log: dict,
        partner: np.ndarray,
        weights: sp.csr_matrix,
        cell_deltas: np.ndarray,
        keep_plan: bool,
    ) -> dict[str, Any]:
        """``uns["scpram"]`` of a prediction (``plan`` and ``cost``: stimulated × reference controls)."""
        types = obs_labels(self.adata, self.cell_type_key)
        ctrl_names, stim_names = self.adata.obs_names[ref_idx], self.adata.obs_names[stim_idx]
        plan_cs = plan.T
        rows = np.arange(len(partner))
        ot_pairs = pd.DataFrame(
            {
                "ctrl_cell": ctrl_names,
                "ctrl_cell_type": types[ref_idx],
                "stim_cell": stim_names[partner],
                "stim_cell_type": types[stim_idx][partner],
                "cost": cost.T[rows, partner],
                "plan_mass": plan_cs[rows, partner],
                "row_max_share": plan_cs[rows, partner] * len(partner),
            }
        )
        out: dict[str, Any] = {
            "variant": name,
            "settings": {k: ("none" if v is None else v) for k, v in dataclasses.asdict(opts).items()},
            "reference_cells": pd.DataFrame(
                {self.cell_type_key: types[ref_idx]}, index=pd.Index(ctrl_names, dtype=str)
            ),
            "attention": weights,
            "cell_deltas": cell_deltas,
            "ot_pairs": ot_pairs,
            "plan": {
                **plan_sharpness(plan_cs).drop("argmax_agreement").to_dict(),
                "converged": log["converged"],
                "n_stim": len(stim_idx),
            },
        }
        if keep_plan:
            out["ot_plan"] = plan_cs.astype(np.float32)
        return out

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
