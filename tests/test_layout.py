"""The layout of DESIGN.md: four folders under one namespace, and who may import whom."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> top-level modules it must never import (DESIGN.md, "Layout")
FORBIDDEN = {
    "realtime": {"torch", "onnx", "museval", "PySide6", "pyqtgraph"},
    "gui": {"torch", "onnx", "museval"},
}
# folder -> sibling packages it must never import
FORBIDDEN_SIBLINGS = {
    "realtime": {"models", "export", "gui"},
    "gui": {"models", "export"},
    "models": {"gui", "export"},
}


@pytest.mark.parametrize("folder", ["realtime", "models", "export", "gui"])
def test_each_folder_is_a_subpackage_of_livestems(folder: str) -> None:
    module = importlib.import_module(f"livestems.{folder}")
    assert Path(module.__file__ or "").resolve().parent == ROOT / folder


def _imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module name) of every import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


@pytest.mark.parametrize("folder", sorted(set(FORBIDDEN) | set(FORBIDDEN_SIBLINGS)))
def test_import_rules(folder: str) -> None:
    violations = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for level, name in _imports(path):
            top = name.split(".")[0]
            if level == 0 and top in FORBIDDEN.get(folder, set()):
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
            if level == 0 and top == "livestems":
                violations.append(f"{path.relative_to(ROOT)}: use a relative import for {name}")
            sibling = name.split(".")[0] if level >= 2 else ""
            if sibling in FORBIDDEN_SIBLINGS.get(folder, set()):
                violations.append(f"{path.relative_to(ROOT)} imports ..{name}")
    assert not violations, "\n".join(violations)


def test_realtime_modules_open_with_a_thread_contract() -> None:
    missing = []
    for path in sorted((ROOT / "realtime").glob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if path.name != "__init__.py" and "thread contract" not in docstring.lower():
            missing.append(path.name)
    assert not missing, f"realtime modules without a thread contract: {missing}"
