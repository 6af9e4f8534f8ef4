"""Committed notebook outputs come from one in-order, full-mode run (what the book publishes)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_tools.execution import RECORD_KEY, TIMINGS_KEY, execute_notebook, execution_problems, main
from tutorial_lib.config import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_are_a_full_mode_run(path: Path):
    nb = nbformat.read(path, as_version=4)
    assert execution_problems(nb, mode="full") == []
    record = nb.metadata[RECORD_KEY]
    assert record["wall_s"] > 0 and record["versions"]["tutorial_lib"]


def test_the_course_has_its_five_notebooks():
    assert [p.name[:3] for p in NOTEBOOKS] == ["00_", "01_", "02_", "03_", "04_"]


def _notebook(*counts, mode="full", printed="full", error_at=None):
    cells = [new_markdown_cell("# title")]
    for i, count in enumerate(counts):
        outputs = [new_output("stream", name="stdout", text=f"mode: {printed}\n")] if i == 0 else []
        if i == error_at:
            outputs.append(new_output("error", ename="ValueError", evalue="boom", traceback=[]))
        cells.append(new_code_cell(f"x = {i}", execution_count=count, outputs=outputs))
    nb = new_notebook(cells=cells)
    if mode is not None:
        nb.metadata[RECORD_KEY] = {"mode": mode}
    return nb


def test_a_good_record_has_no_problems():
    assert execution_problems(_notebook(1, 2, 3)) == []


@pytest.mark.parametrize(
    ("nb", "expected"),
    [
        (_notebook(1, None, 2), "code cell 2 was not executed"),
        (_notebook(1, 3, 2), "execution counts are [1, 3, 2]"),
        (_notebook(2, 3, 4), "execution counts are [2, 3, 4]"),
        (_notebook(1, 2, error_at=1), "code cell 2 has an error output"),
        (_notebook(1, 2, mode=None), "no metadata['tutorial_execution']"),
        (_notebook(1, 2, mode="fast", printed="fast"), "executed in 'fast' mode, expected 'full'"),
        (_notebook(1, 2, mode="full", printed="fast"), "printed mode 'fast' but its record says 'full'"),
    ],
)
def test_unpublishable_outputs_are_named(nb, expected):
    problems = execution_problems(nb)
    assert any(expected in p for p in problems), problems


MODE_CELL = 'import os\nprint("mode:", "fast" if os.environ.get("TUTORIAL_FAST") == "1" else "full")'


def test_execute_records_the_run_and_check_accepts_it(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(MODE_CELL), new_code_cell("1 + 1")]), path)
    record = execute_notebook(path, mode="fast", timeout=120)
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata[RECORD_KEY] == record and record["mode"] == "fast"
    assert [c.execution_count for c in nb.cells] == [1, 2]
    assert execution_problems(nb, mode="fast") == []
    assert main(["--check", "--mode", "fast", str(path)]) == 0
    assert main(["--check", str(path)]) == 1  # not a full-mode run
    assert "executed in 'fast' mode" in capsys.readouterr().out


def test_a_failing_notebook_is_left_untouched(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(MODE_CELL), new_code_cell("raise ValueError('boom')")]), path)
    before = path.read_bytes()
    with pytest.raises(Exception, match="boom"):
        execute_notebook(path, mode="fast", timeout=120)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # no .part file left
    with pytest.raises(ValueError, match="mode must be one of"):
        execute_notebook(path, mode="slow")
    with pytest.raises(FileNotFoundError, match="not a notebook file"):
        execute_notebook(tmp_path / "missing.ipynb")


def test_time_only_records_the_timing_and_keeps_the_stored_outputs(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(MODE_CELL), new_code_cell("1 + 1")]), path)
    full = execute_notebook(path, mode="full", timeout=120)
    stored = nbformat.read(path, as_version=4)
    fast = execute_notebook(path, mode="fast", timeout=120, time_only=True)
    nb = nbformat.read(path, as_version=4)
    assert nb.cells == stored.cells  # the full-mode outputs stay
    assert nb.metadata[RECORD_KEY] == full  # and so does the record of the run behind them
    timings = nb.metadata[TIMINGS_KEY]
    assert set(timings) == {"full", "fast"}
    assert timings["fast"]["wall_s"] == fast["wall_s"] and timings["full"]["wall_s"] == full["wall_s"]
    for field in ("cpu_count", "torch_threads", "device", "load_start", "load_mean"):
        assert timings["fast"][field] == fast[field]
    assert fast["load_mean"] >= 0 and fast["torch_threads"] >= 1
