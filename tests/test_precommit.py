"""The pre-commit configuration runs the ruff that `make lint` runs, on code and notebooks."""

from __future__ import annotations

import re
import tomllib

import yaml

from tutorial_lib.config import REPO_ROOT


def test_precommit_runs_the_pinned_ruff_on_code_and_notebooks():
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    ruff = next(r for r in config["repos"] if r["repo"].endswith("astral-sh/ruff-pre-commit"))
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = next(
        re.fullmatch(r"ruff==(\S+)", r).group(1) for deps in extras.values() for r in deps if r.startswith("ruff==")
    )
    assert ruff["rev"] == f"v{pinned}", "the pre-commit hook and `make lint` must run the same ruff"
    hooks = {h["id"]: h for h in ruff["hooks"]}
    assert list(hooks) == ["ruff-check", "ruff-format"]  # lint (with fixes) before formatting
    for hook in hooks.values():
        assert "jupyter" in hook.get("types_or", ["python", "pyi", "jupyter"])
