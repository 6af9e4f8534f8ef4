"""The network and the training loop shared by scGen and scPRAM.

:class:`VAE`: a Gaussian VAE on log-normalised expression, with the loss per cell of the original
scGen, its scvi-tools/pertpy port and the scPRAM release (a unit-variance Gaussian likelihood and
a down-weighted KL term)::

    loss = 0.5 * sum_g (x_g - x̂_g)^2  +  0.5 * kl_weight * KL(q(z|x) || N(0, I))

:func:`train_vae`: Adam on minibatches, a seeded train/validation split, warm-up then cosine
decay, gradient clipping, and early stopping counted in optimizer *steps* (so that small and large
data sets both get enough) on a smoothed validation loss, the best weights restored; its settings
are one :class:`TrainingOptions`. Neither published release holds cells out or stops early.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from tutorial_lib.config import check_seed, set_seed


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` if it is an integer in ``[low, high]``, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low or (high and value > high):
        raise ValueError(f"{name} must be an integer in [{low}, {high or 'inf'}{']' if high else ')'}; got {value!r}")
    return int(value)


def check_float(
    name: str, value: Any, low: float = -math.inf, high: float = math.inf, *, open_low=False, open_high=False
):
    """``value`` as float if it is a number in the interval (closed unless ``open_*``), else ``ValueError``."""
    ok = not isinstance(value, bool) and isinstance(value, Real) and not math.isnan(value)
    if ok:
        v = float(value)
        ok = (v > low if open_low else v >= low) and (v < high if open_high else v <= high)
    if not ok:
        rng = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be a number in {rng}; got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices) -> Any:
    """``value`` if it is one of ``choices``, else ``ValueError``."""
    if value not in list(choices):
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
    return value


# -- the network ------------------------------------------------------------------------------
ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU}
LOGVAR_CLAMP = 15.0  # keeps exp(logvar) finite early in training (neither release clamps)


def make_mlp(n_in: int, n_layers: int, n_hidden: int, *, dropout_rate: float, use_batch_norm: bool, activation: str):
    """``n_layers`` blocks of Linear → [BatchNorm] → activation → [Dropout]."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers.append(nn.Linear(n_in if i == 0 else n_hidden, n_hidden))
        if use_batch_norm:
            layers.append(nn.BatchNorm1d(n_hidden, momentum=0.01, eps=1e-3))
        layers.append(ACTIVATIONS[activation]())
        if dropout_rate > 0:
            layers.append(nn.Dropout(dropout_rate))
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Gaussian VAE with squared-error reconstruction (loss: module docstring).

    ``n_latent``, ``n_layers``, ``n_hidden``: latent size, number and width of hidden layers
    (encoder and decoder alike); ``activation`` ``"leaky_relu"`` (scGen) or ``"relu"`` (scPRAM);
    ``output_activation`` ``"relu"`` (both releases) or ``"linear"`` (pertpy). Denoising (scPRAM):
    during training only, the encoder sees ``x + noise_rate * N(0, 1)``.
    """

    def __init__(
        self,
        n_input: int,
        *,
        n_latent: int = 100,
        n_layers: int = 2,
        n_hidden: int = 800,
        dropout_rate: float = 0.2,
        use_batch_norm: bool = True,
        activation: str = "leaky_relu",
        output_activation: str = "relu",
        noise_rate: float = 0.0,
        kl_weight: float = 5e-5,
    ) -> None:
        super().__init__()
        check_int("n_input", n_input, 1)
        self.n_latent = check_int("n_latent", n_latent, 1, 4096)
        check_int("n_layers", n_layers, 1, 10)
        check_int("n_hidden", n_hidden, 1, 16384)
        check_float("dropout_rate", dropout_rate, 0.0, 1.0, open_high=True)
        self.noise_rate = check_float("noise_rate", noise_rate, 0.0, 1.0, open_high=True)
        self.kl_weight = check_float("kl_weight", kl_weight, 0.0)
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("output_activation", output_activation, ("relu", "linear"))
        mlp = dict(dropout_rate=dropout_rate, use_batch_norm=bool(use_batch_norm), activation=activation)
        self.encoder = make_mlp(n_input, n_layers, n_hidden, **mlp)
        self.mean, self.logvar = nn.Linear(n_hidden, n_latent), nn.Linear(n_hidden, n_latent)  # q(z|x)
        self.decoder = make_mlp(n_latent, n_layers, n_hidden, **mlp)
        self.out = nn.Linear(n_hidden, n_input)
        self.output_activation = output_activation

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """Input noise for denoising; identity in eval mode or when ``noise_rate == 0``."""
        if not self.training or self.noise_rate == 0:
            return x
        return x + self.noise_rate * torch.randn_like(x)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of ``x`` (no corruption)."""
        h = self.encoder(x)
        return self.mean(h), self.logvar(h).clamp(-LOGVAR_CLAMP, LOGVAR_CLAMP)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Expression decoded from latent ``z`` (a ReLU output keeps it non-negative)."""
        x = self.out(self.decoder(z))
        return torch.relu(x) if self.output_activation == "relu" else x

    def forward(self, x: torch.Tensor, sample: bool = True) -> dict[str, torch.Tensor]:
        """``{"loss", "terms": {"recon", "kl"} (unweighted means), "x_hat"}``; ``sample=False`` decodes the mean."""
        mean, logvar = self.encode(self.corrupt(x))
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        x_hat = self.decode(z)
        recon = ((x - x_hat) ** 2).sum(dim=1)
        kl = 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
        loss = (0.5 * recon + 0.5 * self.kl_weight * kl).mean()
        terms = {"recon": recon.mean(), "kl": kl.mean()}
        return {"loss": loss, "terms": terms, **terms, "x_hat": x_hat}


# -- training settings and history ------------------------------------------------------------
LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainingOptions:
    """Settings of :func:`train_vae`; the defaults train to convergence.

    Caps: ``max_steps`` and/or ``max_epochs`` (``None``: no such cap). Adam: ``batch_size``,
    ``lr`` (the peak of :func:`lr_at`'s schedule), ``weight_decay``, ``adam_eps``. A share
    ``validation_fraction`` of the cells is held out; every ``eval_every`` steps (at least once per
    epoch) :class:`EarlyStopping` sees its loss. ``grad_clip_norm``: ``None`` for no clipping.
    Chosen on validation cells only (``benchmarks/README.md``): ``min_steps`` 600, as shorter runs
    stopped 8-34% above the converged validation loss on Kang 2018; ``patience`` 400 steps with
    ``smoothing`` 0.5, so that one noisy pass does not decide; a cap of 3,000 steps (about 38
    epochs of Kang at batch 128) bounds the cost.
    """

    max_steps: int | None = 3000
    max_epochs: int | None = None
    min_steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    adam_eps: float = 1e-8
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    final_lr_fraction: float = 0.05
    validation_fraction: float = 0.1
    early_stopping: bool = True
    patience: int = 400
    eval_every: int = 50
    smoothing: float = 0.5
    min_delta: float = 0.0
    rel_min_delta: float = 0.0
    grad_clip_norm: float | None = 10.0

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_epochs is None:
            raise ValueError("give max_steps or max_epochs (or both): training needs a cap")
        for name, low in [("max_steps", 1), ("max_epochs", 1), ("min_steps", 0), ("batch_size", 2)]:
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), low)
        check_float("lr", self.lr, 0.0, open_low=True)
        check_float("weight_decay", self.weight_decay, 0.0)
        check_float("adam_eps", self.adam_eps, 0.0, open_low=True)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_int("warmup_steps", self.warmup_steps, 0)
        check_float("final_lr_fraction", self.final_lr_fraction, 0.0, 1.0)
        check_float("validation_fraction", self.validation_fraction, 0.0, 1.0, open_high=True)
        check_int("eval_every", self.eval_every, 1)
        EarlyStopping(**self.stopping_rule())  # checks patience, smoothing, min_delta, rel_min_delta

    def stopping_rule(self) -> dict[str, Any]:
        """The arguments of :class:`EarlyStopping`."""
        names = ("patience", "min_steps", "smoothing", "min_delta", "rel_min_delta")
        return {k: getattr(self, k) for k in names}

    def replace(self, **changes: Any) -> TrainingOptions:
        """A copy with ``changes``; an unknown name raises ``TypeError`` listing the valid ones."""
        valid = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(valid))
        if unknown:
            raise TypeError(f"unknown training option(s) {unknown}; valid: {valid}")
        return dataclasses.replace(self, **changes)


EpochCallback = Callable[[int, float], None]


class StopTraining(Exception):
    """Raise from an ``on_epoch_end`` callback to end training early without an error."""


@dataclass
class TrainingHistory:
    """One row per validation pass: ``step``, ``epoch`` (fractional), ``lr``, losses.

    ``train_*``: means since the previous row; ``val_*``: NaN without validation; ``loss`` is the
    objective, ``recon``/``kl`` the VAE's terms (other modules' terms go to ``terms``);
    ``val_smoothed``: what early stopping sees; ``best_step``: where the kept weights were reached.
    """

    epoch: list[float] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_recon: list[float] = field(default_factory=list)
    train_kl: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_recon: list[float] = field(default_factory=list)
    val_kl: list[float] = field(default_factory=list)
    val_smoothed: list[float] = field(default_factory=list)
    best_epoch: float | None = None
    best_step: int | None = None
    stopped_early: bool = False
    terms: dict[str, list[float]] = field(default_factory=dict)

    def record(self, name: str, train_value: float, val_value: float) -> None:
        """Append one row's value of loss term ``name`` (``"loss"``: the objective) to its two columns."""
        for column, value in ((f"train_{name}", train_value), (f"val_{name}", val_value)):
            target = getattr(self, column, None)
            if not isinstance(target, list):
                target = self.terms.setdefault(column, [])
            target.append(float(value))

    def to_frame(self) -> pd.DataFrame:
        """One row per validation pass, index ``epoch``; a column the module did not report is NaN."""
        n = len(self.epoch)
        columns = {k: v for k, v in dataclasses.asdict(self).items() if isinstance(v, list)} | self.terms
        return pd.DataFrame({k: (v if len(v) == n else [math.nan] * n) for k, v in columns.items()}).set_index("epoch")

    def __len__(self) -> int:
        return len(self.epoch)


