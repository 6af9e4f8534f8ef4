"""A throw-away PostgreSQL server in a temporary folder, for tests and benchmarks of shared tuning.

:func:`temporary_server` runs ``initdb`` and ``pg_ctl`` from Debian's ``postgresql`` package
(``make postgres`` installs it) in a fresh temporary folder, listening on 127.0.0.1 at a free port
with password-less ("trust") access for the ``postgres`` role, and yields its URL in the plain
``postgresql://`` form that the course documents, which :func:`course_tools.tuning.study.create_study`
and ``python -m course_tools.tuning.cli --storage`` accept. The
server is stopped and the folder removed at the end of the ``with`` block. It is a stand-in for a
real database server in tests; never use trust authentication on a machine others can reach.

PostgreSQL refuses to run as root, so under root the server runs as the unprivileged ``postgres``
user that Debian's package creates (the folder is handed to that user); as any other user it runs
as that user. Needs the Python driver SQLAlchemy uses for ``postgresql://``: ``psycopg`` (3) from
SQLAlchemy 2.1 on, ``psycopg2`` before; the ``test`` extra installs both (``pip install -e ".[test]"``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_USER = "postgres"
"""Unprivileged account the server runs as when the caller is root (created by Debian's package)."""


class PostgresUnavailable(RuntimeError):
    """The server cannot be started here; the message says why and what to install."""


def find_bindir() -> Path:
    """Folder holding ``initdb`` and ``pg_ctl``.

    Looked up in ``pg_config --bindir``, Debian's ``/usr/lib/postgresql/<version>/bin`` (newest
    first), or ``PATH``.
    """
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in versions]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        "PostgreSQL's initdb/pg_ctl were not found (Debian package `postgresql`; `make postgres` installs it)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as(user: pwd.struct_passwd | None):
    if user is None:
        return None

    def demote() -> None:
        os.setgid(user.pw_gid)
        os.setgroups([])
        os.setuid(user.pw_uid)

    return demote


@contextmanager
def temporary_server(*, timeout: int = 60) -> Iterator[str]:
    """Start a PostgreSQL server in a temporary folder; yield its URL; stop it and remove the folder.

    Raises :class:`PostgresUnavailable` (with the reason) when the binaries, the ``postgres``
    account (under root) or the driver of ``postgresql://`` URLs are missing, or the server does
    not start within ``timeout`` seconds (then the server log is quoted).
    """
    from course_tools.tuning.storage import check_storage

    try:
        check_storage("postgresql://postgres@127.0.0.1/postgres")  # the driver only: nothing is connected
    except ValueError as err:
        raise PostgresUnavailable(f"{err} (or pip install -e '.[test]')") from err
    bindir = find_bindir()
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(SERVER_USER)
        except KeyError as err:
            raise PostgresUnavailable(
                f"running as root, and PostgreSQL refuses root: no {SERVER_USER!r} account to run it as "
                "(Debian's postgresql package creates it)"
            ) from err
    root = Path(tempfile.mkdtemp(prefix="tutorial-postgres-"))
    data, log = root / "data", root / "server.log"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        env["HOME"] = str(root)
    port = _free_port()
    started = False
    try:
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=_run_as(user),
            cwd=root,
            timeout=timeout,
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed (exit {init.returncode}): {init.stderr.strip()[-800:]}")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
        start = subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", str(timeout), "start"],
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=_run_as(user),
            cwd=root,
            timeout=timeout + 10,
        )
        started = start.returncode == 0
        if not started:
            server_log = log.read_text()[-800:] if log.exists() else ""
            raise PostgresUnavailable(
                f"pg_ctl start failed (exit {start.returncode}): {start.stderr.strip()[-400:]}\n{server_log}"
            )
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started or (data / "postmaster.pid").exists():
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                env=env,
                preexec_fn=_run_as(user),
                cwd=root,
                timeout=timeout,
            )
        shutil.rmtree(root, ignore_errors=True)
