"""The benchmark grid: every method x every setting x seeds, resumable, one compressed table.

``python -m course_tools.grid --out results/grid.csv.gz`` runs, through
:func:`course_tools.benchmark.run_benchmark` (one runner, its resume and its per-run keys):

- every method of :data:`course_tools.methods.METHODS` (baselines, scGen, scPRAM and any
  registered variant), unless ``--methods`` names a subset;
- leave-one-cell-type-out over every cell type, balanced (``loco/<type>/balanced``);
- the same with 20% of the stimulated training cells kept (``loco/<type>/stim20``) for
  ``--imbalance-cell-types`` (default: every cell type), scored on the gene panel of its balanced
  twin (genes chosen on the setting's training cells before stimulated cells are dropped);
- held-out donors (``donors/<ids>``), scored within each cell type (``score_group``), never pooled;
- ``--seeds`` seeds (default 5).

Prediction-only variants share one trained model: the grid runs one (setting, seed) per
:func:`run_benchmark` call, in which every method gets the same training AnnData object, so the
registry can reuse the model a variant's base method trained (issue 13's registry keeps the last
trained model per class for that purpose); ``run_benchmark(fit_predicts=...)`` can also supply
callables that share a model explicitly.

Resume: finished runs are kept in ``<out>.work.csv`` (rewritten atomically after each run); after
a kill, the same command skips them and redoes the run that was in progress. The runs of an existing
``<out>`` table (e.g. the committed one, on a fresh clone without the work file) count as finished
too, so a grid is extended by running the same command with more settings or seeds. ``--gather-only``
runs nothing: it writes ``<out>`` from the finished runs of the grid it names (shards included), so
that a grid still running can be committed as far as it got. The final table
``<out>`` (gzip CSV) is written atomically at the end. Each run's rows carry its provenance:
``git_commit``, ``versions`` (package versions), ``machine``, ``device`` (CPU or GPU model),
``finished_at`` (UTC), ``fit_predict_s``, ``evaluate_s`` and ``run_wall_s``.

One process per work file: a grid holds ``<work file>.lock`` (e.g. ``<out>.work.csv.lock``, a
shard's ``<out>.work.shard<i>of<n>.csv.lock``) while it runs, and a second command on the same work
file stops at once, before loading any data, with a message naming the lock (two writers of one
work file would overwrite each other's finished runs). Shards have their own work files and run
side by side; ``--gather-only`` writes no work file and runs beside them or beside a running grid.
Writing ``<out>`` holds ``<out>.lock`` (a short wait at most). The locks are released when their
process ends, killed or not. A work file or table that cannot be read (empty, not text, cut short)
stops the grid with an error naming the file and what to do; it is never deleted or rewritten.

Training: ``--max-epochs`` (default: the library's training default), and ``--method-kwargs`` as
JSON (``{"scgen": {"batch_size": 64}}``) passed to the methods' constructor/train/predict.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from anndata import AnnData
from filelock import FileLock, Timeout

from course_tools.benchmark import BenchmarkConfig, Setting, read_results, run_benchmark, write_results
from course_tools.grid_results import UNREADABLE_ERRORS, damaged_table_message
from tutorial_lib.config import apply_torch_threads, torch_threads
from tutorial_lib.data.checks import CELL_TYPE_KEY, DataValidationError
from tutorial_lib.data.split import normalise_log

#: Fraction of stimulated training cells kept in the unbalanced settings (issue 11).
STIMULATED_FRACTION = 0.2
#: Held-out donors of the donor setting (those of notebook 03).
DEFAULT_DONORS = ("1015", "1488")
#: Columns the final table adds to the work file's (from the settings and the run's timings).
DERIVED_COLUMNS = ("held_out", "design", "run_wall_s")
#: Packages whose versions each run records.
VERSIONED = ("tutorial_lib", "torch", "numpy", "scipy", "pandas", "anndata", "scanpy", "scikit-learn", "pot")


class GridBusyError(RuntimeError):
    """Another process holds the lock of the work file this grid would write (see the module docstring)."""


def grid_settings(
    adata: AnnData,
    cell_types: Sequence[str] | None = None,
    imbalance_cell_types: Sequence[str] | int | None = None,
    donors: Sequence[str] | None = DEFAULT_DONORS,
    stimulated_fraction: float = STIMULATED_FRACTION,
) -> tuple[list[Setting], pd.DataFrame]:
    """The grid's settings and a table describing them (``setting, held_out, design``).

    ``imbalance_cell_types`` is a list of names, a number ``k`` (the ``k`` cell types with the most
    cells, ties by name) or ``None`` (every cell type).
    """
    counts = adata.obs[CELL_TYPE_KEY].astype(str).value_counts()
    known = sorted(counts.index)
    cell_types = known if cell_types is None else list(cell_types)
    if imbalance_cell_types is None:
        imbalance_cell_types = known
    elif isinstance(imbalance_cell_types, int):
        ranked = sorted(known, key=lambda c: (-counts[c], c))
        imbalance_cell_types = ranked[:imbalance_cell_types]
    unknown = sorted((set(cell_types) | set(imbalance_cell_types)) - set(known))
    if unknown:
        raise DataValidationError(f"cell types {unknown} are not in obs[{CELL_TYPE_KEY!r}]; it has {known}")
    settings, rows = [], []
    for ct in cell_types:
        settings.append(Setting(f"loco/{ct}/balanced", ct))
        rows.append((settings[-1].name, ct, "balanced"))
    pct = f"stim{round(100 * stimulated_fraction)}"
    for ct in imbalance_cell_types:
        settings.append(Setting(f"loco/{ct}/{pct}", ct, stimulated_fraction=stimulated_fraction))
        rows.append((settings[-1].name, ct, pct))
    if donors:
        name = f"donors/{'+'.join(donors)}"
        settings.append(Setting(name, donors=tuple(donors), score_by=CELL_TYPE_KEY))
        rows.append((name, "+".join(donors), "donors"))
    return settings, pd.DataFrame(rows, columns=["setting", "held_out", "design"])


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "tutorial_lib"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    out["python"] = platform.python_version()
    return json.dumps(out, sort_keys=True)


def _device() -> str:
    import torch  # a dependency of the course

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    # the count run_benchmark sets before each training and prediction (apply_torch_threads), not the
    # process's count at start (rows written before 2026-12-01 23:30 UTC could say 2 while training used 1)
    threads = torch_threads()
    cpu = platform.processor() or platform.machine()
    # the CPU model and the kernels torch dispatches to: a trained model's last digits depend on them
    # (rows written before 2026-12-02 11:30 UTC lack both)
    kernels = f"torch kernels {torch.backends.cpu.get_cpu_capability()}"
    cpu = f"{cpu} ({', '.join(d for d in (_cpu_model(), kernels) if d)})"
    return f"CPU: {cpu}, {os.cpu_count()} cores, torch threads {threads}"


def _cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), or ``""``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def provenance() -> dict[str, str]:
    """What each run of this process records: commit, package versions, machine, device."""
    return {"git_commit": _git_commit(), "versions": _versions(), "machine": platform.node(), "device": _device()}


def stamp_provenance(table: pd.DataFrame, info: dict[str, str]) -> pd.DataFrame:
    """``table`` with the provenance ``info`` and ``finished_at`` on the rows that have none yet.

    Those rows are the runs this process finished; ``info`` is :func:`provenance`'s, ``finished_at``
    the time now (UTC). A copy is returned.
    """
    table = table.copy()
    new = table["finished_at"].isna() if "finished_at" in table.columns else pd.Series(True, index=table.index)
    for column, value in {**info, "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}.items():
        if column not in table.columns:
            table[column] = None
        table.loc[new, column] = value
    return table


def run_grid(
    adata: AnnData | Callable[[], AnnData],
    out: str | Path,
    *,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    config: BenchmarkConfig | None = None,
    cell_types: Sequence[str] | None = None,
    imbalance_cell_types: Sequence[str] | int | None = None,
    donors: Sequence[str] | None = DEFAULT_DONORS,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
    run_missing: bool = True,
) -> pd.DataFrame:
    """Run the grid (module docstring) and write the final table ``out`` (gzip CSV).

    Returns the table: :func:`run_benchmark`'s columns, the settings' ``held_out`` and ``design``,
    and the provenance columns.

    ``adata`` is the data set, or a callable without arguments that loads it: it is called once the
    arguments are checked, the work file's lock is held and the existing work files and table are
    read, so that a refused or failing command does not wait for a data load first.

    ``shard=(i, n)`` runs only the ``i``-th of ``n`` interleaved slices of the (setting, seed)
    runs, into its own work file ``<out>.work.shard<i>of<n>.csv``, and writes no final table:
    ``n`` processes (one per core, or per machine sharing a folder) run the shards side by side,
    and a last call without ``shard`` gathers every shard's finished runs (no run is done twice),
    runs whatever is missing and writes ``out``. Returns the shard's rows.

    ``run_missing=False`` (``--gather-only``) runs nothing: it gathers the finished runs of this
    grid (from ``out``, the work file and the shards' work files) and writes them to ``out``, so
    that a grid still running elsewhere can be committed as far as it got; the same command
    without the flag later adds the rest. It writes no work file (the gathered runs go through a
    temporary file), so it needs no work file's lock.

    Raises
    ------
    GridBusyError
        When another process holds the lock of the work file this call would write (a grid on the
        same ``out``, or the same shard): raised at once, before anything is loaded or written.
    DataValidationError
        When a work file or the table cannot be read (the message names the file and what to do;
        the file is left as it is), or when nothing of the grid has finished (``run_missing=False``).
    ValueError
        For an ``out`` that is not a ``.csv.gz``, a wrong ``shard``, an unknown method or a
        ``config.max_epochs`` below 1.
    """
    from course_tools.methods import METHODS

    out = Path(out)
    if not out.name.endswith(".csv.gz"):
        raise ValueError(f"out must be a .csv.gz file, got {out}")
    config = config or BenchmarkConfig(max_epochs=None)
    if config.max_epochs is not None and config.max_epochs < 1:
        raise ValueError(
            f"config.max_epochs must be >= 1 (epochs of training), got {config.max_epochs}; "
            "None uses the library's training default"
        )
    methods = list(METHODS) if methods is None else list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    if shard is not None and not run_missing:
        raise ValueError("run_missing=False gathers every shard's runs; it takes no shard")
    stem = out.name[: -len(".csv.gz")]
    work = out.with_name(stem + ".work.csv")
    if shard is not None:
        i, n = shard
        if not (isinstance(i, int) and isinstance(n, int) and n >= 1 and 0 <= i < n):
            raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard}")
        work = out.with_name(f"{stem}.work.shard{i}of{n}.csv")
    with ExitStack() as held:
        if run_missing:
            held.enter_context(_work_lock(work, out))
        else:  # no work file is written; the table is, and nobody else writes it meanwhile
            held.enter_context(_table_lock(out))
        previous = [out] if out.exists() else []  # a committed table (e.g. on a fresh clone): its runs are not redone
        if shard is not None:
            _gather(work, [work, *previous], out)
        elif run_missing:  # and the shards' work files
            _gather(work, [work, *previous, *_shard_files(out)], out)
        else:
            work = Path(held.enter_context(tempfile.TemporaryDirectory(prefix="grid-gather-"))) / "gathered.csv"
            _gather(work, [out.with_name(stem + ".work.csv"), *previous, *_shard_files(out)], out)
        if callable(adata):
            adata = adata()
        table = _run_grid(
            adata,
            work,
            methods=methods,
            seeds=seeds,
            config=config,
            cell_types=cell_types,
            imbalance_cell_types=imbalance_cell_types,
            donors=donors,
            progress=progress,
            shard=shard,
            run_missing=run_missing,
        )
        if shard is not None:
            return table
        if table.empty:
            raise DataValidationError(
                f"no finished run of this grid in {out.with_name(stem + '.work.csv')}, {out} or the shards' work "
                "files; nothing to write"
            )
        part = out.with_name(out.name + ".part")
        out.parent.mkdir(parents=True, exist_ok=True)
        with _table_lock(out) if run_missing else _held():
            table.to_csv(part, index=False, compression="gzip")
            os.replace(part, out)
    return table


def _run_grid(
    adata: AnnData,
    work: Path,
    *,
    methods: list[str],
    seeds: Sequence[int],
    config: BenchmarkConfig,
    cell_types: Sequence[str] | None,
    imbalance_cell_types: Sequence[str] | int | None,
    donors: Sequence[str] | None,
    progress: bool,
    shard: tuple[int, int] | None,
    run_missing: bool,
) -> pd.DataFrame:
    """:func:`run_grid`'s runs, with its work file's lock held and earlier runs gathered into ``work``.

    Returns the table to write (with ``held_out``, ``design`` and ``run_wall_s``), or a shard's rows.
    """
    settings, described = grid_settings(adata, cell_types, imbalance_cell_types, donors)
    # seed-major: a grid stopped part-way has whole seeds (every setting), which pair across designs
    runs = [(setting, seed) for seed in seeds for setting in settings]
    if shard is not None:
        runs = runs[shard[0] :: shard[1]]
    info = provenance()

    data = adata
    if "log1p" not in data.uns:  # once, not in every run_benchmark call below
        data = normalise_log(adata.copy())
    # one (setting, seed) per call over the same work file, so that each run is stamped soon after it finishes
    keys: set[str] = set()
    for setting, seed in runs:
        done = run_benchmark(
            data,
            methods,
            [setting],
            [seed],
            config=config,
            results_path=work,
            progress=progress,
            run_missing=run_missing,
        )
        keys |= set(done["key"].astype(str))
        done = read_results(work)
        # only runs this process ran are stamped with its provenance (a gather runs nothing)
        if run_missing and ("finished_at" not in done.columns or done["finished_at"].isna().any()):
            write_results(stamp_provenance(done, info), work)
    table = read_results(work)
    table = table[table["key"].astype(str).isin(keys)]
    if not run_missing:
        # a shard stamps its runs when their (setting, seed) is done: the finished methods of one still
        # running have no provenance yet, and are left for a later gather rather than stamped with ours
        if "finished_at" in table.columns:
            stamped = table["finished_at"].notna()
        else:
            stamped = pd.Series(False, index=table.index)
        if (~stamped).any():
            print(
                f"{table.loc[~stamped, 'key'].nunique()} finished run(s) of a (setting, seed) still running "
                "have no provenance yet: left out, for a later gather"
            )
        table = table[stamped]
    if shard is not None or table.empty:
        return table
    table = table.drop(columns=[c for c in ("held_out", "design") if c in table.columns])
    table = table.merge(described, on="setting", how="left")
    table["run_wall_s"] = table["fit_predict_s"] + table["evaluate_s"]
    return table


def _shard_files(out: Path) -> list[Path]:
    stem = out.name[: -len(".csv.gz")]
    return sorted(out.parent.glob(f"{stem}.work.shard*of*.csv"))


@contextmanager
def _held() -> Iterator[None]:
    """A lock already held by the caller."""
    yield


@contextmanager
def _work_lock(work: Path, out: Path) -> Iterator[None]:
    """Hold ``<work>.lock`` while this process writes ``work``; :class:`GridBusyError` at once if another does."""
    path = work.with_name(work.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise GridBusyError(
            f"another grid process is running into {work}: it holds the lock {path}. Two processes on one work "
            "file would overwrite each other's finished runs, so this one stops here (nothing was loaded or "
            f"written). Wait for that process to end (it writes {out} then) or stop it, and run this command again: "
            "its finished runs are kept. To use several cores at once, give each process a shard of the same "
            "--out (--shard 0/2, --shard 1/2, ...) and gather them with a last call without --shard; --gather-only "
            f"writes {out} from what has finished so far, beside a running grid. The lock is released when its "
            "process ends, also when it is killed."
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _table_lock(out: Path) -> Iterator[None]:
    """Hold ``<out>.lock`` while this process gathers or writes ``out`` (waiting for another that does)."""
    path = out.with_name(out.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for {path}: another grid process is writing {out}", file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _read_checked(path: Path, out: Path) -> pd.DataFrame:
    """``read_results(path)``, or, when the file cannot be read, an error naming it and what to do."""
    try:
        return read_results(path)
    except (*UNREADABLE_ERRORS, DataValidationError) as e:
        if path == out:
            raise DataValidationError(damaged_table_message(path, e)) from e
        quoted = shlex.quote(str(path))
        raise DataValidationError(
            f"{path} is damaged: it cannot be read as a grid work file ({type(e).__name__}: {e}). It was left "
            f"as it is. To start it over, move it aside (`mv {quoted} {quoted}.damaged`) and run the same command "
            f"again: the runs in {out} and in the grid's other work files are kept; only those that this file "
            "alone held are run again."
        ) from e


def _gather(target: Path, sources: Sequence[Path], out: Path) -> None:
    """Write the whole runs of ``sources`` (work files, tables) to ``target`` atomically, each run once.

    The first file holding a run gives its rows; a run cut short (a process killed mid-run) is
    dropped. Every existing source is read, so that a damaged one stops the grid before it runs
    anything; ``target`` is rewritten only when a source other than itself adds runs.
    """
    from course_tools.benchmark import complete_runs

    parts, seen, added = [], set(), False
    for f in sources:
        if not f.exists():
            continue
        rows = complete_runs(_read_checked(f, out))
        rows = rows.drop(columns=[c for c in DERIVED_COLUMNS if c in rows.columns])  # a final table's; re-made
        rows = rows[~rows["key"].astype(str).isin(seen)]
        seen |= set(rows["key"].astype(str))
        if len(rows):
            parts.append(rows)
            added |= f != target
    if added:
        write_results(pd.concat(parts, ignore_index=True), target)


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, e.g. 0/2 (shard I of N, from 0); got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"expected 0 <= I < N in I/N; got {text!r}")
    return i, n


def _epochs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of training epochs >= 1 (leave the option out for the library's default); "
            f"got {text!r}"
        )
    return n


def _method_kwargs(text: str) -> dict[str, dict]:
    example = '\'{"scgen": {"batch_size": 64}}\''
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}); expected e.g. {example}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object of method name -> keyword arguments, e.g. {example}; got a {type(value).__name__}"
        )
    wrong = {m: type(v).__name__ for m, v in value.items() if not isinstance(v, dict)}
    if wrong:
        m = next(iter(wrong))
        raise argparse.ArgumentTypeError(
            f"each method's keyword arguments must be a JSON object, e.g. {example}; the value of {m!r} is {wrong[m]}"
        )
    if value:
        from course_tools.methods import METHODS

        unknown = sorted(set(value) - set(METHODS))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown method(s) {unknown}; the methods are {list(METHODS)}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_tools.grid", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/grid.csv.gz", help="final gzip CSV (default %(default)s)")
    p.add_argument("--dataset", default="full", choices=["full", "mini"], help="Kang 2018 subset")
    p.add_argument("--methods", nargs="+", help="default: every registered method")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default %(default)s)")
    p.add_argument("--cell-types", nargs="+", help="held-out cell types (default: all)")
    p.add_argument(
        "--imbalance-cell-types",
        nargs="*",
        help="cell types of the 20%% settings (default: every cell type; the flag alone: none)",
    )
    p.add_argument("--donors", nargs="*", default=list(DEFAULT_DONORS), help="held-out donors; none: no donor setting")
    p.add_argument(
        "--max-epochs", type=_epochs, default=None, help="epoch budget, >= 1 (default: the library's default)"
    )
    p.add_argument(
        "--method-kwargs",
        type=_method_kwargs,
        default={},
        help='JSON object of method -> keyword arguments, e.g. \'{"scgen": {"batch_size": 64}}\'',
    )
    p.add_argument("--n-top-genes", type=int, default=2000)
    p.add_argument("--n-bootstrap", type=int, default=100)
    p.add_argument("--n-bootstrap-degs", type=int, default=10)
    p.add_argument("--n-top-degs", type=int, default=100)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--shard",
        type=_shard,
        help="I/N: run only shard I of N (from 0) into its own work file; a last call without --shard "
        "gathers the shards and writes --out",
    )
    p.add_argument(
        "--gather-only",
        action="store_true",
        help="run nothing: write --out from the finished runs of this grid (its shards' included), "
        "e.g. to commit a grid that is still running",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark grid from the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    apply_torch_threads()  # one documented thread count for the whole process (run_benchmark keeps it)
    from tutorial_lib.data import load_kang2018

    config = BenchmarkConfig(
        n_top_genes=args.n_top_genes,
        max_epochs=args.max_epochs,
        n_bootstrap=args.n_bootstrap,
        n_bootstrap_degs=args.n_bootstrap_degs,
        n_top_degs=args.n_top_degs,
        method_kwargs=args.method_kwargs,
    )
    imbalance = args.imbalance_cell_types  # None: every cell type; the flag alone: none
    start = time.perf_counter()
    try:
        table = run_grid(
            lambda: load_kang2018(args.dataset),  # loaded once the work file's lock is held
            args.out,
            methods=args.methods,
            seeds=range(args.seeds),
            config=config,
            cell_types=args.cell_types,
            imbalance_cell_types=imbalance,
            donors=args.donors or None,
            progress=not args.no_progress,
            shard=args.shard,
            run_missing=not args.gather_only,
        )
    except GridBusyError as e:
        print(f"python -m course_tools.grid: {e}", file=sys.stderr)
        return 1
    if args.shard is not None:
        n_runs = table["key"].nunique() if len(table) else 0
        print(f"shard {args.shard[0]}/{args.shard[1]}: {n_runs} method runs finished; run without --shard to gather")
        return 0
    runs = table[["method", "setting", "seed"]].drop_duplicates()
    if args.gather_only:
        print("gathered only (nothing was run): runs of this grid that had not finished are not in the table")
    print(
        f"{len(runs)} runs, {len(table)} rows -> {args.out} ({time.perf_counter() - start:.0f} s this session; "
        f"{table.drop_duplicates('key')['run_wall_s'].sum():.0f} s of fit + evaluate in all runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
