"""Leak-free hyperparameter tuning with Optuna, in parts with one job each.

- :mod:`~course_tools.tuning.study`: the objective (train on training cells, score the validation
  cell type), the checked search spaces, creating, running and summarising a study;
- :mod:`~course_tools.tuning.storage`: the study storages (SQLite, journal file, any RDB URL) with
  heartbeats, and their checks;
- :mod:`~course_tools.tuning.cli`: the worker, ``python -m course_tools.tuning.cli``;
- :mod:`~course_tools.tuning.tables` and :mod:`~course_tools.tuning.report`: a study as tables and readouts;
- :mod:`~course_tools.tuning.postgres`: a throw-away PostgreSQL server for tests and benchmarks;
- :mod:`~course_tools.tuning.committed`: the committed study (``python -m course_tools.tuning.committed``)
  and its readers; :mod:`~course_tools.tuning.committed_report`: what it shows in words, as far as it
  has come;
- :mod:`~course_tools.tuning.findings`: what notebook 04's live run found, in words.
"""
