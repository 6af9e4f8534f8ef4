"""The workshop page quotes the run times recorded in the notebooks (so a re-run updates it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "book" / "workshop.md"


def _recorded() -> dict[str, float]:
    out = {}
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        record = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("tutorial_execution", {})
        out[path.stem] = record.get("wall_s")
    return out


def _quoted() -> dict[str, float]:
    rows = re.findall(r"^\| `([0-9]{2}_[a-z0-9_]+)` \| ([0-9.]+) \|", PAGE.read_text(encoding="utf-8"), re.M)
    return {name: float(value) for name, value in rows}


def test_timetable_quotes_every_notebooks_recorded_wall_time():
    recorded, quoted = _recorded(), _quoted()
    assert set(quoted) == set(recorded), f"workshop.md lists {sorted(quoted)}, notebooks are {sorted(recorded)}"
    stale = {
        k: (quoted[k], recorded[k])
        for k in recorded
        if recorded[k] is None or quoted[k] != pytest.approx(recorded[k], abs=0.05)
    }
    assert not stale, (
        "book/workshop.md's run-time table differs from metadata['tutorial_execution']['wall_s'] "
        f"(quoted, recorded): {stale}; copy the new times (and re-check the timetable)"
    )
    total = re.search(r"^\| all five \| ([0-9.]+) \|", PAGE.read_text(encoding="utf-8"), re.M)
    assert total and float(total.group(1)) == pytest.approx(sum(recorded.values()), abs=0.1)


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
