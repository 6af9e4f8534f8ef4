"""Command-line worker for a shared Optuna study.

Start the same command on as many machines as you like; they share trials through the storage::

    python -m course_tools.tuning.cli --study scgen-cd4 --method scgen \
        --storage postgresql://user:password@host/db --n-trials 50 --worker K

(``K`` = 0, 1, 2, ... a different number on each worker.) A ``postgresql://`` URL needs the
PostgreSQL driver that SQLAlchemy uses for it: ``psycopg`` (``pip install "psycopg[binary]"``, in
the ``test`` extra) from SQLAlchemy 2.1 on, ``psycopg2`` before; a missing driver is named, with
its ``pip`` command, before anything is loaded.

With the default storage (SQLite at ``<cache dir>/optuna.db``, see
:func:`course_tools.tuning.storage.default_storage_path`) several workers on one machine share a study, and
an interrupted study resumes where it stopped. Every argument is checked before any data are
loaded or any study is created: the numbers, the search space (against the model's own limits,
:func:`course_tools.tuning.study.check_space`), the seeds (NumPy's range) and the storage
(:func:`course_tools.tuning.storage.check_storage`). A bad one exits with status 2 and a message naming it.

Each trial records which worker ran it in its user attributes ``worker`` (the ``--worker``
number), ``host`` and ``pid``, and where: ``git_commit``, ``device`` and ``versions``
(:func:`course_tools.grid.provenance`).
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys

from course_tools.tuning.storage import check_storage
from course_tools.tuning.study import (
    check_space,
    create_study,
    make_objective,
    n_finished,
    optimise,
    search_spaces,
)
from tutorial_lib.config import SEED_MAX, apply_torch_threads, get_config
from tutorial_lib.data import load_kang2018, prepare_holdout, split_views
from tutorial_lib.data.split import DEFAULT_TEST_CELL_TYPE, DEFAULT_VALIDATION_CELL_TYPE


def build_parser() -> argparse.ArgumentParser:
    """The command line of a tuning worker."""
    cfg = get_config()
    p = argparse.ArgumentParser(prog="python -m course_tools.tuning.cli", description="Run an Optuna tuning worker.")
    p.add_argument("--study", required=True, help="study name (shared by all workers)")
    p.add_argument("--method", required=True, choices=sorted(search_spaces()))
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL or file: postgresql://user:password@host/db (needs the psycopg driver), "
        "x.db (SQLite), x.log (journal file); default: optuna.db in the course's cache directory",
    )
    p.add_argument("--n-trials", type=int, required=True, help="finished trials the study should reach in total")
    p.add_argument("--test-cell-type", default=DEFAULT_TEST_CELL_TYPE, help="never used for tuning; only held out")
    p.add_argument("--validation-cell-type", default=DEFAULT_VALIDATION_CELL_TYPE)
    p.add_argument("--data", choices=["mini", "full"], default=cfg.dataset)
    p.add_argument("--n-top-genes", type=int, default=cfg.n_top_genes)
    p.add_argument(
        "--max-epochs",
        type=int,
        default=cfg.max_epochs,
        help="epoch cap of each trial's training (default: the mode's; none in full mode: the default schedule)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: the model's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="seed of model training")
    p.add_argument(
        "--worker",
        type=int,
        default=0,
        help="worker number; the sampler is seeded from seed + worker (and the trials already in the "
        "study) so that workers, and restarted workers, explore different points",
    )
    p.add_argument("--heartbeat", type=int, default=10, help="seconds between a worker's heartbeats (RDB storage)")
    p.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median")
    p.add_argument(
        "--space",
        default=None,
        help="search space as JSON, replacing the method's (course_tools.tuning.study.search_spaces()), e.g. "
        '\'{"n_hidden": ["categorical", [64, 128]], "dropout_rate": ["float", [0.0, 0.3, false]]}\'',
    )
    return p


def parse_space(text: str) -> dict:
    """A search space from its JSON form (``name: [kind, spec]``), validated; ``ValueError`` names the problem."""
    import json

    from course_tools.tuning.search_space import validate_space

    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--space is not valid JSON ({err})") from err
    if not isinstance(raw, dict):
        raise ValueError("--space must be a JSON object {name: [kind, spec]}")
    space = {}
    for name, entry in raw.items():
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise ValueError(f"--space entry {name!r} must be [kind, [spec...]], got {entry!r}")
        space[name] = (entry[0], tuple(entry[1]))
    validate_space(space)
    return space


def load_parts(data: str, test_cell_type: str, validation_cell_type: str, n_top_genes: int):
    """The worker's training/validation/test views (``tutorial_lib.data.split.HoldoutData``).

    What every worker trains on; call it with a worker's arguments to retrain a trial exactly,
    e.g. ``fit_and_score(method, trial.params, load_parts(...), max_epochs=..., seed=...)``.
    """
    adata = prepare_holdout(
        load_kang2018(data), test_cell_type, validation_cell_type=validation_cell_type, n_top_genes=n_top_genes
    )
    return split_views(adata)


def main(argv: list[str] | None = None) -> int:
    """Run one worker; returns the process exit status."""
    args = build_parser().parse_args(argv)
    apply_torch_threads()  # one documented thread count for the process (each trial keeps it: fixed_threads)
    problems = []
    if args.n_trials < 1:
        problems.append(f"--n-trials must be >= 1, got {args.n_trials}")
    if args.batch_size is not None and args.batch_size < 2:
        problems.append(f"--batch-size must be >= 2 (BatchNorm needs 2 cells), got {args.batch_size}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        problems.append(f"--lr must be a finite number > 0, got {args.lr}")
    for name, value, low in [
        ("--max-epochs", args.max_epochs, 1),
        ("--n-top-genes", args.n_top_genes, 2),
        ("--seed", args.seed, 0),
        ("--worker", args.worker, 0),
        ("--heartbeat", args.heartbeat, 1),
    ]:
        if value is not None and value < low:
            problems.append(f"{name} must be >= {low}, got {value}")
    if args.seed > SEED_MAX:
        problems.append(f"--seed must be <= {SEED_MAX} (NumPy's seed range), got {args.seed}")
    elif min(args.seed, args.worker) >= 0 and args.seed + args.worker > SEED_MAX:
        problems.append(
            f"--seed + --worker (the sampler's seed) must be <= {SEED_MAX} (NumPy's seed range), "
            f"got {args.seed + args.worker}"
        )
    if not args.study.strip():
        problems.append("--study must not be empty")
    if args.test_cell_type == args.validation_cell_type:
        problems.append(f"--validation-cell-type must differ from --test-cell-type (both {args.test_cell_type!r})")
    space = None
    if args.space is not None:
        try:
            space = parse_space(args.space)
            check_space(args.method, space)  # every name is a setting of the method, every value one it accepts
        except ValueError as err:
            problems.append(str(err))
    try:
        check_storage(args.storage, name="--storage")
    except ValueError as err:
        problems.append(str(err))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    parts = load_parts(args.data, args.test_cell_type, args.validation_cell_type, args.n_top_genes)
    study = create_study(
        args.study, args.storage, seed=args.seed + args.worker, pruner=args.pruner, heartbeat=args.heartbeat
    )
    train_kwargs = {k: v for k, v in {"batch_size": args.batch_size, "lr": args.lr}.items() if v is not None}
    objective = make_objective(
        args.method, parts, max_epochs=args.max_epochs, seed=args.seed, space=space, train_kwargs=train_kwargs
    )
    from course_tools.grid import provenance

    who = {"worker": args.worker, "host": socket.gethostname(), "pid": os.getpid()}
    who |= {k: v for k, v in provenance().items() if k in ("git_commit", "device", "versions")}

    def labelled(trial):
        for key, value in who.items():
            trial.set_user_attr(key, value)
        return objective(trial)

    optimise(study, labelled, args.n_trials)
    print(
        f"study {args.study!r}: {n_finished(study)} finished trials; best value {study.best_value:.4g} "
        f"with {study.best_params}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
