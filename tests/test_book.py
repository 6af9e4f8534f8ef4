"""The course book: table of contents, configuration, bibliography, and a full build.

The build runs ``jupyter-book build <repo> --path-output <tmp> --all -W --keep-going``, the same
command as ``make book`` but writing into a temporary folder, so warnings fail the test. It runs
once per test session (fixture ``book_build``, shared with ``tests/test_book_browser.py`` and
between pytest-xdist workers through a file lock).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

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

# Chapters beside the notebooks, and the part each belongs to (workshop order within a part).
CHAPTERS = {
    "Introduction": ["book/perturbation_modelling"],
    "scGen": ["book/theory_models"],
    "Benchmarking": ["book/theory_benchmarking"],
    "Reference": ["book/glossary", "book/results", "book/setup", "book/references"],
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


def require_jupyter_book() -> None:
    """Skip (fail on CI) when jupyter-book is not installed."""
    if importlib.util.find_spec("jupyter_book") is None:
        reason = "jupyter-book is not installed (pip install -e '.[book]')"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def shared_tmp_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this test run, shared by its pytest-xdist workers (their common parent)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / name


@dataclass(frozen=True)
class BookBuild:
    """Outcome of one ``jupyter-book build``: exit status, the end of its log, the HTML folder."""

    returncode: int
    log: str
    html: Path


def build_book(output: Path) -> BookBuild:
    """``jupyter-book build <repo> --path-output <output> --all -W --keep-going``."""
    cmd = [*jupyter_book_command(), "build", str(REPO), "--path-output", str(output), "--all", "-W", "--keep-going"]
    env = {**os.environ, "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    log = (result.stdout + result.stderr)[-6000:]
    return BookBuild(result.returncode, log, output / "_build" / "html")


@pytest.fixture(scope="session")
def book_build(tmp_path_factory) -> BookBuild:
    """The book built once per test run (the first worker builds, the others wait and reuse it)."""
    require_jupyter_book()
    folder = shared_tmp_dir(tmp_path_factory, "book")
    record = folder / "build.json"
    with FileLock(f"{folder}.lock"):
        if not record.exists():
            folder.mkdir(parents=True, exist_ok=True)
            built = build_book(folder)
            record.write_text(json.dumps({"returncode": built.returncode, "log": built.log}))
        data = json.loads(record.read_text())
    return BookBuild(data["returncode"], data["log"], folder / "_build" / "html")


def test_chapters_are_in_their_parts():
    toc = load("_toc.yml")
    parts = {part["caption"]: toc_files(part) for part in toc["parts"]}
    for caption, chapters in CHAPTERS.items():
        assert caption in parts, f"no part {caption!r} in _toc.yml"
        listed = [e for e in parts[caption] if e in chapters]
        assert listed == chapters, f"part {caption!r}: chapters {listed}, expected {chapters} in this order"
    # Within a module, the theory chapter comes before the notebooks.
    for caption, chapter in (("scGen", "book/theory_models"), ("Benchmarking", "book/theory_benchmarking")):
        entries = parts[caption]
        notebooks = [i for i, e in enumerate(entries) if e.startswith("notebooks/")]
        assert all(entries.index(chapter) < i for i in notebooks), f"{chapter} must precede the notebooks"


def test_citations_have_bibliography_entries():
    """Every key of a {cite} role in the chapters is in the bibliography (the build also checks)."""
    config = load("_config.yml")
    text = "\n".join((REPO / bib).read_text(encoding="utf-8") for bib in config["bibtex_bibfiles"])
    keys = set(re.findall(r"@\w+\{([^,\s]+),", text))
    for page in sorted((REPO / "book").glob("*.md")):
        for roles in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", page.read_text(encoding="utf-8")):
            for key in roles.split(","):
                assert key.strip() in keys, f"{page.name}: no bibliography entry {key.strip()!r}"


def test_book_builds_without_warnings(book_build):
    assert book_build.returncode == 0, f"jupyter-book build failed:\n{book_build.log}"

    html = book_build.html
    assert (html / "index.html").exists(), book_build.log
    for entry in toc_files(load("_toc.yml")):
        page = html / Path(entry).with_suffix(".html")
        assert page.exists(), f"toc entry {entry!r} produced no page {page}"
    # The bibliography page lists the works cited in the book.
    bibliography = (html / "book" / "references.html").read_text(encoding="utf-8")
    assert "Multiplexed droplet single-cell" in bibliography
    # The glossary defines its terms, and the theory chapters render their equations.
    glossary = (html / "book" / "glossary.html").read_text(encoding="utf-8")
    assert 'id="term-VAE"' in glossary and 'id="term-Sinkhorn"' in glossary
    assert glossary.count('<dt id="term-') >= 20
    models = (html / "book" / "theory_models.html").read_text(encoding="utf-8")
    assert models.count('class="math notranslate nohighlight"') >= 10
