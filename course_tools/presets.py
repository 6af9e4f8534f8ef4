"""Training presets of scGen and scPRAM: the *default* schedule, a *capped* budget, the *reference* budgets.

``TRAIN_PRESETS[method][setting]`` holds keyword arguments of ``Model.train``;
``PREDICT_PRESETS[method][setting]`` those of ``Model.predict``. Both are read-only views of the
method records (:class:`course_tools.methods.MethodSpec`), where the values are defined.

* ``"default"``: no overrides, i.e. each model's ``train_defaults``: early stopping on the
  smoothed validation loss, with patience, minimum budget and cap counted in optimizer steps (on
  the full Kang data both models usually reach the 3,000-step cap;
  :func:`tutorial_lib.models.training.train_vae`; how the values were chosen:
  :class:`tutorial_lib.models.SCGEN` and :class:`tutorial_lib.models.SCPRAM`). Use this.
* ``"capped"``: a *fixed, small budget* of a few epochs (the former ``fast``
  preset: scGen 10 epochs at batch 128, scPRAM 6 epochs at lr 1e-3, on top of the default
  schedule). Cheap, but 8.6% (scGen) and 34% (scPRAM) above the converged validation loss on
  Kang 2018 and below the baselines on smaller data sets (``benchmarks/README.md``); kept so that
  old results can be reproduced and for demonstrations of what undertraining does.
* ``"reference"``: the fixed budgets of the reference implementations' tutorials measured in
  ``benchmarks/compare_references.py`` (pertpy 1.0.3 ``Scgen``: 10 epochs, batch 32, lr 1e-3;
  scpram 0.0.3: 10 epochs, batch 128, lr 5e-5), also capped, with a constant learning rate
  and no early stopping before the cap, as released.

``"fast"`` is an old name of ``"capped"``, still accepted (with a ``FutureWarning``).

Usage::

    from tutorial_lib.models import SCGEN
    from course_tools.presets import train_preset

    model = SCGEN(train)
    model.train(**train_preset("scgen"), progress_bar=False)                 # the default schedule
    model.train(**train_preset("scgen", max_epochs=5), progress_bar=False)   # capped at 5 epochs
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

from course_tools._views import SpecFieldView

#: Old preset names still accepted by :func:`train_preset`.
ALIASES = {"fast": "capped"}


#: ``Model.train`` keyword arguments per method and setting: a live view of each method record's
#: ``train_presets`` (:class:`course_tools.methods.MethodSpec`, where they are defined).
TRAIN_PRESETS: Mapping[str, Mapping[str, Mapping[str, Any]]] = SpecFieldView("train_presets", "TRAIN_PRESETS")

#: ``Model.predict`` keyword arguments per method and setting (empty: the defaults, which are
#: the published predictions: scGen's, and scPRAM's ``variant="released"``; the course variants
#: have their own method names in :data:`course_tools.methods.METHODS`). A live view of
#: the records' ``predict_presets``.
PREDICT_PRESETS: Mapping[str, Mapping[str, Mapping[str, Any]]] = SpecFieldView("predict_presets", "PREDICT_PRESETS")


def _lookup(table: Mapping, method: str, setting: str) -> dict[str, Any]:
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
    """A copy of ``TRAIN_PRESETS[method][setting]`` (keyword arguments of ``train``).

    ``max_epochs`` caps training at that many epochs (e.g. the test suite's ``cfg.max_epochs``;
    ``None`` keeps the preset's cap, none for ``"default"``). ``with_epochs=False`` leaves
    ``max_epochs`` out, for callers that set the epochs themselves (``BenchmarkConfig.max_epochs``,
    ``fit_and_score(max_epochs=...)``).
    """
    if setting in ALIASES:
        warnings.warn(
            f"train preset {setting!r} is now called {ALIASES[setting]!r} (a capped budget that does "
            f"not train to convergence); use 'default' to train to convergence",
            FutureWarning,
            stacklevel=2,
        )
        setting = ALIASES[setting]
    settings = _lookup(TRAIN_PRESETS, method, setting)
    if max_epochs is not None:
        if not with_epochs:
            raise ValueError("max_epochs= and with_epochs=False contradict each other; pass one of them")
        settings["max_epochs"] = max_epochs
    if not with_epochs:
        settings.pop("max_epochs", None)
    return settings


def predict_preset(method: str, setting: str = "default") -> dict[str, Any]:
    """A copy of ``PREDICT_PRESETS[method][setting]`` (keyword arguments of ``predict``)."""
    return _lookup(PREDICT_PRESETS, method, ALIASES.get(setting, setting))
