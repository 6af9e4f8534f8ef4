"""The exercise checks accept the right answer and explain the usual wrong ones.

Right answers are computed here with plain numpy/pandas (the way a learner would), on the mini
data or small random data; the checks compute theirs with the library.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from course_tools import exercises as ex
from course_tools.exercises.scgen import SAME_PEARSON
from course_tools.verdicts import paired_difference
from tutorial_lib.baselines import mean_shift
from tutorial_lib.data import normalise_log


@pytest.fixture(scope="module")
def mini_log(_mini_counts):
    return normalise_log(_mini_counts.copy())


def test_every_exercise_is_documented_with_a_check_that_exists():
    assert len(ex.EXERCISES) >= 10
    for key, item in ex.EXERCISES.items():
        assert (
            {"notebook", "question", "scaffold", "check", "solution"}
            <= set(item)
            <= {
                "notebook",
                "kind",
                "question",
                "scaffold",
                "check",
                "solution",
            }
        ), key
        assert "..." not in item["solution"], f"{key}: a solution is complete code"
        assert item["notebook"][:2] == key[:2]
        name = item["check"].split("(")[0]
        assert callable(getattr(ex, name)), f"{key}: {name} is not in course_tools.exercises"
        assert "..." in item["scaffold"], f"{key}: a scaffold leaves the answer to the learner"
    assert {k[:2] for k in ex.EXERCISES} == {"00", "01", "02", "03", "04"}


def test_every_notebook_has_a_predict_then_run_and_a_change_and_rerun_exercise():
    kinds: dict[str, set[str]] = {}
    for key, item in ex.EXERCISES.items():
        kind = item.get("kind")
        assert kind is not None, f"{key} says what it asks of the learner (kind)"
        named = {kind} if isinstance(kind, str) else set(kind)
        assert named <= set(ex.KINDS), f"{key}: {named - set(ex.KINDS)} is not one of {ex.KINDS}"
        kinds.setdefault(key[:2], set()).update(named)
    for notebook in ("00", "01", "02", "03", "04"):
        assert {"predict, then run", "change a setting, rerun, interpret"} <= kinds[notebook], notebook


def test_feedback_reads_as_a_verdict():
    assert str(ex.Feedback(True, "x")) == "Correct: x" and bool(ex.Feedback(True, "x"))
    assert str(ex.Feedback(False, "y")) == "Not yet: y" and not ex.Feedback(False, "y")


# ---- 00


@pytest.fixture(scope="module")
def cd4_parts(mini_log):
    from tutorial_lib.data import prepare_holdout, split_views

    return split_views(prepare_holdout(mini_log, "CD4+ T cells", n_top_genes=2000))


def test_holdout_guess(mini_log, cd4_parts):
    """00-1: the guess is judged on mean shift's Pearson-Δ recomputed for both held-out types."""
    from tutorial_lib.metrics import gene_means, pearson_delta, rank_degs

    def by_hand(cell_type):
        from tutorial_lib.data import prepare_holdout, split_views

        parts = split_views(prepare_holdout(mini_log, cell_type, n_top_genes=2000))
        pred = mean_shift(parts.train, parts.ctrl)
        genes = rank_degs(parts.test, parts.ctrl, k=100)
        m = [gene_means(x[:, genes].X) for x in (parts.test, pred, parts.ctrl)]
        return pearson_delta(*m)

    truth = "lower" if by_hand("CD14+ Monocytes") < by_hand("CD4+ T cells") else "higher"
    right = ex.check_holdout_guess(truth, mini_log, cell_type="CD14+ Monocytes")
    assert right and "is what the run shows" in right.message
    other = "higher" if truth == "lower" else "lower"
    wrong = ex.check_holdout_guess(other, mini_log, cell_type="CD14+ Monocytes")
    assert not wrong and f"the run shows {truth}" in wrong.message
    assert "write your guess first" in ex.check_holdout_guess(..., mini_log).message


