"""Check functions for the "Your turn" exercises of notebooks 00-04, one module per notebook.

Self-study has no instructor, so each exercise ends with a call such as
``check_largest_response(answer, adata)`` that says whether the answer is right and, when it is
not, what is probably wrong. Every check recomputes the right answer from the learner's own
inputs with the library functions the course uses (nothing is stored or hard-coded), so it stays
right when the data, the mode (fast/full) or the seed change.

Each check returns a :class:`Feedback`: true when the answer is right, shown in a notebook as a
one-line verdict (``Correct: ...`` or ``Not yet: ...``). Bad input (a wrong type, a name that is
not in the data) is answered with a ``Not yet`` message naming what was expected; nothing is
raised, so a learner's notebook never stops at a check.

:data:`EXERCISES` documents every planned exercise (notebook, question, scaffold code, check
call, worked solution) so that the notebook rewrite inserts them as they are;
``tests/test_exercises.py`` runs every check with right and wrong answers, and every solution.
"""

from course_tools.exercises import benchmarking, intro, scgen, scpram, tuning
from course_tools.exercises.benchmarking import check_paired_difference, check_verdict
from course_tools.exercises.feedback import Feedback
from course_tools.exercises.intro import check_largest_response, check_training_mask
from course_tools.exercises.scgen import check_balancing_guess, check_latent_shift, check_pearson_delta
from course_tools.exercises.scpram import check_attention_spread, check_entropic_ot
from course_tools.exercises.tuning import check_selection_effect, check_startup_trials, check_validation_choice

# The exercises, for the notebook rewrite: question (markdown), scaffold (the "Your turn" code
# cell; ``...`` marks what the learner writes), check (the call that ends the cell) and solution
# (worked code for the folded solution cell). Names such as ``adata``, ``parts``, ``pred``,
# ``model``, ``z_ctrl`` are the notebook's own variables; tests/test_exercises.py runs every
# solution followed by its check on the mini data or small synthetic data.
EXERCISES: dict[str, dict[str, str]] = {
    **intro.EXERCISES,
    **scgen.EXERCISES,
    **scpram.EXERCISES,
    **benchmarking.EXERCISES,
    **tuning.EXERCISES,
}

__all__ = [
    "EXERCISES",
    "Feedback",
    "check_attention_spread",
    "check_balancing_guess",
    "check_entropic_ot",
    "check_largest_response",
    "check_latent_shift",
    "check_paired_difference",
    "check_pearson_delta",
    "check_selection_effect",
    "check_startup_trials",
    "check_training_mask",
    "check_validation_choice",
    "check_verdict",
]
