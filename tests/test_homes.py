"""Two homes: ``tutorial_lib`` is what a learner reads, ``course_tools`` the machinery around it.

The learner's library must run without the machinery, so it never imports ``course_tools``
(neither at the top of a module nor inside a function), and it keeps within a size a learner
can read.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "tutorial_lib"
MACHINERY = "course_tools"
#: Lines of ``tutorial_lib/**/*.py`` (docstrings, comments and blank lines included) a learner can read.
LINE_BUDGET = 3_500
LIBRARY_FILES = sorted(LIBRARY.rglob("*.py"))
LIBRARY_LINES = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in LIBRARY_FILES)


def _is_machinery(module: str | None) -> bool:
    return module is not None and (module == MACHINERY or module.startswith(MACHINERY + "."))


def machinery_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of ``course_tools`` in ``source``, wherever it is written.

    Counts ``import``/``from ... import`` statements at any depth (inside functions, classes,
    ``if TYPE_CHECKING``) and ``importlib.import_module``/``__import__`` called with a literal name.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if _is_machinery(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_machinery(node.module):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in {"import_module", "__import__"} and _is_machinery(str(node.args[0].value)):
                found.append((node.lineno, str(node.args[0].value)))
    return found


def test_the_scan_finds_imports_of_the_machinery_wherever_they_are():
    source = (
        "import os\nfrom tutorial_lib import config\nimport course_tools_extra\n"
        "def f():\n    from course_tools.tuning import study\n"
        "    import course_tools.execution as ex\n"
        "    return importlib.import_module('course_tools.run_times')\n"
    )
    assert machinery_imports(source) == [
        (5, "course_tools.tuning"),
        (6, "course_tools.execution"),
        (7, "course_tools.run_times"),
    ]


def test_library_source_imports_nothing_of_the_machinery():
    assert LIBRARY_FILES, f"no Python files under {LIBRARY}"
    found = [
        f"{path.relative_to(REPO)}:{line}: imports {module}"
        for path in LIBRARY_FILES
        for line, module in machinery_imports(path.read_text(encoding="utf-8"))
    ]
    assert not found, "tutorial_lib must not depend on course_tools:\n" + "\n".join(found)


_IMPORT_ALL = """
import importlib, json, pkgutil, sys
import tutorial_lib
names = ["tutorial_lib"] + [m.name for m in pkgutil.walk_packages(tutorial_lib.__path__, "tutorial_lib.")]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m == {machinery!r} or m.startswith({machinery!r} + "."))
print(json.dumps({{"imported": names, "machinery": loaded}}))
"""


def test_importing_every_library_module_loads_no_machinery():
    script = _IMPORT_ALL.format(machinery=MACHINERY)
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"importing the modules of tutorial_lib failed:\n{run.stderr[-3000:]}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    expected = {
        ".".join(("tutorial_lib", *path.relative_to(LIBRARY).with_suffix("").parts)).removesuffix(".__init__")
        for path in LIBRARY_FILES
    }
    assert set(result["imported"]) == expected  # every module was imported, none skipped
    assert result["machinery"] == [], f"importing tutorial_lib loaded {result['machinery']}"


def test_library_fits_its_line_budget():
    assert LIBRARY_LINES <= LINE_BUDGET, f"tutorial_lib has {LIBRARY_LINES:,} lines; the budget is {LINE_BUDGET:,}"
