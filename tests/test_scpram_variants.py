"""scPRAM's named variants against hand computations, pure prediction, and variants sharing a model.

The released steps (scpram 0.0.3 ``SCPRAM.predict``) are recomputed here with numpy/POT directly;
the comparison with the release itself (same weights) is ``benchmarks/compare_scpram_release.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import numpy as np
import ot
import pytest
import torch
from test_models import HELD_OUT, TINY, make_synthetic

from course_tools import methods
from course_tools.tuning.study import predict_defaults
from tutorial_lib.models import SCGEN, SCPRAM
from tutorial_lib.models.scpram import (
    VARIANTS,
    SCPRAMOptions,
    attention_weights,
    cost_matrix,
    match,
    plan_sharpness,
    transport_plan,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def full():
    return make_synthetic()


@pytest.fixture(scope="module")
def train_data(full):
    keep = ~((full.obs.cell_type == HELD_OUT) & (full.obs.condition == "stimulated"))
    return full[keep.to_numpy()].copy()


@pytest.fixture(scope="module")
def ctrl_a(full):
    return full[((full.obs.cell_type == HELD_OUT) & (full.obs.condition == "control")).to_numpy()].copy()


@pytest.fixture(scope="module")
def model(train_data):
    m = SCPRAM(train_data, **TINY)
    m.train(max_epochs=3, progress_bar=False)
    return m


def state(model):
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}


# -- the released steps, one by one ----------------------------------------------------------
def test_exact_emd_recovers_permutation_in_release_orientation():
    rng = np.random.default_rng(0)
    ctrl = rng.normal(size=(30, 5)).astype(np.float32)
    perm = rng.permutation(30)
    stim = ctrl[perm] + np.float32(0.2)  # stim[i] is ctrl[perm[i]] shifted
    cost_sc = cost_matrix(stim, ctrl, metric="euclidean", normalization=None, dtype=np.float32)
    np.testing.assert_allclose(cost_sc, np.linalg.norm(stim[:, None] - ctrl[None], axis=2), rtol=1e-5)
    plan_sc = transport_plan(cost_sc, method="emd", num_iter_max=100_000)
    partner = plan_sc.argmax(axis=0)  # the release: each control column's stimulated row
    np.testing.assert_array_equal(stim[partner], ctrl + np.float32(0.2))
    np.testing.assert_array_equal(partner, np.argsort(perm))


def test_released_weights_are_cos_over_sum_cos_unclipped():
    keys = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    w = attention_weights(np.array([[1.0, 0.0]]), keys, ratio=0.5, weighting="normalised").toarray()[0]
    cos = np.array([1.0, 1 / np.sqrt(2)])
    np.testing.assert_allclose(w[:2], cos / cos.sum())
    assert w[2] == 0 and w[3] == 0
    # a negative similarity among the top k keeps its sign (the release does not clip)
    keys = np.array([[1.0, 0.0], [-0.5, 1.0]])
    w = attention_weights(np.array([[1.0, 0.0]]), keys, ratio=1.0, weighting="normalised").toarray()[0]
    cos = np.array([1.0, -0.5 / np.sqrt(1.25)])
    np.testing.assert_allclose(w, cos / cos.sum())
    assert w[1] < 0
    with pytest.warns(UserWarning, match="change sign"):
        attention_weights(np.array([[-1.0, 0.0]]), keys, ratio=1.0, weighting="normalised")


def test_released_prediction_matches_hand_computation(model, train_data, ctrl_a):
    """Means instead of samples (latent="mean") so that the steps can be recomputed exactly."""
    pred = model.predict(HELD_OUT, adata_to_predict=ctrl_a, variant=SCPRAMOptions(latent="mean"))
    types, conds = train_data.obs.cell_type.to_numpy(), train_data.obs.condition.to_numpy()
    z = model.get_latent()
    ctrl = z[(types != HELD_OUT) & (conds == "control")]
    stim = z[conds == "stimulated"]  # every stimulated training cell, as released
    m = ot.dist(stim, ctrl, metric="euclidean")
    g = ot.emd(np.full(len(stim), 1 / len(stim)), np.full(len(ctrl), 1 / len(ctrl)), m, numItermax=100_000)
    deltas = stim[g.argmax(axis=0)] - ctrl
    z_t = model.get_latent(ctrl_a)
    cos = (z_t[0] @ ctrl.T) / (np.linalg.norm(z_t[0]) * np.linalg.norm(ctrl, axis=1))
    k = int(np.ceil(0.05 * len(ctrl)))
    top = np.argsort(cos)[-k:]
    delta = (cos[top] / cos[top].sum()) @ deltas[top]
    np.testing.assert_allclose(pred.obsm["delta"], np.broadcast_to(delta, pred.obsm["delta"].shape), atol=1e-5)
    np.testing.assert_allclose(pred.X, model.decode(z_t + delta), atol=1e-4)
    info = pred.uns["scpram"]
    assert info["settings"]["attention"] == "first_cell" and info["settings"]["max_ot_cells"] == "none"
    assert info["attention"].shape == (ctrl_a.n_obs, len(ctrl))
    assert (info["ot_pairs"]["stim_cell"].to_numpy() == train_data.obs_names[conds == "stimulated"][g.argmax(0)]).all()


def test_released_latents_are_seeded_posterior_samples(model, ctrl_a, train_data):
    pred = model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=5)
    types, conds = train_data.obs.cell_type.to_numpy(), train_data.obs.condition.to_numpy()
    n_ctrl, n_stim = int(((types != HELD_OUT) & (conds == "control")).sum()), int((conds == "stimulated").sum())
    rng = np.random.default_rng(5)
    rng.standard_normal((n_ctrl, 8))  # reference controls, then stimulated cells, then targets
    rng.standard_normal((n_stim, 8))
    eps = rng.standard_normal((ctrl_a.n_obs, 8)).astype(np.float32)
    with torch.no_grad():
        mean, logvar = model.module.encode(torch.as_tensor(np.asarray(ctrl_a.X)))
    expected = mean.numpy() + np.exp(0.5 * logvar.numpy()) * eps
    np.testing.assert_allclose(pred.obsm["X_latent_control"], expected, rtol=1e-5, atol=1e-5)
    again = model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=5)
    np.testing.assert_array_equal(again.X, pred.X)  # same seed, same numbers
    assert not np.array_equal(model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=6).X, pred.X)


def test_percell_differs_from_released_only_in_attention(model, ctrl_a):
    released = model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=1)
    percell = model.predict(HELD_OUT, adata_to_predict=ctrl_a, variant="percell", seed=1)
    np.testing.assert_array_equal(released.obsm["X_latent_control"], percell.obsm["X_latent_control"])
    np.testing.assert_array_equal(released.uns["scpram"]["cell_deltas"], percell.uns["scpram"]["cell_deltas"])
    np.testing.assert_allclose(released.obsm["delta"][0], percell.obsm["delta"][0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(percell.obsm["delta"], percell.obsm["delta"][0])
    # an explicit setting overrides the variant's
    same = model.predict(HELD_OUT, adata_to_predict=ctrl_a, variant=SCPRAMOptions(attention="per_cell"), seed=1)
    np.testing.assert_array_equal(same.X, percell.X)
    assert same.uns["scpram"]["variant"] == "percell"  # the options of a named variant carry its name
    with pytest.raises(ValueError, match="variant"):
        model.predict(HELD_OUT, variant="published")
    with pytest.raises(ValueError, match="sample must be"):
        model.predict(HELD_OUT, sample="posterior")


def test_building_block_defaults_are_the_release():
    """Called with no options, the building blocks are scpram 0.0.3's steps; SCPRAMOptions() is the release."""
    defaults = {
        f.__name__: {k: p.default for k, p in inspect.signature(f).parameters.items()}
        for f in (cost_matrix, transport_plan, match, attention_weights)
    }
    assert (defaults["cost_matrix"]["metric"], defaults["cost_matrix"]["normalization"]) == ("euclidean", None)
    assert defaults["cost_matrix"]["dtype"] is np.float32  # the release's ot.dist on float32 latents
    assert (defaults["transport_plan"]["method"], defaults["transport_plan"]["num_iter_max"]) == ("emd", 100_000)
    assert defaults["match"]["mode"] == "argmax"
    assert (defaults["attention_weights"]["ratio"], defaults["attention_weights"]["weighting"]) == (0.05, "normalised")
    released = SCPRAMOptions()
    assert VARIANTS["released"] == released
    assert (released.cost, released.cost_normalization, released.cost_dtype) == (
        defaults["cost_matrix"]["metric"],
        defaults["cost_matrix"]["normalization"],
        defaults["cost_matrix"]["dtype"],
    )
    assert (released.ot_method, released.num_iter_max) == ("emd", defaults["transport_plan"]["num_iter_max"])
    assert (released.matching, released.ratio, released.weighting) == (
        defaults["match"]["mode"],
        defaults["attention_weights"]["ratio"],
        defaults["attention_weights"]["weighting"],
    )
    assert (released.latent, released.reference, released.attention) == ("sample", "all", "first_cell")
    predict = inspect.signature(SCPRAM.predict).parameters
    assert predict["variant"].default == "released" and predict["ratio"].default is None
    assert predict_defaults(SCPRAM)["ratio"] == released.ratio


