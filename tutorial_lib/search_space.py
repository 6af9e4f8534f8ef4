"""Search spaces of hyperparameter tuning: their form and its check (no Optuna needed).

A search space maps a parameter name to ``(kind, spec)``: ``("int"|"float", (low, high, log))``
or ``("categorical", choices)``. Method records (:class:`tutorial_lib.models.registry.MethodSpec`)
hold one each; :mod:`tutorial_lib.tuning` draws from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def validate_space(space: Mapping[str, tuple[str, Any]]) -> None:
    """Raise ``ValueError`` naming the parameter when a search-space entry is malformed."""
    if not space:
        raise ValueError("the search space is empty")
    for name, entry in space.items():
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise ValueError(f"search space entry {name!r} must be (kind, spec), got {entry!r}")
        kind, spec = entry
        if kind == "categorical":
            if len(spec) == 0:
                raise ValueError(f"{name}: categorical choices are empty")
            continue
        if kind not in {"int", "float"}:
            raise ValueError(f"{name}: kind must be 'int', 'float' or 'categorical', got {kind!r}")
        if len(spec) != 3:
            raise ValueError(f"{name}: numeric spec must be (low, high, log), got {spec!r}")
        low, high, log = spec
        if not low < high:
            raise ValueError(f"{name}: low must be below high, got low={low}, high={high}")
        if log and low <= 0:
            raise ValueError(f"{name}: a log-scale range needs low > 0, got low={low}")
