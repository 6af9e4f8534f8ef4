"""What the committed tuning study found, in words computed from its journals and its final table.

The committed study (:mod:`course_tools.tuning.committed`) runs for hours and may be read while it is
under way. :func:`committed_findings` reads whatever ``results/tuning_study`` holds and returns
:class:`CommittedFindings`: per model, how far its study has come, which hyperparameters explain the
validation E-distance (fANOVA importances with their spread over bootstrap resamples of the trials,
once it holds :data:`MIN_TRIALS_FOR_IMPORTANCES` completed trials) and, once the final runs exist,
the tuned settings against the defaults on the test cell type. Each sentence is built from the
numbers it states; notebook 04 shows them, the figure :func:`course_tools.plots.importance_spread_plot`
beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pandas as pd

from course_tools.findings import join_words, name
from course_tools.tuning.committed import (
    STUDY_DIR,
    STUDY_SPACES,
    TUNED,
    importance_spread,
    journal_path,
    load_study,
    tuned_vs_default,
)
from course_tools.tuning.report import sampler_phases
from course_tools.verdicts import format_estimate
from tutorial_lib.data.split import DEFAULT_TEST_CELL_TYPE, DEFAULT_VALIDATION_CELL_TYPE

#: Finished trials each committed study is run to (``--n-trials`` of the command).
N_TRIALS = 100

#: Fewest completed trials whose importances are shown: below it the forest has too few points
#: for seven parameters, and the start-up trials (10) would be most of them.
MIN_TRIALS_FOR_IMPORTANCES = 30

#: An importance whose whole spread lies below this share "hardly matters" (5% of the variation).
NEGLIGIBLE = 0.05

#: The metric the trials minimise (:func:`course_tools.tuning.study.make_objective`: the E-distance
#: of the validation cell type's prediction), named so that the tuned-vs-default sentence can say
#: whether the choice carried over to the test cell type.
OBJECTIVE_METRIC = "e_distance"

#: Resamples of the trials behind each importance's spread (:func:`~course_tools.tuning.committed.importance_spread`).
N_RESAMPLES = 100

#: The importances computed from the journals, kept beside them (``<out>/importances.csv``): refitting
#: 101 forests per model takes minutes, so the notebook reads them when they match the journal.
IMPORTANCES_FILE = "importances.csv"


@dataclass(frozen=True)
class StudyProgress:
    """How far one model's committed study has come (counts of its trials, by state and sampler phase)."""

    method: str
    n_target: int
    n_complete: int
    n_failed: int  # failed trials (e.g. a killed worker's; each is retried once with its parameters)
    n_running: int  # trials a worker holds now, or held when it was killed
    n_random: int  # completed trials drawn in the sampler's random start-up phase
    n_model: int  # completed trials proposed by the TPE model
    n_retried: int  # completed trials that repeat a killed trial's parameters (enqueued on retry)
    best_value: float  # lowest validation E-distance (NaN: no completed trial)
    best_params: Mapping[str, object]
    n_final_seeds: int  # seeds with both the tuned and the default run on the test cell type

    @property
    def done(self) -> bool:
        """Whether the study holds its ``n_target`` completed trials."""
        return self.n_complete >= self.n_target

    @property
    def name(self) -> str:
        """The model's name in sentences (``scGen``)."""
        return name(self.method)

    def statement(self) -> str:
        """The study's state in one sentence."""
        if self.n_complete == 0:
            return f"{self.name}'s study has not started (0 of {self.n_target} trials)."
        how = (
            f"{self.n_random} drawn at random in the TPE sampler's start-up phase, {self.n_model} proposed by its model"
        )
        if self.n_retried:
            how += f", {self.n_retried} retried with the parameters of a trial whose worker was killed"
        if self.done:
            state = f"{self.name}'s study is complete: {self.n_complete} trials ({how})"
        else:
            state = f"{self.name}'s study is under way: {self.n_complete} of {self.n_target} trials completed ({how})"
        failed = f"; {self.n_failed} failed" if self.n_failed else ""  # a killed worker's trial fails, then is retried
        best = f"; best validation E-distance so far {self.best_value:.3f}" if not self.done else ""
        return state + failed + best + "."