def test_default_prediction_is_the_building_blocks_called_without_options(model, train_data, ctrl_a):
    """predict() equals the release's steps written out with the building blocks; each variant is one changed line."""
    pred = model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=7)
    obs = train_data.obs
    ref = train_data[((obs.condition == "control") & (obs.cell_type != HELD_OUT)).to_numpy()]
    stim = train_data[(obs.condition == "stimulated").to_numpy()]
    rng = np.random.default_rng(7)  # predict(seed=7) draws the posterior samples in this order
    z_ref, z_stim, z_t = (model.get_latent(cells, rng=rng) for cells in (ref, stim, ctrl_a))
    cost = cost_matrix(z_stim, z_ref)
    plan = transport_plan(cost)
    cell_deltas = z_stim[plan.argmax(axis=0)] - z_ref
    delta = attention_weights(z_t[:1], z_ref) @ cell_deltas
    np.testing.assert_allclose(pred.X, model.decode(z_t + delta), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pred.obsm["X_latent_control"], z_t)

    percell = model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=7, variant="percell")
    by_hand = model.decode(z_t + attention_weights(z_t, z_ref) @ cell_deltas)
    np.testing.assert_allclose(percell.X, by_hand, rtol=1e-6, atol=1e-6)
    assert not np.allclose(percell.X, pred.X)

    exact = model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=7, variant="percell_exact")
    exact_deltas = z_stim[transport_plan(cost, num_iter_max=None).argmax(axis=0)] - z_ref
    by_hand = model.decode(z_t + attention_weights(z_t, z_ref) @ exact_deltas)
    np.testing.assert_allclose(exact.X, by_hand, rtol=1e-6, atol=1e-6)


