"""Training presets of scGen and scPRAM: a *reference* setting and a *fast* one.

``TRAIN_PRESETS[method][setting]`` holds keyword arguments of ``Model.train`` (``max_epochs``,
``batch_size``, ``lr``); ``PREDICT_PRESETS[method][setting]`` those of ``Model.predict``.

* ``"reference"``: the settings of the reference implementations measured in
  ``benchmarks/compare_references.py`` (pertpy 1.0.3 ``Scgen``: 10 epochs, batch 32, lr 1e-3;
  scpram 0.0.3: 10 epochs, batch 128, lr 5e-5), for a like-for-like comparison.
* ``"fast"``: fewer optimizer steps for a fraction of the references' time on a 2-core CPU:
  scGen with batch 128 instead of 32 (4× fewer steps, same lr and epochs); scPRAM with 6
  epochs at lr 1e-3 instead of 10 epochs at 5e-5. Chosen on Kang 2018 (2,000 HVGs, CD4+ T
  cells held out); figures and the comparison with the references, including where the fast
  settings fall short of them: ``benchmarks/README.md``.

Both presets use each model's optimizer defaults (``train_defaults``: scGen Adam ``eps=0.01``
and weight decay 1e-6 as scvi-tools; scPRAM ``eps=1e-8`` and weight decay 1e-5).

Usage::

    from tutorial_lib.models import SCGEN
    from tutorial_lib.models.presets import train_preset

    model = SCGEN(train)
    model.train(**train_preset("scgen", "fast"), progress_bar=False)
"""

from __future__ import annotations

import copy
from typing import Any

#: ``Model.train`` keyword arguments per method and setting.
TRAIN_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "scgen": {
        "reference": {"max_epochs": 10, "batch_size": 32, "lr": 1e-3},
        "fast": {"max_epochs": 10, "batch_size": 128, "lr": 1e-3},
    },
    "scpram": {
        "reference": {"max_epochs": 10, "batch_size": 128, "lr": 5e-5},
        "fast": {"max_epochs": 6, "batch_size": 128, "lr": 1e-3},
    },
}

#: ``Model.predict`` keyword arguments per method and setting (empty: the defaults, which are
#: the published predictions: scGen's, and scPRAM's ``variant="released"``; the course variants
#: have their own method names in :data:`tutorial_lib.models.registry.METHODS`).
PREDICT_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "scgen": {"reference": {}, "fast": {}},
    "scpram": {"reference": {}, "fast": {}},
}

SETTINGS = ("reference", "fast")


def _lookup(table: dict, method: str, setting: str) -> dict[str, Any]:
    if method not in table:
        raise ValueError(f"Unknown method {method!r}; choose from {sorted(table)}")
    if setting not in table[method]:
        raise ValueError(f"Unknown setting {setting!r} for {method}; choose from {sorted(table[method])}")
    return copy.deepcopy(table[method][setting])


def train_preset(
    method: str,
    setting: str = "fast",
    *,
    max_epochs: int | None = None,
    with_epochs: bool = True,
) -> dict[str, Any]:
    """A copy of ``TRAIN_PRESETS[method][setting]`` (keyword arguments of ``train``).

    ``max_epochs`` replaces the preset's number of epochs (e.g. fewer in fast mode; ``None``
    keeps it). ``with_epochs=False`` leaves ``max_epochs`` out, for callers that set the epochs
    themselves (``BenchmarkConfig.n_epochs``, ``fit_and_score(n_epochs=...)``).
    """
    settings = _lookup(TRAIN_PRESETS, method, setting)
    if max_epochs is not None:
        if not with_epochs:
            raise ValueError("max_epochs= and with_epochs=False contradict each other; pass one of them")
        settings["max_epochs"] = max_epochs
    if not with_epochs:
        del settings["max_epochs"]
    return settings


def predict_preset(method: str, setting: str = "fast") -> dict[str, Any]:
    """A copy of ``PREDICT_PRESETS[method][setting]`` (keyword arguments of ``predict``)."""
    return _lookup(PREDICT_PRESETS, method, setting)
