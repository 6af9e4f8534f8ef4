"""Tuning arguments are checked before any data are loaded and before any trial is created.

``python -m course_tools.tuning.cli`` promises that a bad argument stops the worker with status 2 and a
message naming it, before the data load (minutes on the full data set) and before the shared study
is touched. Each case here replaces the data loader and the study creation by functions that fail
the test if called, so a check that comes too late fails the test rather than loading data. The
same checks guard the Python API (:func:`course_tools.tuning.study.create_study`,
:func:`course_tools.tuning.study.check_space`), which must refuse a bad argument before it writes
anything to a storage.
"""

from __future__ import annotations

import sys

import pytest
from sqlalchemy.engine import make_url

import course_tools.tuning.cli as tune
from course_tools.tuning.storage import check_storage
from course_tools.tuning.study import check_space, create_study
from tutorial_lib.config import SEED_MAX

STUDY = ["--study", "s", "--method", "scgen", "--n-trials", "2"]


@pytest.fixture
def no_loading(monkeypatch):
    """Make loading the data or creating the study fail the test."""

    def must_not_run(*args, **kwargs):
        raise AssertionError("data were loaded or the study was created before the arguments were checked")

    monkeypatch.setattr(tune, "load_parts", must_not_run)
    monkeypatch.setattr(tune, "create_study", must_not_run)


def _refused(args: list[str], capsys) -> str:
    """The error output of a worker started with ``args``, which must exit with status 2."""
    assert tune.main([*STUDY, *args]) == 2
    return capsys.readouterr().err


# -- learning rate -------------------------------------------------------------------------------
@pytest.mark.parametrize("lr", ["inf", "-inf", "nan", "0", "-1e-3"])
def test_lr_must_be_a_finite_positive_number(lr, tmp_path, no_loading, capsys):
    err = _refused(["--storage", str(tmp_path / "s.db"), f"--lr={lr}"], capsys)  # "--lr -inf" reads as an option
    assert f"--lr must be a finite number > 0, got {float(lr)}" in err
    assert not (tmp_path / "s.db").exists()


# -- search space --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("space", "message"),
    [
        ('{"n_layers": ["int", [1.5, 3, false]]}', "n_layers: an int range needs integer bounds, got low=1.5"),
        ('{"n_layers": ["int", [1, 3.0, false]]}', "n_layers: an int range needs integer bounds, got high=3.0"),
        (
            '{"n_layers": ["int", [-1, 3, false]]}',
            "n_layers: SCGEN refuses low=-1 (n_layers must be an integer in [1, 10]",
        ),
        ('{"n_hidden": ["int", [0, 64, false]]}', "n_hidden: SCGEN refuses low=0 (n_hidden must be an integer in [1,"),
        ('{"n_hidden": ["categorical", [64, -8]]}', "n_hidden: SCGEN refuses choice -8"),
        ('{"n_latent": ["categorical", [8, 16.5]]}', "n_latent: SCGEN refuses choice 16.5"),
        ('{"dropout_rate": ["float", [0.0, 1.5, false]]}', "dropout_rate: SCGEN refuses high=1.5"),
        ('{"dropout_rate": ["float", [-0.1, 0.3, false]]}', "dropout_rate: SCGEN refuses low=-0.1"),
        ('{"dropout_rate": ["float", [0.0, "0.3", false]]}', "dropout_rate: a float range needs finite numbers"),
        ('{"dropout_rate": ["float", [0.0, 0.3, "no"]]}', "dropout_rate: log must be true or false"),
    ],
)
def test_space_ranges_are_checked_against_the_model(space, message, tmp_path, no_loading, capsys):
    err = _refused(["--storage", str(tmp_path / "s.db"), "--space", space], capsys)
    assert message in err
    assert not (tmp_path / "s.db").exists()