def test_get_latent_draws_from_the_posterior_with_a_generator(model, ctrl_a):
    means = model.get_latent(ctrl_a)
    draws = model.get_latent(ctrl_a, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(draws, model.get_latent(ctrl_a, rng=np.random.default_rng(3)))
    assert not np.allclose(draws, means) and draws.dtype == np.float32
    with torch.no_grad():
        _, logvar = model.module.encode(torch.as_tensor(np.asarray(ctrl_a.X)))
    eps = np.random.default_rng(3).standard_normal(means.shape).astype(np.float32)
    np.testing.assert_allclose(draws, means + np.exp(0.5 * logvar.numpy()) * eps, rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="default_rng"):
        model.get_latent(ctrl_a, rng=3)


# -- OT diagnostics -----------------------------------------------------------------------------
def test_plan_sharpness():
    n = 6
    identity = np.eye(n) / n
    s = plan_sharpness(identity, reference=identity)
    assert s["row_max_share_mean"] == pytest.approx(1.0) and s["argmax_agreement"] == 1.0
    uniform = np.full((n, 8), 1 / (n * 8))
    assert plan_sharpness(uniform)["row_max_share_median"] == pytest.approx(1 / 8)
    assert np.isnan(plan_sharpness(uniform)["argmax_agreement"])
    shifted = np.roll(identity, 1, axis=1)
    shifted[0] = identity[0]  # row 0 agrees, the others do not
    assert plan_sharpness(shifted, reference=identity)["argmax_agreement"] == pytest.approx(1 / n)
    with pytest.raises(ValueError, match="shape"):
        plan_sharpness(identity, reference=uniform)
    # entropic plans are blurrier than the exact one
    rng = np.random.default_rng(0)
    cost = cost_matrix(rng.normal(size=(40, 5)), rng.normal(size=(40, 5)))
    exact = transport_plan(cost, method="emd")
    blurry = plan_sharpness(transport_plan(cost, method="sinkhorn_log", reg=0.5), reference=exact)
    sharp = plan_sharpness(transport_plan(cost, method="sinkhorn_log", reg=0.005), reference=exact)
    assert blurry["row_max_share_mean"] < sharp["row_max_share_mean"]
    assert sharp["argmax_agreement"] >= blurry["argmax_agreement"]


def test_emd_iteration_limit_is_reported():
    rng = np.random.default_rng(0)
    cost = cost_matrix(rng.normal(size=(60, 4)), rng.normal(size=(70, 4)))
    with pytest.warns(UserWarning, match="before reaching the optimum"):
        plan, log = transport_plan(cost, method="emd", num_iter_max=5, return_log=True)
    assert not log["converged"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, log = transport_plan(cost, method="emd", return_log=True)
    assert log["converged"]


def test_the_releases_iteration_limit_is_recorded_without_a_warning(model, ctrl_a, monkeypatch):
    import tutorial_lib.models.scpram as scpram

    monkeypatch.setattr(scpram, "EMD_MAX_ITER_RELEASE", 5)  # a limit these small pools reach
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopping at the release's own limit is the published method
        pred = model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=1, variant=SCPRAMOptions(num_iter_max=5))
    assert not pred.uns["scpram"]["plan"]["converged"]
    with pytest.warns(UserWarning, match="before reaching the optimum"):  # any other limit warns
        pred = model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=1, variant=SCPRAMOptions(num_iter_max=6))
    assert not pred.uns["scpram"]["plan"]["converged"]


