"""The layout of DESIGN.md and README.md's tour: four folders under one namespace, sub-packages
along the data path, and who may import whom.

Imports are resolved to absolute module names (a relative import three levels up is as much an
import as an absolute one), over every module of the four folders, functions' own imports
included.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("realtime", "models", "export", "gui")
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
# realtime/'s front ends: what a user runs. Everything else in realtime/ is library.
FRONTS = ("livestems.realtime.commands", "livestems.realtime.benchmarks")
API_FOLDER = ROOT / "realtime" / "api"


def _module_name(path: Path) -> str:
    """The name a file is imported under (``realtime/api/`` is the top-level ``livestems``)."""
    if path.parent == API_FOLDER:
        return "livestems"
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["livestems", *parts])


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py")
    }


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, names imported from it) for every import in a file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names]))
    return found


def _edges() -> dict[str, set[str]]:
    """module -> the package's modules it imports (a name that is a module counts as one)."""
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = set()
        for target, names in _imports(path):
            for imported in names:
                if f"{target}.{imported}" in MODULES:
                    targets.add(f"{target}.{imported}")
                elif target in MODULES:
                    targets.add(target)
            if not names and target in MODULES:
                targets.add(target)
        edges[name] = targets - {name}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_folder_is_a_subpackage_of_livestems(folder: str) -> None:
    module = importlib.import_module(f"livestems.{folder}")
    assert Path(module.__file__ or "").resolve().parent == ROOT / folder


def test_import_livestems_is_the_api_and_imports_nothing_heavy() -> None:
    code = (
        "import os, sys, livestems\n"
        "heavy = [m for m in ('numpy', 'onnxruntime', 'torch', 'soxr') if m in sys.modules]\n"
        "path = os.path.realpath(livestems.__file__)\n"
        "print(path, heavy, callable(livestems.separate), livestems.Separator)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "realtime/api/__init__.py [] True" in result.stdout, result.stdout


def test_no_import_cycle_between_modules() -> None:
    assert not _cycles(_edges())


def test_the_cycle_check_finds_a_cycle() -> None:
    # the check itself can fail: a two-module cycle and a three-module one
    edges = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert _cycles(edges) == [["a", "b"], ["c", "d", "e"]]


def test_no_module_imports_another_modules_private_names() -> None:
    violations = [
        f"{name} imports {imported} from {target}"
        for name, path in MODULES.items()
        for target, names in _imports(path)
        for imported in names
        if target.startswith("livestems") and target != name and imported.startswith("_")
        and f"{target}.{imported}" not in MODULES and imported != "__version__"
    ]  # fmt: skip
    assert not violations, "\n".join(violations)


def test_realtime_library_never_imports_the_commands() -> None:
    library = [
        name
        for name in MODULES
        if name.startswith("livestems.realtime")
        and not name.startswith(FRONTS)
        and MODULES[name].parent != API_FOLDER
    ]
    assert "livestems.realtime.engine.engine" in library
    edges = _edges()
    violations = [
        f"{name} imports {target}"
        for name in library
        for target in edges[name]
        if target.startswith("livestems.realtime.commands")
    ]
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("folder", sorted(set(FORBIDDEN) | set(FORBIDDEN_SIBLINGS)))
def test_import_rules(folder: str) -> None:
    violations = []
    for name, path in MODULES.items():
        if not name.startswith(f"livestems.{folder}"):
            continue
        for target, _ in _imports(path):
            top = target.split(".")[0]
            if top in FORBIDDEN.get(folder, set()):
                violations.append(f"{path.relative_to(ROOT)} imports {target}")
            sibling = target.split(".")[1] if top == "livestems" and "." in target else ""
            if sibling in FORBIDDEN_SIBLINGS.get(folder, set()):
                violations.append(f"{path.relative_to(ROOT)} imports {target}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                if (node.module or "").startswith("livestems"):
                    violations.append(f"{path.relative_to(ROOT)}: import {node.module} relatively")
    assert not violations, "\n".join(violations)


def test_realtime_modules_open_with_a_thread_contract() -> None:
    missing = []
    for path in sorted((ROOT / "realtime").rglob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if path.name != "__init__.py" and "thread contract" not in docstring.lower():
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"realtime modules without a thread contract: {missing}"


def _tour() -> dict[str, str]:
    """README's tour: folder (``realtime/engine/``) -> what its row says."""
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## Tour of the folders", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w/]+/)` \| (.*)$", tour, flags=re.M)
    return dict(rows)


def test_the_readme_tour_matches_the_tree() -> None:
    tour = _tour()
    packages = sorted(
        f"{path.parent.relative_to(ROOT)}/"
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("__init__.py")
        if path.parent != API_FOLDER
    )
    assert sorted(set(tour) - {"tests/", "realtime/api/"}) == packages
    problems = []
    for folder, row in tour.items():
        if folder == "tests/":
            continue
        present = {path.name for path in (ROOT / folder).glob("*.py")} - {"__init__.py"}
        named = set(re.findall(r"`([\w]+\.py)`", row)) - {"__init__.py"}
        problems += [f"{folder}{name} is not in the tour" for name in sorted(present - named)]
        problems += [
            f"the tour names {folder}{name}, not there" for name in sorted(named - present)
        ]
    assert not problems, "\n".join(problems)


def test_every_package_is_installed() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'^\s+"(livestems[\w.]*)",$', pyproject, flags=re.M))
    packages = {_module_name(path) for path in MODULES.values() if path.name == "__init__.py"}
    assert listed == packages