class EarlyStopping:
    """The stopping rule of :func:`train_vae`: :meth:`update` after each validation pass.

    The loss is smoothed (``s = smoothing * s_prev + (1 - smoothing) * loss``); training stops
    once ``s`` has not fallen below its best by more than ``min_delta + rel_min_delta * |best|``
    for ``patience`` steps, and at least ``min_steps`` were taken.
    """

    def __init__(self, *, patience: int, min_steps=0, smoothing=0.0, min_delta=0.0, rel_min_delta=0.0) -> None:
        self.patience = check_int("patience", patience, 1)
        self.min_steps = check_int("min_steps", min_steps, 0)
        self.smoothing = check_float("smoothing", smoothing, 0.0, 1.0, open_high=True)
        self.min_delta = check_float("min_delta", min_delta, 0.0)
        self.rel_min_delta = check_float("rel_min_delta", rel_min_delta, 0.0, 1.0, open_high=True)
        self.smoothed, self.best_smoothed, self.best_step = math.nan, math.inf, 0

    def update(self, step: int, loss: float) -> bool:
        """Record the monitored ``loss`` after ``step`` optimizer steps; true: stop now."""
        s = self.smoothing
        self.smoothed = loss if math.isnan(self.smoothed) else s * self.smoothed + (1 - s) * loss
        threshold = self.min_delta
        if math.isfinite(self.best_smoothed):
            threshold += self.rel_min_delta * abs(self.best_smoothed)
        if self.smoothed < self.best_smoothed - threshold:
            self.best_smoothed, self.best_step = self.smoothed, step
        return step >= self.min_steps and step - self.best_step >= self.patience