# -- pure prediction ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [SCGEN, SCPRAM])
def test_predict_does_not_change_the_model(cls, train_data, ctrl_a):
    model = cls(train_data, **TINY)
    model.train(max_epochs=2, progress_bar=False)
    before_attrs, before_state = set(vars(model)), state(model)
    first = model.predict(HELD_OUT, adata_to_predict=ctrl_a, seed=0)
    effect = model.decode_delta(first)
    model.predict(HELD_OUT, adata_to_predict=ctrl_a[:10], seed=3)  # another prediction in between
    assert set(vars(model)) == before_attrs
    for k, v in state(model).items():
        assert torch.equal(v, before_state[k]), k
    np.testing.assert_array_equal(model.decode_delta(first).to_numpy(), effect.to_numpy())
    expected = (
        model.decode(first.obsm["X_latent_control"].mean(0) + first.obsm["delta"].mean(0))[0]
        - model.decode(first.obsm["X_latent_control"].mean(0))[0]
    )
    np.testing.assert_allclose(effect.to_numpy(), expected, atol=1e-5)


def test_attention_by_cell_type_reads_the_prediction(model, ctrl_a):
    pred = model.predict(HELD_OUT, adata_to_predict=ctrl_a, variant="percell", ratio=0.2)
    by_type = model.attention_by_cell_type(pred)
    assert list(by_type.index) == list(ctrl_a.obs_names)
    np.testing.assert_allclose(by_type.sum(1), 1.0, rtol=1e-6)
    attention = pred.uns["scpram"]["attention"].toarray()
    labels = pred.uns["scpram"]["reference_cells"]["cell_type"].to_numpy()
    np.testing.assert_allclose(by_type["B"], attention[:, labels == "B"].sum(1))
    with pytest.raises(ValueError, match="SCPRAM.predict"):
        model.attention_by_cell_type(ctrl_a)
    with pytest.raises(ValueError, match="subset"):
        model.attention_by_cell_type(pred[:5])


