"""Where a tuning study lives: Optuna storages that survive killed workers, and their checks.

A SQLite file by default (:func:`default_storage_path`, an absolute path), so an interrupted study
resumes with its finished trials; any Optuna RDB URL (e.g. PostgreSQL) lets many workers on many
machines share one study; a path ending in ``.log``/``.jsonl`` uses Optuna's journal file storage.
All three keep one contract (``tests/test_tuning_storages.py``): a killed worker's trial is failed
after three missed heartbeats and retried once with its parameters.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalStorage

from tutorial_lib.config import cache_dir

STORAGE_FILE = "optuna.db"
"""File name of the default study storage, inside :func:`tutorial_lib.config.cache_dir`."""


def default_storage_path() -> Path:
    """Absolute path of the default SQLite study file: ``<cache dir>/optuna.db``.

    The cache directory is ``TUTORIAL_CACHE_DIR`` if set, else ``<repository>/.cache`` in a source
    checkout, else ``~/.cache/tutorial_lib`` (:func:`tutorial_lib.config.cache_dir`). Absolute, so
    a notebook run inside ``notebooks/`` and a worker started from the repository root share one study.
    """
    return cache_dir() / STORAGE_FILE


JOURNAL_SUFFIXES = (".log", ".jsonl")
"""File endings that :func:`make_storage` opens as Optuna's journal file storage (others: SQLite)."""

DRIVER_PACKAGES = {
    "psycopg": '"psycopg[binary]"',
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "PyMySQL",
    "mysqldb": "mysqlclient",
    "mysqlconnector": "mysql-connector-python",
    "mariadbconnector": "mariadb",
    "oracledb": "oracledb",
    "cx_oracle": "cx_Oracle",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}
"""PyPI package of each SQLAlchemy database driver (by SQLAlchemy's driver name), for error messages."""


def check_storage(storage: str | Path | None, *, name: str = "storage") -> None:
    """Raise ``ValueError`` if :func:`make_storage` cannot open ``storage``; changes nothing.

    Checked without connecting or writing: an empty string; a file path (SQLite, or a journal for
    ``.log``/``.jsonl``) that is a directory, lies under a file, or is an existing file of another
    kind (a journal file must hold one JSON operation with an ``op_code`` per line; a last line
    without its newline is a write under way and is not read); a URL's SQLAlchemy dialect, which
    must be known, and its Python driver, which must be importable. ``postgresql://`` uses the
    driver SQLAlchemy chooses for it: psycopg 3 from SQLAlchemy 2.1 on, psycopg2 before. The message
    names the problem; ``name`` is how it refers to the argument (``"--storage"`` on the command
    line). A URL's password is never printed.
    """
    if storage is None:
        storage = default_storage_path()
    if isinstance(storage, str) and not storage.strip():
        raise ValueError(
            f"{name} must not be empty: give a database URL (postgresql://user:password@host/db), a .db (SQLite) "
            f"or .log (journal) file, or leave it out for the default ({default_storage_path()})"
        )
    text = str(storage)
    if "://" in text:
        _check_url(text, name)
    else:
        _check_file(text, name, journal=text.endswith(JOURNAL_SUFFIXES))


