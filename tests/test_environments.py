"""The set-up files agree with each other: conda environments, Binder, pyproject.toml, notebooks.

No conda is needed: the environment files are read with PyYAML and compared with
``pyproject.toml`` and with the imports of the notebooks.
"""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environments"
NOTEBOOK_DIR = REPO / "notebooks"
BINDER_DIR = REPO / ".binder"

MODULE_ENVS = ("intro", "scgen", "scpram", "benchmarking")
# Environments that are not a course module (no notebook, not part of Binder): the book build and
# the reference implementations of benchmarks/compare_references.py.
ALL_ENVS = (*MODULE_ENVS, "book", "reference")

# Notebooks are matched to their module's environment by their number prefix.
NOTEBOOK_ENV = {
    "00": "intro",
    "01": "scgen",
    "02": "scpram",
    "03": "benchmarking",
    "04": "benchmarking",
}

# Import name -> conda-forge package name, where they differ (lower-cased, '-' separated
# otherwise). The PyPI name is the same as the conda-forge one except where CONDA_TO_PIP says.
IMPORT_TO_CONDA = {
    "sklearn": "scikit-learn",
    "torch": "pytorch",
    "ot": "pot",
    "yaml": "pyyaml",
    "umap": "umap-learn",
    "mpl_toolkits": "matplotlib",
    "PIL": "pillow",
    "IPython": "ipython",
    "matplotlib_inline": "matplotlib-inline",
    "dateutil": "python-dateutil",
}
CONDA_TO_PIP = {"pytorch": "torch"}

# Packages that come with another listed package (a hard dependency), so a notebook may import
# them without the environment naming them.
PROVIDED_BY = {
    "ipython": {"ipykernel", "jupyterlab"},
    "matplotlib-inline": {"ipykernel"},
    "pillow": {"matplotlib"},
    "python-dateutil": {"pandas", "matplotlib"},
}

# The course library and its machinery, installed by the pip line of every environment file.
LIBRARY_IMPORTS = {"tutorial_lib", "course_tools"}


# --------------------------------------------------------------------------------------------
# Parsing helpers


def load_yaml(path: Path) -> dict:
    with path.open() as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def conda_specs(env: dict) -> dict[str, str]:
    """Conda dependencies of an environment file as ``{name: constraint}``."""
    specs: dict[str, str] = {}
    for dep in env.get("dependencies", []):
        if isinstance(dep, str):
            m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", dep)
            assert m, f"cannot parse conda dependency {dep!r}"
            name, constraint = m.group(1).lower(), m.group(2).replace(" ", "")
            assert name not in specs, f"{name} listed twice"
            specs[name] = constraint
    return specs


def pip_lines(env: dict) -> list[str]:
    lines: list[str] = []
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict) and "pip" in dep:
            lines.extend(str(x) for x in dep["pip"])
    return lines


def pip_requirements(env: dict) -> list[Requirement]:
    """Named requirements of the pip section (not options such as ``-e ..``)."""
    return [Requirement(line) for line in pip_lines(env) if not line.startswith("-")]


def editable_targets(env: dict) -> list[str]:
    targets = []
    for line in pip_lines(env):
        m = re.fullmatch(r"(?:-e|--editable)[ =]+(\S+)", line.strip())
        if m:
            targets.append(m.group(1))
    return targets


def conda_floor(constraint: str) -> str | None:
    """The ``>=`` floor of a conda constraint such as ``>=1.26`` or ``>=1.26,<2``."""
    floors = re.findall(r">=\s*([0-9][^,|]*)", constraint)
    assert len(floors) <= 1, f"several floors in {constraint!r}"
    return floors[0] if floors else None


def pip_floor(specifier: SpecifierSet) -> str | None:
    floors = [s.version for s in specifier if s.operator == ">="]
    return floors[0] if floors else None


def pip_name(conda_name: str) -> str:
    return canonicalize_name(CONDA_TO_PIP.get(conda_name, conda_name))


def conda_name_of_import(module: str) -> str:
    return IMPORT_TO_CONDA.get(module, module.lower().replace("_", "-"))


