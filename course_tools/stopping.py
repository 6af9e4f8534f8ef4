"""Replaying the training loop's early-stopping rule on recorded validation curves.

Used to compare stopping rules on histories without retraining (``benchmarks/README.md``): the
replay runs :class:`tutorial_lib.models.vae.EarlyStopping`, the very code that stops training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tutorial_lib.models.vae import EarlyStopping


def replay_stopping(history: pd.DataFrame, *, max_steps: int | None = None, **rule: float) -> dict[str, float]:
    """Where the stopping rule ``rule`` (:class:`EarlyStopping`'s arguments) would have ended a recorded run.

    ``history`` is a ``TrainingHistory.to_frame()`` (columns ``step`` and ``val_loss``) of a
    run that trained at least as long as the rule would. Returns ``stop_step`` (the step of the
    pass that stops, or the last recorded / ``max_steps`` when the rule never fires),
    ``stopped`` (1.0 if the rule fired), ``best_val_loss`` (lowest raw validation loss up to
    ``stop_step``: the weights that would be restored) and ``best_step``. The replay is exact for
    a rule that differs only in its stopping arguments: the learning rate of a step depends on the
    cap, not on when training stops, so the recorded run and the replayed one are the same up to
    the replayed stop. A ``max_steps`` below the recorded run's cap is an approximation (a shorter
    cap decays the rate sooner).
    """
    require = {"step", "val_loss"} - set(history.columns)
    if require:
        raise ValueError(f"history needs columns {sorted(require)}; it has {sorted(history.columns)}")
    rule_obj = EarlyStopping(**rule)  # type: ignore[arg-type]
    steps = history["step"].to_numpy()
    losses = history["val_loss"].to_numpy(dtype=float)
    stop, fired = int(steps[-1]), False
    for step, loss in zip(steps, losses):
        if max_steps is not None and step > max_steps:
            break
        stop = int(step)
        if rule_obj.update(int(step), float(loss)) and (max_steps is None or step < max_steps):
            fired = True
            break
    upto = steps <= stop
    i = int(np.nanargmin(np.where(upto, losses, np.inf)))
    return {
        "stop_step": float(stop),
        "stopped": float(fired),
        "best_val_loss": float(losses[i]),
        "best_step": float(steps[i]),
    }