def test_reconstruct_is_decoded_posterior_mean(model, ctrl_a):
    rec = model.reconstruct(ctrl_a)
    np.testing.assert_allclose(rec.X, model.decode(model.get_latent(ctrl_a)), atol=1e-6)
    assert list(rec.obs_names) == list(ctrl_a.obs_names) and list(rec.var_names) == list(model.var_names)


# -- registry: named variants share one trained model -----------------------------------------
def test_variants_share_one_trained_model(train_data, ctrl_a):
    methods.clear_trained_cache()
    kw = dict(cell_type=HELD_OUT, seed=0, max_epochs=1, return_model=True, **TINY)
    pred_r, model_r = methods.get_method("scpram")(train_data, ctrl_a, **kw)
    pred_p, model_p = methods.get_method("scpram_percell")(train_data, ctrl_a, **kw)
    pred_res, model_res = methods.get_method("scpram_percell_residual")(train_data, ctrl_a, **kw)
    assert model_r is model_p is model_res
    assert pred_r.uns["scpram"]["variant"] == "released" and pred_p.uns["scpram"]["variant"] == "percell"
    assert (pred_p.obs["method"] == "scpram_percell").all()
    fresh, fresh_model = methods.get_method("scpram_percell")(train_data, ctrl_a, reuse_trained=False, **kw)
    assert fresh_model is not model_p
    np.testing.assert_array_equal(fresh.X, pred_p.X)  # reuse gives what retraining gives
    other_seed = methods.get_method("scpram_percell")(train_data, ctrl_a, **{**kw, "seed": 1})[1]
    assert other_seed is not model_p
    with pytest.raises(TypeError, match="fixes"):
        methods.get_method("scpram_percell")(train_data, ctrl_a, cell_type=HELD_OUT, max_epochs=1, variant="released")
    methods.clear_trained_cache()


def test_without_a_cell_type_the_targets_leave_the_control_pool(model, train_data, ctrl_a):
    pred = model.predict(adata_to_predict=ctrl_a, variant=SCPRAMOptions(latent="mean"))
    ref = pred.uns["scpram"]["reference_cells"]
    assert not set(ref.index) & set(ctrl_a.obs_names)
    assert len(ref) == int((train_data.obs.condition == "control").sum()) - ctrl_a.n_obs


def test_percell_exact_runs_ot_to_its_optimum(model, ctrl_a):
    assert VARIANTS["percell_exact"] == dataclasses.replace(VARIANTS["percell"], num_iter_max=None)
    assert VARIANTS["released"].num_iter_max == 100_000
    pred = model.predict(HELD_OUT, adata_to_predict=ctrl_a, variant="percell_exact", seed=1)
    percell = model.predict(HELD_OUT, adata_to_predict=ctrl_a, variant="percell", seed=1)
    assert pred.uns["scpram"]["plan"]["converged"]
    np.testing.assert_allclose(pred.X, percell.X, atol=1e-6)  # small pools: 100,000 iterations suffice


def test_prediction_with_its_by_products_round_trips_through_h5ad(model, ctrl_a, tmp_path):
    import anndata as ad

    pred = model.predict(HELD_OUT, adata_to_predict=ctrl_a, variant="percell", keep_plan=True)
    pred.write_h5ad(tmp_path / "pred.h5ad")
    back = ad.read_h5ad(tmp_path / "pred.h5ad")
    np.testing.assert_array_equal(back.obsm["delta"], pred.obsm["delta"])
    np.testing.assert_allclose(model.attention_by_cell_type(back), model.attention_by_cell_type(pred))
    assert back.uns["scpram"]["settings"]["max_ot_cells"] == "none"