def test_r2_by_gene_set(cd4_parts):
    """00-3: the R² values are recomputed, and the reading is judged on them."""
    from tutorial_lib.metrics import rank_degs

    test, ctrl = cd4_parts.test, cd4_parts.ctrl

    def r2(k):
        genes = rank_degs(test, ctrl, k=k)
        real = np.asarray(test[:, genes].X.mean(axis=0)).ravel()
        none = np.asarray(ctrl[:, genes].X.mean(axis=0)).ravel()
        return stats.pearsonr(real, none)[0] ** 2

    values = {k: r2(k) for k in (100, 500, test.n_vars)}
    steps = np.diff([values[k] for k in sorted(values)])
    truth = "rises" if (steps > 0).all() else "falls" if (steps < 0).all() else "neither"
    assert truth == "rises"  # on the mini data as on the full data: the lesson holds in both modes
    assert ex.check_r2_by_gene_set(values, "rises", test, ctrl)
    assert not ex.check_r2_by_gene_set(values, "falls", test, ctrl)
    off = {**values, 100: values[100] + 0.05}
    assert "should be" in ex.check_r2_by_gene_set(off, "rises", test, ctrl).message
    assert "write your reading" in ex.check_r2_by_gene_set(values, ..., test, ctrl).message
    assert not ex.check_r2_by_gene_set({100: 0.5}, "rises", test, ctrl)


def test_training_mask(mini_log):
    obs = mini_log.obs
    is_b = (obs["cell_type"] == "B").to_numpy()
    stim = (obs["condition"] == "stimulated").to_numpy()
    right = ~(is_b & stim)
    fb = ex.check_training_mask(right, mini_log, cell_type="B")
    assert fb and str(int(right.sum())) in fb.message
    assert ex.check_training_mask(obs.index.to_series().isin(obs.index[right]), mini_log, cell_type="B")
    leak = ex.check_training_mask(np.ones(mini_log.n_obs, bool), mini_log, cell_type="B")
    assert not leak and "leakage" in leak.message and str(int((is_b & stim).sum())) in leak.message
    no_ctrl = ex.check_training_mask(~is_b, mini_log, cell_type="B")
    assert not no_ctrl and "control" in no_ctrl.message
    too_few = ex.check_training_mask(right & ~(obs["cell_type"] == "NK cells").to_numpy(), mini_log, cell_type="B")
    assert not too_few and "drops" in too_few.message
    assert "boolean array" in ex.check_training_mask(right.astype(int), mini_log, cell_type="B").message
    assert "not a cell type" in ex.check_training_mask(right, mini_log, cell_type="Neurons").message


# ---- 01


@pytest.fixture(scope="module")
def holdout_parts(mini_log):
    obs = mini_log.obs
    t = (obs["cell_type"] == "B").to_numpy()
    stim = (obs["condition"] == "stimulated").to_numpy()
    train, ctrl, real = mini_log[~(t & stim)].copy(), mini_log[t & ~stim].copy(), mini_log[t & stim].copy()
    pred = mean_shift(train, ctrl, cell_type="B")
    genes = list(mini_log.var_names[:200])
    return real[:, genes], pred[:, genes], ctrl[:, genes]


def _dense_mean(a):
    x = a.X
    return np.asarray(x.mean(axis=0)).ravel()


def test_pearson_delta(holdout_parts):
    real, pred, ctrl = holdout_parts
    r, p, c = _dense_mean(real), _dense_mean(pred), _dense_mean(ctrl)
    value = np.corrcoef(p - c, r - c)[0, 1]
    assert ex.check_pearson_delta(value, real, pred, ctrl)
    assert ex.check_pearson_delta(float(value) * (1 + 1e-7), real, pred, ctrl)
    assert "means themselves" in ex.check_pearson_delta(np.corrcoef(p, r)[0, 1], real, pred, ctrl).message
    assert "squared" in ex.check_pearson_delta(value**2, real, pred, ctrl).message
    assert "sign" in ex.check_pearson_delta(-value, real, pred, ctrl).message
    assert "one number" in ex.check_pearson_delta([1, 2], real, pred, ctrl).message
    # a no-change prediction: the metric is undefined, and nan is the right answer
    assert ex.check_pearson_delta(float("nan"), real, ctrl, ctrl)
    assert "undefined" in ex.check_pearson_delta(0.0, real, ctrl, ctrl).message


