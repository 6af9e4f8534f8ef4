"""Check functions for the "Your turn" exercises of notebooks 00-04, one module per notebook.

Self-study has no instructor, so each exercise ends with a call such as
``check_training_mask(mask, adata)`` that says whether the answer is right and, when it is
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
from course_tools.exercises.benchmarking import (
    check_cell_type_wins,
    check_paired_difference,
    check_raw_pooling,
    check_verdict,
)
from course_tools.exercises.feedback import Feedback
from course_tools.exercises.intro import check_holdout_guess, check_r2_by_gene_set, check_training_mask
from course_tools.exercises.scgen import check_balancing_guess, check_latent_shift, check_pearson_delta
from course_tools.exercises.scpram import check_attention_spread, check_entropic_ot
from course_tools.exercises.tuning import check_flattery_by_k, check_fresh_seeds_guess, check_selection_effect

#: What an exercise asks of the learner (``EXERCISES[key]["kind"]``): each notebook has at least one
#: "predict, then run" (a guess written before the run, compared with it) and one "change a setting,
#: rerun, interpret".
KINDS = ("compute", "predict, then run", "change a setting, rerun, interpret")

# The exercises, for the notebook rewrite: kind (one of KINDS, or a tuple of them), question
# (markdown), scaffold (the "Your turn" code cell; ``...`` marks what the learner writes), check (the
# call that ends the cell) and solution (worked code for the folded solution cell). Names such as
# ``adata``, ``parts``, ``pred``, ``model``, ``z_ctrl`` are the notebook's own variables;
# tests/test_exercises.py runs every solution followed by its check on the mini data or small
# synthetic data.
EXERCISES: dict[str, dict[str, str]] = {
    **intro.EXERCISES,
    **scgen.EXERCISES,
    **scpram.EXERCISES,
    **benchmarking.EXERCISES,
    **tuning.EXERCISES,
}

__all__ = [
    "EXERCISES",
    "KINDS",
    "Feedback",
    "check_attention_spread",
    "check_balancing_guess",
    "check_cell_type_wins",
    "check_entropic_ot",
    "check_flattery_by_k",
    "check_fresh_seeds_guess",
    "check_holdout_guess",
    "check_r2_by_gene_set",
    "check_latent_shift",
    "check_paired_difference",
    "check_pearson_delta",
    "check_raw_pooling",
    "check_selection_effect",
    "check_training_mask",
    "check_verdict",
]
