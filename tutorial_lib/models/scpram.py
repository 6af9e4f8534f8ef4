"""scPRAM (Jiang et al., Bioinformatics 2024): denoising VAE + optimal transport + attention.

Optimal transport pairs each control cell of the other cell types with a stimulated cell; each
pair gives a response in latent space, and a new control cell borrows the responses of the
paired control cells it resembles, weighted by attention.

Network and optimizer as in the release (scpram 0.0.3): 2 × 1000 hidden units with ReLU, no
batch norm or dropout, 100 latent dimensions, input noise 0.1, KL weight 5e-4, Adam (lr 5e-4,
weight decay 1e-5, batch 128), gradients clipped at norm 10. The release trains on all cells and
keeps the last weights; here 10% are held out, training stops early and the best weights are kept.

:meth:`SCPRAM.predict` follows the release's ``SCPRAM.predict`` step by step, with the building
blocks below, whose defaults are the release's:

1. Reference pools: every training control cell not of the target cell type and every
   stimulated training cell (without a cell type, e.g. held-out donors: every control cell
   that is not a copy of a target).
2. Latents: one posterior *sample* per cell from ``np.random.default_rng(seed)``, in the order
   reference controls, stimulated cells, targets.
3. :func:`cost_matrix`: Euclidean distances, stimulated × reference controls, in float32.
4. :func:`transport_plan`: exact OT, uniform marginals, ``ot.emd`` stopped after 100,000 iterations.
5. :func:`match`: each reference control's stimulated partner (most mass in its column); its
   response is the partner's latent minus its own.
6. :func:`attention_weights`: cosine similarity of the *first* target to every reference
   control, the top ``ceil(0.05 · n)`` kept, weights ``cos / sum(cos)``: one weighted mean
   response, added to every target's latent.
7. ``decode(z + delta)``.

:data:`VARIANTS` change one step: ``"percell"`` runs step 6 per target, ``"percell_exact"`` also
runs step 4 to its optimum (on Kang 2018 with CD4+ T held out, the release's truncated plan
agreed with the optimal matches for 36% of the controls; ``benchmarks/bench_scpram_ot.py``).
Other :class:`SCPRAMOptions` are course options, not published (an entropic plan at ``reg=0.05``
is nearly uniform within a cluster: check :func:`plan_sharpness` before trusting its matches).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import ot
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData

from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED, DataValidationError
from tutorial_lib.models.base import BaseModel, check_sample, dense_x, module_arguments, obs_labels, shared_cell_types
from tutorial_lib.models.vae import TrainingOptions, check_choice, check_float, check_int

COST_METRICS = ("sqeuclidean", "euclidean")
COST_NORMALISATIONS = ("max", "mean", None)
OT_METHODS = ("sinkhorn_log", "sinkhorn", "sinkhorn_stabilized", "emd")
MATCHINGS = ("argmax", "barycentric")
WEIGHTINGS = ("normalised", "softmax")
EMD_MAX_ITER_RELEASE = 100_000  # numItermax of ot.emd in scpram 0.0.3's SCPRAM.predict
MARGINAL_TOLERANCE = 1e-3  # L1 error of both marginals (each sums to 1) tolerated silently


# -- the building blocks: optimal transport and attention ------------------------------------------
def cost_matrix(a, b, *, metric: str = "euclidean", normalization: str | None = None, dtype=np.float32) -> np.ndarray:
    """Pairwise cost, rows of ``a`` × rows of ``b``; the defaults are the release's (``ot.dist`` on float32).

    ``metric``: ``"euclidean"`` or ``"sqeuclidean"``; ``normalization``: ``None``, ``"max"`` or
    ``"mean"`` (so that an entropic ``reg`` means the same at any latent scale).
    """
    check_choice("cost", metric, COST_METRICS)
    check_choice("cost_normalization", normalization, COST_NORMALISATIONS)
    cost = ot.dist(np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype), metric=metric)
    scale = {"max": cost.max(), "mean": cost.mean(), None: 1.0}[normalization]
    return cost / scale if scale > 0 else cost


def transport_plan(
    cost: np.ndarray,
    *,
    method: str = "emd",
    num_iter_max: int | None = EMD_MAX_ITER_RELEASE,
    reg: float = 0.05,
    stop_thr: float = 1e-6,
    device: str = "cpu",
    return_log: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict]:
    """Transport plan between uniform marginals for ``cost`` (n × m): rows sum to 1/n, columns to 1/m.

    ``"emd"`` (the release): exact OT stopped after ``num_iter_max`` iterations; the release's
    100,000 stop before the optimum on pools of a few thousand cells (the published method, not
    warned about; ``None``: run to the optimum). POT's entropic solvers (``"sinkhorn_log"``, ...)
    take ``reg`` relative to the cost. ``return_log=True`` also returns ``{"converged", "method"}``.
    """
    check_choice("ot_method", method, OT_METHODS)
    n, m = cost.shape
    a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    if method == "emd":
        limit = max(100_000, 50 * n * m) if num_iter_max is None else check_int("num_iter_max", num_iter_max, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # POT's "numItermax reached"; re-raised below
            plan, log = ot.emd(a, b, np.asarray(cost, dtype=np.float64), numItermax=limit, log=True)
        converged = int(log["result_code"]) == 1
        if not converged and limit != EMD_MAX_ITER_RELEASE:
            warnings.warn(
                f"ot.emd stopped after {limit} iterations before reaching the optimum ({log['warning']}); "
                "the plan is feasible but not the exact optimal transport plan",
                stacklevel=2,
            )
        return (plan, {"converged": converged, "method": method}) if return_log else plan
    check_float("reg", reg, 0.0, open_low=True)
    num_iter_max = 1000 if num_iter_max is None else check_int("num_iter_max", num_iter_max, 1)
    a_t, b_t, cost_t = (torch.as_tensor(v, dtype=torch.float32, device=device) for v in (a, b, cost))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # POT's "did not converge"; checked below
        plan = ot.sinkhorn(a_t, b_t, cost_t, reg, method=method, numItermax=num_iter_max, stopThr=stop_thr)
    plan = plan.cpu().numpy().astype(np.float64)
    err = np.abs(plan.sum(axis=0) - b).sum() + np.abs(plan.sum(axis=1) - a).sum()
    if err > MARGINAL_TOLERANCE:
        warnings.warn(
            f"Sinkhorn stopped after {num_iter_max} iterations with marginal error {err:.2g}; "
            "increase reg or num_iter_max",
            stacklevel=2,
        )
    return (plan, {"converged": bool(err <= MARGINAL_TOLERANCE), "method": method}) if return_log else plan


def match(plan: np.ndarray, z_stim: np.ndarray, *, mode: str = "argmax") -> tuple[np.ndarray, np.ndarray]:
    """``(z_matched, partner)`` of each row (control cell): ``partner`` is its column with most mass.

    ``"argmax"`` (the release) matches it with that cell, ``"barycentric"`` with the plan-weighted mean.
    """
    check_choice("matching", mode, MATCHINGS)
    partner = np.asarray(plan).argmax(axis=1)
    if mode == "argmax":
        return np.asarray(z_stim)[partner], partner
    return (plan / plan.sum(axis=1, keepdims=True)) @ np.asarray(z_stim, dtype=np.float64), partner


def plan_sharpness(plan: np.ndarray, reference: np.ndarray | None = None) -> pd.Series:
    """How close a plan (rows: control cells) is to a one-to-one matching (a diagnostic).

    ``row_max_share_*``: share of a row's mass on its largest entry (1: a matching; about ``1/m``:
    uniform); ``argmax_agreement``: rows whose argmax equals ``reference``'s (NaN without one).
    """
    plan = np.asarray(plan, dtype=np.float64)
    if plan.ndim != 2 or plan.shape[0] == 0:
        raise ValueError(f"plan must be a non-empty 2-D array; got shape {plan.shape}")
    mass = plan.sum(axis=1)
    share = plan.max(axis=1) / np.where(mass > 0, mass, 1.0)
    agreement = np.nan
    if reference is not None:
        reference = np.asarray(reference)
        if reference.shape != plan.shape:
            raise ValueError(f"reference plan has shape {reference.shape}; expected {plan.shape} like plan")
        agreement = float((plan.argmax(axis=1) == reference.argmax(axis=1)).mean())
    names = ["row_max_share_mean", "row_max_share_median", "argmax_agreement", "n_rows"]
    return pd.Series([float(share.mean()), float(np.median(share)), agreement, plan.shape[0]], index=names)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def attention_weights(
    queries, keys, *, ratio: float = 0.05, weighting: str = "normalised", temperature: float = 0.1, chunk_size=1024
) -> sp.csr_matrix:
    """Sparse attention, queries × keys: each query keeps its ``ceil(ratio · n_keys)`` most cosine-similar keys.

    Weights ``cos / sum(cos)`` (``"normalised"``, the release: negative similarities included) or
    ``softmax(cos / temperature)`` (``"softmax"``, a course option).
    """
    check_choice("weighting", weighting, WEIGHTINGS)
    check_float("temperature", temperature, 0.0, open_low=True)
    ratio = check_float("ratio", ratio, 0.0, 1.0, open_low=True)
    k = min(len(keys), max(1, math.ceil(ratio * len(keys) - 1e-9)))  # ceil(ratio · n_keys), at least 1
    keys_u = _unit_rows(keys)
    rows, cols, vals = [], [], []
    for start in range(0, len(queries), chunk_size):
        sim = _unit_rows(queries[start : start + chunk_size]) @ keys_u.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sim, top, axis=1)
        if weighting == "softmax":
            w = np.exp((s - s.max(axis=1, keepdims=True)) / temperature)
        else:
            w = s.copy()
            sums = w.sum(axis=1)
            if np.any(sums == 0):
                raise ValueError(
                    f"weighting='normalised' (cos / sum cos, as released): the top-{k} cosine similarities of "
                    f"query {start + int(np.flatnonzero(sums == 0)[0])} sum to 0, so they cannot be normalised; "
                    "use weighting='softmax'"
                )
            if np.any(sums < 0):
                warnings.warn(
                    f"weighting='normalised': for {int((sums < 0).sum())} queries the top-{k} cosine similarities "
                    "sum to less than 0, so their weights change sign (as in the release)",
                    stacklevel=2,
                )
        w /= w.sum(axis=1, keepdims=True)
        rows.append(np.repeat(np.arange(start, start + len(s)), k))
        cols.append(top.ravel())
        vals.append(w.ravel())
    shape = (len(queries), len(keys))
    if not rows:
        return sp.csr_matrix(shape)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)


# -- the settings of a prediction ------------------------------------------------------------------
@dataclass(frozen=True)
class SCPRAMOptions:
    """Settings of :meth:`SCPRAM.predict`; the defaults are the release's.

    ``latent``: ``"sample"`` or ``"mean"``; ``reference``: ``"all"`` or ``"shared"`` (only cell
    types with both conditions); ``max_ot_cells``: at most that many cells per pool (subsampled);
    ``attention``: ``"first_cell"`` or ``"per_cell"``. The others go to the building blocks.
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
        check_choice("latent", self.latent, ("sample", "mean"))
        check_choice("reference", self.reference, ("all", "shared"))
        if self.max_ot_cells is not None:
            check_int("max_ot_cells", self.max_ot_cells, 2)
        check_choice("cost", self.cost, COST_METRICS)
        check_choice("cost_normalization", self.cost_normalization, COST_NORMALISATIONS)
        check_choice("ot_method", self.ot_method, OT_METHODS)
        if self.num_iter_max is not None:
            check_int("num_iter_max", self.num_iter_max, 1)
        check_float("reg", self.reg, 0.0, open_low=True)
        check_choice("matching", self.matching, MATCHINGS)
        check_choice("attention", self.attention, ("first_cell", "per_cell"))
        check_float("ratio", self.ratio, 0.0, 1.0, open_low=True)
        check_choice("weighting", self.weighting, WEIGHTINGS)
        check_float("temperature", self.temperature, 0.0, open_low=True)

    @property
    def cost_dtype(self) -> type:
        """float32 for the release's cost (as released), else float64."""
        return np.float32 if (self.cost, self.cost_normalization) == ("euclidean", None) else np.float64


