"""The workshop page: run times quoted from the notebooks, a timetable that adds up, exercises that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "book" / "workshop.md"


def test_pages_quote_the_run_times_recorded_in_the_notebooks():
    from tutorial_lib.run_times import differences

    stale = differences(REPO)
    assert not stale, (
        f"run times differ from the notebooks' metadata in {stale}: python -m tutorial_lib.run_times --write"
    )


def test_timetable_fills_three_and_a_half_hours():
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^\| (\d):(\d\d)–(\d):(\d\d) \|", text, re.M)
    minutes = [(int(a) * 60 + int(b), int(c) * 60 + int(d)) for a, b, c, d in blocks]
    assert minutes[0][0] == 0 and minutes[-1][1] == 210
    assert all(prev[1] == nxt[0] for prev, nxt in zip(minutes, minutes[1:])), "blocks must follow each other"


def test_every_exercise_of_the_kit_exists():
    from tutorial_lib.exercises import EXERCISES

    named = set(re.findall(r"exercises? (\d\d-\d)", PAGE.read_text(encoding="utf-8")))
    assert named and named <= set(EXERCISES), named - set(EXERCISES)
