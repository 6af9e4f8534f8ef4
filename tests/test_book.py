"""The course book: table of contents, configuration, bibliography, and a full build.

The build runs ``jupyter-book build <repo> --path-output <tmp> --all -W --keep-going``, the same
command as ``make book`` but writing into a temporary folder, so warnings fail the test.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PART_ORDER = ["Introduction", "scGen", "scPRAM", "Benchmarking", "Reference"]
SUFFIXES = (".md", ".ipynb")

# Works every course page may cite, with their DOIs.
REQUIRED_REFERENCES = {
    "kang2018": "10.1038/nbt.4042",
    "lotfollahi2019scgen": "10.1038/s41592-019-0494-8",
    "jiang2024scpram": "10.1093/bioinformatics/btae265",
    "bunne2023cellot": "10.1038/s41592-023-01969-x",
    "peidli2024scperturb": "10.1038/s41592-023-02144-y",
    "akiba2019optuna": "10.1145/3292500.3330701",
}


def load(name: str) -> dict:
    with (REPO / name).open() as fh:
        return yaml.safe_load(fh)


def toc_files(node) -> list[str]:
    """Every ``file`` entry of the table of contents, root first, in reading order."""
    found: list[str] = []
    if isinstance(node, dict):
        if "root" in node:
            found.append(node["root"])
        if "file" in node:
            found.append(node["file"])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                found.extend(toc_files(child))
    return found


def source_of(entry: str) -> list[Path]:
    base = REPO / entry
    if base.suffix in SUFFIXES:
        return [base] if base.exists() else []
    return [p for p in (base.with_name(base.name + s) for s in SUFFIXES) if p.exists()]


def test_toc_format_and_parts():
    toc = load("_toc.yml")
    assert toc["format"] == "jb-book"
    assert toc["root"] == "book/intro"
    captions = [part["caption"] for part in toc.get("parts", [])]
    assert captions == [c for c in PART_ORDER if c in captions], (
        f"parts {captions} are not a subsequence of {PART_ORDER}"
    )
    assert {"Introduction", "Reference"} <= set(captions)
    for part in toc["parts"]:
        assert part.get("chapters"), f"part {part['caption']!r} has no chapters"
    # Globs that match nothing are build warnings; list files one by one.
    assert "glob" not in yaml.safe_dump(toc), "use explicit `file:` entries"


def test_every_toc_entry_exists():
    entries = toc_files(load("_toc.yml"))
    assert len(entries) == len(set(entries)), "an entry is listed twice"
    for entry in entries:
        sources = source_of(entry)
        assert len(sources) == 1, f"toc entry {entry!r} matches {sources or 'no file'}"


def test_every_notebook_is_in_the_book():
    entries = {Path(e).with_suffix("").as_posix() for e in toc_files(load("_toc.yml"))}
    missing = [
        nb.relative_to(REPO).with_suffix("").as_posix()
        for nb in sorted((REPO / "notebooks").glob("*.ipynb"))
        if nb.relative_to(REPO).with_suffix("").as_posix() not in entries
    ]
    assert not missing, f"add these notebooks to _toc.yml (see the comment at its top): {missing}"


def test_config():
    config = load("_config.yml")
    assert config["only_build_toc_files"] is True
    assert config["execute"]["execute_notebooks"] == "off"
    excluded = set(config["exclude_patterns"])
    assert {".venv", ".cache", "_build", "README.md"} <= excluded
    assert config["repository"]["url"].startswith("https://github.com/")
    buttons = config["launch_buttons"]
    assert buttons["binderhub_url"] == "https://mybinder.org"
    assert buttons["colab_url"] == "https://colab.research.google.com"
    for bib in config["bibtex_bibfiles"]:
        assert (REPO / bib).exists(), bib


def test_bibliography_has_the_course_references():
    config = load("_config.yml")
    text = "\n".join((REPO / bib).read_text(encoding="utf-8") for bib in config["bibtex_bibfiles"])
    entries = dict(re.findall(r"@\w+\{([^,\s]+),(.*?)\n\}", text, flags=re.S))
    for key, doi in REQUIRED_REFERENCES.items():
        assert key in entries, f"no bibliography entry {key!r}"
        m = re.search(r"doi\s*=\s*\{([^}]*)\}", entries[key])
        assert m and m.group(1) == doi, f"{key}: DOI {m.group(1) if m else None}, expected {doi}"


def jupyter_book_command() -> list[str]:
    local = Path(sys.executable).with_name("jupyter-book")
    if local.exists():
        return [str(local)]
    found = shutil.which("jupyter-book")
    assert found, "jupyter-book is not on PATH"
    return [found]


def test_book_builds_without_warnings(tmp_path):
    if importlib.util.find_spec("jupyter_book") is None:
        if os.environ.get("CI"):
            pytest.fail("jupyter-book is not installed (pip install -e '.[book]')")
        pytest.skip("jupyter-book is not installed (pip install -e '.[book]')")
    cmd = [
        *jupyter_book_command(),
        "build",
        str(REPO),
        "--path-output",
        str(tmp_path),
        "--all",
        "-W",
        "--keep-going",
    ]
    env = {**os.environ, "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    log = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"jupyter-book build failed:\n{log}"

    html = tmp_path / "_build" / "html"
    assert (html / "index.html").exists(), log
    for entry in toc_files(load("_toc.yml")):
        page = html / Path(entry).with_suffix(".html")
        assert page.exists(), f"toc entry {entry!r} produced no page {page}"
    # The bibliography page lists the works cited in the book.
    bibliography = (html / "book" / "references.html").read_text(encoding="utf-8")
    assert "Multiplexed droplet single-cell" in bibliography
