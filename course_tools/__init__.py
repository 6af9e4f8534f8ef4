"""The course's machinery: benchmark grid, tables and verdicts, tuning, notebook execution and exercise checks.

It runs, times and checks the course around the learner's library, :mod:`tutorial_lib`, which never
imports it.
"""
