"""The one training loop of the course's VAEs.

Adam on minibatches drawn from an in-memory tensor, a seeded train/validation split, early
stopping on the validation loss (the best weights are restored at the end), gradient clipping,
a tqdm progress bar and a per-epoch history for plotting. An optional callback
``on_epoch_end(epoch, val_loss)`` runs after every epoch: raising :class:`StopTraining`
ends training normally; any other exception (e.g. ``optuna.TrialPruned``) propagates after the
module has been put back in evaluation mode, with the history recorded so far kept.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from tutorial_lib.config import set_seed
from tutorial_lib.models._module import VAE
from tutorial_lib.models._params import check_float, check_int

EpochCallback = Callable[[int, float], None]


class StopTraining(Exception):
    """Raise from an ``on_epoch_end`` callback to end training early without an error."""


@dataclass
class TrainingHistory:
    """Per-epoch losses: ``loss`` is the objective; ``recon`` / ``kl`` its unweighted terms.

    Validation columns are NaN when no validation set was used.
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_recon: list[float] = field(default_factory=list)
    train_kl: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_recon: list[float] = field(default_factory=list)
    val_kl: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def to_frame(self) -> pd.DataFrame:
        """One row per epoch, ready for plotting."""
        d = asdict(self)
        d.pop("best_epoch")
        d.pop("stopped_early")
        return pd.DataFrame(d).set_index("epoch")

    def to_dict(self) -> dict:
        """JSON-serialisable form (NaN written as ``None``)."""
        return {k: ([None if isinstance(x, float) and math.isnan(x) else x for x in v] if isinstance(v, list) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainingHistory:
        return cls(**{k: ([math.nan if x is None else x for x in v] if isinstance(v, list) else v) for k, v in d.items()})

    def __len__(self) -> int:
        return len(self.epoch)


def split_indices(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/validation split of ``range(n)``; at least 2 training cells."""
    check_float("validation_fraction", validation_fraction, 0.0, 1.0, high_inclusive=False)
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(validation_fraction * n))
    n_val = min(n_val, max(n - 2, 0))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _evaluate(module: VAE, x: torch.Tensor, batch_size: int) -> tuple[float, float, float]:
    module.eval()
    totals = np.zeros(3)
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            out = module(xb, sample=False)
            totals += len(xb) * np.array([out["loss"].item(), out["recon"].item(), out["kl"].item()])
    return tuple(totals / x.shape[0])


def train_vae(
    module: VAE,
    x: np.ndarray | torch.Tensor,
    *,
    max_epochs: int = 100,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    adam_eps: float = 1e-8,
    validation_fraction: float = 0.1,
    early_stopping: bool = True,
    patience: int = 25,
    min_delta: float = 0.0,
    grad_clip_norm: float | None = 10.0,
    seed: int = 0,
    device: str = "cpu",
    progress_bar: bool = True,
    on_epoch_end: EpochCallback | None = None,
    history: TrainingHistory | None = None,
) -> TrainingHistory:
    """Train ``module`` on the rows of ``x`` (cells × genes, float32) in place.

    Parameters
    ----------
    module
        The VAE; moved to ``device`` and left in evaluation mode.
    x
        Expression matrix, densified once into a float32 tensor on ``device``.
    max_epochs, batch_size, lr, weight_decay, adam_eps
        Adam settings (``adam_eps``: the term added to the denominator; PyTorch's default
        1e-8; scvi-tools and pertpy use 0.01, which shrinks the steps of weights whose
        gradients are small, so that Adam treats them more like plain gradient descent). A last minibatch of a single cell is skipped (BatchNorm needs 2).
    validation_fraction
        Share of cells held out (seeded) for the validation loss; 0 disables validation,
        and early stopping then monitors the training loss.
    early_stopping, patience, min_delta
        Stop when the monitored loss has not improved by more than ``min_delta`` for
        ``patience`` epochs; the best weights are restored at the end.
    grad_clip_norm
        Maximum gradient norm (``None``: no clipping).
    seed
        Seeds the split, the minibatch order, dropout, input noise and sampling.
    progress_bar
        Show a tqdm bar.
    on_epoch_end
        ``callback(epoch, monitored_loss)`` after each epoch; see the module docstring.
    history
        A history to append to (so that a caller keeps it even if a callback raises).
    """
    check_int("max_epochs", max_epochs, 1)
    check_int("batch_size", batch_size, 2)
    check_float("lr", lr, 0.0, low_inclusive=False)
    check_float("weight_decay", weight_decay, 0.0)
    check_float("adam_eps", adam_eps, 0.0, low_inclusive=False)
    check_int("patience", patience, 1)
    history = TrainingHistory() if history is None else history
    set_seed(seed)
    n = int(x.shape[0])
    train_idx, val_idx = split_indices(n, validation_fraction, seed)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, torch.Tensor) else x)
    xt = xt.to(device=device, dtype=torch.float32)
    x_train = xt[torch.as_tensor(train_idx, device=device)]
    x_val = xt[torch.as_tensor(val_idx, device=device)] if len(val_idx) else None
    module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay, eps=adam_eps)
    shuffler = torch.Generator().manual_seed(seed)

    best, best_state, wait = math.inf, None, 0
    epoch0 = history.epoch[-1] + 1 if history.epoch else 0
    bar = tqdm(range(epoch0, epoch0 + max_epochs), disable=not progress_bar, desc="training", leave=False)
    try:
        for epoch in bar:
            module.train()
            order = torch.randperm(len(train_idx), generator=shuffler).to(device)
            sums, seen = np.zeros(3), 0
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                if len(idx) < 2:
                    continue
                out = module(x_train[idx])
                optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                if grad_clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip_norm)
                optimizer.step()
                sums += len(idx) * np.array([out["loss"].item(), out["recon"].item(), out["kl"].item()])
                seen += len(idx)
            tr = sums / max(seen, 1)
            if not np.isfinite(tr[0]):
                raise FloatingPointError(f"training loss became {tr[0]} at epoch {epoch}; lower lr (now {lr})")
            va = _evaluate(module, x_val, 1024) if x_val is not None else (math.nan,) * 3
            history.epoch.append(epoch)
            for name, value in zip(("train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl"),
                                   (*tr, *va)):
                getattr(history, name).append(float(value))
            monitored = va[0] if x_val is not None else tr[0]
            bar.set_postfix(train=f"{tr[0]:.4g}", val=f"{va[0]:.4g}")
            if monitored < best - min_delta:
                best, wait, history.best_epoch = monitored, 0, epoch
                if early_stopping:
                    best_state = copy.deepcopy(module.state_dict())
            else:
                wait += 1
            if on_epoch_end is not None:
                try:
                    on_epoch_end(epoch, float(monitored))
                except StopTraining:
                    history.stopped_early = True
                    break
            if early_stopping and wait >= patience:
                history.stopped_early = True
                break
    finally:
        bar.close()
        module.eval()
    if early_stopping and best_state is not None:
        module.load_state_dict(best_state)
    return history
