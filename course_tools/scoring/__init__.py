"""The scoring table of the course: every metric of :mod:`tutorial_lib.metrics` with its interval.

:mod:`~course_tools.scoring.evaluate` builds the table, :mod:`~course_tools.scoring.registry`
declares each metric once, :mod:`~course_tools.scoring.bootstrap` gives the interval schemes,
:mod:`~course_tools.scoring.pairwise` the distances of resampled cells, :mod:`~course_tools.scoring.kde`
and :mod:`~course_tools.scoring.decoded` two further readouts.
"""
