"""What notebook 04's run found, said in words computed from the run's own objects.

:func:`tuning_findings` reads the live study, the default-vs-tuned test scores and the wrong-way
study with its retrainings, and returns :class:`TuningFindings`: three statements (how the trials
were drawn and ended, and so what the study cannot say; whether tuning helped on the test cell type;
whether tuning on the test set flattered). The committed study's findings are
:mod:`course_tools.tuning.committed_report`'s. Each sentence is built from the numbers it states, so
the words cannot drift from the outputs. Renders as markdown in a notebook and as text elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from course_tools.tuning.report import flattery, n_startup_trials, sampler_phases
from course_tools.verdicts import MIN_RUNS, paired_verdict

_COMPLETE = optuna.trial.TrialState.COMPLETE
_PRUNED = optuna.trial.TrialState.PRUNED


@dataclass(frozen=True)
class FreshComparison:
    """A value selected on the test set against fresh runs (:func:`~course_tools.tuning.report.flattery`)."""

    reported: float
    n: int
    fresh_mean: float
    diff: float  # mean of fresh - reported
    ci_low: float
    ci_high: float
    verdict: str

    @classmethod
    def of(cls, reported: float, fresh: Sequence[float]) -> FreshComparison:
        """The comparison of ``reported`` with the ``fresh`` scores (``fresh - reported``, paired t interval)."""
        f = flattery(reported, fresh)
        return cls(f["reported"], f["n"], f["fresh_mean"], f["diff"], f["ci_low"], f["ci_high"], f["verdict"])

    def interval(self, digits: int = 3) -> str:
        """``"+0.150 [+0.026, +0.274]"``: the mean of ``fresh - reported`` and its interval."""
        if not np.isfinite(self.ci_low):
            return f"{self.diff:+.{digits}f} [no interval]"
        return f"{self.diff:+.{digits}f} [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]"


@dataclass(frozen=True)
class TuningFindings:
    """Notebook 04's findings: counts, verdicts and their numbers, and :meth:`statements` in words.

    Build it with :func:`tuning_findings`. E-distance is lower-is-better throughout.
    """

    n_finished: int
    n_complete: int
    n_pruned: int
    n_random: int  # finished trials drawn in the sampler's random start-up phase
    n_model: int  # finished trials proposed by the TPE model
    n_enqueued: int  # finished trials with fixed (enqueued) parameters
    n_startup_trials: int
    test_cell_type: str
    tuned: str
    default: str
    n_seeds: int
    gain: float  # tuned - default, mean over matched seeds
    gain_low: float
    gain_high: float
    gain_verdict: str
    n_candidates: int  # completed trials the wrong-way study chose among
    lucky: FreshComparison  # the wrong-way pick retrained with fresh seeds
    honest: FreshComparison  # the honestly tuned settings, fresh seeds, against the same reported value
    same_winner: bool
    selection_effect: float  # reported - honest winner's score in the wrong-way study's trainings

    def trials_statement(self) -> str:
        """How many trials finished, completed and were pruned, and in which sampler phase they were drawn."""
        counts = (
            f"The live study finished {self.n_finished} trials: {self.n_complete} completed and {self.n_pruned} pruned."
        )
        if self.n_model == 0:
            if self.n_enqueued:
                drawn = (
                    f" None was proposed by the TPE model, which starts after {self.n_startup_trials} finished "
                    f"trials: {self.n_random} were drawn at random and {self.n_enqueued} enqueued"
                )
            else:
                drawn = (
                    " All of them were drawn at random: the TPE sampler proposes from its model only after "
                    f"{self.n_startup_trials} finished trials"
                )
            how = (
                drawn + ", so this study is a seeded random search. It shows the mechanics (storage, resuming, "
                "pruning); it cannot say which hyperparameters matter."
            )
        else:
            how = (
                f" {self.n_random} were drawn at random in the sampler's start-up phase (its first "
                f"{self.n_startup_trials}) and {self.n_model} proposed by the TPE model"
                + (f"; {self.n_enqueued} were enqueued" if self.n_enqueued else "")
                + "."
            )
        rest = (
            f" The importances and the contour plot rest on its {self.n_complete} completed "
            f"trial{'s' if self.n_complete != 1 else ''}."
        )
        return counts + how + rest

    def gain_statement(self) -> str:
        """Tuned vs default on the test cell type: the paired difference over seeds and its verdict in words."""
        numbers = (
            f"{self.tuned} - {self.default} = {self.gain:+.3f} [{self.gain_low:+.3f}, {self.gain_high:+.3f}] "
            f"over {self.n_seeds} seeds"
        )
        if self.gain_verdict == "no clear difference":
            words = (
                "no clear difference: the interval includes 0, so this run cannot tell the effect of tuning "
                "from seed-to-seed noise"
            )
        elif self.gain_verdict == f"{self.tuned} better":
            words = "the tuned settings are better: the choice made on the validation cell type transferred"
        elif self.gain_verdict == f"{self.default} better":
            words = (
                "the defaults are better: the settings chosen on the validation cell type did not transfer "
                "to the test cell type"
            )
        else:
            words = self.gain_verdict
        return (
            f"Tuned vs default on the test cell type ({self.test_cell_type}), E-distance (lower is better), "
            f"paired by seed: {numbers} -> {words}."
        )

    def selection_statement(self) -> str:
        """What tuning on the test set reported against fresh seeds, and the selection effect at its seed."""
        lucky = self.lucky
        reading = {
            "no clear difference": "no clear difference: with these few candidates and seeds this run cannot "
            "show the flattery",
            "supported: the reported value flatters": "the reported value flatters: the pick was lucky on the "
            "cells and seed it was chosen on (the winner's curse)",
            "refuted: the fresh runs are better than the reported value": "the fresh runs are better than the "
            "reported value",
        }
        line = (
            f"Tuning on the test set (the wrong way) reports {lucky.reported:.3f}, the best of "
            f"{self.n_candidates} completed trials judged on the test cells; the same settings retrained with "
            f"{lucky.n} fresh seeds score {lucky.fresh_mean:.3f} (fresh - reported {lucky.interval()}) -> "
            f"{reading.get(lucky.verdict, lucky.verdict)}."
        )
        if self.same_winner:
            line += (
                " Both studies picked the same setting, so the selection effect at the search's seed is "
                f"{self.selection_effect:+.3f} and the honest procedure's fresh scores are these same ones."
            )
        else:
            honest = self.honest
            line += (
                f" The honest study picked a different setting: the selection effect at the search's seed is "
                f"{self.selection_effect:+.3f}, and the honestly tuned settings score {honest.fresh_mean:.3f} on "
                f"fresh seeds (fresh - reported {honest.interval()}) -> {reading.get(honest.verdict, honest.verdict)}."
            )
        return line

    def statements(self) -> tuple[str, ...]:
        """The findings, one sentence group each (what the live study cannot say is in the first)."""
        return (self.trials_statement(), self.gain_statement(), self.selection_statement())

    def __str__(self) -> str:
        return "What we found\n" + "\n".join(f"- {s}" for s in self.statements())

    def _repr_markdown_(self) -> str:
        return "**What we found**\n\n" + "\n".join(f"- {s}" for s in self.statements())


def tuning_findings(
    study: optuna.Study,
    final: pd.DataFrame,
    wrong_way: optuna.Study,
    wrong_fresh: Sequence[float],
    honest_fresh: Sequence[float],
    *,
    test_cell_type: str,
    tuned: str = "tuned on validation",
    default: str = "default",
    min_runs: int = MIN_RUNS,
) -> TuningFindings:
    """Collect notebook 04's findings from its objects.

    Parameters
    ----------
    study
        The honest study (objective on the validation cell type).
    final
        Test scores with columns ``method, seed, value`` (``method`` is ``tuned`` or ``default``),
        one row per method and seed: the default-vs-tuned comparison.
    wrong_way
        The study whose objective scored the test cells; its best value is what it would report.
    wrong_fresh, honest_fresh
        Test scores of the wrong-way pick and of the honest pick, retrained with seeds the search
        did not use (the same list twice when both studies picked the same setting).
    test_cell_type
        Named in the words.
    """
    missing = {"method", "seed", "value"} - set(final.columns)
    if missing:
        raise ValueError(f"final lacks the columns {sorted(missing)}; expected one row per method and seed")
    finished = [t for t in study.get_trials(deepcopy=False) if t.state in (_COMPLETE, _PRUNED)]
    phases = sampler_phases(study)
    phases = phases[phases["state"].isin([_COMPLETE.name, _PRUNED.name])]["phase"].value_counts()
    gain = paired_verdict(
        final.assign(metric="e_distance", gene_set="all"),
        tuned,
        default,
        "e_distance",
        match_on=("seed",),
        min_runs=min_runs,
    )
    completed = [t for t in wrong_way.get_trials(deepcopy=False) if t.state == _COMPLETE]
    if not completed or not any(t.state == _COMPLETE for t in finished):
        raise ValueError("both studies need at least one completed trial: their best values are the findings")
    reported = wrong_way.best_value
    honest_at_seed = next((t.value for t in completed if t.params == study.best_params), float("nan"))
    return TuningFindings(
        n_finished=len(finished),
        n_complete=sum(t.state == _COMPLETE for t in finished),
        n_pruned=sum(t.state == _PRUNED for t in finished),
        n_random=int(phases.get("random start-up", 0)),
        n_model=int(phases.get("TPE model", 0)),
        n_enqueued=int(phases.get("enqueued", 0)),
        n_startup_trials=n_startup_trials(study),
        test_cell_type=test_cell_type,
        tuned=tuned,
        default=default,
        n_seeds=gain["n"],
        gain=gain["estimate"],
        gain_low=gain["ci_low"],
        gain_high=gain["ci_high"],
        gain_verdict=gain["verdict"],
        n_candidates=len(completed),
        lucky=FreshComparison.of(reported, wrong_fresh),
        honest=FreshComparison.of(reported, honest_fresh),
        same_winner=wrong_way.best_params == study.best_params,
        selection_effect=float(reported - honest_at_seed),
    )