def lr_at(step: int, peak: float, *, total_steps: int, warmup_steps=0, schedule="cosine", final_lr_fraction=0.05):
    """Learning rate of optimizer step ``step`` (0-based).

    Linear warm-up to ``peak`` over ``warmup_steps``; then ``"constant"``, or ``"cosine"``: a half
    cosine down to ``final_lr_fraction * peak`` at ``total_steps`` (the cap).
    """
    check_choice("lr_schedule", schedule, LR_SCHEDULES)
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    t = min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
    return peak * (final_lr_fraction + (1.0 - final_lr_fraction) * 0.5 * (1.0 + math.cos(math.pi * t)))


# -- the training loop ------------------------------------------------------------------------
def loss_terms(out: Any) -> dict[str, torch.Tensor]:
    """The named terms of a module's ``forward`` output (a dict with ``"loss"`` and optional ``"terms"``)."""
    if not isinstance(out, dict) or "loss" not in out or not isinstance(out.get("terms", {}), dict):
        raise TypeError(
            "the module's forward must return a dict with 'loss' (a scalar tensor) and optionally 'terms' "
            f"(name -> scalar tensor); got {type(out).__name__}"
            + (f" with keys {sorted(out)}" if isinstance(out, dict) else "")
        )
    return out.get("terms", {})


