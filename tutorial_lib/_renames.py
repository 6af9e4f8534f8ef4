"""Old names kept as deprecated aliases (issue 16: one name per idea).

The epoch cap is called ``max_epochs`` everywhere (``Model.train``, presets, ``RunConfig``,
``BenchmarkConfig``, the registry's ``fit_predict``, ``tuning.fit_and_score`` /
``make_objective``, ``python -m tutorial_lib.tune --max-epochs``); ``n_epochs`` still works
there, with a ``FutureWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any

#: Marks an alias that was not given (``None`` is a meaningful ``max_epochs``: no cap).
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET", "__bool__": lambda self: False})()


def renamed(
    new_value: Any, old_value: Any, *, old: str, new: str, where: str, new_default: Any = UNSET, stacklevel: int = 3
) -> Any:
    """The value of an argument renamed from ``old`` to ``new``: ``new_value`` unless ``old_value`` was given.

    Warns (``FutureWarning``) when the old name is used; raises ``TypeError`` when both are given
    with different values (``new_value`` equal to ``new_default`` counts as not given).
    """
    if old_value is UNSET:
        return new_value
    warnings.warn(
        f"{where}: {old!r} is now called {new!r}; {old!r} will be removed", FutureWarning, stacklevel=stacklevel
    )
    if new_value is not UNSET and new_value != new_default and new_value != old_value:
        raise TypeError(f"{where}: got both {new}={new_value!r} and its old name {old}={old_value!r}; pass {new} only")
    return old_value
