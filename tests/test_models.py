"""Tests of tutorial_lib.models: shared VAE core, training loop, scGen, scPRAM, baselines, registry.

Small synthetic data (3 cell types × 2 conditions × 60 cells × 50 genes, a known shift of the
first 10 genes in stimulated cells) and tiny networks keep the whole file to seconds.
"""

from __future__ import annotations

import dataclasses
import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import tutorial_lib.models as M
from course_tools import methods
from course_tools.baselines import pca_arithmetic
from course_tools.model_files import load_model, save_model
from tutorial_lib import baselines
from tutorial_lib.config import DATA_DIR
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.models import SCGEN, SCPRAM, StopTraining
from tutorial_lib.models.scgen import balanced_indices
from tutorial_lib.models.scpram import (
    VARIANTS,
    SCPRAMOptions,
    attention_weights,
    cost_matrix,
    match,
    transport_plan,
)

TINY = {"n_hidden": 32, "n_latent": 8}
HELD_OUT = "A"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def make_synthetic(n_cells: int = 60, n_genes: int = 50, seed: int = 0, sparse: bool = False) -> ad.AnnData:
    """Three cell types with their own baseline; stimulation adds 1.5 to genes 0-9."""
    rng = np.random.default_rng(seed)
    rows, obs = [], []
    shift = np.zeros(n_genes)
    shift[:10] = 1.5
    for t in ("A", "B", "C"):
        base = rng.gamma(2.0, 0.5, size=n_genes)
        for cond in ("control", "stimulated"):
            mu = base + (shift if cond == "stimulated" else 0.0)
            rows.append(np.clip(mu + rng.normal(0, 0.3, size=(n_cells, n_genes)), 0, None) + 0.01)
            obs += [(t, cond, f"d{i % 2}") for i in range(n_cells)]
    x = np.vstack(rows).astype(np.float32)
    obs = pd.DataFrame(obs, columns=["cell_type", "condition", "batch"], index=[f"cell{i}" for i in range(len(obs))])
    adata = ad.AnnData(sp.csr_matrix(x) if sparse else x, obs=obs)
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    return adata


@pytest.fixture(scope="module")
def full() -> ad.AnnData:
    return make_synthetic()


@pytest.fixture(scope="module")
def train_data(full) -> ad.AnnData:
    """All cells except the held-out type's stimulated ones."""
    keep = ~((full.obs.cell_type == HELD_OUT) & (full.obs.condition == "stimulated"))
    return full[keep.to_numpy()].copy()


@pytest.fixture(scope="module")
def ctrl_a(full) -> ad.AnnData:
    return full[((full.obs.cell_type == HELD_OUT) & (full.obs.condition == "control")).to_numpy()].copy()


@pytest.fixture(scope="module")
def scgen(train_data) -> SCGEN:
    model = SCGEN(train_data, **TINY)
    model.train(max_epochs=3, progress_bar=False)
    return model


@pytest.fixture(scope="module")
def scpram(train_data) -> SCPRAM:
    model = SCPRAM(train_data, **TINY)
    model.train(max_epochs=3, progress_bar=False)
    return model


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.module.state_dict().items()}


# -- shared core --------------------------------------------------------------------------
def test_vae_forward_shapes():
    vae = M.VAE(50, n_latent=4, n_layers=3, n_hidden=16, noise_rate=0.1)
    x = torch.rand(10, 50)
    out = vae(x)
    assert out["x_hat"].shape == (10, 50) and out["loss"].ndim == 0
    assert out["recon"].item() >= 0 and out["kl"].item() >= 0
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (10, 4)
    assert sum(isinstance(m, torch.nn.Linear) for m in vae.encoder) == 3


def test_noise_only_in_training():
    vae = M.VAE(20, n_latent=3, n_hidden=8, use_batch_norm=False, noise_rate=0.5).eval()
    x = torch.rand(4, 20)
    assert torch.equal(vae.corrupt(x), x)
    assert not torch.equal(vae.train().corrupt(x), x)