def study_progress(
    out: str | Path, method: str, *, n_trials: int = N_TRIALS, final: pd.DataFrame | None = None
) -> StudyProgress:
    """Read ``method``'s journal in ``out`` (a study not started yet counts as empty) and the final table."""
    if journal_path(out, method).is_file():
        study = load_study(out, method)
        trials = study.get_trials(deepcopy=False)
    else:
        study, trials = None, []
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    phases = sampler_phases(study) if complete else pd.DataFrame({"state": [], "phase": []})
    phases = phases[phases["state"] == "COMPLETE"]["phase"].value_counts()
    best = min(complete, key=lambda t: t.value) if complete else None
    return StudyProgress(
        method=method,
        n_target=n_trials,
        n_complete=len(complete),
        n_failed=sum(t.state == optuna.trial.TrialState.FAIL for t in trials),
        n_running=sum(t.state == optuna.trial.TrialState.RUNNING for t in trials),
        n_random=int(phases.get("random start-up", 0)),
        n_model=int(phases.get("TPE model", 0)),
        n_retried=int(phases.get("enqueued", 0)),
        best_value=float(best.value) if best else float("nan"),
        best_params=dict(best.params) if best else {},
        n_final_seeds=_final_seeds(final, method),
    )


def _final_seeds(final: pd.DataFrame | None, method: str) -> int:
    if final is None or final.empty:
        return 0
    seeds = [set(final.loc[final["method"] == m, "seed"]) for m in (method, method + TUNED)]
    return len(seeds[0] & seeds[1])


def _share(x: float) -> str:
    return f"{x:.2f}"


def importance_statement(progress: StudyProgress, table: pd.DataFrame, validation_cell_type: str) -> str:
    """Which hyperparameters explain the validation E-distance, with their spread, in words.

    ``table`` is :func:`~course_tools.tuning.committed.importance_spread`'s. The top parameter is
    "clearly ahead" of the next when the low end of its spread is above the high end of the next
    one's; parameters whose whole spread lies below :data:`NEGLIGIBLE` "hardly matter".
    """
    if table.empty:
        raise ValueError("no importances to describe")
    rows = table.sort_values("importance", ascending=False).reset_index(drop=True)
    level = "the middle 95%"
    n = int(rows["n_trials"].iloc[0])
    so_far = "" if progress.done else f" so far (after {n} of {progress.n_target} trials)"
    top = rows.iloc[0]
    first = (
        f"For {progress.name}{so_far}, {top['param']} explains the largest share of the variation of the "
        f"validation E-distance ({validation_cell_type}): fANOVA importance {_share(top['importance'])} ({level} of "
        f"{int(top['n_resamples'])} bootstrap resamples of the {n} trials: {_share(top['low'])}-{_share(top['high'])})"
    )
    if len(rows) > 1:
        second = rows.iloc[1]
        ahead = top["low"] > second["high"]
        first += (
            f", {'clearly more than' if ahead else 'not clearly more than'} the next, {second['param']} "
            f"({_share(second['importance'])}, {_share(second['low'])}-{_share(second['high'])}"
            + ("" if ahead else ": their spreads overlap")
            + ")."
        )
    else:
        first += "."
    small = list(rows.loc[rows["high"] < NEGLIGIBLE, "param"])
    if small:
        one = len(small) == 1
        first += (
            f" {join_words(small)} hardly matter{'s' if one else ''} here: {'its' if one else 'their'} whole spread "
            f"lies below {NEGLIGIBLE:.0%} of the variation."
        )
    return first