def _check_url(text: str, name: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(text)
    except ArgumentError as err:
        raise ValueError(f"{name} is not a database URL such as postgresql://user:password@host/db ({err})") from err
    backend = url.get_backend_name()
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError as err:
        hint = {"postgres": " (did you mean postgresql://?)", "sqlite3": " (did you mean sqlite:///?)"}.get(backend, "")
        raise ValueError(
            f"{name}: unknown database dialect {url.drivername!r}{hint}; SQLAlchemy's dialects include "
            "postgresql, mysql and sqlite (a file path needs no '://')"
        ) from err
    loader = getattr(dialect, "import_dbapi", None) or dialect.dbapi  # SQLAlchemy >= 2.0 / 1.4
    try:
        loader()
    except ImportError as err:
        driver = dialect.driver
        package = DRIVER_PACKAGES.get(driver, driver)
        raise ValueError(
            f"{name}: database dialect {backend!r} needs the Python driver {driver!r}, which is not installed; "
            f"install it with `pip install {package}`"
        ) from err
    if backend == "sqlite" and url.database and url.database != ":memory:":
        _check_file(url.database, name, journal=False)


def _check_file(text: str, name: str, *, journal: bool) -> None:
    path = Path(text).expanduser()
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise ValueError(
            f"{name} {path} is a directory, not a storage file: name a file in it, e.g. {path / 'study.db'}"
        )
    above = next((p for p in path.absolute().parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ValueError(f"{name} {path}: {above} is a file, so no folder can be made there")
    if not path.is_file() or path.stat().st_size == 0:
        return  # created when the study is
    if journal:
        _check_journal(path, name)
        return
    with open(path, "rb") as f:
        header = f.read(16)
    if header != b"SQLite format 3\x00":
        raise ValueError(
            f"{name} {path} is not a SQLite database (its first bytes are {header[:16]!r}); name another file, "
            f"or end the name in {' or '.join(JOURNAL_SUFFIXES)} for a journal file"
        )


def _check_journal(path: Path, name: str) -> None:
    """Raise ``ValueError`` unless every complete line of ``path`` is a JSON operation of Optuna's journal."""
    expected = "Optuna's journal holds one JSON operation with an op_code per line; name another file"
    complete = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                break  # a last line being written by another worker
            complete += 1
            try:
                op = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(
                    f"{name} {path} is not an Optuna journal file: line {number} is not JSON ({expected})"
                ) from err
            if not (isinstance(op, dict) and "op_code" in op):
                raise ValueError(
                    f"{name} {path} is not an Optuna journal file: line {number} has no op_code ({expected})"
                )
    if complete == 0:
        raise ValueError(f"{name} {path} is not an Optuna journal file: it has no complete line ({expected})")


def make_storage(storage: str | Path | None, *, heartbeat: int = 10) -> BaseStorage:
    """An Optuna storage from a URL or a path.

    ``None`` → SQLite at :func:`default_storage_path`; a path ending in ``.db`` → SQLite;
    ``.log`` or ``.jsonl`` → journal file; anything with ``://`` → RDB URL (SQLite, PostgreSQL,
    MySQL). Every storage gets a heartbeat every ``heartbeat`` seconds, so that a trial whose worker
    was killed is marked failed (after three missed beats) and retried once with its parameters,
    instead of staying "running" for ever. RDB storages use Optuna's heartbeat; the journal file
    uses :class:`HeartbeatJournalStorage` (Optuna's journal storage has none). ``storage`` is
    checked first (:func:`check_storage`), so a bad one raises ``ValueError`` before anything is
    written.
    """
    if heartbeat < 1:
        raise ValueError(f"heartbeat must be >= 1 second, got {heartbeat}")
    check_storage(storage)
    if storage is None:
        storage = default_storage_path()
    storage = str(storage)
    if storage.endswith(JOURNAL_SUFFIXES) and "://" not in storage:
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return HeartbeatJournalStorage(
            JournalFileBackend(storage),
            heartbeat_interval=heartbeat,
            grace_period=3 * heartbeat,
            **_retry_stale_trials(max_retry=1),
        )
    if "://" not in storage:
        Path(storage).expanduser().parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{Path(storage).expanduser().resolve()}"
    return optuna.storages.RDBStorage(
        storage,
        heartbeat_interval=heartbeat,
        grace_period=3 * heartbeat,
        engine_kwargs={"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else None,
        **_retry_stale_trials(max_retry=1),
    )


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal file storage with the heartbeat of its RDB storage.

    Each running trial records the wall-clock time (``time.time()``) in its system attribute
    ``heartbeat`` every ``heartbeat_interval`` seconds; a running trial whose last beat and start
    are both older than ``grace_period`` seconds is stale, and Optuna fails it and calls
    ``heartbeat_stale_trial_callback`` (which re-queues it) exactly as for RDB storages. Workers on
    several machines sharing one journal file need synchronised clocks (NTP), as with any shared
    file; the RDB storage uses the database server's clock instead.
    """

    _ATTR = "heartbeat"

    def __init__(
        self,
        backend: JournalFileBackend,
        *,
        heartbeat_interval: int,
        grace_period: int,
        heartbeat_stale_trial_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
        failed_trial_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
    ) -> None:
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self._stale_callback = heartbeat_stale_trial_callback or failed_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        """Store the current wall-clock time as the heartbeat of trial ``trial_id``."""
        try:
            self.set_trial_system_attr(trial_id, self._ATTR, time.time())
        except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
            pass  # the trial has just finished (or was failed as stale by another worker)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            # A retried trial inherits its predecessor's system attributes, last beat included (Optuna's
            # retry callback copies them), so a beat from before this trial started is not its own.
            beat = trial.system_attrs.get(self._ATTR)
            times = [] if beat is None else [float(beat)]
            if trial.datetime_start is not None:
                times.append(trial.datetime_start.timestamp())  # naive local time, as the journal stores it
            if times and now - max(times) > self.grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        """Seconds between two heartbeats of a running trial."""
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        """The callback Optuna calls on a trial failed as stale (``None``: none)."""
        return self._stale_callback

    def get_failed_trial_callback(self):  # Optuna < 4.9 asks for this name
        """The callback Optuna calls on a trial failed as stale (old name)."""
        return self._stale_callback


def _retry_stale_trials(max_retry: int) -> dict[str, Any]:
    """``RDBStorage`` keyword that re-queues a trial whose worker stopped sending heartbeats.

    Optuna 4.9 renamed the callback and its keyword (``RetryFailedTrialCallback`` passed as
    ``failed_trial_callback`` is deprecated, to be removed in 6.0); older releases only have
    the old names.
    """
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback") and (
        "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
    ):
        return {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=max_retry)}
