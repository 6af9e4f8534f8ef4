"""The committed study read as far as it has come (course_tools.tuning.committed_report), and its figure."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from course_tools.findings import name
from course_tools.tuning import committed as tc
from course_tools.tuning import committed_report as cr
from course_tools.tuning.storage import make_storage
from course_tools.tuning.study import suggest
from tutorial_lib.metrics import KEY_METRICS


def _journal(out, method: str, n: int, seed: int = 0) -> optuna.Study:
    """Add ``n`` trials to a committed-study journal (made if missing); their objective depends on ``lr`` only."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(
        study_name=tc.STUDY_NAME.format(method=method),
        storage=make_storage(tc.journal_path(out, method)),
        sampler=optuna.samplers.TPESampler(seed=seed),
        load_if_exists=True,
    )

    def objective(trial):
        params = suggest(trial, tc.STUDY_SPACES[method])
        return (np.log10(params["lr"]) + 3) ** 2 + 0.01 * rng.normal()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=n)
    return study


def _final(method: str, gain: float, seeds=range(5), seed: int = 0) -> pd.DataFrame:
    """Final runs of ``method`` and ``<method>_tuned``: the tuned one better by ``gain`` on every key metric."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in seeds:
        for m, shift in [(method, 0.0), (method + tc.TUNED, gain)]:
            for k in KEY_METRICS:
                lower = k.metric == "e_distance"
                base = 3.0 if lower else 0.5
                value = base * (1 - shift) if lower else base + shift
                value += 0.01 * rng.normal()
                rows.append(
                    dict(
                        method=m,
                        seed=s,
                        setting="loco/CD4+ T cells/balanced",
                        metric=k.metric,
                        gene_set=k.gene_set,
                        value=value,
                        ci_low=value - 0.01,
                        ci_high=value + 0.01,
                    )
                )
    return pd.DataFrame(rows)


def test_nothing_run_yet_says_so_and_names_the_command(tmp_path):
    f = cr.committed_findings(tmp_path, n_resamples=5)
    assert [p.n_complete for p in f.progress] == [0, 0] and not f.importances and not f.verdicts
    assert not f.complete
    text = str(f)
    assert "scGen's study has not started" in text and "scPRAM's study has not started" in text
    assert "scGen: 100 more trials, then its final runs" in text
    assert "python -m course_tools.tuning.committed --out results/tuning_study" in text
    assert list(f.progress_table()["completed"]) == [0, 0]


def test_a_study_under_way_is_counted_and_its_importances_are_said_so_far(tmp_path):
    _journal(tmp_path, "scgen", cr.MIN_TRIALS_FOR_IMPORTANCES)
    f = cr.committed_findings(tmp_path, n_resamples=10)
    scgen, scpram = f.progress
    assert scgen.n_complete == cr.MIN_TRIALS_FOR_IMPORTANCES and not scgen.done and scpram.n_complete == 0
    assert scgen.n_random == 10 and scgen.n_model == cr.MIN_TRIALS_FOR_IMPORTANCES - 10  # TPE's 10 start-up trials
    assert set(f.importances) == {"scgen"} and not f.verdicts
    table = f.importances["scgen"]
    assert table.iloc[0]["param"] == "lr"  # the only parameter the objective depends on
    words = f.statements()
    assert words[0].startswith(f"scGen's study is under way: {cr.MIN_TRIALS_FOR_IMPORTANCES} of 100 trials completed")
    assert f"so far (after {cr.MIN_TRIALS_FOR_IMPORTANCES} of 100 trials), lr explains" in words[1]
    assert "(CD14+ Monocytes)" in words[1]
    assert f"{table.iloc[0]['importance']:.2f}" in words[1]
    assert "scGen: 70 more trials" in words[-1] and "scPRAM: 100 more trials" in words[-1]
    # a failed trial (e.g. a killed worker's, failed as stale) is counted and said
    study = tc.load_study(tmp_path, "scgen")
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    failed = cr.study_progress(tmp_path, "scgen")
    assert failed.n_failed == 1 and failed.n_complete == cr.MIN_TRIALS_FOR_IMPORTANCES
    assert "; 1 failed;" in failed.statement()
    # fewer completed trials than the importances need: none
    _journal(tmp_path, "scpram", cr.MIN_TRIALS_FOR_IMPORTANCES - 1)
    assert "scpram" not in cr.committed_findings(tmp_path, n_resamples=5).importances


def test_a_complete_study_with_final_runs_says_whether_tuning_paid_off(tmp_path):
    _journal(tmp_path, "scgen", 30)
    _final("scgen", gain=0.2).to_csv(tmp_path / "final.csv.gz", index=False)
    f = cr.committed_findings(tmp_path, methods=["scgen"], n_trials=30, n_resamples=10)
    (p,) = f.progress
    assert p.done and p.n_final_seeds == 5 and f.complete
    assert set(f.verdicts) == {"scgen"} and (f.verdicts["scgen"]["n"] == 5).all()
    words = f.statements()
    assert words[0].startswith("scGen's study is complete: 30 trials") and "so far" not in words[1]
    tuned = words[2]
    assert tuned.startswith(f"scGen's best trial (n_layers={p.best_params['n_layers']}")
    assert "over 5 paired seeds" in tuned and "exploratory" in tuned
    said, carried = tuned.split(" The trials chose")
    assert said.count("the tuned settings are better on") == 1 and "defaults are better" not in said
    for k in KEY_METRICS:  # every key metric, by its name, in the one group
        assert f"{name(k.metric)} ({name(k.gene_set)}, " in said.split("the tuned settings are better on")[1]
    assert carried == (
        " these settings by the E-distance on CD14+ Monocytes; that choice carried over: by the same measure the "
        "tuned settings are better on CD4+ T cells."
    )
    assert not any("Until a study holds all its trials" in s for s in words)
    # tuned worse on every key metric: the defaults' group, and the choice did not carry over
    _final("scgen", gain=-0.2).to_csv(tmp_path / "final.csv.gz", index=False)
    tuned = cr.committed_findings(tmp_path, methods=["scgen"], n_trials=30, n_resamples=10).statements()[2]
    assert "the defaults are better on Pearson-Δ (top-100 DEGs, higher is better)" in tuned
    assert "tuned settings are better" not in tuned and "that choice did not carry over" in tuned
    # no difference on the objective: said so, neither side named
    _final("scgen", gain=0.0).to_csv(tmp_path / "final.csv.gz", index=False)
    tuned = cr.committed_findings(tmp_path, methods=["scgen"], n_trials=30, n_resamples=10).statements()[2]
    assert "no clear difference on" in tuned and "E-distance (all genes, lower is better)" in tuned
    assert tuned.endswith("by the same measure the runs cannot tell them apart on CD4+ T cells.")
    # no final runs yet: the study is done, the comparison is what is left
    (tmp_path / "final.csv.gz").unlink()
    f = cr.committed_findings(tmp_path, methods=["scgen"], n_trials=30, n_resamples=10)
    assert not f.verdicts and "scGen: its final runs on the test cell type" in f.statements()[-1]


def _table(values: dict[str, tuple[float, float, float]], n: int = 100) -> pd.DataFrame:
    return pd.DataFrame(
        [dict(param=k, importance=v[0], low=v[1], high=v[2], n_trials=n, n_resamples=100) for k, v in values.items()]
    )


@pytest.mark.parametrize(
    "second, ahead",
    [((0.2, 0.1, 0.3), True), ((0.3, 0.2, 0.5), False)],
)
def test_importance_words_follow_the_spreads(second, ahead):
    p = cr.StudyProgress("scpram", 100, 100, 0, 0, 10, 90, 0, 2.0, {"lr": 1e-3}, 0)
    text = cr.importance_statement(
        p, _table({"kl_weight": (0.5, 0.4, 0.6), "lr": second, "dropout_rate": (0.01, 0.0, 0.03)}), "B"
    )
    assert text.startswith("For scPRAM, kl_weight explains the largest share") and "so far" not in text
    assert (", clearly more than the next, lr" in text) == ahead
    assert ("not clearly more than the next, lr" in text) == (not ahead)
    assert ("their spreads overlap" in text) == (not ahead)
    assert "dropout_rate hardly matters here: its whole spread lies below 5% of the variation" in text
    with pytest.raises(ValueError, match="no importances"):
        cr.importance_statement(p, _table({}), "B")


def test_importance_figure_draws_a_bar_and_a_whisker_per_parameter():
    import matplotlib.pyplot as plt

    from course_tools.plots import importance_spread_plot, overlapping_texts

    tables = {
        "scgen": _table({"lr": (0.5, 0.4, 0.6), "kl_weight": (0.2, 0.1, 0.3)}, n=40),
        "scpram": _table({"lr": (0.3, 0.1, 0.5), "n_hidden": (0.25, 0.2, 0.3), "dropout_rate": (0.0, 0.0, 0.02)}),
    }
    fig = importance_spread_plot(tables)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == ["kl_weight", "lr"]  # most important on top
    assert [round(b.get_width(), 2) for b in right.patches] == [0.0, 0.25, 0.3]
    assert left.get_title() == "scgen: 40 trials" and left.get_xlim() == (0.0, 1.0)
    assert not overlapping_texts(fig)
    plt.close(fig)
    with pytest.raises(ValueError, match="no importances"):
        importance_spread_plot({})
    with pytest.raises(Exception, match="low"):
        importance_spread_plot({"scgen": tables["scgen"].drop(columns="low")})


def test_kept_importances_are_read_while_they_match_the_journal(tmp_path, monkeypatch):
    assert cr.write_importances(tmp_path) is None  # nothing to keep yet
    _journal(tmp_path, "scgen", cr.MIN_TRIALS_FOR_IMPORTANCES)
    path = cr.write_importances(tmp_path, n_resamples=5)
    kept = pd.read_csv(path)
    assert set(kept["method"]) == {"scgen"} and (kept["n_trials"] == cr.MIN_TRIALS_FOR_IMPORTANCES).all()
    computed = tc.importance_spread(tc.load_study(tmp_path, "scgen"), n_resamples=5)
    pd.testing.assert_frame_equal(
        kept.drop(columns=["method", "seed"]), computed, check_dtype=False, check_exact=False, rtol=1e-12
    )
    # matching rows are read, not refitted
    calls = []
    monkeypatch.setattr(cr, "importance_spread", lambda *a, **k: calls.append(1) or computed)
    f = cr.committed_findings(tmp_path, n_resamples=5)
    assert not calls
    pd.testing.assert_frame_equal(f.importances["scgen"], kept.drop(columns=["method", "seed"]))
    # other resamples, or a journal that has grown since: computed from the journal
    cr.committed_findings(tmp_path, n_resamples=6)
    assert len(calls) == 1
    monkeypatch.undo()
    _journal(tmp_path, "scgen", 1)  # a 31st trial (the same study, loaded)
    f = cr.committed_findings(tmp_path, n_resamples=5)
    assert f.progress[0].n_complete == cr.MIN_TRIALS_FOR_IMPORTANCES + 1
    assert (f.importances["scgen"]["n_trials"] == cr.MIN_TRIALS_FOR_IMPORTANCES + 1).all()


def test_the_report_command_prints_the_findings_and_keeps_the_importances(tmp_path, capsys):
    _journal(tmp_path, "scpram", cr.MIN_TRIALS_FOR_IMPORTANCES)
    assert cr.main(["--out", str(tmp_path), "--write"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / cr.IMPORTANCES_FILE}" in out and "scPRAM's study is under way" in out
    assert "For scPRAM so far" in out and (tmp_path / cr.IMPORTANCES_FILE).is_file()


def test_notebook_04_says_the_sizes_the_report_uses():
    """Section 7's prose names the thresholds of committed_report; a change to either must change both."""
    import json
    import re

    from tutorial_lib.config import REPO_ROOT

    nb = json.loads((REPO_ROOT / "notebooks" / "04_benchmarking_part2.ipynb").read_text())
    text = re.sub(r"\s+", " ", " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"))
    assert f"at least {cr.MIN_TRIALS_FOR_IMPORTANCES} completed trials" in text
    assert f"over {cr.N_RESAMPLES} bootstrap resamples of the trials" in text
    assert f"{cr.N_TRIALS} trials of Optuna's TPE sampler" in text
