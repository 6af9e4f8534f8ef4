"""The grid command under concurrent use, with damaged files and with wrong arguments.

Two grid processes on one output must not lose each other's finished runs: one holds the work
file's lock and the other stops at once with a message naming the lock (shards, which have their
own work files, still run side by side, and ``--gather-only`` still writes the table of a grid
that is running). A damaged work file or table is named in the error, with what to do, and is
left as it was. ``--max-epochs`` below 1 and a ``--method-kwargs`` that is not a JSON object of
objects are refused before any data is loaded.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from course_tools import grid_results
from course_tools.benchmark import BenchmarkConfig, read_results
from course_tools.grid import main, run_grid
from tutorial_lib.config import REPO_ROOT
from tutorial_lib.data.checks import DataValidationError

#: A small grid on the mini data: 2 held-out cell types (balanced only) x 3 seeds, cheap scoring.
SMALL = [
    "--dataset",
    "mini",
    "--seeds",
    "3",
    "--cell-types",
    "CD4+ T cells",
    "B",
    "--imbalance-cell-types",
    "--donors",
    "--n-top-genes",
    "200",
    "--n-bootstrap",
    "5",
    "--n-bootstrap-degs",
    "0",
    "--n-top-degs",
    "20",
    "--no-progress",
]
BASELINES = ["--methods", "no_change", "mean_shift"]  # 2 methods x 2 settings x 3 seeds = 12 runs
PCA = ["--methods", "pca_arithmetic"]  # 6 runs
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _grid_process(out: Path, methods: list[str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "course_tools.grid", "--out", str(out), *SMALL, *methods, *extra],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _runs(path: Path) -> set[tuple[str, str, int]]:
    """(method, setting, seed) of every whole run in a work file or table."""
    if not path.exists():
        return set()
    table = pd.read_csv(path)
    return set(table[["method", "setting", "seed"]].drop_duplicates().itertuples(index=False, name=None))


def _stamped(path: Path) -> int:
    """How many runs of a work file carry their provenance (their (setting, seed) is done)."""
    if not path.exists():
        return 0
    table = pd.read_csv(path)
    return table.loc[table["finished_at"].notna(), "key"].nunique() if "finished_at" in table else 0


def _expected(methods: list[str]) -> set[tuple[str, str, int]]:
    return {(m, f"loco/{ct}/balanced", s) for m in methods[1:] for ct in ("CD4+ T cells", "B") for s in range(3)}


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def test_a_second_grid_on_a_running_output_stops_at_once_and_nothing_is_lost(tmp_path):
    """The running grid is paused mid-way (it keeps its lock): the second command must not write in between."""
    out, work = tmp_path / "g.csv.gz", tmp_path / "g.work.csv"
    first = _grid_process(out, BASELINES)
    try:
        deadline = time.monotonic() + 180
        while first.poll() is None and time.monotonic() < deadline:
            if _stamped(work) >= 1:  # a whole (setting, seed) done, so that a gather has something to write
                break
            time.sleep(0.1)
        assert first.poll() is None, "the grid ended before it could be paused: " + first.communicate()[1][-2000:]
        os.kill(first.pid, signal.SIGSTOP)
        try:
            at_pause = work.read_bytes()
            assert len(_runs(work)) < len(_expected(BASELINES))
            second = _grid_process(out, PCA)
            code, err = _finish(second)
            # the second command stops before it writes anything, and says why and what to do
            assert code == 1, err
            assert str(tmp_path / "g.work.csv.lock") in err and "--shard" in err and "Traceback" not in err
            assert work.read_bytes() == at_pause and not out.exists()
            # a gather of the running grid is not refused: it writes the table of what has finished, and
            # leaves the running grid's work file alone
            assert main(["--out", str(out), *SMALL, *BASELINES, "--gather-only"]) == 0
            assert 1 <= len(_runs(out)) < len(_expected(BASELINES)) and _runs(out) <= _expected(BASELINES)
            assert work.read_bytes() == at_pause
        finally:
            os.kill(first.pid, signal.SIGCONT)
        code, err = _finish(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert code == 0, err
    assert _runs(out) == _runs(work) == _expected(BASELINES)
    # the refused command, run again now, adds its runs and keeps the first one's
    assert main(["--out", str(out), *SMALL, *PCA]) == 0
    assert _runs(work) == _expected(BASELINES) | _expected(PCA)
    assert _runs(out) == _expected(PCA)


def test_two_grids_started_at_once_on_one_output_lose_no_finished_run(tmp_path):
    """Started together: each command either finishes with all its runs, or is refused naming the lock."""
    out, work = tmp_path / "g.csv.gz", tmp_path / "g.work.csv"
    procs = {"baselines": _grid_process(out, BASELINES), "pca": _grid_process(out, PCA)}
    ended = {name: _finish(p) for name, p in procs.items()}
    wanted = {"baselines": _expected(BASELINES), "pca": _expected(PCA)}
    finished = [name for name, (code, _) in ended.items() if code == 0]
    assert finished, ended
    for name, (code, err) in ended.items():
        if code != 0:
            assert code == 1 and str(tmp_path / "g.work.csv.lock") in err, (name, err)
    # every run of each command that finished is in the work file, and the table is one command's whole grid
    assert _runs(work) == set().union(*(wanted[name] for name in finished))
    assert _runs(out) in [wanted[name] for name in finished]


def test_shards_still_run_side_by_side_and_are_gathered(tmp_path):
    out = tmp_path / "g.csv.gz"
    shards = [_grid_process(out, BASELINES, "--shard", f"{i}/2") for i in range(2)]
    for proc in shards:
        code, err = _finish(proc)
        assert code == 0, err
    halves = [_runs(tmp_path / f"g.work.shard{i}of2.csv") for i in range(2)]
    assert halves[0] and halves[1] and halves[0].isdisjoint(halves[1])
    assert main(["--out", str(out), *SMALL, *BASELINES, "--gather-only"]) == 0
    assert _runs(out) == halves[0] | halves[1] == _expected(BASELINES)


def _gzip_truncated(path: Path) -> None:
    """A gzip CSV with a results file's header, cut half-way through its compressed bytes."""
    rows = "".join(f"no_change,loco/B/balanced,{i},pearson_delta,all,0.5,0.4,0.6,k{i}\n" for i in range(5000))
    text = "method,setting,seed,metric,gene_set,value,ci_low,ci_high,key\n" + rows
    data = gzip.compress(text.encode())
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "empty": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(bytes(range(256)) * 40),
    "truncated gzip": _gzip_truncated,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("name", ["g.work.csv", "g.csv.gz", "g.work.shard1of2.csv"])
