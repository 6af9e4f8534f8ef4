"""Run times are rendered from the notebooks' metadata into every page that quotes them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from course_tools import run_times
from course_tools.execution import TIMINGS_KEY


def _timing(wall_s: float, load: float = 1.0) -> dict:
    return {
        "date": "2026-12-06T01:00:00+00:00",
        "wall_s": wall_s,
        "cpu_model": "Test CPU",
        "cpu_count": 2,
        "torch_threads": 1,
        "device": "cpu",
        "load_start": 0.1,
        "load_mean": load,
    }


def _repo(tmp_path: Path, timings: dict[str, dict]) -> Path:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    for stem, t in timings.items():
        nb = new_notebook(cells=[new_markdown_cell("# Title\n\n**Run time.** old words\nover two lines.\n\nNext.")])
        nb.metadata[TIMINGS_KEY] = t
        nbformat.write(nb, tmp_path / "notebooks" / f"{stem}.ipynb")
    block = f"{run_times.BEGIN}\nold table\n{run_times.END}"
    (tmp_path / "README.md").write_text(f"# Course\n\n{block}\n\nend\n")
    (tmp_path / "book" / "setup.md").write_text(f"# Set-up\n\n{block}\n")
    (tmp_path / "book" / "workshop.md").write_text(
        f"# Workshop\n\n{block}\n\n| time | block | run | what |\n| --- | --- | --- | --- |\n"
        "| 0:15–0:45 | Module 00: data | 9 min | talk |\n| 0:45–1:25 | Module 01: scGen | 9 min | talk |\n"
    )
    return tmp_path


def test_write_copies_the_recorded_times_and_check_then_agrees(tmp_path):
    repo = _repo(
        tmp_path, {"00_intro": {"fast": _timing(70.4), "full": _timing(300)}, "01_scgen": {"full": _timing(95)}}
    )
    assert set(run_times.differences(repo)) == {
        "README.md",
        "book/setup.md",
        "book/workshop.md",
        "notebooks/00_intro.ipynb (first cell)",
        "notebooks/01_scgen.ipynb (first cell)",
    }
    run_times.write(repo)
    assert run_times.differences(repo) == []
    readme = (repo / "README.md").read_text()
    assert "| `00_intro` | 70 s | 5 min |" in readme
    assert "| `01_scgen` | not measured | 95 s |" in readme
    assert "| all | not measured | 7 min |" in readme  # 395 s; a total needs every notebook
    assert "on 2 CPU cores (Test CPU), 1 PyTorch thread, device cpu, 2026-12-06" in readme
    workshop = (repo / "book" / "workshop.md").read_text()
    assert "| Module 00: data | 70 s | talk |" in workshop
    assert "| Module 01: scGen | not measured | talk |" in workshop
    first = nbformat.read(repo / "notebooks" / "00_intro.ipynb", as_version=4).cells[0].source
    assert "subset): 70 s. Full mode (all 13,576 cells; the run behind these outputs): 5 min." in first
    assert "old words" not in first and first.endswith("\n\nNext.")


def test_check_names_a_page_that_no_longer_agrees(tmp_path):
    repo = _repo(tmp_path, {"00_intro": {"fast": _timing(70), "full": _timing(300)}})
    run_times.write(repo)
    path = repo / "notebooks" / "00_intro.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata[TIMINGS_KEY]["full"]["wall_s"] = 900.0  # a new full-mode run
    nbformat.write(nb, path)
    assert set(run_times.differences(repo)) == {
        "README.md",
        "book/setup.md",
        "book/workshop.md",
        "notebooks/00_intro.ipynb (first cell)",
    }


def test_a_page_without_markers_is_an_error(tmp_path):
    repo = _repo(tmp_path, {"00_intro": {"full": _timing(300)}})
    (repo / "book" / "setup.md").write_text("# Set-up\n\nno markers\n")
    with pytest.raises(ValueError, match="book/setup.md must hold the markers"):
        run_times.differences(repo)


@pytest.mark.parametrize(("seconds", "text"), [(None, "not measured"), (42.4, "42 s"), (119, "119 s"), (150, "2 min")])
def test_duration(seconds, text):
    assert run_times.duration(seconds) == text


def test_the_course_pages_have_their_markers():
    repo = Path(run_times.__file__).resolve().parents[1]
    for page in run_times.PAGES:
        text = (repo / page).read_text(encoding="utf-8")
        assert text.count(run_times.BEGIN) == 1 and text.count(run_times.END) == 1, page