@pytest.mark.parametrize("cls", [SCGEN, SCPRAM])
def test_model_shapes(cls, train_data, ctrl_a):
    model = cls(train_data, **TINY)
    model.train(max_epochs=2, progress_bar=False)
    assert model.get_latent().shape == (train_data.n_obs, 8)
    assert model.get_latent(ctrl_a).shape == (ctrl_a.n_obs, 8)
    pred = model.predict(HELD_OUT)
    assert pred.shape == ctrl_a.shape
    assert list(pred.var_names) == list(train_data.var_names)
    assert (pred.obs["condition"] == "predicted").all()
    assert (pred.obs["cell_type"] == HELD_OUT).all()
    assert (pred.obs["method"] == cls.method_name).all()
    assert np.all(pred.X >= 0)
    assert pred.obsm["X_latent"].shape == (ctrl_a.n_obs, 8)


def test_sparse_input_and_adata_to_predict(train_data, ctrl_a):
    sparse = train_data.copy()
    sparse.X = sp.csr_matrix(sparse.X)
    model = SCGEN(sparse, **TINY)
    model.train(max_epochs=1, progress_bar=False)
    pred = model.predict(adata_to_predict=ctrl_a)
    assert pred.n_obs == ctrl_a.n_obs and (pred.obs["source_cell"] == ctrl_a.obs_names).all()


def test_loss_decreases(train_data):
    model = SCGEN(train_data, **TINY)
    hist = model.train(max_epochs=15, lr=3e-3, early_stopping=False, progress_bar=False)
    frame = hist.to_frame()
    assert len(frame) == 15
    assert frame["train_loss"].iloc[-1] < 0.5 * frame["train_loss"].iloc[0]
    assert frame["val_loss"].iloc[-1] < frame["val_loss"].iloc[0]
    assert {"train_recon", "train_kl", "val_recon", "val_kl"} <= set(frame.columns)


def test_early_stopping_stops(train_data):
    model = SCGEN(train_data, **TINY)
    # patience and minimum budget count optimizer steps; here one epoch (and validation pass) is 3 steps
    options = M.TrainingOptions(max_epochs=50, min_steps=0, patience=6, min_delta=1e9)
    hist = M.train_vae(model.module, train_data.X, options, progress_bar=False)
    assert hist.stopped_early and hist.step == [3, 6, 9]


def test_callback_stop_and_raise(train_data):
    seen = []

    def stop_at_1(epoch, val_loss):
        seen.append((epoch, val_loss))
        if epoch == 1:
            raise StopTraining

    model = SCGEN(train_data, **TINY)
    hist = model.train(max_epochs=10, on_epoch_end=stop_at_1, progress_bar=False)
    assert len(hist) == 2 and hist.stopped_early and math.isfinite(seen[0][1])

    class Pruned(Exception):
        pass

    def prune(epoch, val_loss):
        raise Pruned

    model = SCGEN(train_data, **TINY)
    with pytest.raises(Pruned):
        model.train(max_epochs=10, on_epoch_end=prune, progress_bar=False)
    assert len(model.history_) == 1 and model.is_trained and not model.module.training


@pytest.mark.parametrize("cls", [SCGEN, SCPRAM])
def test_seed_reproducibility(cls, train_data):
    preds, states = [], []
    for seed in (0, 0, 1):
        model = cls(train_data, **TINY)
        model.train(max_epochs=2, seed=seed, progress_bar=False)
        states.append(state(model))
        preds.append(model.predict(HELD_OUT, seed=seed).X)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    np.testing.assert_array_equal(preds[0], preds[1])
    assert not np.allclose(preds[0], preds[2])


@pytest.mark.parametrize("cls", [SCGEN, SCPRAM])
def test_save_load_roundtrip(cls, train_data, tmp_path, monkeypatch):
    model = cls(train_data, **TINY, n_layers=1)
    model.train(max_epochs=2, progress_bar=False)
    save_model(model, tmp_path / "m")
    with pytest.raises(FileExistsError):
        save_model(model, tmp_path / "m")

    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = load_model(cls, tmp_path / "m", train_data)
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert loaded.module_kwargs == model.module_kwargs and loaded.is_trained
    assert len(loaded.history_) == 2
    np.testing.assert_array_equal(model.predict(HELD_OUT).X, loaded.predict(HELD_OUT).X)
    np.testing.assert_array_equal(model.get_latent(), loaded.get_latent())
    with pytest.raises(DataValidationError):
        load_model(cls, tmp_path / "m", train_data[:, :10].copy())
    other = SCPRAM if cls is SCGEN else SCGEN
    with pytest.raises(ValueError, match="holds a"):
        load_model(other, tmp_path / "m", train_data)


