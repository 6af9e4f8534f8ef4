"""Training presets of scGen and scPRAM: the *default* schedule, a *capped* budget, the *reference* budgets.

:func:`train_preset` gives the keyword arguments of ``Model.train`` of a method and setting,
:func:`predict_preset` those of ``Model.predict``; the values are defined in the method records
(:attr:`course_tools.methods.MethodSpec.train_presets` and ``predict_presets``).

* ``"default"``: no overrides, i.e. each model's ``train_defaults``: early stopping on the
  smoothed validation loss, with patience, minimum budget and cap counted in optimizer steps (on
  the full Kang data both models usually reach the 3,000-step cap;
  :class:`tutorial_lib.models.TrainingOptions`; how the values were chosen:
  :class:`tutorial_lib.models.SCGEN` and :class:`tutorial_lib.models.SCPRAM`). Use this.
* ``"capped"``: a *fixed, small budget* of a few epochs (scGen 10 epochs at batch 128, scPRAM 6
  epochs at lr 1e-3, on top of the default schedule). Cheap, but 8.6% (scGen) and 34% (scPRAM)
  above the converged validation loss on Kang 2018 and below the baselines on smaller data sets
  (``benchmarks/README.md``); kept so that old results can be reproduced and for demonstrations
  of what undertraining does.
* ``"reference"``: the fixed budgets of the reference implementations' tutorials measured in
  ``benchmarks/compare_references.py`` (pertpy 1.0.3 ``Scgen``: 10 epochs, batch 32, lr 1e-3;
  scpram 0.0.3: 10 epochs, batch 128, lr 5e-5), also capped, with a constant learning rate
  and no early stopping before the cap, as released.

Usage::

    from tutorial_lib.models import SCGEN
    from course_tools.presets import train_preset

    model = SCGEN(train)
    model.train(**train_preset("scgen"), progress_bar=False)                 # the default schedule
    model.train(**train_preset("scgen", max_epochs=5), progress_bar=False)   # capped at 5 epochs
"""

from __future__ import annotations

import copy
from typing import Any


def _lookup(field: str, method: str, setting: str) -> dict[str, Any]:
    """A copy of ``SPECS[method].<field>[setting]``, with an error naming the methods and settings that have one."""
    from course_tools.methods import SPECS

    table = {name: getattr(spec, field) for name, spec in SPECS.items() if getattr(spec, field)}
    if method not in table:
        raise ValueError(f"Unknown method {method!r}; choose from {sorted(table)}")
    if setting not in table[method]:
        raise ValueError(f"Unknown setting {setting!r} for {method}; choose from {sorted(table[method])}")
    return copy.deepcopy(dict(table[method][setting]))


def train_preset(
    method: str,
    setting: str = "default",
    *,
    max_epochs: int | None = None,
    with_epochs: bool = True,
) -> dict[str, Any]:
    """Keyword arguments of ``train`` for ``method`` and ``setting`` (a copy of the record's ``train_presets``).

    ``max_epochs`` caps training at that many epochs (e.g. the test suite's ``cfg.max_epochs``;
    ``None`` keeps the preset's cap, none for ``"default"``). ``with_epochs=False`` leaves
    ``max_epochs`` out, for callers that set the epochs themselves (``BenchmarkConfig.max_epochs``,
    ``fit_and_score(max_epochs=...)``).
    """
    settings = _lookup("train_presets", method, setting)
    if max_epochs is not None:
        if not with_epochs:
            raise ValueError("max_epochs= and with_epochs=False contradict each other; pass one of them")
        settings["max_epochs"] = max_epochs
    if not with_epochs:
        settings.pop("max_epochs", None)
    return settings


def predict_preset(method: str, setting: str = "default") -> dict[str, Any]:
    """Keyword arguments of ``predict`` for ``method`` and ``setting`` (a copy of the record's ``predict_presets``).

    Empty for every built-in setting: the defaults are the published predictions (scGen's, and
    scPRAM's ``variant="released"``); the course variants have their own method names in
    :data:`course_tools.methods.METHODS`.
    """
    return _lookup("predict_presets", method, setting)