def pyproject() -> dict:
    with (REPO / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def pyproject_requirements() -> dict[str, dict[str, Requirement]]:
    """Requirements of pyproject.toml by group: ``"core"`` and each extra."""
    project = pyproject()["project"]
    groups = {"core": project.get("dependencies", [])}
    groups.update(project.get("optional-dependencies", {}))
    return {group: {canonicalize_name(r.name): r for r in map(Requirement, reqs)} for group, reqs in groups.items()}


def env_path(name: str) -> Path:
    return ENV_DIR / f"{name}.yml"


def code_of_cell(source: str) -> str:
    """Python source of a notebook code cell, with IPython syntax (magics, ``!cmd``) removed."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("!", "%"))]
        return "\n".join(lines)
    # Magics become get_ipython() calls, which contain no import statements.
    return TransformerManager().transform_cell(source)


def notebook_imports(path: Path) -> set[str]:
    """Top-level names of the modules imported by the code cells of a notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    modules: set[str] = set()
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        source = source.lstrip()
        if source.startswith("%%"):
            magic, _, body = source.partition("\n")
            if magic.split()[0] not in {"%%time", "%%timeit", "%%capture"}:
                continue  # a cell in another language (%%bash, %%html, ...)
            source = body  # a cell magic that runs its body as Python
        try:
            tree = ast.parse(code_of_cell(source))
        except SyntaxError as exc:
            pytest.fail(f"{path.name}, code cell {i}: not valid Python: {exc}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def missing_imports(modules: set[str], packages: set[str]) -> list[str]:
    """Imports not provided by the standard library, the course library or ``packages``."""
    missing = []
    for module in sorted(modules):
        if module in sys.stdlib_module_names or module in LIBRARY_IMPORTS:
            continue
        name = conda_name_of_import(module)
        if name in packages or PROVIDED_BY.get(name, set()) & packages:
            continue
        missing.append(f"{module} (conda-forge package {name!r})")
    return missing


def notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


# --------------------------------------------------------------------------------------------
# Environment files


def test_every_environment_file_exists():
    present = {p.stem for p in ENV_DIR.glob("*.yml")}
    assert present == set(ALL_ENVS), f"environments/ has {sorted(present)}, expected {ALL_ENVS}"


@pytest.mark.parametrize("name", ALL_ENVS)
def test_environment_uses_conda_forge_and_python_311(name):
    env = load_yaml(env_path(name))
    assert env.get("name"), f"{name}.yml has no environment name"
    channels = env.get("channels", [])
    assert channels and channels[0] == "conda-forge", f"{name}.yml: channels are {channels}"
    assert "defaults" not in channels
    specs = conda_specs(env)
    assert specs.get("python") in {"=3.11", "3.11", "=3.11.*", "==3.11.*"}, (
        f"{name}.yml pins python {specs.get('python')!r}, expected python=3.11"
    )
    assert "pip" in specs, f"{name}.yml has a pip section, so it must list pip itself"


@pytest.mark.parametrize("name", ALL_ENVS)
def test_environment_installs_this_repository(name):
    env = load_yaml(env_path(name))
    targets = editable_targets(env)
    assert len(targets) == 1, f"{name}.yml: expected one '-e ..' pip line, got {pip_lines(env)}"
    # conda runs pip in the folder of the environment file, so the path is relative to it.
    target = targets[0].split("[")[0]
    root = (ENV_DIR / target).resolve()
    assert root == REPO, f"{name}.yml installs {root}, not the repository root {REPO}"
    assert pyproject()["project"]["name"] == "tutorial_lib"


@pytest.mark.parametrize("name", ALL_ENVS)
def test_environment_provides_every_library_dependency(name):
    """pip must find all of tutorial_lib's dependencies installed, and so fetch nothing."""
    specs = conda_specs(load_yaml(env_path(name)))
    provided = {pip_name(c) for c in specs}
    missing = sorted(set(pyproject_requirements()["core"]) - provided)
    assert not missing, f"{name}.yml lacks dependencies of tutorial_lib: {missing}"


@pytest.mark.parametrize("name", ALL_ENVS)
def test_version_floors_agree_with_pyproject(name):
    env = load_yaml(env_path(name))
    known: dict[str, Requirement] = {}
    for group in pyproject_requirements().values():
        known.update(group)
    problems = []
    for conda, constraint in conda_specs(env).items():
        req = known.get(pip_name(conda))
        if req is None:
            continue
        want, have = pip_floor(req.specifier), conda_floor(constraint)
        if want != have:
            problems.append(f"{conda}: environment floor {have}, pyproject.toml floor {want}")
    for req in pip_requirements(env):
        ref = known.get(canonicalize_name(req.name))
        if ref is None or req.specifier == ref.specifier:
            continue
        # An exact pin (e.g. the reference environment's pertpy==1.0.3) may narrow pyproject's range.
        pins = [s.version for s in req.specifier if s.operator == "=="]
        if not (len(pins) == 1 and len(req.specifier) == 1 and ref.specifier.contains(pins[0], prereleases=True)):
            problems.append(f"{req.name}: pip line {req.specifier}, pyproject.toml {ref.specifier}")
    assert not problems, f"{name}.yml disagrees with pyproject.toml: " + "; ".join(problems)


def test_book_environment_pins_jupyter_book_as_pyproject():
    env = load_yaml(env_path("book"))
    pins = {canonicalize_name(r.name): r for r in pip_requirements(env)}
    book_extra = pyproject_requirements()["book"]
    assert "jupyter-book" in pins and "jupyter-book" in book_extra
    assert str(pins["jupyter-book"].specifier) == str(book_extra["jupyter-book"].specifier)
    assert str(book_extra["jupyter-book"].specifier).startswith("==1."), "Jupyter Book 1.x only"


# --------------------------------------------------------------------------------------------
# Notebook imports


def test_every_notebook_has_an_environment():
    for path in notebooks():
        assert path.name[:2] in NOTEBOOK_ENV, (
            f"{path.name}: no conda environment for it; add its number to NOTEBOOK_ENV "
            "in tests/test_environments.py (and an environment file if it is a new module)"
        )


@pytest.mark.parametrize("prefix", sorted(NOTEBOOK_ENV))
def test_notebook_imports_are_in_its_environment(prefix):
    paths = sorted(NOTEBOOK_DIR.glob(f"{prefix}_*.ipynb"))
    if not paths:
        pytest.skip(f"no notebook {prefix}_*.ipynb yet")
    env_name = NOTEBOOK_ENV[prefix]
    packages = set(conda_specs(load_yaml(env_path(env_name))))
    for path in paths:
        missing = missing_imports(notebook_imports(path), packages)
        assert not missing, (
            f"{path.name} imports modules that environments/{env_name}.yml does not provide: " + ", ".join(missing)
        )


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_imports_are_installed_by_pyproject(path):
    """`make course` installs the core dependencies and the `notebooks` extra: enough for all."""
    groups = pyproject_requirements()
    packages = set(groups["core"]) | set(groups.get("notebooks", {}))
    # PyPI names: map them to conda names for the comparison in missing_imports.
    conda_names = {next((c for c, p in CONDA_TO_PIP.items() if p == n), n) for n in packages}
    missing = missing_imports(notebook_imports(path), conda_names)
    assert not missing, f"{path.name} imports modules that pyproject.toml does not install: {missing}"


def test_import_check_catches_a_missing_package(tmp_path):
    """The checks above fail when a notebook imports something its environment lacks."""
    cells = [
        "%matplotlib inline\n!pip list\nimport numpy as np\nimport os, sys",
        "from sklearn.decomposition import PCA\nimport torch.nn as nn\nfrom tutorial_lib import config",
        "%%time\nimport statsmodels.api as sm\nfrom IPython.display import display",
        "%%bash\nimport-not-python",
        "def f():\n    import ot.bregman\n    from umap import UMAP\n    from . import x",
    ]
    nb = {
        "cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": []} for c in cells],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "99_probe.ipynb"
    path.write_text(json.dumps(nb))
    imports = notebook_imports(path)
    assert imports == {
        "numpy",
        "os",
        "sys",
        "sklearn",
        "torch",
        "tutorial_lib",
        "statsmodels",
        "IPython",
        "ot",
        "umap",
    }
    packages = set(conda_specs(load_yaml(env_path("intro"))))
    assert missing_imports(imports, packages) == ["statsmodels (conda-forge package 'statsmodels')"]


# --------------------------------------------------------------------------------------------
# Binder and the set-up commands


def test_binder_environment_is_the_union_of_module_environments():
    binder = load_yaml(BINDER_DIR / "environment.yml")
    assert binder.get("channels", [None])[0] == "conda-forge"
    union: dict[str, str] = {}
    for name in MODULE_ENVS:
        for conda, constraint in conda_specs(load_yaml(env_path(name))).items():
            assert union.setdefault(conda, constraint) == constraint, (
                f"{conda} has different constraints in the module environments"
            )
    assert conda_specs(binder) == union, "edit .binder/environment.yml to match environments/"
    # repo2docker builds the environment before the repository is copied in: no '-e' line here.
    assert not editable_targets(binder)


def test_binder_post_build_installs_this_repository():
    post_build = BINDER_DIR / "postBuild"
    assert post_build.exists()
    assert post_build.stat().st_mode & stat.S_IXUSR, ".binder/postBuild must be executable"
    text = post_build.read_text()
    assert re.search(r"pip install .*(-e|--editable) \.(\s|$)", text), text


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert commands[0] == "set -euo pipefail"
    assert commands[-1] == "make test"
    assert all(c.startswith(("set ", "cd ")) for c in commands[:-1]), commands
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make course" in readme


def test_makefile_installs_torch_before_the_project():
    makefile = (REPO / "Makefile").read_text()
    torch_at = makefile.index('install $(TORCH_PIP_ARGS) "$(TORCH)"')
    project_at = makefile.index('install -e ".[$(EXTRAS)]"')
    assert torch_at < project_at
    assert re.search(r"^TORCH \?= torch==2\.13\.0$", makefile, re.M)
    extras = re.search(r"^EXTRAS \?= (\S+)$", makefile, re.M).group(1).split(",")
    assert set(extras) <= set(pyproject()["project"]["optional-dependencies"])


@pytest.mark.skipif(os.name != "posix", reason="shell scripts")
@pytest.mark.parametrize("script", [".ci/run", "scripts/run_course.sh"])
def test_scripts_are_executable_bash(script):
    path = REPO / script
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    assert path.stat().st_mode & stat.S_IXUSR, f"{script} must be executable"