def test_cuda_chosen_when_available(train_data, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert SCGEN(train_data, **TINY).device == "cuda"
    assert SCGEN(train_data, **TINY, device="cpu").device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert SCPRAM(train_data, **TINY).device == "cpu"


# -- scGen ----------------------------------------------------------------------------------
def test_balanced_indices():
    types = np.array(["A"] * 5 + ["B"] * 2 + ["A"] * 3 + ["B"] * 5 + ["C"] * 4)
    conds = np.array(["control"] * 7 + ["stimulated"] * 8 + ["control"] * 4)
    ctrl, stim = balanced_indices(types, conds, seed=0)
    # C has no stimulated cells: excluded; both conditions balanced to 2 × 5 cells
    assert len(ctrl) == len(stim) == 10
    assert set(types[ctrl]) == set(types[stim]) == {"A", "B"}
    assert np.all(conds[ctrl] == "control") and np.all(conds[stim] == "stimulated")
    assert (types[ctrl] == "A").sum() == (types[ctrl] == "B").sum() == 5
    assert (types[stim] == "A").sum() == (types[stim] == "B").sum() == 5
    again = balanced_indices(types, conds, seed=0)
    np.testing.assert_array_equal(ctrl, again[0])
    np.testing.assert_array_equal(stim, again[1])
    ctrl_b, _ = balanced_indices(types, conds, restrict_to=["B"], seed=0)
    assert set(types[ctrl_b]) == {"B"}


def test_scgen_delta_is_balanced_mean_difference(scgen, train_data):
    ctrl, stim = balanced_indices(
        train_data.obs["cell_type"].astype(str).to_numpy(), train_data.obs["condition"].astype(str).to_numpy(), seed=3
    )
    latent = scgen.get_latent()
    delta = latent[stim].mean(0) - latent[ctrl].mean(0)
    pred = scgen.predict(HELD_OUT, seed=3)
    np.testing.assert_allclose(pred.uns["scgen"]["delta"], delta, rtol=1e-5, atol=1e-6)
    assert not np.allclose(scgen.predict(HELD_OUT, seed=4).uns["scgen"]["delta"], delta)  # the resampling is seeded
    np.testing.assert_allclose(pred.obsm["delta"], np.broadcast_to(delta, pred.obsm["delta"].shape))
    np.testing.assert_allclose(pred.obsm["X_latent"], scgen.get_latent(pred_source(train_data)) + delta, atol=1e-5)


def pred_source(train_data):
    mask = (train_data.obs.cell_type == HELD_OUT) & (train_data.obs.condition == "control")
    return train_data[mask.to_numpy()]


def test_scgen_recovers_shift_direction(full, train_data, ctrl_a):
    model = SCGEN(train_data, n_hidden=64, n_latent=10)
    model.train(lr=3e-3, progress_bar=False, seed=0)  # the default schedule: to convergence
    pred = model.predict(HELD_OUT)
    stim_a = full[((full.obs.cell_type == HELD_OUT) & (full.obs.condition == "stimulated")).to_numpy()]
    true = stim_a.X.mean(0) - ctrl_a.X.mean(0)
    r = np.corrcoef(true, pred.X.mean(0) - ctrl_a.X.mean(0))[0, 1]
    assert r > 0.5, r
    top = model.top_delta_genes(pred, n=10)
    assert list(top.columns) == ["gene", "effect", "abs_effect", "direction", "rank"]
    assert top["abs_effect"].is_monotonic_decreasing
    assert len(set(top["gene"]) & {f"g{i}" for i in range(10)}) >= 5


def test_decode_delta(scgen, train_data):
    pred = scgen.predict(HELD_OUT)
    effect = scgen.decode_delta(pred)
    assert effect.shape == (50,) and list(effect.index) == list(scgen.var_names)
    z_ref = scgen.get_latent(pred_source(train_data)).mean(0)
    delta = pred.uns["scgen"]["delta"]
    np.testing.assert_allclose(effect.to_numpy(), scgen.decode(z_ref + delta)[0] - scgen.decode(z_ref)[0], atol=1e-5)
    np.testing.assert_allclose(scgen.decode_delta(delta=delta, z_ref=z_ref).to_numpy(), effect.to_numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="prediction"):
        scgen.decode_delta()
    with pytest.raises(TypeError, match="AnnData returned by predict"):
        scgen.top_delta_genes(10)


def test_batch_removal(scgen, train_data):
    out = scgen.batch_removal(train_data, batch_key="batch")
    assert out.shape == train_data.shape
    z = out.obsm["X_latent_corrected"]
    for t in ("A", "B", "C"):
        sel = (train_data.obs.cell_type == t).to_numpy()
        means = [z[sel & (train_data.obs.batch == b).to_numpy()].mean(0) for b in ("d0", "d1")]
        np.testing.assert_allclose(means[0], means[1], atol=1e-5)
        np.testing.assert_allclose(means[0], out.obsm["X_latent"][sel].mean(0), atol=1e-5)
    with pytest.raises(DataValidationError):
        scgen.batch_removal(train_data, batch_key="nope")


# -- scPRAM: OT and attention maths ---------------------------------------------------------
@pytest.mark.parametrize("method", ["sinkhorn_log", "emd"])
def test_plan_marginals_uniform(method):
    rng = np.random.default_rng(0)
    cost = cost_matrix(
        rng.normal(size=(30, 4)), rng.normal(size=(20, 4)) + 1, metric="sqeuclidean", normalization="max"
    )
    assert cost.max() == pytest.approx(1.0)
    plan = transport_plan(cost, method=method, reg=0.05)
    np.testing.assert_allclose(plan.sum(1), np.full(30, 1 / 30), atol=1e-6)
    np.testing.assert_allclose(plan.sum(0), np.full(20, 1 / 20), atol=1e-6)


@pytest.mark.parametrize("method", ["sinkhorn_log", "emd"])
def test_matching_recovers_permutation(method):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6))
    perm = rng.permutation(40)
    y = x[perm] + 0.3  # stimulated = shifted, shuffled copy of control
    plan = transport_plan(cost_matrix(x, y, metric="sqeuclidean", normalization="max"), method=method, reg=0.002)
    z_matched, partner = match(plan, y)
    np.testing.assert_array_equal(partner, np.argsort(perm))
    np.testing.assert_allclose(z_matched - x, 0.3, atol=1e-9)
    bary, _ = match(plan, y, mode="barycentric")
    np.testing.assert_allclose(bary - x, 0.3, atol=0.05)


