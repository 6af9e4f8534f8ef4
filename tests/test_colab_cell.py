"""The notebooks' Colab cell: fast mode unless chosen otherwise, and one repository address.

The address is written once, as ``repository.url`` of ``_config.yml``; the Colab cells are
written from it by ``scripts/colab_cell.py`` and checked to match. Nothing else may hold it
(README.md describes it, once).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", ".cache", "_build", ".pytest_cache", "node_modules", "results", "test-artifacts"}


def _module():
    spec = importlib.util.spec_from_file_location("colab_cell", REPO / "scripts" / "colab_cell.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


colab = _module()


def _url() -> str:
    return yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["url"]


def _repository_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
        return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]
    except (OSError, subprocess.CalledProcessError):  # no git: walk the tree
        return [p for p in REPO.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(REPO).parts)]


def test_script_reads_the_url_of_the_book_config():
    assert colab.repository_url() == _url()


def test_every_notebook_cell_matches_the_config():
    assert colab.main(["--check"]) == 0


def test_the_address_has_no_other_copy():
    url = _url()
    bare = url.removeprefix("https://").removeprefix("http://").rstrip("/")
    holders = {}
    for path in _repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        n = text.count(bare)
        if n:
            holders[path.relative_to(REPO).as_posix()] = n
    allowed = {"_config.yml": 1, "README.md": 1}
    notebooks = {k: v for k, v in holders.items() if k.startswith("notebooks/") and k.endswith(".ipynb")}
    others = {k: v for k, v in holders.items() if k not in notebooks and k not in allowed}
    assert not others, f"the repository address is copied in {others}; read it from _config.yml instead"
    assert holders.get("_config.yml") == 1 and holders.get("README.md", 0) <= 1
    # In a notebook only the generated Colab cell holds it, once.
    for name, n in notebooks.items():
        nb = json.loads((REPO / name).read_text(encoding="utf-8"))
        in_cell = "".join(colab.setup_cells(nb)[0]["source"]).count(bare)
        assert n == in_cell == 1, f"{name}: the address appears {n} times, {in_cell} in the Colab cell"


def test_changing_the_config_changes_only_the_cell_source(tmp_path):
    nb_path = tmp_path / "notebooks" / "00_intro.ipynb"
    nb_path.parent.mkdir()
    shutil.copy(REPO / "notebooks" / "00_intro.ipynb", nb_path)
    before = json.loads(nb_path.read_text())
    new = "https://github.com/someone-else/published-course"
    assert colab.sync(nb_path, new, write=True) is False
    after = json.loads(nb_path.read_text())
    assert colab.sync(nb_path, new, write=False) is True
    cell_b, cell_a = colab.setup_cells(before)[0], colab.setup_cells(after)[0]
    assert new in "".join(cell_a["source"]) and _url() not in "".join(cell_a["source"])
    for key in ("execution_count", "outputs", "metadata", "id"):
        assert cell_a.get(key) == cell_b.get(key), key
    assert [c for c in after["cells"] if c is not cell_a] == [c for c in before["cells"] if c is not cell_b]
    assert after["metadata"] == before["metadata"]


def test_repository_url_needs_the_setting(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("title: x\nrepository:\n  path_to_book: ''\n  branch: main\n")
    with pytest.raises(ValueError, match="url"):
        colab.repository_url(cfg)
    cfg.write_text("title: x\nrepository:\n  path_to_book: ''\n  url: https://example.org/a/b\n")
    assert colab.repository_url(cfg) == "https://example.org/a/b"


def _run_cell(monkeypatch, env: dict[str, str], full: bool = False) -> dict:
    for key in ("TUTORIAL_FAST", "BINDER_LAUNCH_HOST", "BINDER_REQUEST"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    source = colab.cell_source(_url())
    if full:
        source = source.replace("FULL_MODE = False", "FULL_MODE = True", 1)
    exec(compile(source, "colab-cell", "exec"), {})  # not on Colab here: clones nothing
    return dict(os.environ)


def test_cell_chooses_fast_mode_on_binder_unless_full_is_chosen(monkeypatch):
    assert "FULL_MODE = False" in colab.cell_source(_url())
    assert _run_cell(monkeypatch, {"BINDER_LAUNCH_HOST": "https://mybinder.org/"})["TUTORIAL_FAST"] == "1"
    assert _run_cell(monkeypatch, {"BINDER_REQUEST": "v2/gh/x/y/main"}, full=True)["TUTORIAL_FAST"] == "0"


def test_cell_does_nothing_on_a_laptop_or_ci(monkeypatch):
    assert "TUTORIAL_FAST" not in _run_cell(monkeypatch, {})
    assert _run_cell(monkeypatch, {"TUTORIAL_FAST": "0"})["TUTORIAL_FAST"] == "0"
