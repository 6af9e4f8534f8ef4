"""Notebook 03's exercises: checks accept right answers and explain wrong ones; the notebook runs them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from course_tools.exercises import benchmarking as ex
from course_tools.grid_results import load_grid
from tutorial_lib.config import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "03_benchmarking_part1.ipynb"


def _table(design: str = "balanced") -> pd.DataFrame:
    """Four held-out cell types x 3 seeds. E-distance of mean shift 10 in T1 and 1 elsewhere; the model's is
    half of it in T1 and twice it elsewhere: it wins in 1 of 4, its raw mean difference is (-5 + 3 x 1) / 4 = -0.5
    (model ahead) while its geometric mean ratio is 2 ** 0.5 (mean shift ahead). Pearson-delta: the model is
    higher in T2 and T3 only."""
    rng = np.random.default_rng(0)
    rows = []
    for cell, (base, factor, pd_base, pd_model) in {
        "T1": (10.0, 0.5, 0.8, 0.7),
        "T2": (1.0, 2.0, 0.8, 0.9),
        "T3": (1.0, 2.0, 0.8, 0.9),
        "T4": (1.0, 2.0, 0.8, 0.7),
    }.items():
        for seed in range(3):
            noise = 1 + rng.normal(0, 1e-3)
            for method, e, p in (("mean_shift", base, pd_base), ("model", base * factor, pd_model)):
                for metric, value in (("e_distance", e * noise), ("pearson_delta", p * noise)):
                    rows.append(
                        {
                            "method": method,
                            "setting": f"loco/{cell}/{design}",
                            "seed": seed,
                            "score_group": "all",
                            "metric": metric,
                            "gene_set": "all",
                            "value": value,
                            "held_out": cell,
                            "design": design,
                        }
                    )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def balanced() -> pd.DataFrame:
    grid = load_grid()
    return grid[grid["design"] == "balanced"]


def test_cell_type_wins_counts_the_cell_types_where_the_model_is_better():
    t = _table()
    right = ex.check_cell_type_wins(1, t, "model")
    assert (
        right and "in 1 of 4 held-out cell types (T1)" in right.message and "no clear pooled advantage" in right.message
    )
    assert ex.check_cell_type_wins(np.int64(1), t, "model")
    wrong = ex.check_cell_type_wins(3, t, "model")
    assert not wrong and "you guessed 3; the table says 1" in wrong.message
    # higher is better for Pearson-delta: the model wins where it is higher (T2, T3)
    assert ex.check_cell_type_wins(2, t, "model", metric="pearson_delta")
    for bad in ("three", True, 5, -1, 1.5, ...):
        assert "write your guess first" in ex.check_cell_type_wins(bad, t, "model").message
    mixed = pd.concat([t, _table("stim20")])
    assert "one design" in ex.check_cell_type_wins(1, mixed, "model").message
    assert "cannot compare" in ex.check_cell_type_wins(1, t, "scgen").message
    assert "runs of one design" in ex.check_cell_type_wins(1, ..., "model").message


def test_raw_pooling_finds_the_cell_type_that_decides_the_raw_mean():
    from course_tools.verdicts import paired_verdict

    t = _table()
    raw = paired_verdict(t, "model", "mean_shift", "e_distance", "all", scale="difference")
    as_ratio = paired_verdict(t, "model", "mean_shift", "e_distance", "all")
    assert raw["estimate"] == pytest.approx(-0.5, abs=0.01) and as_ratio["estimate"] == pytest.approx(2**0.5, rel=0.01)
    right = ex.check_raw_pooling(raw, " t1 ", t, "model")
    assert right and "the direction flips" in right.message and "outweighs the other 3 together" in right.message
    wrong = ex.check_raw_pooling(raw, "T2", t, "model")
    assert not wrong and "not the largest ratios" in wrong.message
    assert "still pooled as a ratio" in ex.check_raw_pooling(as_ratio, "T1", t, "model").message
    swapped = paired_verdict(t, "mean_shift", "model", "e_distance", "all", scale="difference")
    assert "compare model (first)" in ex.check_raw_pooling(swapped, "T1", t, "model").message
    assert "one of ['T1'" in ex.check_raw_pooling(raw, "Neurons", t, "model").message
    assert "what paired_verdict" in ex.check_raw_pooling(..., ..., t, "model").message
    other = _table()
    other.loc[other["method"] == "model", "value"] *= 1.1
    assert "pool this table's runs" in ex.check_raw_pooling(raw, "T1", other, "model").message


def _namespace(balanced):
    rng = np.random.default_rng(5)
    a = 2.0 + rng.normal(0, 0.3, 5)
    checks = {name: getattr(ex, name) for name in dir(ex) if name.startswith("check_")}
    return {"np": np, "pd": pd, "balanced": balanced, "a": a, "b": a + 0.3 + rng.normal(0, 0.02, 5), **checks}


@pytest.mark.parametrize("key", sorted(ex.EXERCISES))
def test_every_solution_passes_and_every_scaffold_gets_feedback(key, balanced):
    item = ex.EXERCISES[key]
    assert set(item) == {"notebook", "kind", "question", "scaffold", "check", "solution"}
    assert item["notebook"] == NOTEBOOK.stem and "..." in item["scaffold"] and "..." not in item["solution"]
    ns = _namespace(balanced)
    if key == "03-2":  # continues exercise 03-1
        exec(ex.EXERCISES["03-1"]["solution"], ns)
    exec(item["solution"], ns)
    feedback = eval(item["check"], ns)
    assert feedback, f"{key}: {feedback}"
    unfilled = _namespace(balanced)
    exec(item["scaffold"], unfilled)
    assert not eval(item["check"], unfilled)  # a "Not yet", not a traceback


def test_the_notebook_has_a_predict_and_a_change_and_rerun_exercise():
    kinds = [item["kind"] for item in ex.EXERCISES.values()]
    assert "predict, then run" in kinds and "change a setting, rerun, interpret" in kinds


def test_the_notebook_runs_every_exercise_check():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for key, item in ex.EXERCISES.items():
        assert item["check"] in code, f"{key}: notebook 03 does not run {item['check']}"
