"""The first code cell of every notebook (tag ``colab-setup``), written from ``_config.yml``.

The course's repository address is one setting, ``repository.url`` in ``_config.yml`` (it also
drives the book's launch buttons). The Colab cell needs the address before the course is
installed, so it cannot read it from the library: this script writes it into the cell.

    python scripts/colab_cell.py           # rewrite the cells from _config.yml (after publishing)
    python scripts/colab_cell.py --check   # exit 1 if a cell differs (tests/test_colab_cell.py)

Only the cell's source changes: its id, metadata, execution count and outputs are kept, so the
committed run of each notebook stays valid (the cell prints nothing outside Colab and Binder).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "_config.yml"
TAG = "colab-setup"

TEMPLATE = """\
# On Google Colab and Binder only (this cell does nothing anywhere else): fast mode, and on Colab
# fetch and install the course. Fast mode uses a small committed subset of the data and runs each
# notebook in minutes on the free machines. For the whole data set set FULL_MODE = True and
# re-run this cell before any other (tens of minutes per notebook; a GPU runtime helps).
FULL_MODE = False

import os
import subprocess
import sys

on_colab = "google.colab" in sys.modules
on_binder = "BINDER_LAUNCH_HOST" in os.environ or "BINDER_REQUEST" in os.environ
if on_colab or on_binder:
    os.environ["TUTORIAL_FAST"] = "0" if FULL_MODE else "1"
    print("mode chosen in this cell:", "full" if FULL_MODE else "fast", "(FULL_MODE = True for full mode)")
if on_colab:
    repo = "/content/course"
    subprocess.run(
        ["git", "clone", "--depth", "1", "{url}", repo], check=False
    )
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "torch", "-e", repo], check=True)
    sys.path.insert(0, repo)
"""


def repository_url(config: Path = CONFIG) -> str:
    """``repository.url`` of the book configuration (the one place the address is written)."""
    text = config.read_text(encoding="utf-8")
    m = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)\s*$", text, re.M)
    if not m:
        raise ValueError(f"{config}: no 'url:' under 'repository:'")
    return m.group(1).strip("'\"")


def cell_source(url: str) -> str:
    """Source of the Colab cell for the repository at ``url``."""
    return TEMPLATE.format(url=url).rstrip("\n")


def setup_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and TAG in c.get("metadata", {}).get("tags", [])]


def as_lines(source: str) -> list[str]:
    """The notebook JSON form of a source: lines with their newlines."""
    return source.splitlines(keepends=True)


def sync(path: Path, url: str, *, write: bool) -> bool:
    """True when the notebook's Colab cell already has the right source (else rewrite if ``write``)."""
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    cells = setup_cells(nb)
    if len(cells) != 1:
        raise ValueError(f"{path.name}: expected one code cell tagged {TAG!r}, found {len(cells)}")
    want = as_lines(cell_source(url))
    source = cells[0]["source"]
    if (source if isinstance(source, list) else as_lines(source)) == want:
        return True
    if write:
        cells[0]["source"] = want
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report differences, change nothing")
    args = parser.parse_args(argv)
    url = repository_url()
    stale = [p.name for p in sorted((REPO / "notebooks").glob("*.ipynb")) if not sync(p, url, write=not args.check)]
    if args.check and stale:
        print(
            "Colab cell differs from _config.yml's repository url in: "
            + ", ".join(stale)
            + "; run python scripts/colab_cell.py"
        )
        return 1
    print(("rewrote: " + ", ".join(stale)) if stale else "all Colab cells match _config.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
