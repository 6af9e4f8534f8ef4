"""The book's diagrams (book/figures/*.svg) are what scripts/make_diagrams.py draws, and say what they must."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("make_diagrams", REPO / "scripts" / "make_diagrams.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


md = _module()

# Words each figure must show (one line of a label each: text is drawn as paths, and the SVG keeps
# every line of text as a comment beside its glyphs).
KEY_LABELS = {
    "scgen.svg": [
        "encoder",
        "decoder",
        "Latent space z",
        "δ = mean(stimulated) − mean(control) over the training types,",
        "each type with the same number of cells",
        "held-out control + δ",
    ],
    "scpram.svg": [
        "encoder",
        "decoder",
        "2 Cost matrix",
        "3 Exact OT plan",
        "4 Matched pairs",
        "5 Attention",
        "weights: cosine",
        "Δ = Σ weight × d",
    ],
    "evaluation_design.svg": [
        "One split: CD4+ T cells held out",
        "hidden",
        "input",
        "no change",
        "mean shift",
        "scGen",
        "scPRAM",
        "Paired runs",
        "5 seeds",
        "8 held-out cell types",
        "(Pearson-Δ, top 100 DEGs)",
        "• distribution of cells (E-distance)",
        "• responders found (DEG overlap)",
    ],
}


def labels(svg: bytes) -> list[str]:
    return [line.strip() for line in re.findall(r"<!-- (.*?) -->", svg.decode("utf-8"))]


def creator(svg: bytes) -> str:
    m = re.search(r"<dc:title>(Matplotlib v[^,<]+)", svg.decode("utf-8"))
    return m.group(1) if m else ""


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("figures")
    return {path.name: path.read_bytes() for path in md.write_figures(folder)}


def test_the_three_figures_are_drawn():
    assert set(md.FIGURES) == set(KEY_LABELS)


@pytest.mark.parametrize("name", sorted(KEY_LABELS))
def test_committed_figure_is_current(name, drawn):
    committed = md.FIGURES_DIR / name
    assert committed.exists(), f"{committed} is missing: run python scripts/make_diagrams.py"
    old, new = committed.read_bytes(), drawn[name]
    if creator(old) == creator(new):
        assert new == old, f"{committed} is stale: run python scripts/make_diagrams.py"
    else:  # another matplotlib draws other bytes; the words must still agree
        assert labels(new) == labels(old), f"{committed} is stale: run python scripts/make_diagrams.py"


@pytest.mark.parametrize("name", sorted(KEY_LABELS))
def test_figure_shows_its_key_labels(name, drawn):
    shown = labels(drawn[name])
    missing = [label for label in KEY_LABELS[name] if label not in shown]
    assert not missing, f"{name} lacks {missing}"
    assert re.search(r"<title>[^<]+</title>", drawn[name].decode("utf-8")), f"{name} has no title"


@pytest.mark.parametrize("name", sorted(KEY_LABELS))
def test_no_text_overlaps(name):
    with matplotlib.rc_context(md.RC):
        fig = md.FIGURES[name]()
        problems = md.text_problems(fig)
    assert problems == []


def test_output_is_deterministic(drawn):
    name = "scpram.svg"
    assert md.render(name) == drawn[name]
    assert b"<dc:date>" not in drawn[name]


def test_stale_and_missing_figures_are_named(tmp_path):
    md.write_figures(tmp_path)
    assert md.stale(tmp_path) == []
    (tmp_path / "scgen.svg").write_bytes(b"<svg/>")
    (tmp_path / "scpram.svg").unlink()
    assert md.stale(tmp_path) == ["scgen.svg", "scpram.svg"]


def test_the_text_check_finds_an_overlap():
    with matplotlib.rc_context(md.RC):
        fig, ax = md.canvas()
        md.text(ax, 1.0, 1.0, "one label")
        md.text(ax, 1.1, 1.0, "another label")
        md.text(ax, 7.95, 3.0, "off the page")
        problems = md.text_problems(fig)
    assert problems == ["'off the page' leaves the figure", "'one label' overlaps 'another label'"]


def test_the_scpram_sketch_is_computed():
    cost, plan, match, weights = md.ot_sketch()
    n = len(md.SKETCH_CTRL)
    # exact OT with uniform weights: every row and column carries 1/n, one stimulated cell per control cell
    np.testing.assert_allclose(plan.sum(axis=0), 1 / n)
    np.testing.assert_allclose(plan.sum(axis=1), 1 / n)
    assert sorted(match) == list(range(n))
    # no other one-to-one matching is cheaper
    from itertools import permutations

    best = min(sum(cost[i, p[i]] for i in range(n)) for p in permutations(range(n)))
    assert cost[np.arange(n), match].sum() == pytest.approx(best)
    assert list(match) != list(range(n)), "the plan should not be drawn as the diagonal"
    # attention: TOP_K positive weights that sum to one
    assert (weights > 0).sum() == md.TOP_K
    assert weights.sum() == pytest.approx(1.0)