@pytest.mark.parametrize("ratio", [0.01, 0.05, 0.3, 1.0])
def test_attention_rows(ratio):
    rng = np.random.default_rng(2)
    w = attention_weights(rng.normal(size=(15, 5)), rng.normal(size=(101, 5)), ratio=ratio, weighting="softmax")
    k = math.ceil(ratio * 101)
    np.testing.assert_allclose(np.asarray(w.sum(1)).ravel(), 1.0)
    assert np.all(np.diff(w.indptr) == k)
    assert np.all(w.data > 0)


def test_attention_picks_most_similar():
    keys = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [-1.0, 0.0]])
    w = attention_weights(np.array([[1.0, 0.05]]), keys, ratio=0.5).toarray()[0]
    assert set(np.flatnonzero(w)) == {0, 2}


# -- scPRAM model ---------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["released", "percell"])
def test_scpram_attention_and_plan(scpram, ctrl_a, variant):
    options = dataclasses.replace(VARIANTS[variant], reference="shared")
    pred = scpram.predict(HELD_OUT, variant=options, ratio=0.1, keep_plan=True)
    weights = pred.uns["scpram"]["attention"]
    n_ref = 120  # B and C control cells; A (held out, no stimulated cells) is no reference
    assert weights.shape == (ctrl_a.n_obs, n_ref)
    assert np.all(np.diff(weights.indptr) == 12)
    by_type = scpram.attention_by_cell_type(pred)
    assert list(by_type.columns) == ["B", "C"] and by_type.shape[0] == ctrl_a.n_obs
    np.testing.assert_allclose(by_type.sum(1), 1.0, rtol=1e-6)
    info = pred.uns["scpram"]
    assert info["variant"] == "custom" and info["settings"] == {
        **dataclasses.asdict(options),
        "max_ot_cells": "none",
        "cost_normalization": "none",
        "ratio": 0.1,
    }
    assert info["ot_plan"].shape == (120, 120)
    np.testing.assert_allclose(info["ot_plan"].sum(1), 1 / 120, rtol=1e-3)
    assert info["plan"]["converged"] and info["plan"]["row_max_share_mean"] == pytest.approx(1.0)  # EMD, n = m
    pairs = info["ot_pairs"]
    assert len(pairs) == 120 and set(pairs.columns) >= {"ctrl_cell", "stim_cell", "cost", "plan_mass"}
    np.testing.assert_allclose(pred.obsm["delta"], weights @ info["cell_deltas"], rtol=1e-5, atol=1e-6)


