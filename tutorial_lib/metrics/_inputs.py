"""AnnData objects or arrays as gene-aligned matrices, with errors that name what is wrong."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from tutorial_lib.data.checks import DataValidationError

Matrix = np.ndarray | sp.spmatrix | sp.sparray
CellsLike = AnnData | np.ndarray | sp.spmatrix | sp.sparray

_SHOW = 5


def _matrix_of(obj: CellsLike, what: str) -> Matrix:
    x = obj.X if isinstance(obj, AnnData) else obj
    if x is None:
        raise DataValidationError(f"{what} has no expression matrix (.X is None)")
    if sp.issparse(x):
        return sp.csr_matrix(x)
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataValidationError(f"{what} must be a 2-D cells x genes matrix, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating) and x.dtype.itemsize < 4:
        x = x.astype(np.float32)  # scipy.sparse has no float16; float32 holds every float16 exactly
    return x


def check_matrix(x: Matrix, what: str) -> None:
    """Raise :class:`DataValidationError` if ``x`` has no cells, no genes or non-finite entries."""
    if x.shape[0] == 0:
        raise DataValidationError(f"{what} is empty: it has no cells")
    if x.shape[1] == 0:
        raise DataValidationError(f"{what} has no genes")
    data = np.asarray(x.data if sp.issparse(x) else x)
    if not np.issubdtype(data.dtype, np.number):
        raise DataValidationError(f"{what} is not numeric (dtype {data.dtype})")
    if not np.all(np.isfinite(data)):
        n_bad = int(np.size(data) - np.isfinite(data).sum())
        raise DataValidationError(f"{what} contains {n_bad} NaN or infinite value(s); expected finite expression")


def as_points(x: np.ndarray | Sequence, what: str) -> np.ndarray:
    """A finite, non-empty 2-D float64 array of points (cells x dimensions)."""
    if sp.issparse(x):
        x = x.toarray()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataValidationError(f"{what} must be a 2-D array of points, got shape {arr.shape}")
    check_matrix(arr, what)
    return arr


def _names_of(obj: CellsLike, n_vars: int, var_names: Sequence[str] | None) -> np.ndarray:
    if isinstance(obj, AnnData):
        return np.asarray(obj.var_names.astype(str))
    if var_names is None:
        return np.asarray([f"gene_{i}" for i in range(n_vars)])
    names = np.asarray(var_names, dtype=str)
    if names.shape != (n_vars,):
        raise DataValidationError(f"var_names has {names.size} names but the matrix has {n_vars} genes")
    return names


def describe_mismatch(names: dict[str, np.ndarray]) -> str:
    """Say which genes each input lacks compared with the first one."""
    (ref_name, ref), *others = names.items()

    def listed(genes: list[str]) -> str:
        return f"{genes[:_SHOW]}" + (" ..." if len(genes) > _SHOW else "")

    parts = []
    ref_set = set(ref)
    for name, other in others:
        other_set = set(other)
        missing = [g for g in ref if g not in other_set]
        extra = [g for g in other if g not in ref_set]
        if missing:
            parts.append(f"{len(missing)} gene(s) of {ref_name} missing from {name}: {listed(missing)}")
        if extra:
            parts.append(f"{len(extra)} gene(s) of {name} missing from {ref_name}: {listed(extra)}")
        if not missing and not extra and len(other) != len(ref):
            parts.append(f"{name} has duplicated gene names")
    return "; ".join(parts)


def matrix_and_names(obj: CellsLike, what: str, var_names: Sequence[str] | None = None) -> tuple[Matrix, np.ndarray]:
    """Checked matrix of ``obj`` and its gene names (from AnnData, ``var_names`` or generated)."""
    x = _matrix_of(obj, what)
    check_matrix(x, what)
    return x, _names_of(obj, x.shape[1], var_names)


def align_to(x: Matrix, names: np.ndarray, ref: np.ndarray, what: str, ref_what: str) -> Matrix:
    """Columns of ``x`` reordered to the gene order ``ref``; an error names the genes if the sets differ."""
    if np.array_equal(names, ref):
        return x
    if len(names) == len(ref) and set(names) == set(ref) and len(set(names)) == len(names):
        pos = {g: i for i, g in enumerate(names)}
        return x[:, [pos[g] for g in ref]]
    raise DataValidationError("inputs must have the same genes: " + describe_mismatch({ref_what: ref, what: names}))


def aligned_matrices(
    inputs: dict[str, CellsLike], var_names: Sequence[str] | None = None
) -> tuple[dict[str, Matrix], np.ndarray]:
    """Matrices of the named ``inputs`` (CSR when sparse) with their genes in the order of the first one.

    Plain matrices take ``var_names`` as gene names. Raises :class:`DataValidationError` on empty
    inputs, non-finite values or genes that differ between inputs (naming a few on each side).
    """
    mats: dict[str, Matrix] = {}
    names: dict[str, np.ndarray] = {}
    for what, obj in inputs.items():
        mats[what], names[what] = matrix_and_names(obj, what, var_names)
    ref_key = next(iter(inputs))
    ref = names[ref_key]
    if len(set(ref)) != len(ref):
        dup = sorted({g for g in ref if (ref == g).sum() > 1})
        raise DataValidationError(f"{ref_key} has duplicated gene names: {dup[:_SHOW]}")
    plain = not any(isinstance(o, AnnData) for o in inputs.values()) and var_names is None
    for what in list(mats)[1:]:
        if plain and mats[what].shape[1] != ref.size:
            shapes = {k: m.shape[1] for k, m in mats.items()}
            raise DataValidationError(f"inputs must have the same genes; numbers of genes differ: {shapes}")
        mats[what] = align_to(mats[what], names[what], ref, what, ref_key)
    return mats, ref


def gene_means(x: Matrix) -> np.ndarray:
    """Per-gene mean over cells (float64, for sparse input too)."""
    if sp.issparse(x):
        return np.asarray(sp.csr_matrix(x, dtype=np.float64).mean(axis=0)).ravel()
    return np.asarray(x, dtype=np.float64).mean(axis=0)


def gene_vars(x: Matrix) -> np.ndarray:
    """Per-gene population variance over cells (``ddof=0``, float64)."""
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float64)
        mean = np.asarray(x.mean(axis=0)).ravel()
        sq = np.asarray(x.multiply(x).mean(axis=0)).ravel()
        return np.clip(sq - mean**2, 0.0, None)
    return np.asarray(x, dtype=np.float64).var(axis=0)


def to_dense(x: Matrix) -> np.ndarray:
    """Dense float64 copy of ``x``."""
    if sp.issparse(x):
        return x.toarray().astype(np.float64, copy=False)
    return np.asarray(x, dtype=np.float64)


def subsample_rows(n: int, max_cells: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``max_cells`` of ``n`` rows, drawn without replacement."""
    if max_cells is None or n <= max_cells:
        return np.arange(n)
    if max_cells < 2:
        raise DataValidationError(f"max_cells must be at least 2, got {max_cells}")
    return np.sort(rng.choice(n, size=max_cells, replace=False))