def test_check_space_refuses_what_a_trial_would_fail_on():
    with pytest.raises(ValueError, match=r"n_layers: SCGEN refuses high=11 \(n_layers must be an integer in \[1, 10\]"):
        check_space("scgen", {"n_layers": ("int", (1, 11, False))})
    with pytest.raises(ValueError, match="n_latent: an int range needs integer bounds"):
        check_space("scpram", {"n_latent": ("int", (True, 8, False))})  # a bool is not an integer bound
    check_space("scgen", {"n_layers": ("int", (1, 10, False)), "n_hidden": ("categorical", (16, 16384))})


# -- seeds ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "4294967296"], "--seed must be <= 4294967295 (NumPy's seed range), got 4294967296"),
        (
            ["--seed", "4294967295", "--worker", "1"],
            "--seed + --worker (the sampler's seed) must be <= 4294967295 (NumPy's seed range), got 4294967296",
        ),
    ],
)
def test_seed_must_be_a_numpy_seed(args, message, tmp_path, no_loading, capsys):
    err = _refused(["--storage", str(tmp_path / "s.db"), *args], capsys)
    assert message in err
    assert not (tmp_path / "s.db").exists()


def test_create_study_refuses_a_seed_numpy_cannot_take(tmp_path):
    assert SEED_MAX == 2**32 - 1
    with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*32 - 1 .*; got 4294967296"):
        create_study("s", tmp_path / "s.db", seed=2**32)
    assert not (tmp_path / "s.db").exists()


# -- storage -------------------------------------------------------------------------------------
def _journal(tmp_path, text: str):
    path = tmp_path / "study.log"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: "", "--storage must not be empty"),
        (lambda tmp: "   ", "--storage must not be empty"),
        (lambda tmp: str(tmp), "is a directory, not a storage file"),
        (lambda tmp: str(tmp) + "/", "is a directory, not a storage file"),
        (lambda tmp: f"sqlite:///{tmp}", "is a directory, not a storage file"),
        (lambda tmp: str(_journal(tmp, "not json\n")), "is not an Optuna journal file: line 1 is not JSON"),
        (lambda tmp: str(_journal(tmp, '{"a": 1}\n')), "is not an Optuna journal file: line 1 has no op_code"),
        (lambda tmp: str(_journal(tmp, "garbage without newline")), "is not an Optuna journal file"),
        (lambda tmp: (tmp / "x.db").write_text("hello") and str(tmp / "x.db"), "is not a SQLite database"),
        (lambda tmp: "postgres://user@localhost/db", "unknown database dialect 'postgres' (did you mean postgresql"),
        (lambda tmp: "nosuchdb://user@localhost/db", "unknown database dialect 'nosuchdb'"),
    ],
)
def test_storage_is_checked_before_loading(make, message, tmp_path, no_loading, capsys):
    storage = make(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    err = _refused(["--storage", storage], capsys)
    assert message in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing written


def test_missing_database_driver_is_named_with_its_pip_command(tmp_path, no_loading, capsys, monkeypatch):
    url = "postgresql://user:secret@localhost:5432/optuna"
    driver = make_url(url).get_dialect().driver  # the driver this SQLAlchemy maps postgresql:// to
    monkeypatch.setitem(sys.modules, driver, None)  # import fails as if it were not installed
    err = _refused(["--storage", url], capsys)
    assert f"dialect 'postgresql' needs the Python driver {driver!r}, which is not installed" in err
    assert "pip install" in err
    assert "secret" not in err  # the password is not printed


def test_check_storage_accepts_good_storages(tmp_path):
    check_storage(None)
    check_storage(tmp_path / "new" / "study.db")
    check_storage(str(tmp_path / "study.log"))
    check_storage(f"sqlite:///{tmp_path / 'study.db'}")
    journal = tmp_path / "half.log"
    journal.write_text('{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}\n{"op_co')
    check_storage(journal)  # a last line still being written by another worker is no error


def test_create_study_refuses_a_corrupt_journal_without_writing_to_it(tmp_path):
    journal = _journal(tmp_path, "not json\n")
    with pytest.raises(ValueError, match="is not an Optuna journal file: line 1 is not JSON"):
        create_study("s", journal)
    assert journal.read_text() == "not json\n"