def test_latent_shift():
    rng = np.random.default_rng(0)
    z_ctrl, z_stim = rng.normal(size=(40, 8)), rng.normal(1.0, size=(30, 8))
    delta = z_stim.mean(axis=0) - z_ctrl.mean(axis=0)
    assert ex.check_latent_shift(delta, z_ctrl, z_stim)
    assert "reversed" in ex.check_latent_shift(-delta, z_ctrl, z_stim).message
    assert "average over cells" in ex.check_latent_shift(z_stim[:30] - z_ctrl[:30], z_ctrl, z_stim).message
    assert "one entry per latent" in ex.check_latent_shift(delta[:5], z_ctrl, z_stim).message
    assert not ex.check_latent_shift(delta + 0.1, z_ctrl, z_stim)


# ---- 01-3: predict, then run (the changed setting: δ without balancing)


def test_balancing_guess(holdout_parts):
    real, pred, ctrl = holdout_parts
    genes = list(pred.var_names[:100])
    same = ex.check_balancing_guess("about the same", pred.X.copy(), pred, real, ctrl, genes=genes)
    assert same and "about the same without" in same.message
    # a prediction whose mean change is the real one scores Pearson-delta 1: higher than the mean shift's
    r, c = _dense_mean(real), _dense_mean(ctrl)
    perfect = ctrl.X.toarray() + (r - c)
    assert np.corrcoef(_dense_mean(pred)[:100] - c[:100], r[:100] - c[:100])[0, 1] < 1 - SAME_PEARSON
    assert ex.check_balancing_guess(" Higher ", perfect, pred, real, ctrl, genes=genes)
    wrong = ex.check_balancing_guess("lower", perfect, pred, real, ctrl, genes=genes)
    assert not wrong and "the run says otherwise" in wrong.message and "1.000 without balancing" in wrong.message
    assert "write your guess first" in ex.check_balancing_guess(..., perfect, pred, real, ctrl, genes=genes).message
    assert "shape" in ex.check_balancing_guess("lower", perfect[:5], pred, real, ctrl, genes=genes).message
    assert (
        "genes of the prediction" in ex.check_balancing_guess("lower", perfect, pred, real, ctrl, genes=["x"]).message
    )
    undefined = ex.check_balancing_guess("lower", ctrl.X, pred, real, ctrl, genes=genes)
    assert not undefined and "undefined" in undefined.message


# ---- 02


class _Decoder:
    """Stands in for a trained model: a fixed decoder from latents to the genes ``var_names``."""

    def __init__(self, var_names, n_latent: int = 8, linear: bool = False, seed: int = 0):
        self.var_names = pd.Index(var_names)
        self.w = np.random.default_rng(seed).normal(0, 0.3, size=(n_latent, len(var_names)))
        self.linear = linear

    def decode(self, z):
        x = np.asarray(z, dtype=np.float64) @ self.w
        return x if self.linear else np.log1p(np.exp(x))  # softplus: smooth and non-negative


def test_attention_spread():
    rng = np.random.default_rng(1)
    model = _Decoder([f"g{i}" for i in range(20)], linear=True)
    z_t, first, per_cell = rng.normal(size=(30, 8)), rng.normal(size=(1, 8)), rng.normal(size=(30, 8))
    # a linear decoder turns one δ for all into one response for all: no spread at all
    right = ex.check_attention_spread("per_cell", model, z_t, first, per_cell)
    assert right and "0.000 with first-cell attention" in right.message
    wrong = ex.check_attention_spread("first_cell", model, z_t, first, per_cell)
    assert not wrong and "the run says 'per_cell'" in wrong.message
    assert ex.check_attention_spread("equal", model, z_t, first, np.repeat(first, 30, axis=0))
    nonlinear = _Decoder([f"g{i}" for i in range(20)])
    fb = ex.check_attention_spread("per_cell", nonlinear, z_t, first, per_cell)
    assert fb and "0.000 with first-cell" not in fb.message  # the decoder spreads even one δ
    assert "write your guess first" in ex.check_attention_spread(..., model, z_t, first, per_cell).message
    assert "latent arrays" in ex.check_attention_spread("equal", model, z_t, first, per_cell[:3]).message


@pytest.fixture(scope="module")
def ot_inputs(mini_log):
    from tutorial_lib.data import prepare_holdout, split_views
    from tutorial_lib.models import cost_matrix, transport_plan

    parts = split_views(prepare_holdout(mini_log, "B", n_top_genes=200))
    rng = np.random.default_rng(4)
    z_stim, z_ref, z_t = rng.normal(size=(80, 8)), rng.normal(size=(70, 8)), rng.normal(size=(20, 8))
    plan = transport_plan(cost_matrix(z_stim, z_ref))
    return {
        "parts": parts,
        "model": _Decoder(parts.train.var_names),
        "z_stim": z_stim,
        "z_ref": z_ref,
        "z_t": z_t,
        "plan": plan,
    }