def test_scpram_first_cell_vs_per_cell(scpram):
    first = scpram.predict(HELD_OUT, variant=SCPRAMOptions(attention="first_cell")).obsm["delta"]
    per_cell = scpram.predict(HELD_OUT, variant=SCPRAMOptions(attention="per_cell")).obsm["delta"]
    np.testing.assert_allclose(first, np.broadcast_to(first[0], first.shape))
    np.testing.assert_allclose(first[0], per_cell[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(per_cell, per_cell[0])


def test_scpram_options_and_subsampling(scpram):
    options = SCPRAMOptions(
        ot_method="sinkhorn_log",
        matching="barycentric",
        max_ot_cells=50,
        weighting="softmax",
        latent="mean",
        reference="shared",
    )
    pred = scpram.predict(HELD_OUT, variant=options, keep_plan=True)
    assert pred.uns["scpram"]["ot_plan"].shape == (50, 50) and pred.uns["scpram"]["attention"].shape[1] == 50
    assert np.isfinite(pred.X).all()


# -- baselines and registry -----------------------------------------------------------------
def test_no_change_returns_controls(train_data, ctrl_a):
    pred = baselines.no_change(train_data, ctrl_a, cell_type=HELD_OUT)
    np.testing.assert_array_equal(pred.X, ctrl_a.X)
    assert (pred.obs["method"] == "no_change").all()


def test_mean_shift_matches_hand_computation(train_data, ctrl_a):
    pred = baselines.mean_shift(train_data, ctrl_a, cell_type=HELD_OUT)
    obs = train_data.obs
    ref = (obs.cell_type != HELD_OUT).to_numpy()
    delta = train_data.X[ref & (obs.condition == "stimulated").to_numpy()].mean(0) - train_data.X[
        ref & (obs.condition == "control").to_numpy()
    ].mean(0)
    np.testing.assert_allclose(pred.X, np.clip(ctrl_a.X + delta, 0, None), rtol=1e-5, atol=1e-5)


def test_pca_arithmetic_full_rank_equals_mean_shift(train_data, ctrl_a):
    shift = baselines.mean_shift(train_data, ctrl_a, cell_type=HELD_OUT).X
    pca = pca_arithmetic(train_data, ctrl_a, cell_type=HELD_OUT, n_components=50).X
    np.testing.assert_allclose(pca, shift, atol=1e-3)
    low = pca_arithmetic(train_data, ctrl_a, cell_type=HELD_OUT, n_components=3).X
    assert low.shape == shift.shape and np.all(low >= 0)


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_registry(name, train_data, ctrl_a):
    extra = dict(TINY) if name.startswith(("scgen", "scpram")) else {}
    pred = methods.get_method(name)(train_data, ctrl_a, cell_type=HELD_OUT, seed=0, max_epochs=1, **extra)
    assert pred.shape == ctrl_a.shape
    assert (pred.obs["condition"] == "predicted").all()
    assert (pred.obs["cell_type"] == HELD_OUT).all()
    assert (pred.obs["method"] == name).all()


def test_registry_errors(train_data, ctrl_a):
    with pytest.raises(ValueError, match="Unknown method"):
        methods.get_method("magic")
    with pytest.raises(TypeError, match="unknown argument"):
        methods.get_method("scgen")(train_data, ctrl_a, cell_type=HELD_OUT, max_epochs=1, not_a_setting=3)
    pred, model = methods.get_method("scpram")(
        train_data, ctrl_a, cell_type=HELD_OUT, max_epochs=1, return_model=True, ratio=0.2, batch_size=64, **TINY
    )
    assert isinstance(model, SCPRAM) and np.all(np.diff(pred.uns["scpram"]["attention"].indptr) == 24)


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (SCGEN, {"n_layers": 0}, "n_layers"),
        (SCGEN, {"n_latent": -1}, "n_latent"),
        (SCGEN, {"n_hidden": 2.5}, "n_hidden"),
        (SCGEN, {"dropout_rate": 1.0}, "dropout_rate"),
        (SCPRAM, {"noise_rate": -0.1}, "noise_rate"),
        (SCPRAM, {"kl_weight": -1}, "kl_weight"),
    ],
)
def test_bad_hyperparameters(cls, kwargs, name, train_data):
    with pytest.raises(ValueError, match=name) as err:
        cls(train_data, **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"ratio": 0}, "ratio"),
        ({"ratio": 1.5}, "ratio"),
        ({"temperature": 0}, "temperature"),
        ({"reg": -1.0}, "reg"),
        ({"attention": "all"}, "attention"),
        ({"ot_method": "magic"}, "ot_method"),
        ({"max_ot_cells": 1}, "max_ot_cells"),
    ],
)
def test_bad_predict_arguments(scpram, kwargs, name):
    with pytest.raises(ValueError, match=name):
        scpram.predict(HELD_OUT, variant=SCPRAMOptions(**kwargs))
    if name == "ratio":  # the one setting predict also takes by keyword
        with pytest.raises(ValueError, match=name):
            scpram.predict(HELD_OUT, **kwargs)
    with pytest.raises(ValueError, match="variant"):
        scpram.predict(HELD_OUT, variant="published")