#: The named prediction settings: the release and the course's variants (module docstring).
VARIANTS: dict[str, SCPRAMOptions] = {
    "released": SCPRAMOptions(),
    "percell": SCPRAMOptions(attention="per_cell"),
    "percell_exact": SCPRAMOptions(attention="per_cell", num_iter_max=None),
}


def resolve_options(variant: str | SCPRAMOptions, ratio: float | None = None) -> tuple[str, SCPRAMOptions]:
    """``(name, options)`` of a variant name or options (named after the variant they equal, else ``"custom"``)."""
    if isinstance(variant, SCPRAMOptions):
        name, options = next((k for k, v in VARIANTS.items() if v == variant), "custom"), variant
    elif isinstance(variant, str) and variant in VARIANTS:
        name, options = variant, VARIANTS[variant]
    else:
        raise ValueError(f"variant must be one of {list(VARIANTS)} or an SCPRAMOptions; got {variant!r}")
    return name, options if ratio is None else dataclasses.replace(options, ratio=ratio)


# -- the model -------------------------------------------------------------------------------------
class SCPRAM(BaseModel):
    """scPRAM: per-cell responses from OT-matched cells, combined by attention.

    ``adata``, ``condition_key``, ``cell_type_key``, ``device``: see
    :class:`~tutorial_lib.models.base.BaseModel`; the others are the network's hyperparameters
    (:class:`~tutorial_lib.models.vae.VAE`; defaults: the scPRAM release).
    """

    method_name = "scpram"
    fixed_module_kwargs = {"activation": "relu", "output_activation": "relu"}
    #: the default schedule with the release's Adam settings; lr 5e-4 kept after a comparison with
    #: 2e-3 on a 2,000-cell subsample of Kang 2018, B cells as validation type (best validation
    #: loss 126.0 vs 130.8, one seed; ``benchmarks/README.md``)
    train_defaults = TrainingOptions(lr=5e-4, weight_decay=1e-5)

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
        noise_rate: float = 0.1,
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
        variant: str | SCPRAMOptions = "released",
        ratio: float | None = None,
        seed: int = 0,
        sample: bool | str = False,
        keep_plan: bool = False,
    ) -> AnnData:
        """Predicted stimulated cells, one per target control cell (the steps: module docstring).

        ``cell_type``, ``adata_to_predict``, ``sample``: as in :meth:`SCGEN.predict`. ``variant``: a
        name of :data:`VARIANTS` or an :class:`SCPRAMOptions`; ``ratio``: the fraction of reference
        controls each target attends to (``None``: the variant's); ``seed``: of the posterior
        samples and subsamples; ``keep_plan``: also keep the plan in ``uns["scpram"]["ot_plan"]``.
        Returns AnnData like :meth:`SCGEN.predict`; ``uns["scpram"]`` holds ``variant``, ``settings``,
        ``reference_cells``, ``attention``, ``cell_deltas``, ``ot_pairs`` (each reference control's
        partner) and ``plan`` (sharpness, ``converged``).
        """
        self._check_trained()
        check_sample(sample)
        name, opts = resolve_options(variant, ratio)
        targets = self._targets(cell_type, adata_to_predict, ctrl_key)
        rng = np.random.default_rng(seed)
        # 1. reference pools (indices of training cells)
        ref_idx, stim_idx = self._reference_pools(targets, cell_type, ctrl_key, stim_key, opts, rng)
        # 2. latents, drawn in the release's order
        draw = rng if opts.latent == "sample" else None
        z_ref = self.get_latent(self.adata[ref_idx], rng=draw)
        z_stim = self.get_latent(self.adata[stim_idx], rng=draw)
        z_t = self.get_latent(targets, rng=draw)
        # 3-5. cost, OT plan and matched pairs: one response per reference control cell
        cost, plan, log, partner, cell_deltas = self._matched_responses(z_ref, z_stim, opts)
        # 6. attention over the reference controls: each target's weighted mean response
        first_only = opts.attention == "first_cell"  # the release computes the first target's weights only
        settings = {"ratio": opts.ratio, "weighting": opts.weighting, "temperature": opts.temperature}
        weights = attention_weights(z_t[:1] if first_only else z_t, z_ref, **settings)
        if first_only:
            weights = sp.csr_matrix(sp.vstack([weights] * len(z_t)))
        deltas = np.asarray(weights @ cell_deltas, dtype=np.float32)
        # 7. decode the shifted latents
        z_pred = z_t + deltas
        x_pred = self.decode(z_pred)
        if sample == "residual":
            x_pred = self._add_residual(x_pred, targets, z_t)
        pred = self._prediction(x_pred, targets, cell_type, X_latent=z_pred, delta=deltas, X_latent_control=z_t)
        pred.uns["scpram"] = self._by_products(name, opts, ref_idx, stim_idx, cost, plan, log, partner, weights)
        pred.uns["scpram"]["cell_deltas"] = cell_deltas
        if keep_plan:
            pred.uns["scpram"]["ot_plan"] = plan.T.astype(np.float32)
        return pred

    def _reference_pools(self, targets, cell_type, ctrl_key, stim_key, opts, rng) -> tuple[np.ndarray, np.ndarray]:
        """Step 1: indices of the training cells of the reference control and stimulated pools."""
        types = obs_labels(self.adata, self.cell_type_key)
        conds = obs_labels(self.adata, self.condition_key)
        exclude = [cell_type] if cell_type is not None else []
        ctrl_mask, stim_mask = conds == ctrl_key, conds == stim_key
        if opts.reference == "shared":
            shared = np.isin(
                types, shared_cell_types(types, conds, ctrl_key=ctrl_key, stim_key=stim_key, exclude=exclude)
            )
            ctrl_mask, stim_mask = ctrl_mask & shared, stim_mask & shared
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
        n = opts.max_ot_cells
        if n is not None:  # seeded subsamples
            ref_idx, stim_idx = (
                i if len(i) <= n else np.sort(rng.choice(i, size=n, replace=False)) for i in (ref_idx, stim_idx)
            )
        return ref_idx, stim_idx

    def _copies_of(self, targets: AnnData, candidates: np.ndarray) -> np.ndarray:
        """Mask of the ``candidates`` (a mask of training cells) with a target's expression and shared obs values."""
        idx = np.flatnonzero(candidates)
        copies = np.zeros(len(candidates), dtype=bool)
        if len(idx):
            train = self.adata[idx]
            shared = [c for c in train.obs.columns if c in targets.obs.columns]

            def keys(adata: AnnData) -> list[tuple]:
                x = dense_x(adata, self.var_names) + np.float32(0)  # -0.0 becomes 0.0
                labels = adata.obs[shared].astype(str).itertuples(index=False, name=None)
                return [(row.tobytes(), label) for row, label in zip(x, labels)]

            wanted = set(keys(targets))
            copies[idx] = [k in wanted for k in keys(train)]
        return copies

    def _matched_responses(self, z_ref: np.ndarray, z_stim: np.ndarray, o: SCPRAMOptions):
        """Steps 3-5: cost (stimulated × reference controls), plan, its log, each control's partner and response."""
        cost = cost_matrix(z_stim, z_ref, metric=o.cost, normalization=o.cost_normalization, dtype=o.cost_dtype)
        plan, log = transport_plan(
            cost, method=o.ot_method, num_iter_max=o.num_iter_max, reg=o.reg, device=self.device, return_log=True
        )
        z_matched, partner = match(plan.T, z_stim, mode=o.matching)
        cell_deltas = (np.asarray(z_matched, dtype=np.float64) - z_ref).astype(np.float32)
        return cost, plan, log, partner, cell_deltas

    def _by_products(self, name, opts, ref_idx, stim_idx, cost, plan, log, partner, weights) -> dict[str, Any]:
        """``uns["scpram"]`` of a prediction: settings, reference cells, attention, pairs, plan diagnostics."""
        types = obs_labels(self.adata, self.cell_type_key)
        ctrl_names, stim_names = self.adata.obs_names[ref_idx], self.adata.obs_names[stim_idx]
        plan_cs, rows = plan.T, np.arange(len(partner))
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
        return {
            "variant": name,
            "settings": {k: ("none" if v is None else v) for k, v in dataclasses.asdict(opts).items()},
            "reference_cells": pd.DataFrame({self.cell_type_key: types[ref_idx]}, index=ctrl_names.astype(str)),
            "attention": weights,
            "ot_pairs": ot_pairs,
            "plan": {
                **plan_sharpness(plan_cs).drop("argmax_agreement").to_dict(),
                "converged": log["converged"],
                "n_stim": len(stim_idx),
            },
        }

    def attention_by_cell_type(self, prediction: AnnData) -> pd.DataFrame:
        """Attention mass each target cell of a :meth:`predict` result puts on each reference cell type."""
        info = prediction.uns.get("scpram") if isinstance(prediction, AnnData) else None
        if not info or "attention" not in info or "reference_cells" not in info:
            raise ValueError("pass the AnnData returned by SCPRAM.predict (it needs uns['scpram']['attention'])")
        attention = sp.csr_matrix(info["attention"])
        labels = info["reference_cells"][self.cell_type_key].astype(str).to_numpy()
        if attention.shape != (prediction.n_obs, len(labels)):
            raise ValueError(
                f"uns['scpram']['attention'] has shape {attention.shape}; expected {(prediction.n_obs, len(labels))} "
                "(cells × reference cells): was the prediction subset? Use the full prediction"
            )
        cats, column = np.unique(labels, return_inverse=True)
        onehot = sp.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), column)), shape=(len(labels), len(cats)))
        index = prediction.obs["source_cell"] if "source_cell" in prediction.obs else prediction.obs_names
        return pd.DataFrame((attention @ onehot).toarray(), index=pd.Index(index, dtype=str), columns=cats)