def test_entropic_ot(ot_inputs):
    from tutorial_lib.models import cost_matrix, plan_sharpness, transport_plan

    d = ot_inputs
    args = (d["plan"], d["model"], d["z_stim"], d["z_ref"], d["z_t"], d["parts"].test, d["parts"].ctrl)
    sinkhorn = transport_plan(
        cost_matrix(d["z_stim"], d["z_ref"], metric="sqeuclidean", normalization="max"), method="sinkhorn_log", reg=0.05
    )
    assert plan_sharpness(sinkhorn.T)["row_max_share_mean"] < plan_sharpness(d["plan"].T)["row_max_share_mean"]
    first = ex.check_entropic_ot(sinkhorn, ..., *args)
    assert not first and "your plan is right" in first.message and "Pearson-delta" in first.message
    right = ex.check_entropic_ot(sinkhorn, "Blurrier", *args)
    assert right and "agree for" in right.message
    assert "compare how much" in ex.check_entropic_ot(sinkhorn, "sharper", *args).message
    assert "exact plan again" in ex.check_entropic_ot(d["plan"], "blurrier", *args).message
    other_reg = transport_plan(
        cost_matrix(d["z_stim"], d["z_ref"], metric="sqeuclidean", normalization="max"), method="sinkhorn_log", reg=0.5
    )
    assert "max-normalised squared cost" in ex.check_entropic_ot(other_reg, "blurrier", *args).message
    assert "shape" in ex.check_entropic_ot(sinkhorn[:5], "blurrier", *args).message
    assert "replace the ..." in ex.check_entropic_ot(..., ..., *args).message


# ---- 03


def test_paired_difference_and_verdict():
    rng = np.random.default_rng(3)
    common = rng.normal(1.0, 0.3, size=5)  # seed effect shared by both methods
    a = common + rng.normal(0, 0.01, 5)
    b = common + 0.2 + rng.normal(0, 0.01, 5)
    d = a - b
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert ex.check_paired_difference(d.mean(), (d.mean() - half, d.mean() + half), a, b)
    assert "sign" in ex.check_paired_difference(-d.mean(), (0, 1), a, b).message
    unpaired = stats.t.ppf(0.975, 4) * np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 5)
    msg = ex.check_paired_difference(d.mean(), (d.mean() - unpaired, d.mean() + unpaired), a, b).message
    assert "independent" in msg
    z = 1.959964 * d.std(ddof=1) / np.sqrt(5)
    assert "t quantile" in ex.check_paired_difference(d.mean(), (d.mean() - z, d.mean() + z), a, b).message
    assert "pair (low, high)" in ex.check_paired_difference(d.mean(), 0.1, a, b).message
    assert "at least two" in ex.check_paired_difference(0, (0, 0), [1.0], [2.0]).message

    # a is lower by 0.2 with a tiny paired spread: a better on a lower-is-better metric
    assert ex.check_verdict("a better", a, b, lower_is_better=True)
    assert ex.check_verdict("b better", a, b, lower_is_better=False)
    assert "lower-is-better" in ex.check_verdict("b better", a, b, lower_is_better=True).message
    assert "excludes zero" in ex.check_verdict("no clear difference", a, b, lower_is_better=True).message
    # same scores up to noise larger than the gap: no clear difference
    noisy_b = common + rng.normal(0, 0.3, 5)
    lo, hi = paired_difference(a, noisy_b)[1:]
    assert lo <= 0 <= hi
    assert ex.check_verdict("no clear difference", a, noisy_b, lower_is_better=True)
    assert "includes zero" in ex.check_verdict("a better", a, noisy_b, lower_is_better=True).message
    assert "one of" in ex.check_verdict("A wins", a, b, lower_is_better=True).message


# ---- 04