def test_bad_training_arguments(train_data):
    model = SCGEN(train_data, **TINY)
    with pytest.raises(ValueError, match="batch_size"):
        model.train(max_epochs=1, batch_size=1)
    with pytest.raises(ValueError, match="validation_fraction"):
        model.train(max_epochs=1, validation_fraction=1.0)
    with pytest.raises(ValueError, match="adam_eps"):
        model.train(max_epochs=1, adam_eps=0.0)


def test_optimizer_settings_per_model(train_data, monkeypatch):
    seen = []

    class SpyAdam(torch.optim.Adam):
        def __init__(self, params, **kwargs):
            seen.append(kwargs)
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", SpyAdam)
    SCGEN(train_data, **TINY).train(max_epochs=1, progress_bar=False)
    SCPRAM(train_data, **TINY).train(max_epochs=1, progress_bar=False)
    SCGEN(train_data, **TINY).train(max_epochs=1, adam_eps=1e-8, weight_decay=0.0, progress_bar=False)
    assert seen == [
        {"lr": 1e-3, "weight_decay": 1e-6, "eps": 0.01},  # scvi-tools' JAX training plan, as pertpy's Scgen
        {"lr": 5e-4, "weight_decay": 1e-5, "eps": 1e-8},  # scpram 0.0.3
        {"lr": 1e-3, "weight_decay": 0.0, "eps": 1e-8},
    ]


