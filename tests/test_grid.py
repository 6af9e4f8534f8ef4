"""The grid command end to end on the mini data: a tiny grid, killed and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from course_tools.benchmark import read_results, write_results
from course_tools.grid import grid_settings, main
from course_tools.grid_results import PROVENANCE_COLUMNS
from tutorial_lib.config import REPO_ROOT
from tutorial_lib.data.checks import DataValidationError

TINY = [
    "--dataset",
    "mini",
    "--methods",
    "no_change",
    "mean_shift",
    "scgen",
    "--seeds",
    "2",
    "--cell-types",
    "CD4+ T cells",
    "B",
    "--imbalance-cell-types",
    "CD4+ T cells",
    "--donors",
    "101",
    "1016",
    "--max-epochs",
    "1",
    "--n-top-genes",
    "200",
    "--n-bootstrap",
    "5",
    "--n-bootstrap-degs",
    "2",
    "--n-top-degs",
    "20",
    "--no-progress",
]
N_RUNS = 3 * (2 + 1 + 1) * 2  # methods x (balanced + 20% + donors) x seeds


def _finished_runs(work: Path) -> pd.DataFrame:
    if not work.exists():
        return pd.DataFrame(columns=["key"])
    return read_results(work).drop_duplicates("key")


def test_grid_resumes_after_a_kill_and_writes_one_table(tmp_path):
    out = tmp_path / "grid.csv.gz"
    work = tmp_path / "grid.work.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_tools.grid", "--out", str(out), *TINY],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 600
        while len(_finished_runs(work)) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, "the grid ended before it could be killed: " + proc.stdout.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)  # no chance to clean up
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not out.exists()
    before = _finished_runs(work).set_index("key")[["fit_predict_s", "evaluate_s"]]
    assert 4 <= len(before) < N_RUNS

    assert main(["--out", str(out), *TINY]) == 0
    table = pd.read_csv(out)
    runs = table.drop_duplicates("key")
    assert len(runs) == N_RUNS and not runs.duplicated(["method", "setting", "seed", "score_group"]).any()
    # runs finished before the kill were not redone: their timings are those of the first process
    again = runs.set_index("key").loc[before.index, ["fit_predict_s", "evaluate_s"]]
    pd.testing.assert_frame_equal(again, before)
    # provenance on every row
    for col in PROVENANCE_COLUMNS:
        assert table[col].notna().all(), col
    assert '"torch"' in table["versions"].iloc[0]
    # the settings of the grid; the donor setting is scored per cell type, never pooled
    assert set(runs["design"]) == {"balanced", "stim20", "donors"}
    donors = table[table["design"] == "donors"]
    assert "all" not in set(donors["score_group"]) and donors["score_group"].nunique() >= 2
    assert set(table.loc[table["design"] != "donors", "score_group"]) == {"all"}
    # running the finished grid again recomputes nothing and gives the same table
    assert main(["--out", str(out), *TINY]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), table)


def test_grid_settings_pick_imbalance_types_by_size_and_check_names(mini_counts):
    settings, described = grid_settings(mini_counts, imbalance_cell_types=3, donors=("101",))
    assert len(settings) == 8 + 3 + 1
    assert list(described["design"]).count("stim20") == 3
    assert settings[-1].score_by == "cell_type" and settings[-1].donors == ("101",)
    with pytest.raises(DataValidationError, match="not in obs"):
        grid_settings(mini_counts, cell_types=["Neutrophils"])
    none, described = grid_settings(mini_counts, cell_types=["B"], imbalance_cell_types=[], donors=None)
    assert [s.name for s in none] == ["loco/B/balanced"] and list(described["design"]) == ["balanced"]


def test_grid_shards_run_apart_and_are_gathered_once(tmp_path):
    out = tmp_path / "grid.csv.gz"
    args = ["--out", str(out), *TINY]
    m = args.index("--methods")
    args[m + 1 : m + 4] = ["no_change", "mean_shift"]  # baselines only: the sharding is under test
    n_runs = 2 * (2 + 1 + 1) * 2
    assert main([*args, "--shard", "1/2"]) == 0
    assert not out.exists()  # a shard writes its own work file only
    shard1 = read_results(tmp_path / "grid.work.shard1of2.csv").drop_duplicates("key")
    assert 0 < len(shard1) < n_runs
    assert main([*args, "--shard", "0/2"]) == 0
    shard0 = read_results(tmp_path / "grid.work.shard0of2.csv").drop_duplicates("key")
    assert set(shard0["key"]).isdisjoint(shard1["key"]) and len(shard0) + len(shard1) == n_runs
    assert main(args) == 0  # gathers both shards, runs nothing again
    runs = pd.read_csv(out).drop_duplicates("key").set_index("key")
    assert len(runs) == n_runs
    before = pd.concat([shard0, shard1]).set_index("key")
    pd.testing.assert_series_equal(runs.loc[before.index, "fit_predict_s"], before["fit_predict_s"])
    # a fresh clone has the table but no work files: its runs are not redone
    for f in tmp_path.glob("grid.work*.csv"):
        f.unlink()
    assert main(args) == 0
    again = pd.read_csv(out).drop_duplicates("key").set_index("key")
    pd.testing.assert_series_equal(again.loc[runs.index, "fit_predict_s"], runs["fit_predict_s"])
    # ...nor by a shard on a fresh clone (the table's runs count as finished there too)
    for f in tmp_path.glob("grid.work*.csv"):
        f.unlink()
    assert main([*args, "--shard", "0/2"]) == 0
    redone = read_results(tmp_path / "grid.work.shard0of2.csv").drop_duplicates("key").set_index("key")
    assert set(shard0["key"]) <= set(redone.index)
    pd.testing.assert_series_equal(redone.loc[shard0["key"], "fit_predict_s"], runs.loc[shard0["key"], "fit_predict_s"])
    with pytest.raises(SystemExit):
        main([*args, "--shard", "2/2"])


def test_gather_only_writes_the_finished_runs_and_runs_nothing(tmp_path):
    out = tmp_path / "grid.csv.gz"
    args = ["--out", str(out), *TINY]
    m = args.index("--methods")
    args[m + 1 : m + 4] = ["no_change", "mean_shift"]
    n_runs = 2 * (2 + 1 + 1) * 2
    with pytest.raises(DataValidationError, match="no finished run"):
        main([*args, "--gather-only"])  # nothing finished yet: nothing written
    assert not out.exists()
    assert main([*args, "--shard", "1/2"]) == 0  # half of the grid, in a shard's work file
    shard_file = tmp_path / "grid.work.shard1of2.csv"
    shard1 = read_results(shard_file).drop_duplicates("key")
    # one run as a shard still busy with its (setting, seed) leaves it: finished, not yet stamped
    busy = shard1["key"].iloc[0]
    unstamped = read_results(shard_file)
    unstamped.loc[unstamped["key"] == busy, ["finished_at", "git_commit", "versions", "machine", "device"]] = np.nan
    write_results(unstamped, shard_file)
    assert main([*args, "--gather-only"]) == 0
    table = pd.read_csv(out)
    assert set(table["key"]) == set(shard1["key"]) - {busy} and 0 < table["key"].nunique() < n_runs
    assert table[list(PROVENANCE_COLUMNS)].notna().all().all()
    # the gathered runs keep the shard's provenance: a gather stamps nothing
    stamps = table.drop_duplicates("key").set_index("key")["finished_at"]
    pd.testing.assert_series_equal(stamps, shard1.set_index("key").loc[stamps.index, "finished_at"], check_names=False)
    # the same command without the flag runs the rest and keeps what had finished
    assert main(args) == 0
    full = pd.read_csv(out).drop_duplicates("key").set_index("key")
    assert len(full) == n_runs
    pd.testing.assert_series_equal(
        full.loc[shard1["key"], "fit_predict_s"], shard1.set_index("key")["fit_predict_s"], check_names=False
    )
    with pytest.raises(ValueError, match="no shard"):
        main([*args, "--gather-only", "--shard", "0/2"])


def test_training_runs_with_the_documented_thread_count(mini_counts, monkeypatch):
    """The grid command sets the count once; run_benchmark sets it again before each training, because
    scanpy's first numba call (the DEG ranking before it) raises PyTorch's count to one per core."""
    import torch

    import course_tools.grid as grid
    from course_tools.benchmark import BenchmarkConfig, Setting, run_benchmark
    from course_tools.methods import get_method

    seen = []

    def spy(train, ctrl, **kwargs):
        seen.append(torch.get_num_threads())
        torch.set_num_threads(2)  # as a numba call would: the next training must not inherit it
        return get_method("no_change")(train, ctrl, **kwargs)

    monkeypatch.setenv("TUTORIAL_TORCH_THREADS", "1")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        config = BenchmarkConfig(n_top_genes=100, n_bootstrap=2, n_bootstrap_degs=0, n_top_degs=10)
        run_benchmark(
            mini_counts, ["spy"], [Setting("B")], [0, 1], config=config, progress=False, fit_predicts={"spy": spy}
        )
        assert seen == [1, 1]
        called = []
        monkeypatch.setattr(grid, "apply_torch_threads", lambda: called.append(1))
        monkeypatch.setattr(grid, "run_grid", lambda *a, **k: (_ for _ in ()).throw(SystemExit(0)))
        with pytest.raises(SystemExit):
            main(["--out", "unused.csv.gz", *TINY])
        assert called == [1]
    finally:
        torch.set_num_threads(before)


def test_device_names_the_thread_count_and_kernels_training_uses(monkeypatch):
    """Not the process's count at start: the count run_benchmark sets before training and predicting."""
    import torch

    from course_tools.grid import _device

    if torch.cuda.is_available():
        pytest.skip("on a GPU the device is the GPU's name")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.delenv("TUTORIAL_TORCH_THREADS", raising=False)
        assert _device().endswith("torch threads 1")
        monkeypatch.setenv("TUTORIAL_TORCH_THREADS", "3")
        assert _device().endswith("torch threads 3")
        # and the kernels torch dispatches to, on which a trained model's last digits depend
        assert f"torch kernels {torch.backends.cpu.get_cpu_capability()}" in _device()
    finally:
        torch.set_num_threads(before)
