"""What a check returns, and the helpers every notebook's checks share.

Each check returns a :class:`Feedback`: true when the answer is right, shown in a notebook as a
one-line verdict (``Correct: ...`` or ``Not yet: ...``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from anndata import AnnData

#: Relative tolerance of numerical answers: a learner's numpy code may sum in another order or
#: in float32, so agreement to about 4 significant digits counts as right.
RTOL = 1e-4
ATOL = 1e-6


@dataclass(frozen=True)
class Feedback:
    """Verdict of a check: ``passed`` and a message for the learner."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return ("Correct: " if self.passed else "Not yet: ") + self.message

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return ("**Correct:** " if self.passed else "**Not yet:** ") + self.message


def _ok(message: str) -> Feedback:
    return Feedback(True, message)


def _no(message: str) -> Feedback:
    return Feedback(False, message)


def _close(a: float, b: float, rtol: float = RTOL, atol: float = ATOL) -> bool:
    return bool(np.isfinite(a) and np.isfinite(b) and math.isclose(a, b, rel_tol=rtol, abs_tol=atol))


def _as_float(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out


def _means(x) -> np.ndarray:
    from tutorial_lib.metrics import gene_means

    return np.asarray(gene_means(x.X if isinstance(x, AnnData) else x), dtype=np.float64)


def _guess(answer, choices: Sequence[str]) -> str | None:
    """The learner's guess, normalised, if it is one of ``choices``."""
    if isinstance(answer, str) and answer.strip().lower() in choices:
        return answer.strip().lower()
    return None


def _predicted(x, like: AnnData) -> np.ndarray | None:
    """Predicted expression ``x`` (AnnData or cells × genes array, ``like``'s genes) as a dense array."""
    x = x.X if isinstance(x, AnnData) else x
    try:
        x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return x if x.shape == like.shape else None