def test_data_validation(train_data, scgen, ctrl_a):
    with pytest.raises(DataValidationError, match="celltype"):
        SCGEN(train_data, cell_type_key="celltype")
    bad = train_data.copy()
    bad.obs["condition"] = bad.obs["condition"].astype(str).replace("stimulated", "IFN")
    with pytest.raises(DataValidationError):
        SCGEN(bad)
    counts = train_data.copy()
    counts.X = np.round(counts.X * 100)
    with pytest.raises(DataValidationError):
        SCGEN(counts)
    with pytest.raises(DataValidationError, match="Unknown cell type"):
        scgen.predict("Z")
    with pytest.raises(DataValidationError, match="genes"):
        scgen.predict(adata_to_predict=ctrl_a[:, :20].copy())
    with pytest.raises(DataValidationError):
        baselines.mean_shift(train_data[train_data.obs.condition.to_numpy() == "control"].copy(), ctrl_a)
    untrained = SCGEN(train_data, **TINY)
    with pytest.raises(RuntimeError, match="not trained"):
        untrained.predict(HELD_OUT)


# -- predict(sample=...) and presets --------------------------------------------------------
@pytest.mark.parametrize("fixture", ["scgen", "scpram"])
def test_predict_sample_modes(fixture, request, ctrl_a):
    model = request.getfixturevalue(fixture)
    kw = {"variant": SCPRAMOptions(latent="mean")} if fixture == "scpram" else {}  # released scPRAM samples latents
    base = model.predict(HELD_OUT, **kw)
    assert np.array_equal(model.predict(HELD_OUT, sample=False, **kw).X, base.X)  # default unchanged
    res = model.predict(HELD_OUT, sample="residual", **kw)
    # residual: decoded prediction + (x - reconstruction), clipped at 0
    x = np.asarray(ctrl_a.X)
    recon = model.decode(model.get_latent(ctrl_a))
    np.testing.assert_allclose(res.X, np.clip(base.X + x - recon, 0, None), rtol=1e-5, atol=1e-5)
    assert (res.X >= 0).all() and res.shape == base.shape
    for bad in ("bogus", "posterior", True):
        with pytest.raises(ValueError, match="sample"):
            model.predict(HELD_OUT, sample=bad)


def test_train_presets(train_data):
    from course_tools.methods import get_spec
    from course_tools.presets import predict_preset, train_preset

    for method, cls in (("scgen", SCGEN), ("scpram", SCPRAM)):
        assert set(get_spec(method).train_presets) == {"default", "capped", "reference"}
        assert train_preset(method) == {}  # the default: each model's train_defaults, to convergence
        for setting in ("default", "capped", "reference"):
            kw = train_preset(method, setting)
            assert set(kw) <= {f.name for f in dataclasses.fields(cls.train_defaults)}
            kw["max_epochs"] = 1  # a copy: the preset itself is unchanged
            assert "max_epochs" not in train_preset(method, "default")
            model = cls(train_data, **TINY)
            model.train(**kw, progress_bar=False)
            assert model.history_.epoch[-1] == 1.0
            pred = model.predict(HELD_OUT, **(predict_preset(method, "reference") if setting == "reference" else {}))
            assert np.isfinite(pred.X).all()
    capped = get_spec("scpram").train_presets["capped"]
    assert train_preset("scpram", "capped", max_epochs=2) == {**capped, "max_epochs": 2}
    assert train_preset("scgen", max_epochs=3) == {"max_epochs": 3}
    assert train_preset("scpram", "capped", with_epochs=False) == {k: v for k, v in capped.items() if k != "max_epochs"}
    with pytest.raises(ValueError, match="contradict"):
        train_preset("scgen", max_epochs=2, with_epochs=False)
    with pytest.raises(ValueError, match="setting"):
        train_preset("scgen", "slow")
    with pytest.raises(ValueError, match="method"):
        train_preset("cpa")


# -- real data ------------------------------------------------------------------------------
@pytest.mark.skipif(not (DATA_DIR / "kang2018_mini.h5ad").exists(), reason="mini Kang 2018 subset not present")
def test_real_data_smoke(mini_counts):
    from tutorial_lib.data import prepare_holdout, split_views

    held_out = "CD4+ T cells"
    parts = split_views(prepare_holdout(mini_counts, held_out, n_top_genes=500))  # genes from training cells only
    for name in ("scgen", "scpram"):
        pred = methods.get_method(name)(
            parts.train, parts.ctrl, cell_type=held_out, max_epochs=2, n_hidden=64, n_latent=16
        )
        assert pred.shape == parts.ctrl.shape and np.isfinite(pred.X).all()
