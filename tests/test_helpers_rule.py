"""What test modules share lives in ``tests/helpers/``: no test module imports another test
module or a ``conftest.py`` (pytest finds fixtures itself; importing one registers it twice and
hides where it comes from). Every module under ``tests/`` is parsed, imports inside functions
included, relative imports resolved."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ALLOWED = "tests.helpers"


def _module_name(path: Path) -> str:
    """``tests/realtime/test_engine.py`` -> ``tests.realtime.test_engine``."""
    parts = path.relative_to(TESTS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every module (or name from a module) that ``tree`` imports, as absolute dotted names."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from tests import realtime`` imports a module too: name what is imported.
            found += [(node.lineno, f"{base}.{alias.name}" if base else alias.name)
                      for alias in node.names]  # fmt: skip
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports in ``source`` (the module ``module``) that break the rule."""
    broken = []
    for line, name in _imported(ast.parse(source), module, is_package):
        parts = name.split(".")
        outside_helpers = (
            parts[0] == "tests" and name != ALLOWED and not name.startswith(ALLOWED + ".")
        )
        if outside_helpers or "conftest" in parts:
            broken.append(f"{module}:{line} imports {name}")
    return broken


def test_no_test_module_imports_another_or_a_conftest() -> None:
    broken = []
    for path in sorted(TESTS.rglob("*.py")):
        broken += violations(
            path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py"
        )
    assert not broken, (
        "move what test modules share into tests/helpers/ (fixtures into a conftest.py):\n"
        + "\n".join(broken)
    )


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from tests.realtime.test_engine import ChannelSplitModel", "tests.realtime.test_player"),
        ("from tests.gui.conftest import make_window", "tests.gui.test_window"),
        ("import tests.allocations", "tests.realtime.test_mixer"),
        ("from tests import underruns", "tests.export.test_stream_onnx"),
        ("from .test_processor import run_blocks", "tests.realtime.test_subband_processor"),
        ("from ..models.test_families import randomized", "tests.export.test_bench"),
        ("from .conftest import SAMPLE_RATE", "tests.gui.test_window"),
        ("def f():\n    from tests.realtime.test_fuzz import FUZZ\n", "tests.models.test_fuzz"),
    ],
)
def test_the_rule_sees_each_kind_of_import(source: str, module: str) -> None:
    assert violations(source, module), source


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from tests.helpers.signals import white_noise", "tests.realtime.test_pqmf"),
        ("import tests.helpers.fuzz", "tests.models.test_fuzz_config"),
        ("from tests.helpers import doubles", "tests.realtime.test_engine"),
        ("from ..helpers.gui import make_window", "tests.gui.test_window"),
        ("from .signals import snr_db", "tests.helpers.fuzz"),
        ("from livestems.realtime.engine import processor", "tests.realtime.test_processor"),
    ],
)
def test_the_rule_lets_helpers_and_the_package_through(source: str, module: str) -> None:
    assert not violations(source, module), source


@pytest.mark.slow
def test_helpers_but_networks_import_without_torch() -> None:
    """Only ``tests/helpers/networks.py`` may import torch at its top (tests that import it
    skip without torch); every other helper serves tests that run without the train extra."""
    names = sorted(
        path.stem
        for path in (TESTS / "helpers").glob("*.py")
        if path.stem not in ("__init__", "networks", "make_tiny_model")
    )
    script = (
        "import sys\n"
        + "".join(f"import tests.helpers.{name}\n" for name in names)
        + "assert 'torch' not in sys.modules, 'a helper imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=TESTS.parent, check=True, timeout=120)
