"""The benchmark grid: every method x every setting x seeds, resumable, one compressed table.

``python -m tutorial_lib.grid --out results/grid.csv.gz`` runs, through
:func:`tutorial_lib.benchmark.run_benchmark` (one runner, its resume and its per-run keys):

- every method of :data:`tutorial_lib.models.registry.METHODS` (baselines, scGen, scPRAM and any
  registered variant), unless ``--methods`` names a subset;
- leave-one-cell-type-out over every cell type, balanced (``loco/<type>/balanced``);
- the same with 20% of the stimulated training cells kept (``loco/<type>/stim20``) for
  ``--imbalance-cell-types`` (default: the 3 cell types with most cells, a rule that looks at no
  score), genes chosen on each run's own training cells;
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

Training: ``--max-epochs`` (default: the library's training default), and ``--method-kwargs`` as
JSON (``{"scgen": {"batch_size": 64}}``) passed to the methods' constructor/train/predict.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from anndata import AnnData

from tutorial_lib.benchmark import BenchmarkConfig, Setting, read_results, run_benchmark, write_results
from tutorial_lib.config import torch_threads
from tutorial_lib.data.checks import CELL_TYPE_KEY, DataValidationError
from tutorial_lib.data.preprocess import normalise_log

#: Fraction of stimulated training cells kept in the unbalanced settings (issue 11).
STIMULATED_FRACTION = 0.2
#: Held-out donors of the donor setting (those of notebook 03).
DEFAULT_DONORS = ("1015", "1488")
#: Columns the final table adds to the work file's (from the settings and the run's timings).
DERIVED_COLUMNS = ("held_out", "design", "run_wall_s")
#: Packages whose versions each run records.
VERSIONED = ("tutorial_lib", "torch", "numpy", "scipy", "pandas", "anndata", "scanpy", "scikit-learn", "pot")


def grid_settings(
    adata: AnnData,
    cell_types: Sequence[str] | None = None,
    imbalance_cell_types: Sequence[str] | int = 3,
    donors: Sequence[str] | None = DEFAULT_DONORS,
    stimulated_fraction: float = STIMULATED_FRACTION,
) -> tuple[list[Setting], pd.DataFrame]:
    """The grid's settings and a table describing them (``setting, held_out, design``).

    ``imbalance_cell_types`` is a list of names, or a number ``k``: the ``k`` cell types with the
    most cells (ties by name).
    """
    counts = adata.obs[CELL_TYPE_KEY].astype(str).value_counts()
    known = sorted(counts.index)
    cell_types = known if cell_types is None else list(cell_types)
    if isinstance(imbalance_cell_types, int):
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
    # the count training and prediction set for themselves (apply_torch_threads), not the process's
    # count at start (rows written before 2026-12-01 23:30 UTC could say 2 while training used 1)
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


def run_grid(
    adata: AnnData,
    out: str | Path,
    *,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    config: BenchmarkConfig | None = None,
    cell_types: Sequence[str] | None = None,
    imbalance_cell_types: Sequence[str] | int = 3,
    donors: Sequence[str] | None = DEFAULT_DONORS,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
    run_missing: bool = True,
) -> pd.DataFrame:
    """Run the grid (module docstring) and write the final table ``out`` (gzip CSV).

    Returns the table: :func:`run_benchmark`'s columns, the settings' ``held_out`` and ``design``,
    and the provenance columns.

    ``shard=(i, n)`` runs only the ``i``-th of ``n`` interleaved slices of the (setting, seed)
    runs, into its own work file ``<out>.work.shard<i>of<n>.csv``, and writes no final table:
    ``n`` processes (one per core, or per machine sharing a folder) run the shards side by side,
    and a last call without ``shard`` gathers every shard's finished runs (no run is done twice),
    runs whatever is missing and writes ``out``. Returns the shard's rows.

    ``run_missing=False`` (``--gather-only``) runs nothing: it gathers the finished runs of this
    grid (from ``out``, the work file and the shards' work files) and writes them to ``out``, so
    that a grid still running elsewhere can be committed as far as it got; the same command
    without the flag later adds the rest.
    """
    from tutorial_lib.models.registry import METHODS

    out = Path(out)
    if not out.name.endswith(".csv.gz"):
        raise ValueError(f"out must be a .csv.gz file, got {out}")
    config = config or BenchmarkConfig(max_epochs=None)
    methods = list(METHODS) if methods is None else list(methods)
    settings, described = grid_settings(adata, cell_types, imbalance_cell_types, donors)
    stem = out.name[: -len(".csv.gz")]
    work = out.with_name(stem + ".work.csv")
    # seed-major: a grid stopped part-way has whole seeds (every setting), which pair across designs
    runs = [(setting, seed) for seed in seeds for setting in settings]
    if shard is not None and not run_missing:
        raise ValueError("run_missing=False gathers every shard's runs; it takes no shard")
    if shard is not None:
        i, n = shard
        if not (isinstance(i, int) and isinstance(n, int) and n >= 1 and 0 <= i < n):
            raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard}")
        work = out.with_name(f"{stem}.work.shard{i}of{n}.csv")
        runs = runs[i::n]
        if out.exists():  # a committed table's runs are not redone by a shard either
            _gather_shards(work, [out])
    else:  # a committed table (e.g. on a fresh clone) and the shards' work files: their runs are not redone
        previous = [out] if out.exists() else []
        _gather_shards(work, previous + sorted(out.parent.glob(f"{stem}.work.shard*of*.csv")))
    info = provenance()

    def stamp(table: pd.DataFrame) -> pd.DataFrame:
        new = table["finished_at"].isna() if "finished_at" in table.columns else pd.Series(True, index=table.index)
        table = table.copy()
        for k, v in info.items():
            if k not in table.columns:
                table[k] = None
            table.loc[new, k] = v
        if "finished_at" not in table.columns:
            table["finished_at"] = None
        table.loc[new, "finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return table

    data = adata
    if data.uns.get("x_kind") != "log":  # once, not in every run_benchmark call below
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
            write_results(stamp(done), work)
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
    if shard is not None:
        return table
    if table.empty:
        raise DataValidationError(f"no finished run of this grid in {work} or the shards' work files; nothing to write")
    table = table.drop(columns=[c for c in ("held_out", "design") if c in table.columns])
    table = table.merge(described, on="setting", how="left")
    table["run_wall_s"] = table["fit_predict_s"] + table["evaluate_s"]
    part = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(part, index=False, compression="gzip")
    os.replace(part, out)
    return table


def _gather_shards(work: Path, shard_files: Sequence[Path]) -> None:
    """Add the whole runs of earlier tables and the shards' work files to ``work`` (atomically; each run once)."""
    if not shard_files:
        return
    from tutorial_lib.benchmark import complete_runs

    parts, seen = [], set()
    for f in ([work] if work.exists() else []) + list(shard_files):
        rows = complete_runs(read_results(f))  # a shard killed mid-run: its cut run is dropped
        rows = rows.drop(columns=[c for c in DERIVED_COLUMNS if c in rows.columns])  # a final table's; re-made
        rows = rows[~rows["key"].astype(str).isin(seen)]
        seen |= set(rows["key"].astype(str))
        if len(rows):
            parts.append(rows)
    if parts:
        write_results(pd.concat(parts, ignore_index=True), work)


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, e.g. 0/2 (shard I of N, from 0); got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"expected 0 <= I < N in I/N; got {text!r}")
    return i, n


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tutorial_lib.grid", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/grid.csv.gz", help="final gzip CSV (default %(default)s)")
    p.add_argument("--dataset", default="full", choices=["full", "mini"], help="Kang 2018 subset")
    p.add_argument("--methods", nargs="+", help="default: every registered method")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default %(default)s)")
    p.add_argument("--cell-types", nargs="+", help="held-out cell types (default: all)")
    p.add_argument(
        "--imbalance-cell-types",
        nargs="*",
        help="cell types of the 20%% settings (default: the 3 with most cells; the flag alone: none)",
    )
    p.add_argument("--donors", nargs="*", default=list(DEFAULT_DONORS), help="held-out donors; none: no donor setting")
    p.add_argument("--max-epochs", type=int, default=None, help="epoch budget (default: the library's default)")
    p.add_argument("--method-kwargs", default="{}", help='JSON, e.g. \'{"scgen": {"batch_size": 64}}\'')
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
    from tutorial_lib.data import load_kang2018

    try:
        method_kwargs = json.loads(args.method_kwargs)
    except json.JSONDecodeError as e:
        raise SystemExit(
            f'--method-kwargs is not valid JSON ({e}); expected e.g. \'{{"scgen": {{"batch_size": 64}}}}\''
        ) from e
    config = BenchmarkConfig(
        n_top_genes=args.n_top_genes,
        max_epochs=args.max_epochs,
        n_bootstrap=args.n_bootstrap,
        n_bootstrap_degs=args.n_bootstrap_degs,
        n_top_degs=args.n_top_degs,
        method_kwargs=method_kwargs,
    )
    imbalance = args.imbalance_cell_types if args.imbalance_cell_types is not None else 3
    start = time.perf_counter()
    table = run_grid(
        load_kang2018(args.dataset),
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
