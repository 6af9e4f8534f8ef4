"""Old names kept as deprecated aliases (issue 16: one name per idea).

Each old name below still works and warns ``FutureWarning``; it will be removed.

* ``n_epochs`` -> ``max_epochs`` (the epoch cap): ``Model.train``, presets, ``RunConfig``,
  ``BenchmarkConfig``, the registry's ``fit_predict``, ``tuning.fit_and_score`` /
  ``make_objective``, ``python -m tutorial_lib.tune --max-epochs``.
* ``ctrl_adata`` -> ``adata_to_predict`` (the control cells to predict from): the registry's
  ``fit_predict`` callables and the baselines (``no_change``, ``mean_shift``, ``pca_arithmetic``).
* ``celltype_to_predict`` -> ``cell_type`` (the held-out cell type; pertpy's name):
  ``SCGEN.predict``, ``SCPRAM.predict``.
* British spelling, as in ``harmonise`` / ``summarise``: ``data.normalise_log`` ->
  :func:`tutorial_lib.data.normalise_log`, ``tuning.optimize`` -> :func:`course_tools.tuning.optimise`,
  ``plotting.optimization_history`` -> :func:`tutorial_lib.plotting.optimisation_history`.
  Names of other packages (scanpy's ``normalize_total``, Optuna's ``study.optimize``) are theirs.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

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


def renamed_keywords(where: str | None = None, **old_to_new: str) -> Callable[[F], F]:
    """Decorator: the function also accepts each keyword ``old`` (of ``old_to_new``) as its new name.

    An old keyword warns ``FutureWarning`` and is passed on under its new name; giving a keyword
    under both names (the new one by position or keyword) raises ``TypeError``. The signature
    shown (``inspect.signature``, ``help``) has the new names only. ``where`` names the function
    in the messages (default: its qualified name).
    """

    def decorate(fn: F) -> F:
        label = where or fn.__qualname__
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                value = kwargs.pop(old)
                if new in kwargs or new in signature.bind_partial(*args).arguments:
                    raise TypeError(f"{label}: got both {new!r} and its old name {old!r}; pass {new} only")
                warnings.warn(
                    f"{label}: {old!r} is now called {new!r}; {old!r} will be removed", FutureWarning, stacklevel=2
                )
                kwargs[new] = value
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def deprecated_alias(fn: F, old: str) -> F:
    """``fn`` under its old name ``old``: same behaviour, but each call warns ``FutureWarning``."""

    @functools.wraps(fn)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"{old!r} is now called {fn.__name__!r}; {old!r} will be removed", FutureWarning, stacklevel=2)
        return fn(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = (
        f"Deprecated: the old name of :func:`{fn.__module__}.{fn.__name__}` (warns ``FutureWarning``); "
        "same arguments and result."
    )
    return alias  # type: ignore[return-value]