def tuned_statement(
    progress: StudyProgress, verdicts: pd.DataFrame, validation_cell_type: str, test_cell_type: str
) -> str:
    """The best trial's settings against the defaults on the test cell type, per key metric, in words.

    ``verdicts`` is :func:`~course_tools.tuning.committed.tuned_vs_default`'s table (tuned - default,
    or tuned / default for a distance on a ratio scale). The metrics are grouped by verdict, and a last
    sentence says whether the study's objective (the E-distance, chosen on ``validation_cell_type``)
    favours the tuned settings on the test cell type too. Exploratory: outside the course's primary question.
    """
    tuned, default = progress.method + TUNED, progress.method
    sides = {f"{tuned} better": "the tuned settings are better", f"{default} better": "the defaults are better"}
    groups: dict[str, list[str]] = {}
    for _, v in verdicts.iterrows():
        groups.setdefault(sides.get(v["verdict"], v["verdict"]), []).append(
            f"{name(v['metric'])} ({name(v['gene_set'])}, {v['direction']} is better) "
            f"{format_estimate(v['estimate'], v['ci_low'], v['ci_high'], v['scale'])}"
        )
    n = int(verdicts["n"].max()) if len(verdicts) else 0
    params = ", ".join(f"{k}={_value(x)}" for k, x in progress.best_params.items())
    said = (
        f"{progress.name}'s best trial ({params}) against its defaults on {test_cell_type}, retrained with the "
        f"benchmark's schedule over {n} paired seeds (tuned - default; exploratory): "
        + "; ".join(f"{words} on {join_words(parts)}" for words, parts in groups.items())
        + "."
    )
    objective = verdicts[verdicts["metric"] == OBJECTIVE_METRIC]["verdict"]
    if len(objective):
        carried = {
            f"{tuned} better": "that choice carried over: by the same measure the tuned settings are better on",
            f"{default} better": "that choice did not carry over: by the same measure the defaults are better on",
        }.get(objective.iloc[0], "by the same measure the runs cannot tell them apart on")
        said += (
            f" The trials chose these settings by the {name(OBJECTIVE_METRIC)} on {validation_cell_type}; "
            f"{carried} {test_cell_type}."
        )
    return said


def _value(x: object) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class CommittedFindings:
    """The committed study's findings: progress, importances, tuned vs default; :meth:`statements` in words."""

    progress: tuple[StudyProgress, ...]
    importances: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    verdicts: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    validation_cell_type: str = DEFAULT_VALIDATION_CELL_TYPE
    test_cell_type: str = DEFAULT_TEST_CELL_TYPE

    @property
    def complete(self) -> bool:
        """Every study holds its trials and every model has its final runs."""
        return all(p.done for p in self.progress) and set(self.verdicts) == {p.method for p in self.progress}

    def progress_table(self) -> pd.DataFrame:
        """One row per model: completed trials against the target, by sampler phase, and the final runs."""
        return pd.DataFrame(
            {
                "model": [p.name for p in self.progress],
                "completed": [p.n_complete for p in self.progress],
                "target": [p.n_target for p in self.progress],
                "random start-up": [p.n_random for p in self.progress],
                "TPE model": [p.n_model for p in self.progress],
                "retried": [p.n_retried for p in self.progress],
                "failed": [p.n_failed for p in self.progress],
                "best validation E-distance": [p.best_value for p in self.progress],
                "final seeds": [p.n_final_seeds for p in self.progress],
            }
        )

    def statements(self) -> tuple[str, ...]:
        """Per model: its progress, its importances (when shown) and tuned vs default (when run); then what is left."""
        out = []
        for p in self.progress:
            out.append(p.statement())
            if p.method in self.importances:
                out.append(importance_statement(p, self.importances[p.method], self.validation_cell_type))
            if p.method in self.verdicts:
                out.append(tuned_statement(p, self.verdicts[p.method], self.validation_cell_type, self.test_cell_type))
        if not self.complete:
            out.append(self.still_open())
        return tuple(out)

    def still_open(self) -> str:
        """What the course cannot say yet, and the command that completes the study."""
        left = [
            p.name
            + (
                f": {p.n_target - p.n_complete} more trials, then its final runs"
                if not p.done
                else ": its final runs on the test cell type"
            )
            for p in self.progress
            if not (p.done and p.method in self.verdicts)
        ]
        return (
            "Until a study holds all its trials its importances are provisional (more trials can change them), "
            "and until its final runs exist the course does not say whether tuning pays off on the test cell "
            f"type. Left: {'; '.join(left)}. The same command continues the study: "
            "`python -m course_tools.tuning.committed --out results/tuning_study --workers N`."
        )

    def __str__(self) -> str:
        return "The committed study\n" + "\n".join(f"- {s}" for s in self.statements())

    def _repr_markdown_(self) -> str:
        return "**The committed study**\n\n" + "\n".join(f"- {s}" for s in self.statements())


