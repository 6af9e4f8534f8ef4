"""Tests of the training loop: step-based early stopping, caps, the learning-rate schedule, seeds, convergence.

A tiny VAE on a small synthetic matrix (a few hundred cells × 40 genes) keeps each test to seconds.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from course_tools.stopping import replay_stopping
from tutorial_lib.models.vae import VAE, EarlyStopping, StopTraining, TrainingOptions, lr_at, train_vae

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def synthetic(n_cells: int = 400, n_genes: int = 40, seed: int = 0) -> np.ndarray:
    """Log-expression of two groups of cells with their own gene programmes (float32)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n_cells)
    mu = np.where(group[:, None] == 1, rng.gamma(1.0, 1.0, n_genes), rng.gamma(1.0, 1.0, n_genes))
    return np.log1p(rng.poisson(mu * 3)).astype(np.float32)


def fit(module, x, *, seed=0, progress_bar=False, on_epoch_end=None, **options):
    """``train_vae`` with ``options`` (keyword arguments of :class:`TrainingOptions`)."""
    return train_vae(
        module, x, TrainingOptions(**options), seed=seed, progress_bar=progress_bar, on_epoch_end=on_epoch_end
    )


def tiny_vae(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(40, n_latent=4, n_layers=1, n_hidden=16, dropout_rate=0.0, kl_weight=1e-3)


# -- learning-rate schedule -----------------------------------------------------------------
def test_lr_schedule_values():
    kw = {"total_steps": 110, "warmup_steps": 10, "final_lr_fraction": 0.1}
    assert lr_at(0, 1.0, **kw) == pytest.approx(0.1)  # warm-up: (step + 1) / warmup_steps
    assert lr_at(4, 1.0, **kw) == pytest.approx(0.5)
    assert lr_at(9, 1.0, **kw) == pytest.approx(1.0)
    assert lr_at(10, 1.0, **kw) == pytest.approx(1.0)  # cosine starts at the peak
    assert lr_at(60, 1.0, **kw) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way: the mid-point
    assert lr_at(110, 1.0, **kw) == pytest.approx(0.1)  # the floor at the cap ...
    assert lr_at(500, 1.0, **kw) == pytest.approx(0.1)  # ... and after it
    assert lr_at(60, 2e-3, **kw) == pytest.approx(2e-3 * 0.55)  # scales with the peak
    assert lr_at(60, 1.0, **{**kw, "warmup_steps": 0}, schedule="constant") == 1.0
    assert lr_at(3, 1.0, **kw, schedule="constant") == pytest.approx(0.4)
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_at(0, 1.0, total_steps=10, schedule="linear")


def test_optimizer_follows_schedule():
    module, seen = tiny_vae(), []
    x = synthetic(200)

    def record(i, loss):
        seen.append(optimizer_lr[0])

    optimizer_lr = [None]
    original_step = torch.optim.Adam.step

    def spy(self, *a, **k):
        optimizer_lr[0] = self.param_groups[0]["lr"]
        return original_step(self, *a, **k)

    torch.optim.Adam.step = spy
    try:
        hist = fit(
            module,
            x,
            max_steps=60,
            eval_every=10,
            warmup_steps=5,
            lr=0.01,
            final_lr_fraction=0.0,
            batch_size=8,
            early_stopping=False,
            progress_bar=False,
            on_epoch_end=record,
        )
    finally:
        torch.optim.Adam.step = original_step
    assert hist.step == [10, 20, 30, 40, 50, 60]
    # lr of the last step before each validation pass: steps 9, 19, ... (0-based)
    expected = [lr_at(s, 0.01, total_steps=60, warmup_steps=5, final_lr_fraction=0.0) for s in (9, 19, 29, 39, 49, 59)]
    assert expected[0] == pytest.approx(0.01 * (0.5 + 0.5 * np.cos(np.pi * 4 / 55)))
    np.testing.assert_allclose(seen, expected)
    np.testing.assert_allclose(hist.lr, expected)


# -- early stopping, minimum budget, caps ----------------------------------------------------
def test_stops_after_patience_steps():
    # min_delta so large that nothing after the first pass counts as an improvement
    hist = fit(
        tiny_vae(),
        synthetic(),
        max_steps=500,
        min_steps=0,
        patience=10,
        eval_every=5,
        batch_size=8,
        min_delta=1e9,
        progress_bar=False,
    )
    assert hist.stopped_early
    assert hist.step == [5, 10, 15]  # best at 5; 10 steps without improvement at 15


def test_min_steps_respected():
    hist = fit(
        tiny_vae(),
        synthetic(),
        max_steps=500,
        min_steps=42,
        patience=10,
        eval_every=5,
        batch_size=8,
        min_delta=1e9,
        progress_bar=False,
    )
    assert hist.stopped_early and hist.step[-1] == 45  # the first pass at or after 42 steps


def test_caps_in_steps_and_epochs():
    x = synthetic(400)  # 360 training cells: 3 minibatches of 128 per epoch
    hist = fit(tiny_vae(), x, max_steps=23, eval_every=5, early_stopping=False, progress_bar=False)
    assert hist.step == [3, 6, 9, 12, 15, 18, 21, 23] and not hist.stopped_early  # once per epoch, and at the end
    hist = fit(tiny_vae(), x, max_steps=1000, max_epochs=4, eval_every=50, min_steps=10**6, progress_bar=False)
    assert hist.step[-1] == 12 and hist.epoch[-1] == 4.0 and not hist.stopped_early
    with pytest.raises(ValueError, match="max_steps or max_epochs"):
        fit(tiny_vae(), x, max_steps=None, max_epochs=None, progress_bar=False)
    with pytest.raises(ValueError, match="patience"):
        fit(tiny_vae(), x, patience=0, progress_bar=False)


def test_restores_best_weights():
    module, snapshots = tiny_vae(), []

    def snapshot(i, loss):
        snapshots.append(copy.deepcopy(module.state_dict()))

    # a constant, too-large rate makes the validation loss jump around
    hist = fit(
        module,
        synthetic(),
        max_steps=200,
        min_steps=0,
        patience=10**6,
        eval_every=10,
        lr=0.05,
        lr_schedule="constant",
        warmup_steps=0,
        progress_bar=False,
        on_epoch_end=snapshot,
    )
    best = int(np.argmin(hist.val_loss))
    assert best != len(hist) - 1  # else the test could not tell
    assert hist.best_step == hist.step[best]
    final = module.state_dict()
    assert all(torch.equal(final[k], snapshots[best][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[-1][k]) for k in final)


def test_smoothed_validation_loss():
    x = synthetic()
    kw = {"max_steps": 60, "eval_every": 3, "lr": 0.05, "early_stopping": False, "progress_bar": False}
    raw = fit(tiny_vae(), x, smoothing=0.0, **kw)
    np.testing.assert_allclose(raw.val_smoothed, raw.val_loss)
    smooth = fit(tiny_vae(), x, smoothing=0.8, **kw)
    assert smooth.val_loss == raw.val_loss  # smoothing changes what is monitored, not the training
    expected = [smooth.val_loss[0]]
    for v in smooth.val_loss[1:]:
        expected.append(0.8 * expected[-1] + 0.2 * v)
    np.testing.assert_allclose(smooth.val_smoothed, expected)


def test_callback_stop():
    def stop(i, loss):
        if i == 1:
            raise StopTraining

    hist = fit(tiny_vae(), synthetic(), max_steps=500, eval_every=5, progress_bar=False, on_epoch_end=stop)
    assert hist.step == [3, 6] and hist.stopped_early


# -- seeds and convergence ------------------------------------------------------------------
def test_same_seed_same_numbers():
    x = synthetic()
    runs = []
    for seed in (0, 0, 1):
        module = tiny_vae()
        hist = fit(module, x, max_steps=60, seed=seed, progress_bar=False)
        runs.append((hist, module.state_dict()))
    assert runs[0][0].to_frame().equals(runs[1][0].to_frame())
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    assert runs[0][0].val_loss != runs[2][0].val_loss


def test_default_schedule_converges():
    """The default schedule (warm-up, cosine, step-based early stopping) reaches, within 1%, the
    validation loss of a constant-rate run twice as long as its cap, in fewer steps."""
    x = synthetic(600)
    hist = fit(tiny_vae(), x, lr=1e-2, progress_bar=False)
    assert TrainingOptions().min_steps <= hist.step[-1] <= TrainingOptions().max_steps
    long = fit(
        tiny_vae(),
        x,
        lr=1e-2,
        max_steps=2 * TrainingOptions().max_steps,
        lr_schedule="constant",
        early_stopping=False,
        progress_bar=False,
    )
    assert min(hist.val_loss) <= 1.01 * min(long.val_loss)
    assert min(hist.val_loss) < 0.7 * hist.val_loss[0]  # and far below where it started


# -- the stopping rule, alone and replayed ------------------------------------------------------
def test_rule_relative_min_delta_ignores_tiny_improvements():
    losses = [100.0 * (1 - 1e-4) ** k for k in range(40)]  # improves by 0.01% per pass, forever
    plain = EarlyStopping(patience=5, min_steps=0)
    relative = EarlyStopping(patience=5, min_steps=0, rel_min_delta=1e-3)
    fired_plain = [plain.update(k, v) for k, v in enumerate(losses)]
    fired_relative = [relative.update(k, v) for k, v in enumerate(losses)]
    assert not any(fired_plain)  # every pass is a new best
    assert fired_relative.index(True) == 5  # no pass improved by 0.1%: stops after patience
    big = EarlyStopping(patience=5, min_steps=0, rel_min_delta=1e-3)
    assert not any(big.update(k, 100.0 * 0.99**k) for k in range(40))  # 1% per pass counts
    with pytest.raises(ValueError, match="rel_min_delta"):
        EarlyStopping(patience=5, rel_min_delta=1.5)


def test_replay_matches_the_training_loop():
    """Replaying a run's own rule on its history stops where the run stopped, with its best loss."""
    rule = {"patience": 60, "min_steps": 40, "smoothing": 0.5, "rel_min_delta": 0.002}
    module = tiny_vae()
    hist = fit(module, synthetic(300), max_steps=2000, eval_every=10, batch_size=16, lr=0.01, **rule, seed=3)
    assert hist.stopped_early and hist.step[-1] < 2000
    replayed = replay_stopping(hist.to_frame(), **rule)
    assert replayed["stopped"] == 1.0 and replayed["stop_step"] == hist.step[-1]
    assert replayed["best_step"] == hist.best_step
    assert replayed["best_val_loss"] == pytest.approx(min(hist.val_loss))
    # a more patient rule does not fire on this (shorter) history: it reports the last pass
    longer = replay_stopping(hist.to_frame(), **{**rule, "patience": 10_000})
    assert longer["stopped"] == 0.0 and longer["stop_step"] == hist.step[-1]
    with pytest.raises(ValueError, match="val_loss"):
        replay_stopping(hist.to_frame().drop(columns="val_loss"), patience=5)
