"""Checks of notebook 04 (tuning without leakage)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from course_tools.exercises.feedback import Feedback, _as_float, _close, _no, _ok
from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY, CONTROL, STIMULATED


def check_validation_choice(
    answer: str,
    adata: AnnData,
    test_cell_type: str = "CD4+ T cells",
    *,
    cell_type_key: str = CELL_TYPE_KEY,
    condition_key: str = CONDITION_KEY,
) -> Feedback:
    """Exercise 04-1: a cell type to tune on. Any type with both conditions except the test type."""
    from tutorial_lib.models._data import shared_cell_types

    types = adata.obs[cell_type_key].astype(str).to_numpy()
    conds = adata.obs[condition_key].astype(str).to_numpy()
    allowed = shared_cell_types(types, conds, ctrl_key=CONTROL, stim_key=STIMULATED, exclude=[test_cell_type])
    if answer == test_cell_type:
        return _no(
            f"{answer} is the test cell type: choosing settings on it leaks the test set into the choice, "
            "and its final score would flatter."
        )
    if answer not in allowed:
        return _no(
            f"{answer!r} is not a cell type with control and stimulated cells here; choose one of {list(allowed)}."
        )
    n = int(((types == answer) & (conds == STIMULATED)).sum())
    return _ok(
        f"{answer} ({n} stimulated cells) is withheld from training while tuning; "
        "the test type is scored once, at the end."
    )


def check_selection_effect(value, test_scores: Sequence[float], honest_score: float) -> Feedback:
    """Exercise 04-2: selection effect = best (lowest) test score among candidates - honest score.

    ``test_scores`` are the test-set E-distances (lower is better) of the candidates a wrong-way
    search judged on the test set; ``honest_score`` is the test score of the candidate chosen on
    the validation cell type. The effect is <= 0 when the honest candidate is among them.
    """
    try:
        scores = np.asarray(test_scores, dtype=np.float64)
        honest_score = float(honest_score)
    except (TypeError, ValueError):
        return _no(f"test_scores must be numbers and honest_score one number; got {test_scores!r}, {honest_score!r}.")
    if scores.ndim != 1 or scores.size == 0 or not np.all(np.isfinite(scores)):
        return _no("test_scores must be a non-empty 1-D sequence of finite numbers.")
    want = float(scores.min() - float(honest_score))
    got = _as_float(value)
    if got is None:
        return _no(f"expected one number; got {value!r}.")
    if _close(got, want):
        return _ok(
            f"selection effect {want:.4f}: what picking on the test set would have reported below the honest score."
        )
    if _close(got, -want):
        return _no("the sign is flipped: reported (wrong-way) minus honest.")
    if _close(got, float(scores.max() - honest_score)):
        return _no("E-distance is lower-is-better: the wrong-way search reports the *smallest* test score.")
    return _no("take the smallest test score over the candidates and subtract the honest candidate's test score.")


def check_startup_trials(answer) -> Feedback:
    """Exercise 04-3: how many trials the course's TPE sampler draws at random before modelling.

    The reference is read from the sampler that :func:`course_tools.tuning.study.create_study` builds,
    so it follows the library if the sampler's settings change.
    """
    import warnings

    import optuna

    from course_tools.tuning.study import create_study

    with warnings.catch_warnings():  # Optuna's notes on experimental storage features
        warnings.simplefilter("ignore")
        sampler = create_study("exercise-probe", storage="sqlite:///:memory:").sampler
    want = getattr(sampler, "_n_startup_trials", None)
    if want is None:  # pragma: no cover - private attribute renamed by a future Optuna
        import inspect

        want = inspect.signature(optuna.samplers.TPESampler).parameters["n_startup_trials"].default
    try:
        got = int(answer)
    except (TypeError, ValueError):
        return _no(f"expected a whole number of trials; got {answer!r}.")
    if got == want:
        return _ok(
            f"the first {want} trials are random; a study of {want} trials or fewer never uses the TPE model, "
            "so it is a random search."
        )
    return _no("look at the TPESampler's n_startup_trials (help(optuna.samplers.TPESampler), or study.sampler).")


#: This notebook's exercises (see :data:`course_tools.exercises.EXERCISES`).
EXERCISES: dict[str, dict[str, str]] = {
    "04-1": {
        "notebook": "04_benchmarking_part2",
        "question": "Pick a validation cell type for tuning (not the test type, CD4+ T cells).",
        "scaffold": "VALIDATION_CELL_TYPE = ...",
        "check": 'check_validation_choice(VALIDATION_CELL_TYPE, adata, test_cell_type="CD4+ T cells")',
        "solution": (
            'VALIDATION_CELL_TYPE = "B"   # a lymphocyte like CD4 T cells; any type but the test type is leak-free'
        ),
    },
    "04-2": {
        "notebook": "04_benchmarking_part2",
        "question": (
            "Compute the selection effect: the best wrong-way test score minus the honest candidate's test score."
        ),
        "scaffold": "test_scores = ...  # test E-distance of each wrong-way candidate\nhonest = ...\nvalue = ...",
        "check": "check_selection_effect(value, test_scores, honest)",
        "solution": (
            "value = min(test_scores) - honest   # E-distance: lower is better, so the search reports the minimum"
        ),
    },
    "04-3": {
        "notebook": "04_benchmarking_part2",
        "question": "How many trials does the course's TPE sampler draw at random before it starts modelling?",
        "scaffold": "answer = ...",
        "check": "check_startup_trials(answer)",
        "solution": (
            "import inspect\nimport optuna\n\n"
            'answer = inspect.signature(optuna.samplers.TPESampler).parameters["n_startup_trials"].default'
        ),
    },
}