def _importances_of(out: Path, method: str, n_complete: int, n_resamples: int, seed: int) -> pd.DataFrame:
    """``method``'s importances, kept or computed now.

    Kept ones (:data:`IMPORTANCES_FILE`) are used when they were computed from as many completed
    trials with the same resamples and seed; else they are computed from the journal.
    """
    path = out / IMPORTANCES_FILE
    if path.is_file():
        kept = pd.read_csv(path)
        rows = kept[
            (kept["method"] == method)
            & (kept["n_trials"] == n_complete)
            & (kept["n_resamples"] == n_resamples)
            & (kept["seed"] == seed)
        ]
        if len(rows):
            return rows.drop(columns=["method", "seed"]).reset_index(drop=True)
    return importance_spread(load_study(out, method), n_resamples=n_resamples, seed=seed)


def write_importances(
    out: str | Path = STUDY_DIR,
    *,
    methods: Sequence[str] = tuple(STUDY_SPACES),
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> Path | None:
    """Compute the importances of every study in ``out`` with enough completed trials and keep them.

    Writes :data:`IMPORTANCES_FILE` (``method, param, importance, low, high, n_trials, n_resamples,
    seed``; through a temporary file, so a kill leaves the old one) and returns its path, or ``None``
    when no study has :data:`MIN_TRIALS_FOR_IMPORTANCES` completed trials yet.
    """
    out = Path(out)
    tables = []
    for method in methods:
        p = study_progress(out, method)
        if p.n_complete >= MIN_TRIALS_FOR_IMPORTANCES:
            table = importance_spread(load_study(out, method), n_resamples=n_resamples, seed=seed)
            tables.append(table.assign(method=method, seed=seed))
    if not tables:
        return None
    path = out / IMPORTANCES_FILE
    part = path.with_name(path.name + ".part")
    pd.concat(tables, ignore_index=True).to_csv(part, index=False)
    part.replace(path)
    return path


def read_final(out: str | Path) -> pd.DataFrame | None:
    """The final table (``<out>/final.csv.gz``), or ``None`` when the final runs have not been made."""
    path = Path(out) / "final.csv.gz"
    return pd.read_csv(path) if path.is_file() else None


def committed_findings(
    out: str | Path = STUDY_DIR,
    *,
    methods: Sequence[str] = tuple(STUDY_SPACES),
    n_trials: int = N_TRIALS,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    validation_cell_type: str = DEFAULT_VALIDATION_CELL_TYPE,
    test_cell_type: str = DEFAULT_TEST_CELL_TYPE,
) -> CommittedFindings:
    """Read the committed study in ``out`` as far as it has come.

    Importances (:func:`~course_tools.tuning.committed.importance_spread`) for each study with at
    least :data:`MIN_TRIALS_FOR_IMPORTANCES` completed trials (kept ones from :func:`write_importances`
    when they match the journal); tuned vs default
    (:func:`~course_tools.tuning.committed.tuned_vs_default`) for each model whose final runs exist.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    final = read_final(out)
    progress, importances, verdicts = [], {}, {}
    for method in methods:
        p = study_progress(out, method, n_trials=n_trials, final=final)
        progress.append(p)
        if p.n_complete >= MIN_TRIALS_FOR_IMPORTANCES:
            importances[method] = _importances_of(Path(out), method, p.n_complete, n_resamples, seed)
        if p.done and p.n_final_seeds >= 2:
            verdicts[method] = tuned_vs_default(final, method)
    return CommittedFindings(
        tuple(progress),
        importances,
        verdicts,
        validation_cell_type=validation_cell_type,
        test_cell_type=test_cell_type,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m course_tools.tuning.committed_report [--out DIR] [--write]``: print the findings.

    ``--write`` first (re)computes the importances and keeps them (:func:`write_importances`).
    """
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m course_tools.tuning.committed_report",
        description="What the committed tuning study shows so far; --write keeps its importances beside the journals.",
    )
    p.add_argument("--out", default=str(STUDY_DIR), help="folder of the journals (default %(default)s)")
    p.add_argument("--write", action="store_true", help=f"(re)compute and write <out>/{IMPORTANCES_FILE}")
    args = p.parse_args(argv)
    if args.write:
        path = write_importances(args.out)
        print(f"wrote {path}" if path else f"no study has {MIN_TRIALS_FOR_IMPORTANCES} completed trials yet")
    print(committed_findings(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