def test_selection_effect():
    scores = np.array([3.1, 2.7, 2.9, 3.4])
    honest = 2.9
    assert ex.check_selection_effect(2.7 - 2.9, scores, honest)
    assert "sign" in ex.check_selection_effect(0.2, scores, honest).message
    assert "smallest" in ex.check_selection_effect(3.4 - 2.9, scores, honest).message
    assert "non-empty" in ex.check_selection_effect(0.0, [], honest).message


# ---- every worked solution, run in a namespace like the notebook's, passes its check


class _Model(_Decoder):
    """Stands in for a trained model: get_latent (the first cells' codes of z) and a decoder."""

    def __init__(self, z, var_names):
        super().__init__(var_names, n_latent=z.shape[1])
        self.z = z

    def get_latent(self, adata):
        return self.z[: adata.n_obs]


@pytest.fixture(scope="module")
def namespaces(mini_log, holdout_parts, ot_inputs, cd4_parts):
    from tutorial_lib import plotting as tp
    from tutorial_lib.data import prepare_holdout, split_views

    rng = np.random.default_rng(5)
    parts = split_views(prepare_holdout(mini_log, "B", n_top_genes=300))
    pred = mean_shift(parts.train, parts.ctrl, cell_type="B")
    degs = list(parts.train.var_names[:150])  # any gene list: the check recomputes from the same genes
    z = rng.normal(size=(parts.train.n_obs, 8))
    a = 2.0 + rng.normal(0, 0.3, 5)
    base = {"np": np, "tp": tp, "adata": mini_log}
    return {
        "00": {**base, "cfg": SimpleNamespace(n_top_genes=2000), "parts": cd4_parts, "data": cd4_parts.train},
        "01": {**base, "parts": parts, "pred": pred, "degs": degs, "model": _Model(z, parts.train.var_names)},
        "02": {**base, **ot_inputs, **_by_hand_names(ot_inputs)},
        "03": {**base, "a": a, "b": a + 0.3 + rng.normal(0, 0.02, 5), "balanced": _balanced_table()},
        "04": {
            **base,
            "test_scores": [3.1, 2.7, 2.9],
            "honest": 2.9,
            # what notebook 04's sections 5 and 6 leave behind: the wrong-way pick, its fresh retrainings
            "leaky": SimpleNamespace(best_value=2.7),
            "completed": [1, 2, 3],
            "wrong_fresh": [2.95, 3.05, 3.0],
            "final": pd.DataFrame({"method": ["default"] * 3 + ["tuned"] * 3, "value": [3.0, 3.1, 2.9, 2.8, 3.0, 2.9]}),
        },
    }


def _balanced_table():
    """The committed benchmark table's balanced runs (what notebook 03 calls ``balanced``)."""
    from course_tools.grid_results import load_grid

    grid = load_grid()
    return grid[grid["design"] == "balanced"]


def _by_hand_names(d):
    """What notebook 02's scPRAM-by-hand cell leaves behind for its exercises."""
    from tutorial_lib.models import attention_weights, cost_matrix, plan_sharpness, transport_plan

    cell_deltas = d["z_stim"][d["plan"].argmax(axis=0)] - d["z_ref"]
    return {
        "cell_deltas": cell_deltas,
        "attention_weights": attention_weights,
        "cost_matrix": cost_matrix,
        "transport_plan": transport_plan,
        "plan_sharpness": plan_sharpness,
    }


@pytest.mark.parametrize("key", sorted(ex.EXERCISES))
def test_every_solution_passes_its_check(key, namespaces):
    item = ex.EXERCISES[key]
    ns = {**namespaces[key[:2]], **{name: getattr(ex, name) for name in ex.__all__}}
    if key == "03-2":  # continues exercise 03-1
        exec(ex.EXERCISES["03-1"]["solution"], ns)
    exec(item["solution"], ns)
    feedback = eval(item["check"], ns)
    assert feedback, f"{key}: {feedback}"


def test_unfilled_scaffolds_get_feedback_not_an_error():
    """A learner who runs a scaffold with its ``...`` placeholders gets a "Not yet", never a traceback."""
    assert not ex.check_paired_difference(..., ..., ..., ...)
    assert "sequences of numbers" in ex.check_paired_difference(0.1, (0, 1), ..., [1.0, 2.0]).message
    assert not ex.check_selection_effect(..., ..., ...)
    assert "honest_score one number" in ex.check_selection_effect(0.1, [1.0, 2.0], ...).message