def test_a_damaged_work_file_or_table_is_named_with_what_to_do_and_kept(tmp_path, monkeypatch, damage, name):
    damaged = tmp_path / name
    DAMAGE[damage](damaged)
    before = damaged.read_bytes()

    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded although a file of the grid is damaged")

    monkeypatch.setattr("tutorial_lib.data.load_kang2018", no_data)
    with pytest.raises(DataValidationError) as err:
        main(["--out", str(tmp_path / "g.csv.gz"), *SMALL, *BASELINES])
    message = str(err.value)
    assert str(damaged) in message and "damaged" in message
    if name.endswith(".csv.gz"):  # the table: restore it from git, or set it aside to rebuild it
        assert f"git checkout -- {damaged}" in message
    else:  # a work file: set it aside to start over
        assert f"mv {damaged} {damaged}.damaged" in message
    assert damaged.read_bytes() == before  # nothing is deleted or rewritten


def test_load_grid_names_a_truncated_table_and_how_to_restore_it(tmp_path):
    path = tmp_path / "grid.csv.gz"
    _gzip_truncated(path)
    with pytest.raises(DataValidationError) as err:
        grid_results.load_grid(path)
    message = str(err.value)
    assert str(path) in message and "damaged" in message and f"git checkout -- {path}" in message


@pytest.fixture
def no_data(monkeypatch):
    """Loading the data fails the test: argument errors must come before it."""

    def load(*args, **kwargs):
        raise AssertionError("data was loaded before the arguments were checked")

    monkeypatch.setattr("tutorial_lib.data.load_kang2018", load)


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_max_epochs_below_one_is_refused_before_any_data_load(tmp_path, capsys, no_data, value):
    with pytest.raises(SystemExit) as ended:
        main(["--out", str(tmp_path / "g.csv.gz"), *SMALL, *BASELINES, "--max-epochs", value])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "--max-epochs" in err and ">= 1" in err and repr(value) in err
    assert not list(tmp_path.iterdir())


def test_run_grid_refuses_max_epochs_below_one_before_loading(tmp_path):
    def load():
        raise AssertionError("data was loaded before the configuration was checked")

    with pytest.raises(ValueError, match="max_epochs.*>= 1"):
        run_grid(load, tmp_path / "g.csv.gz", methods=["no_change"], config=BenchmarkConfig(max_epochs=0))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('"scgen"', "expected a JSON object"),
        ('{"scgen": 5}', "the value of 'scgen' is int"),
        ('{"scgne": {"batch_size": 64}}', "unknown method(s) ['scgne']"),
        ("{scgen: 1}", "not valid JSON"),
    ],
)
def test_method_kwargs_must_be_an_object_of_objects_checked_before_any_data_load(
    tmp_path, capsys, no_data, value, expected
):
    with pytest.raises(SystemExit) as ended:
        main(["--out", str(tmp_path / "g.csv.gz"), *SMALL, *BASELINES, "--method-kwargs", value])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "--method-kwargs" in err and expected in err


def test_work_files_of_a_finished_grid_are_read_back_whole(tmp_path):
    """The checked reading of work files changes nothing for intact files: a rerun runs nothing."""
    out = tmp_path / "g.csv.gz"
    args = ["--out", str(out), *SMALL, *PCA, "--seeds", "1"]
    assert main(args) == 0
    first = read_results(tmp_path / "g.work.csv")
    assert main(args) == 0
    pd.testing.assert_frame_equal(read_results(tmp_path / "g.work.csv"), first)
