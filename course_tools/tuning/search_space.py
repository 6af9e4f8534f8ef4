"""Search spaces of hyperparameter tuning: their form and its check (no Optuna needed).

A search space maps a parameter name to ``(kind, spec)``: ``("int"|"float", (low, high, log))``
or ``("categorical", choices)``. Method records (:class:`course_tools.methods.MethodSpec`)
hold one each; :mod:`course_tools.tuning.study` draws from them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def validate_space(space: Mapping[str, tuple[str, Any]]) -> None:
    """Raise ``ValueError`` naming the parameter when a search-space entry is malformed.

    Checks the form only: the kind, integer bounds for ``"int"`` (Optuna's ``suggest_int`` fails
    on a float), finite numbers for ``"float"``, ``low < high``, a boolean ``log`` and ``low > 0``
    on a log scale. Whether the model accepts the values is checked by
    :func:`course_tools.tuning.study.check_space`.
    """
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
        valid = _is_int if kind == "int" else _is_finite_number
        expected = "integer bounds" if kind == "int" else "finite numbers as bounds"
        for label, value in (("low", low), ("high", high)):
            if not valid(value):
                raise ValueError(
                    f"{name}: a{'n' if kind == 'int' else ''} {kind} range needs {expected}, got {label}={value!r}"
                )
        if not isinstance(log, bool):
            raise ValueError(f"{name}: log must be true or false, got {log!r}")
        if not low < high:
            raise ValueError(f"{name}: low must be below high, got low={low}, high={high}")
        if log and low <= 0:
            raise ValueError(f"{name}: a log-scale range needs low > 0, got low={low}")
