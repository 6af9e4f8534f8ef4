"""The workshop page: run times quoted from the notebooks, a timetable that adds up, exercises that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "book" / "workshop.md"


def test_pages_quote_the_run_times_recorded_in_the_notebooks():
    from course_tools.run_times import differences

    stale = differences(REPO)
    assert not stale, (
        f"run times differ from the notebooks' metadata in {stale}: python -m course_tools.run_times --write"
    )


def _timetables(text: str) -> list[list[tuple[int, int]]]:
    """Each timetable of the page as its blocks' (start, end) minutes, in order."""
    tables, current = [], []
    for line in text.splitlines():
        match = re.match(r"^\| (\d):(\d\d)–(\d):(\d\d) \|", line)
        if match:
            a, b, c, d = map(int, match.groups())
            current.append((a * 60 + b, c * 60 + d))
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def test_timetables_fill_three_and_a_half_and_two_and_a_half_hours():
    tables = _timetables(PAGE.read_text(encoding="utf-8"))
    assert [(t[0][0], t[-1][1]) for t in tables] == [(0, 210), (0, 150)]
    for blocks in tables:
        assert all(prev[1] == nxt[0] for prev, nxt in zip(blocks, blocks[1:])), "blocks must follow each other"
        assert all(start < end for start, end in blocks)


def test_every_exercise_of_the_kit_exists():
    from course_tools.exercises import EXERCISES

    named = set(re.findall(r"exercises? (\d\d-\d)", PAGE.read_text(encoding="utf-8")))
    assert named and named <= set(EXERCISES), named - set(EXERCISES)
