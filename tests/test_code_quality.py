"""The linter and the type checker (STYLE.md: "a linter and a type checker that the CI runs")."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN))
    if path is None:
        pytest.skip(f"{name} is not installed (the 'dev' extra brings it)")
    return path


def test_ruff_lint_and_format() -> None:
    ruff = _tool("ruff")
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_on_every_package() -> None:
    mypy = _tool("mypy")
    result = subprocess.run(
        [mypy, "realtime", "gui", "models", "export"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