def _stack(out: dict, names: list[str]) -> torch.Tensor:
    """``[loss, *terms]`` of a forward output, detached."""
    terms = loss_terms(out)
    missing = sorted(set(names) - set(terms))
    if missing:
        raise ValueError(f"the module's forward returned terms {sorted(terms)}; missing {missing} seen before")
    return torch.stack([out["loss"].detach(), *(terms[n].detach() for n in names)])


def _evaluate(module: nn.Module, x: torch.Tensor | None, names: list[str]) -> np.ndarray:
    """Mean ``[loss, *terms]`` over ``x`` in evaluation mode (NaN without validation cells)."""
    if x is None:
        return np.full(1 + len(names), math.nan)
    module.eval()
    totals = np.zeros(1 + len(names))
    with torch.no_grad():
        for start in range(0, x.shape[0], 1024):
            xb = x[start : start + 1024]
            totals += len(xb) * _stack(module(xb, sample=False), names).cpu().numpy()
    module.train()
    return totals / x.shape[0]


def train_vae(
    module: nn.Module,
    x: np.ndarray | torch.Tensor,
    options: TrainingOptions = TrainingOptions(),
    *,
    seed: int = 0,
    device: str = "cpu",
    progress_bar: bool = True,
    on_epoch_end: EpochCallback | None = None,
    history: TrainingHistory | None = None,
) -> TrainingHistory:
    """Train ``module`` on the rows of ``x`` (cells × genes) in place; returns the history.

    ``module``: the VAE or any module whose ``forward(x, sample=True)`` returns its own ``"loss"``
    and ``"terms"``. ``seed`` seeds the split, the minibatches, dropout, noise and sampling.
    ``on_epoch_end(i, monitored_loss)`` runs after each validation pass (raise
    :class:`StopTraining` to end training). ``history``: one to append to. A last minibatch of one
    cell is skipped (BatchNorm needs 2).
    """
    o = options
    seed = check_seed(seed)
    history = TrainingHistory() if history is None else history
    set_seed(seed)
    # 1. data: one float32 tensor on the device, split once into training and validation cells
    perm = np.random.default_rng(seed).permutation(int(x.shape[0]))
    n_val = min(int(round(o.validation_fraction * len(perm))), max(len(perm) - 2, 0))  # at least 2 training cells
    train_idx, val_idx = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    xt = torch.as_tensor(x if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32))
    xt = xt.to(device=device, dtype=torch.float32)
    x_train = xt[torch.as_tensor(train_idx, device=device)]
    x_val = xt[torch.as_tensor(val_idx, device=device)] if len(val_idx) else None
    # 2. budget in steps: the caps, validation at least once per epoch, warm-up at most a tenth
    n_train = len(train_idx)
    per_epoch = sum(1 for s in range(0, n_train, o.batch_size) if n_train - s >= 2)
    total = int(min(o.max_steps or math.inf, (o.max_epochs or math.inf) * per_epoch))
    period = min(o.eval_every, per_epoch)
    warmup = min(o.warmup_steps, total // 10)
    schedule = dict(
        total_steps=total, warmup_steps=warmup, schedule=o.lr_schedule, final_lr_fraction=o.final_lr_fraction
    )
    # 3. the loop
    module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=o.lr, weight_decay=o.weight_decay, eps=o.adam_eps)
    shuffler = torch.Generator().manual_seed(seed)
    rule = EarlyStopping(**o.stopping_rule())
    step0 = history.step[-1] if history.step else 0
    best_loss, best_state = math.inf, None
    names: list[str] = []
    sums, seen = None, 0
    order, pos = torch.empty(0, dtype=torch.long), n_train
    bar = tqdm(total=total, disable=not progress_bar, desc="training", leave=False)
    try:
        module.train()
        for done in range(1, total + 1):
            if n_train - pos < 2:  # a new epoch: reshuffle
                order, pos = torch.randperm(n_train, generator=shuffler).to(device), 0
            idx = order[pos : pos + o.batch_size]
            pos += o.batch_size
            lr = lr_at(done - 1, o.lr, **schedule)
            out = _step(module, optimizer, x_train[idx], lr, o.grad_clip_norm)
            if sums is None:  # the module's loss terms, fixed by its first minibatch
                names = list(loss_terms(out))
                sums = torch.zeros(1 + len(names), device=device)
            sums += len(idx) * _stack(out, names)
            seen += len(idx)
            bar.update(1)
            if done % period and done != total:
                continue
            # 4. a validation pass: one row of the history
            train_means = (sums / max(seen, 1)).cpu().numpy()
            sums.zero_()
            seen = 0
            if not np.isfinite(train_means[0]):
                raise FloatingPointError(
                    f"training loss became {train_means[0]} at step {step0 + done}; lower lr (peak now {o.lr})"
                )
            val_means = _evaluate(module, x_val, names)
            monitored = float(val_means[0] if x_val is not None else train_means[0])
            stop = rule.update(done, monitored)
            history.step.append(step0 + done)
            history.epoch.append(round((step0 + done) / per_epoch, 3))
            history.lr.append(float(lr))
            for name, t, v in zip(["loss", *names], train_means, val_means):
                history.record(name, t, v)
            history.val_smoothed.append(float(rule.smoothed))
            bar.set_postfix(train=f"{train_means[0]:.4g}", val=f"{val_means[0]:.4g}")
            if monitored < best_loss:
                best_loss, history.best_step, history.best_epoch = monitored, history.step[-1], history.epoch[-1]
                if o.early_stopping:
                    best_state = copy.deepcopy(module.state_dict())
            if on_epoch_end is not None:
                try:
                    on_epoch_end(len(history) - 1, monitored)
                except StopTraining:
                    history.stopped_early = True
                    break
            if o.early_stopping and stop and done < total:
                history.stopped_early = True
                break
    finally:
        bar.close()
        module.eval()
    if best_state is not None:  # 5. the weights of the lowest validation loss
        module.load_state_dict(best_state)
    return history


def _step(module: nn.Module, optimizer: torch.optim.Optimizer, xb: torch.Tensor, lr: float, clip: float | None):
    """One optimizer step on minibatch ``xb`` at learning rate ``lr``; returns the forward output."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    out = module(xb)
    loss_terms(out)
    optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
    optimizer.step()
    return out
